"""Finding ``mpiexec`` after ``pip install 'rnnbp[mpi]'``, and ``python -m rnnbp.distributed -n K script.py``.

The ``mpich`` wheel installs ``mpiexec`` as a data file into the environment's ``bin/`` (the
directory that holds ``python`` in a virtual environment, or ``~/.local/bin`` after ``pip
install --user``). That directory is on ``PATH`` in an activated environment; where it is not
(an environment used without activating it, a pyenv shim not yet rehashed), the launcher below
finds it from the running interpreter.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import sysconfig
from pathlib import Path


def find_mpiexec() -> str | None:
    """The path of the ``mpiexec`` to use with this Python, or None.

    Looks first where a wheel's scripts go for this interpreter (its ``bin/``, then the user
    scheme's), then beside ``sys.executable``, then on ``PATH``: the mpiexec installed with
    mpi4py's MPI comes before another MPI's on ``PATH``, whose processes would not find each other.
    """
    names = ("mpiexec", "mpiexec.exe") if os.name == "nt" else ("mpiexec",)
    dirs = [sysconfig.get_path("scripts")]
    try:
        dirs.append(sysconfig.get_path("scripts", f"{os.name}_user"))
    except KeyError:
        pass
    dirs.append(str(Path(sys.executable).parent))
    for d in dirs:
        for name in names:
            path = Path(d) / name
            if d and path.is_file() and os.access(path, os.X_OK):
                return str(path)
    return shutil.which("mpiexec")


def main(argv=None) -> int:
    """``python -m rnnbp.distributed -n K script.py [args]``: run ``mpiexec -n K python script.py [args]``."""
    parser = argparse.ArgumentParser(
        prog="python -m rnnbp.distributed",
        description="Run a training script on K ranks with the mpiexec that came with mpi4py's MPI "
                    "(the same as: mpiexec -n K python script.py ...).")
    parser.add_argument("-n", "--np", type=int, default=2, dest="n", help="number of ranks (default 2)")
    parser.add_argument("--print-mpiexec", action="store_true", help="print the mpiexec found and exit")
    parser.add_argument("script", nargs="?", help="the Python script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    args = parser.parse_args(argv)
    mpiexec = find_mpiexec()
    if args.print_mpiexec:
        print(mpiexec or "no mpiexec found")
        return 0 if mpiexec else 1
    if args.script is None:
        parser.error("give the script to run")
    if args.n < 1:
        parser.error(f"-n must be at least 1, got {args.n}")
    if mpiexec is None:
        print("python -m rnnbp.distributed: no mpiexec found beside this Python or on PATH; install one with "
              "pip install 'rnnbp[mpi]' (mpi4py and the mpich wheel)", file=sys.stderr)
        return 1
    command = [mpiexec, "-n", str(args.n), sys.executable, args.script, *args.args]
    sys.stdout.flush()
    os.execv(mpiexec, command)
    return 0  # not reached
