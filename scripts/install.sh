#!/usr/bin/env bash
# Install what qcspin needs on Debian/Ubuntu (idempotent): system PETSc/SLEPc (complex), MPI,
# h5py, SciPy, matplotlib, pytest; then a venv with system site packages and qcspin (editable).
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="python3-petsc4py-complex python3-slepc4py-complex python3-mpi4py python3-h5py
      python3-h5py-mpi python3-scipy python3-numpy python3-pytest python3-venv python3-matplotlib
      openmpi-bin python3-sphinx python3-myst-parser ffmpeg"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing Debian packages:$missing"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
if ! .venv/bin/python -c "import toolkit" 2>/dev/null || [ pyproject.toml -nt .venv/.qcspin-installed ]; then
  .venv/bin/pip install -q --no-deps --no-build-isolation -e . 2>&1 | grep -v "^$" || true
  touch .venv/.qcspin-installed
fi
# lint and type checks of make test (pinned: a new release must not break CI by itself)
if ! .venv/bin/ruff --version 2>/dev/null | grep -q "0.17.6" || ! .venv/bin/mypy --version 2>/dev/null | grep -q "2.4.1"; then
  .venv/bin/pip install -q "ruff==0.17.6" "mypy==2.4.1" 2>&1 | grep -v "^$\|^WARNING: Location" || true
fi
.venv/bin/python -c "import toolkit, operators, integrators, analysis; from petsc4py import PETSc; print('qcspin', toolkit.__version__, 'on PETSc', '.'.join(map(str, PETSc.Sys.getVersion())), PETSc.ScalarType.__name__)"
# the compiled right-hand-side kernels (toolkit/kernels.c, built once per source version into
# toolkit/_build/ with the system C compiler; without one qcspin falls back to PETSc's products)
.venv/bin/python -c "from toolkit import kernels; print('compiled kernels:', 'in use' if kernels.available() else kernels.reason())"
