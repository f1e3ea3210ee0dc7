"""The confusion matrix as a picture: counts in the cells, colour by the share of each true class."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .figures import new_figure, save

_OWNER = "rnnbp.plot.confusion_matrix"


def confusion_matrix(matrix, labels, out_png, *, title: str | None = None) -> Path:
    """Draw a confusion matrix as a PNG: a row per true class, a column per predicted class.

    Each cell shows its count (for up to 25 classes); its colour is the count's share of the
    row, so that classes of different sizes read alike and the diagonal is each class's recall.

    Args:
        matrix : array-like [shape=(C, C)] of counts >= 0: ``matrix[i, j]`` items of class i
            predicted as j (e.g. ``demos/spoken_digits.confusion_matrix``).
        labels : sequence of C class names, or None for 0..C-1.
        out_png : str or os.PathLike, the PNG to write (its folder is created if missing).
        title : the figure's title; default: the accuracy (trace / total) and the number of items.

    Returns:
        pathlib.Path of the PNG.

    Raises:
        ImportError: matplotlib is not installed (``pip install rnnbp[plot]``).
        ValueError: a matrix that is not square, or holds negative or non-finite counts, or labels
            of another length.
    """
    counts = np.asarray(matrix)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] == 0:
        raise ValueError(f"{_OWNER}: matrix must be square (C, C) with C >= 1, got shape {counts.shape}")
    if counts.dtype.kind not in "iuf" or not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError(f"{_OWNER}: matrix must hold finite counts >= 0, got dtype {counts.dtype}"
                         + (f" with values {counts.min()}..{counts.max()}" if counts.dtype.kind in "iuf" else ""))
    C = counts.shape[0]
    labels = [str(i) for i in range(C)] if labels is None else [str(s) for s in labels]
    if len(labels) != C:
        raise ValueError(f"{_OWNER}: labels must name the {C} classes of a ({C}, {C}) matrix, got {len(labels)}")

    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    total = counts.sum()
    side = min(max(5.0, 0.45 * C + 2.0), 14.0)
    fig = new_figure(_OWNER, (side + 1.0, side))
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if C <= 25:
        size = 12 if C <= 5 else 9 if C <= 12 else 6
        for i in range(C):
            for j in range(C):
                if counts[i, j]:
                    ax.text(j, i, f"{counts[i, j]:g}", ha="center", va="center", fontsize=size,
                            color="white" if share[i, j] > 0.5 else "black")
    step = max(1, -(-C // 30))  # at most about 30 tick labels
    ax.set_xticks(range(0, C, step), labels[::step], rotation=90 if max(map(len, labels)) > 3 else 0)
    ax.set_yticks(range(0, C, step), labels[::step])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title is None:
        accuracy = np.trace(counts) / total if total else float("nan")
        title = f"{100 * accuracy:.1f} % correct ({total:g} items)"
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save(fig, out_png)


__all__ = ["confusion_matrix"]
