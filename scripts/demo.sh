#!/usr/bin/env bash
# The main job on the embedded default, the emoji benchmark: install, build,
# fetch and build the benchmark from npm, then for both languages extract,
# train the closed-set Bin tagger, tag the test split and score it — each
# stage on 2 MPI ranks. Rerunning continues where a previous run stopped
# (extraction and tagging resume from their ledgers, training from its
# newest checkpoint; finished stages return at once).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
NP=${NP:-2}
MPI=(mpirun --oversubscribe -np "$NP")
bash scripts/build.sh
bash jobs/emoji/emoji-data.sh data/emoji
for lang in en zh; do
  cfg=configs/emoji-$lang.yaml
  "${MPI[@]}" build/stages/extract/ot-extract --config "$cfg"
  "${MPI[@]}" build/stages/train/ot-train --config "$cfg"
  "${MPI[@]}" build/stages/tag/ot-tag --config "$cfg"
  build/stages/eval/ot-eval --config "$cfg" --set eval.pred="runs/emoji-$lang/bin/tags-test/tags.jsonl" \
    --set eval.out="runs/emoji-$lang/report" --set eval.name=Bin --set eval.append=true
done
