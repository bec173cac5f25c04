"""Locate and initialise a *complex* petsc4py/slepc4py before anything imports them.

Debian installs petsc4py under ``$PETSC_DIR/lib/python3/dist-packages`` and finds it through a
``.pth`` file that reads ``PETSC_DIR`` at interpreter start-up.  When the user has not exported
``PETSC_DIR``/``SLEPC_DIR`` we fall back to the Debian complex build so that ``import toolkit``
works out of the box.  Any other installation (conda-forge, pip) that is already importable is
used as it is.
"""
from __future__ import annotations

import ctypes
import importlib.util
import os
import re
import sys

DEBIAN_PETSC_DIR = "/usr/lib/petscdir/petsc3.18/x86_64-linux-gnu-complex"
DEBIAN_SLEPC_DIR = "/usr/lib/slepcdir/slepc3.18/x86_64-linux-gnu-complex"

_initialised = False
_LIB: ctypes.CDLL  # set by libpetsc() on first use (annotation only: unbound until then)
_NEGATIVE = re.compile(r"^-(\d|\.\d)")


def split_petsc_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separate PETSc options (``-name [value]``, single dash, name longer than one letter and
    not starting with a digit, e.g. a negative number or a range ``-5:5:0.01``)."""
    ours, petsc = [], []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and not a.startswith("--") and len(a) > 2 and not _NEGATIVE.match(a):
            petsc.append(a)
            if i + 1 < len(argv) and (not argv[i + 1].startswith("-")
                                      or _NEGATIVE.match(argv[i + 1])):
                petsc.append(argv[i + 1])
                i += 1
        else:
            ours.append(a)
        i += 1
    return ours, petsc


def join_negative_values(argv: list[str]) -> list[str]:
    """``--opt -5:5:0.01`` -> ``--opt=-5:5:0.01`` (argparse would read the value as an option)."""
    out: list[str] = []
    for a in argv:
        if _NEGATIVE.match(a) and out and out[-1].startswith("--") and "=" not in out[-1]:
            out[-1] = f"{out[-1]}={a}"
        else:
            out.append(a)
    return out


def cli_argv() -> list[str]:
    """The PETSc options of ``sys.argv`` when this process is the ``qcspin`` command
    (``qcspin ...`` or ``python -m toolkit.cli ...``), else [] (library import)."""
    if not sys.argv:
        return []
    prog = sys.argv[0]
    if os.path.basename(prog) == "qcspin" or prog == "-m" or prog.endswith(
            os.path.join("toolkit", "cli.py")):
        return split_petsc_args(join_negative_values(sys.argv[1:]))[1]
    return []


def _add_site(env: str, default: str, module: str) -> None:
    if importlib.util.find_spec(module) is not None:
        return
    root = os.environ.get(env) or default
    if not os.environ.get(env) and os.path.isdir(default):
        os.environ[env] = default
    site = os.path.join(root, "lib", "python3", "dist-packages")
    if os.path.isdir(site) and site not in sys.path:
        sys.path.append(site)


def check_scalar_type(scalar_type, where: str = "") -> None:
    """Raise ImportError unless PETSc's scalar type is complex."""
    import numpy as np

    if not np.issubdtype(np.dtype(scalar_type), np.complexfloating):
        raise ImportError(
            f"qcspin needs PETSc with complex scalars, but the petsc4py found at {where or '?'} "
            f"uses {np.dtype(scalar_type).name}. Set PETSC_DIR/SLEPC_DIR to a complex build "
            f"(Debian: {DEBIAN_PETSC_DIR}) or install conda-forge's complex petsc4py.")


def initialised() -> bool:
    """Whether :func:`init` has run in this process."""
    return _initialised


def init(argv: list[str] | None = None) -> None:
    """Initialise petsc4py/slepc4py once (Collective on COMM_WORLD).

    ``argv`` are PETSc command-line options (``-name value``); they are only honoured on the first
    call, as PETSc reads its options database at initialisation.
    """
    global _initialised
    if _initialised:
        return
    _add_site("PETSC_DIR", DEBIAN_PETSC_DIR, "petsc4py")
    _add_site("SLEPC_DIR", DEBIAN_SLEPC_DIR, "slepc4py")
    try:
        import petsc4py
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            "qcspin needs petsc4py built with complex scalars. On Debian/Ubuntu: apt-get install "
            "python3-petsc4py-complex python3-slepc4py-complex; with conda: conda install -c "
            "conda-forge 'petsc=*=*complex*' 'petsc4py' 'slepc=*=*complex*' slepc4py. "
            f"(import error: {exc})"
        ) from exc
    # the program name: never one starting with '-' ('-c', '-m' while python -m imports), which
    # PETSc >= 3.19 reads as an option (an "unused option" warning at exit)
    prog = sys.argv[0] if sys.argv and not sys.argv[0].startswith("-") else "qcspin"
    args = [prog] + list(argv or [])
    petsc4py.init(args)
    from petsc4py import PETSc

    check_scalar_type(PETSc.ScalarType, os.path.dirname(petsc4py.__file__))
    try:
        import slepc4py

        slepc4py.init(args)
    except ImportError:  # SLEPc is only needed by the analysis package
        pass
    _initialised = True


def libpetsc() -> ctypes.CDLL:
    """The shared PETSc library already loaded by petsc4py (for functions it does not wrap)."""
    init()
    from petsc4py import PETSc  # noqa: F401  (ensures the library is mapped)

    global _LIB
    try:
        return _LIB
    except NameError:
        pass
    path = None
    with open("/proc/self/maps") as maps:
        for line in maps:
            name = line.split()[-1] if line.strip() else ""
            base = os.path.basename(name)
            if base.startswith("libpetsc") and ".so" in base:
                path = name
                break
    if path is None:  # e.g. macOS or a static build: search the process namespace
        lib = ctypes.CDLL(None)
    else:
        lib = ctypes.CDLL(path)
    _LIB = lib
    return lib
