"""``python -m rnnbp.plot runs/NAME/ [--out DIR]``: the run's pictures as PNG files."""
from __future__ import annotations

import argparse
import sys

from .run_folder import plot_run


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rnnbp.plot",
        description="Write the pictures a run folder has data for as PNG files: curves.png (metrics.jsonl or "
                    "metrics.csv), gradient_flow.png (grad_flow.jsonl), confusion.png (a .npz with a "
                    "'confusion' entry). Needs matplotlib: pip install rnnbp[plot].")
    parser.add_argument("run_dir", help="the run's folder, e.g. runs/char_lm/")
    parser.add_argument("--out", default=None, help="where to write the PNG files (default: the run's folder)")
    args = parser.parse_args(argv)
    try:
        report = plot_run(args.run_dir, args.out)
    except (NotADirectoryError, ImportError, ValueError) as exc:
        print(f"rnnbp.plot: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, NotADirectoryError) else 1
    for line in report.lines():
        print(line)
    if not report.written:
        print("nothing written: the folder has data for none of the pictures", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
