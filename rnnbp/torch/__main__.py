"""``python -m rnnbp.torch script.py [args]`` (or ``-m package.module [args]``): run a PyTorch
program with rnnbp standing in for ``torch``; see :mod:`rnnbp.torch`."""
from __future__ import annotations

import os
import runpy
import sys

from . import install

USAGE = "usage: python -m rnnbp.torch script.py [args ...]  |  python -m rnnbp.torch -m module [args ...]"


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        print("Runs a PyTorch program unchanged, with rnnbp imported wherever it imports torch.")
        raise SystemExit(0 if argv else 2)
    install()
    if argv[0] == "-m":
        if len(argv) < 2:
            raise SystemExit(USAGE)
        sys.argv = argv[1:]
        sys.path.insert(0, os.getcwd())
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return
    script = argv[0]
    if not os.path.exists(script):
        raise SystemExit(f"rnnbp.torch: no such script: {script}")
    sys.argv = argv
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
