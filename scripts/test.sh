#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds with warnings as
# errors, runs every ctest label but bench, then the unit and the MPI tests
# (labels unit, mpi; not the Slurm ones) again in an AddressSanitizer +
# UndefinedBehaviorSanitizer build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

BUILD_DIR=build-test bash scripts/build.sh -DOT_WERROR=ON
(cd build-test && ctest --output-on-failure -LE bench --timeout 900)

# Sanitizers: the unit tests, then the MPI tests with leak reports off (Open
# MPI's own allocations leak; a memory error or undefined behaviour still
# fails them).
BUILD_DIR=build-asan bash scripts/build.sh -DOT_WERROR=ON -DOT_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
(cd build-asan && ctest --output-on-failure -L '^unit$' --timeout 900)
(cd build-asan && ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure -L '^mpi$' --timeout 900)
