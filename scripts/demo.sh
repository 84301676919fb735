#!/usr/bin/env bash
# The main job on the embedded default, the emoji benchmark: install, build,
# fetch and build the benchmark from npm, then extract both languages with
# 2 MPI ranks. Rerunning continues where a previous run stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
NP=${NP:-2}
bash scripts/build.sh
bash jobs/emoji/emoji-data.sh data/emoji
for lang in en zh; do
  mpirun --oversubscribe -np "$NP" build/stages/extract/ot-extract --config "configs/emoji-$lang.yaml"
done
