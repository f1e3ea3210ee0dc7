"""The per-epoch metrics file: JSON lines (one object per epoch) or CSV, chosen by the extension."""
from __future__ import annotations

import csv
import io
import json
import math
import os

import numpy as np

from ..io import _atomic_write


class MetricsFile:
    """Write ``Trainer.history`` to ``path`` as it grows: one record per finished epoch.

    ``.csv`` gives a CSV file with a header (the union of the keys, in order of first appearance);
    any other extension (``.jsonl`` is the convention) gives JSON lines, one object per epoch.
    ``sync(history)`` rewrites the file to hold exactly ``history`` (atomically: a temp file
    replaced over it), which is how a resumed run continues the file without duplicated or missing
    epochs; ``append`` then adds one epoch (a JSON line is appended; a CSV file is rewritten, since
    a new key would change its header).

    Args:
        path : str or os.PathLike. Its directory is created if missing.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.csv = self.path.lower().endswith(".csv")

    def sync(self, history: list[dict]) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        text = self._csv(history) if self.csv else "".join(_json_line(r) for r in history)
        _atomic_write(self.path, lambda f: f.write(text.encode("utf-8")))

    def append(self, record: dict, history: list[dict]) -> None:
        if self.csv:
            self.sync(history)
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(_json_line(record))
            f.flush()
            os.fsync(f.fileno())

    @staticmethod
    def _csv(history: list[dict]) -> str:
        keys: dict[str, None] = {}
        for record in history:
            keys.update(dict.fromkeys(record))
        if not keys:
            return ""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(keys), lineterminator="\n")
        writer.writeheader()
        for record in history:
            writer.writerow({k: _plain(v) for k, v in record.items()})
        return out.getvalue()


def _plain(value):
    """Floats (NumPy's too, whose repr would read ``np.float64(0.5)``) as Python's repr, round-trip
    exact; other NumPy scalars as Python numbers; anything else as it is."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value) if isinstance(value, float) else value


def _json_line(record: dict) -> str:
    # json would write NaN/Inf as bare tokens that strict JSON readers reject; strings keep lines valid.
    clean = {k: (v if not isinstance(v, float) or math.isfinite(v) else repr(float(v))) for k, v in record.items()}
    return json.dumps(clean, allow_nan=False, default=_json_default) + "\n"


def _json_default(value):
    """NumPy scalars a callback put in the logs become Python numbers; anything else its str."""
    if isinstance(value, np.generic):
        value = value.item()
        return repr(value) if isinstance(value, float) and not math.isfinite(value) else value
    return str(value)


__all__ = ["MetricsFile"]
