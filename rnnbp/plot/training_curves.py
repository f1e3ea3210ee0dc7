"""Training and validation curves from a run's metrics file (what ``Trainer(metrics_file=...)`` writes)."""
from __future__ import annotations

import csv
import json
import math
import os
import re
from pathlib import Path

import numpy as np

from .figures import new_figure, save

# Keys of the Trainer's logs that are bookkeeping, not curves.
_NOT_CURVES = ("epoch", "time", "updates")
_LR = re.compile(r"lr(_\d+)?")


def read_metrics(path) -> list[dict]:
    """The records of a metrics file -> one dict ``key -> float`` per epoch, in file order.

    Reads both forms :class:`rnnbp.train.metrics_file.MetricsFile` writes: JSON lines (one object
    per epoch; non-finite floats stored as the strings ``"nan"``, ``"inf"``) or CSV (``.csv``).
    Values that are not numbers are left out. A last JSON line cut short (a run killed while
    writing it) is ignored.

    Args:
        path : str or os.PathLike.

    Raises:
        ValueError: a line that is not a JSON object (other than a cut-short last line),
            naming the file and the line.
    """
    path = os.fspath(path)
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    if path.lower().endswith(".csv"):
        rows = list(csv.DictReader(text.splitlines()))
    else:
        rows, lines = [], text.splitlines()
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                if i == len(lines) and not text.endswith("\n"):
                    break  # the last line of a run killed while appending it
                raise ValueError(f"read_metrics: {path} line {i} is not JSON: {line[:80]!r}") from None
            if not isinstance(row, dict):
                raise ValueError(f"read_metrics: {path} line {i} must be a JSON object (one epoch's logs), "
                                 f"got {type(row).__name__}")
            rows.append(row)
    return [{k: v for k, v in ((k, _number(v)) for k, v in row.items()) if v is not None} for row in rows]


def curves(metrics, out_png, *, title: str | None = None) -> Path:
    """Draw the training and validation curves of a run as a PNG: one panel per metric, against the epoch.

    Each metric ``m`` the training step returned gets a panel with its training curve and, when
    the run validated it, ``val_m`` beside it (a ``val_`` metric without a training one gets a
    panel of its own); the learning rate (``lr``, ``lr_1``, ... per parameter group) gets the
    last panel. A panel whose values are all positive and span a factor of 10 or more has a
    log-scale y axis (its title says so). The loss panel marks the epoch of the lowest
    ``val_loss``.

    Args:
        metrics : str or os.PathLike (a metrics file, see :func:`read_metrics`), or a list of
            dicts (``Trainer.history``).
        out_png : str or os.PathLike, the PNG to write (its folder is created if missing).
        title : the figure's title; default: the run's folder name (for a file) and the epochs.

    Returns:
        pathlib.Path of the PNG.

    Raises:
        ImportError: matplotlib is not installed (``pip install rnnbp[plot]``).
        ValueError: no epoch records, or no metric to draw in them.
    """
    owner = "rnnbp.plot.curves"
    if isinstance(metrics, (str, os.PathLike)):
        source = Path(os.fspath(metrics))
        records = read_metrics(source)
        name = source.resolve().parent.name
    else:
        source, name = None, None
        records = [{k: v for k, v in ((k, _number(v)) for k, v in dict(r).items()) if v is not None}
                   for r in metrics]
    where = f" in {source}" if source is not None else ""
    if not records:
        raise ValueError(f"{owner}: no epoch records{where} (the run has not finished an epoch yet)")
    panels = _panels(records)
    if not panels:
        raise ValueError(f"{owner}: no metric to draw{where}; the records hold only "
                         f"{sorted(set().union(*records))}")
    epochs = np.array([r.get("epoch", i) for i, r in enumerate(records, 1)], dtype=np.float64)

    fig = new_figure(owner, _figsize(len(panels)))
    cols = min(len(panels), 3)
    axes = fig.subplots(-(-len(panels) // cols), cols, squeeze=False).ravel()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, (metric, keys) in zip(axes, panels):
        _draw_panel(ax, metric, keys, records, epochs)
    fig.suptitle(title if title is not None else
                 f"{name + ': ' if name else ''}training and validation curves, {len(records)} "
                 f"epoch{'s' * (len(records) != 1)}", fontsize=11)
    fig.tight_layout()
    return save(fig, out_png)


def _number(value) -> float | None:
    """A metric's value as a float (``"nan"``/``"inf"`` strings and CSV text included); None if not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _panels(records: list[dict]) -> list[tuple[str, list[str]]]:
    """[(metric, keys drawn in its panel)]: training metrics with their val_ twins, val_-only ones, the lr.

    Keys whose values are all NaN are left out.
    """
    keys = [k for k in dict.fromkeys(k for r in records for k in r)
            if any(math.isfinite(r.get(k, math.nan)) for r in records)]
    lrs = [k for k in keys if _LR.fullmatch(k)]
    train = [k for k in keys if k not in _NOT_CURVES and k not in lrs and not k.startswith("val_")]
    panels = [(k, [k] + ([f"val_{k}"] if f"val_{k}" in keys else [])) for k in train]
    panels += [(k[4:], [k]) for k in keys if k.startswith("val_") and k[4:] not in train]
    if lrs:
        panels.append(("learning rate", lrs))
    return panels


def _draw_panel(ax, metric: str, keys: list[str], records: list[dict], epochs: np.ndarray) -> None:
    from matplotlib.ticker import MaxNLocator

    values = {k: np.array([r.get(k, np.nan) for r in records], dtype=np.float64) for k in keys}
    marker = "o" if len(records) <= 30 else None
    for k, v in values.items():
        ax.plot(epochs, v, marker=marker, markersize=3, label=_label(k, len(keys)))
    seen = np.concatenate(list(values.values()))
    seen = seen[np.isfinite(seen)]
    log = len(seen) > 1 and seen.min() > 0 and seen.max() / seen.min() >= 10
    if log:
        ax.set_yscale("log")
    else:
        ax.ticklabel_format(axis="y", useOffset=False)
        if metric == "learning rate" and len(seen) and seen.min() >= 0:
            ax.set_ylim(bottom=0, top=1.1 * seen.max() if seen.max() > 0 else None)
    if metric == "loss" and "val_loss" in values and np.isfinite(values["val_loss"]).any():
        best = int(np.nanargmin(values["val_loss"]))
        ax.axvline(epochs[best], color="0.5", linestyle=":", linewidth=1,
                   label=f"lowest val_loss: epoch {epochs[best]:g}")
    alone = "" if len(keys) > 1 or _LR.fullmatch(keys[0]) else f" ({_label(keys[0], 1)})"
    ax.set_title(metric + alone + (" (log scale)" if log else ""), fontsize=10)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, which="major", alpha=0.3)
    if len(keys) > 1 or metric == "loss" and "val_loss" in values:
        ax.legend(fontsize=8)


def _label(key: str, n_keys: int) -> str:
    if _LR.fullmatch(key):
        return "lr" if n_keys == 1 else f"lr, group {key[3:] or 0}"
    return "validation" if key.startswith("val_") else "training"


def _figsize(n_panels: int) -> tuple[float, float]:
    cols = min(n_panels, 3)
    rows = -(-n_panels // cols)
    return 4.2 * cols, 3.2 * rows + 0.5


__all__ = ["curves", "read_metrics"]
