#!/usr/bin/env bash
# Run the test suite under `mpirun -n N` (default 2).  Rank 0 reports; other ranks log to files
# that are printed if anything fails.  QCSPIN_PYTHON: another interpreter (e.g. .venv64/bin/python,
# the 64-bit-index PETSc of scripts/install_petsc64.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-2}; shift || true
export QCSPIN_PYTHON=${QCSPIN_PYTHON:-.venv/bin/python}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
LOGDIR=$(mktemp -d)
# mpirun in a session of its own: on timeout the whole session (mpirun and every rank, which
# run in process groups of their own) is killed, not only mpirun
setsid mpirun --oversubscribe -n "$N" bash -c '
  if [ "${OMPI_COMM_WORLD_RANK:-0}" = 0 ]; then
    exec "$QCSPIN_PYTHON" -m pytest -q -p no:cacheprovider --color=no "$@"
  else
    exec "$QCSPIN_PYTHON" -m pytest -q -p no:cacheprovider --color=no "$@" > '"$LOGDIR"'/rank${OMPI_COMM_WORLD_RANK}.log 2>&1
  fi' bash "$@" &
job=$!
( sleep "${MPI_PYTEST_TIMEOUT:-1800}" & nap=$!
  trap 'kill $nap 2>/dev/null; exit 0' TERM
  wait $nap
  echo "mpi_pytest: timeout, killing session $job" >&2
  pkill -KILL -s "$job" ) >/dev/null &
watchdog=$!
wait "$job"
rc=$?
kill "$watchdog" 2>/dev/null
wait "$watchdog" 2>/dev/null
if [ $rc != 0 ]; then
  for f in "$LOGDIR"/rank*.log; do echo "==== $f"; tail -50 "$f"; done
fi
rm -rf "$LOGDIR"
exit $rc
