#!/usr/bin/env bash
# The main job on the embedded default, the emoji benchmark: install, build,
# fetch and build the benchmark from npm, then for each language (LANGS,
# default "en zh"): extract; train the closed-set Bin tagger (its encoders
# also embed the items for retrieval); embed, index the training split with
# FAISS, retrieve multi-source candidates for every split; train Open-Tag
# +RAG on them; tag the test split; score Bin, retrieval alone and +RAG —
# each stage on 2 MPI ranks. Rerunning continues where a previous run
# stopped (extraction, embedding, retrieval and tagging resume from their
# ledgers, training from its newest checkpoint; finished stages return at
# once).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
NP=${NP:-2}
MPI=(mpirun --oversubscribe -np "$NP")
bash scripts/build.sh
bash jobs/emoji/emoji-data.sh data/emoji
for lang in ${LANGS:-en zh}; do
  cfg=configs/emoji-$lang.yaml
  run=runs/emoji-$lang
  score() { # prediction file, report row
    build/stages/eval/ot-eval --config "$cfg" --set eval.pred="$1" --set eval.out="$run/report" \
      --set eval.name="$2" --set eval.append=true
  }
  "${MPI[@]}" build/stages/extract/ot-extract --config "$cfg"
  "${MPI[@]}" build/stages/train/ot-train --config "$cfg"
  "${MPI[@]}" build/stages/tag/ot-tag --config "$cfg"
  score "$run/bin/tags-test/tags.jsonl" Bin
  "${MPI[@]}" build/stages/embed/ot-embed --config "$cfg"
  "${MPI[@]}" build/stages/index/ot-index --config "$cfg"
  "${MPI[@]}" build/stages/retrieve/ot-retrieve --config "$cfg"
  score "$run/retrieve/test/tags.jsonl" "Retrieval alone"
  rag=(--set model.type=rag --set train.dir="$run/rag")
  "${MPI[@]}" build/stages/train/ot-train --config "$cfg" "${rag[@]}"
  "${MPI[@]}" build/stages/tag/ot-tag --config "$cfg" "${rag[@]}"
  score "$run/rag/tags-test/tags.jsonl" +RAG
  cat "$run/report.md"
done
