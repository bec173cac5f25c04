#!/usr/bin/env bash
# A complex PETSc/SLEPc with 64-bit indices (PetscInt = int64) and petsc4py/slepc4py built on it,
# in a second venv (.venv64), for states above 2^31 - 1 entries, which Debian's 32-bit build
# refuses.  Debian ships no such build, so it is compiled from the PyPI source distributions
# (pinned, sha256-checked) against Debian's MPI, OpenBLAS, ScaLAPACK and MUMPS.
#
#   bash scripts/install_petsc64.sh           # ~45 min on 2 cores, ~1.5 GB in $PREFIX/src
#   .venv64/bin/python -m pytest tests -q     # the suite on the 64-bit build (~21 min)
#   QCSPIN_PYTHON=.venv64/bin/python bash scripts/mpi_pytest.sh 2 tests   # and on 2 ranks
#
# PREFIX (default /opt/qcspin-petsc64) receives petsc/, slepc/ and the sources; rerunning skips
# what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VERSION=3.26.1
PREFIX=${PREFIX:-/opt/qcspin-petsc64}
declare -A SHA=(
  [petsc]=a4dc46c1b4403545ac2274741ce10801366c4a9a7b2683b678d18f6663b93496
  [slepc]=d9b8bb27f6402e72e9d8f7ae9a1de241ff772b55d0bf265e8e10c61750f49cb9
  [petsc4py]=66a5c31de33293faefa72d6edc5abad5586f438c28842804de0044d8763087a2
  [slepc4py]=52ca65bbb09668ee957569b93308c643a423ea280a6e07e9933054b91c1f9f38
)
L=/usr/lib/$(gcc -print-multiarch)   # Debian's library directory (x86_64-linux-gnu, ...)
NP=$(nproc)

# Debian's compilers and libraries (Fortran only for PETSc's MUMPS interface check)
PKGS="gfortran libopenmpi-dev openmpi-bin libopenblas-dev liblapack-dev libmumps-dev
      libscalapack-openmpi-dev python3-venv python3-numpy python3-mpi4py python3-h5py
      python3-scipy python3-pytest python3-matplotlib curl"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

mkdir -p "$PREFIX/src"
fetch() {  # fetch NAME: the sdist NAME-$VERSION.tar.gz from PyPI's simple index, checked
  local name=$1 file="$1-$VERSION.tar.gz"
  [ -f "$PREFIX/src/$file" ] && return 0
  local href
  href=$(curl -fsSL "https://pypi.org/simple/$name/" | grep -o "href=\"[^\"]*/$file#sha256=[0-9a-f]*\"" | head -1)
  [ -n "$href" ] || { echo "install_petsc64: $file not found on PyPI" >&2; exit 1; }
  href=${href#href=\"}; href=${href%\"}
  local url=${href%%#*} sum=${href##*sha256=}
  if [ "${SHA[$name]}" != "$sum" ]; then
    echo "install_petsc64: $file: PyPI lists sha256 $sum, expected ${SHA[$name]}" >&2; exit 1
  fi
  curl -fsSL -o "$PREFIX/src/$file.part" "$url"
  echo "$sum  $PREFIX/src/$file.part" | sha256sum -c --quiet
  mv "$PREFIX/src/$file.part" "$PREFIX/src/$file"
  tar -C "$PREFIX/src" -xzf "$PREFIX/src/$file"
}
for n in petsc slepc petsc4py slepc4py; do fetch $n; done

if [ ! -f "$PREFIX/petsc/lib/libpetsc.so" ]; then
  (cd "$PREFIX/src/petsc-$VERSION" &&
   python3 ./configure --prefix="$PREFIX/petsc" --with-64-bit-indices=1 --with-scalar-type=complex \
     --with-debugging=0 --with-shared-libraries=1 COPTFLAGS=-O2 CXXOPTFLAGS=-O2 FOPTFLAGS=-O2 \
     --with-cc=mpicc --with-cxx=mpicxx --with-fc=mpif90 \
     --with-blaslapack-lib="$L/libopenblas.so $L/liblapack.so" \
     --with-scalapack-lib="$L/libscalapack-openmpi.so" --with-mumps-include=/usr/include \
     --with-mumps-lib="$L/libzmumps.so $L/libmumps_common.so $L/libpord.so" \
     --with-x=0 --with-c2html=0 &&
   make PETSC_DIR="$PWD" PETSC_ARCH=arch-linux-c-opt MAKE_NP="$NP" all &&
   make PETSC_DIR="$PWD" PETSC_ARCH=arch-linux-c-opt install)
fi
if [ ! -f "$PREFIX/slepc/lib/libslepc.so" ]; then
  (cd "$PREFIX/src/slepc-$VERSION" && export PETSC_DIR="$PREFIX/petsc" PETSC_ARCH= SLEPC_DIR="$PWD" &&
   python3 ./configure --prefix="$PREFIX/slepc" && make MAKE_NP="$NP" && make install)
fi

if [ ! -x .venv64/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv64
fi
.venv64/bin/pip install -q "cython>=3.1,<4" setuptools wheel 2>&1 | grep -v "^WARNING: Location" || true
export PETSC_DIR="$PREFIX/petsc" PETSC_ARCH= SLEPC_DIR="$PREFIX/slepc"
if ! .venv64/bin/python -c "import petsc4py; assert petsc4py.__version__ == '$VERSION'" 2>/dev/null; then
  .venv64/bin/pip install -q --no-build-isolation --no-deps "$PREFIX/src/petsc4py-$VERSION"
fi
if ! .venv64/bin/python -c "import slepc4py; assert slepc4py.__version__ == '$VERSION'" 2>/dev/null; then
  .venv64/bin/pip install -q --no-build-isolation --no-deps "$PREFIX/src/slepc4py-$VERSION"
fi
.venv64/bin/pip install -q --no-deps --no-build-isolation -e "$ROOT" 2>&1 | grep -v "^$" || true
.venv64/bin/python -c "import toolkit; from petsc4py import PETSc; import numpy as np; print('qcspin', toolkit.__version__, 'on PETSc', '.'.join(map(str, PETSc.Sys.getVersion())), PETSc.ScalarType.__name__, 'PetscInt', np.dtype(PETSc.IntType).name)"
