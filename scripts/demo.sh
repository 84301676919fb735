#!/usr/bin/env bash
# The main job on the embedded default, the emoji benchmark (English): install,
# build, then one MPI job runs jobs/emoji-en.yaml — data (npm) ->
# extract -> Bin -> embed -> FAISS index -> retrieve -> Open-Tag +RAG -> tag
# -> judge -> scores (closed set and Tag Gain), printed at the end and kept in
# runs/emoji-en/main/report.md. JOB=jobs/emoji-full.yaml gives the full
# five-row table for both languages. Rerunning continues where a previous
# run stopped (ot-run skips finished steps; the interrupted stage resumes
# from its ledger or checkpoint). OT_MARCH=haswell OPENBLAS_CORETYPE=Haswell
# builds and runs as the README's tables were measured (README: "Other CPUs").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
bash scripts/build.sh ${OT_MARCH:+-DOT_MARCH=$OT_MARCH}
t0=$(date +%s)
mpirun --oversubscribe -np "${NP:-2}" build/stages/run/ot-run "${JOB:-jobs/emoji-en.yaml}"
echo "demo: ${JOB:-jobs/emoji-en.yaml} took $(( $(date +%s) - t0 )) s"
