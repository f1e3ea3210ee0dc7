"""matplotlib, imported only when a picture is drawn, with the Agg canvas: no pyplot, no global backend.

Every picture of :mod:`rnnbp.plot` is a ``matplotlib.figure.Figure`` on its own
``FigureCanvasAgg``: nothing touches pyplot's state or ``matplotlib.use``, so drawing works
on machines without a display and inside programs that use another backend.
"""
from __future__ import annotations

import os
from pathlib import Path

INSTALL = "pip install rnnbp[plot]"


def new_figure(owner: str, figsize: tuple[float, float]):
    """A Figure on an Agg canvas; ImportError naming ``owner`` and the extra when matplotlib is absent."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"{owner} needs matplotlib, which is not installed: {INSTALL} "
                          "(in a checkout: pip install -e '.[plot]')") from exc
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def save(fig, out_png, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG at ``out_png`` (its folder created if missing) -> the path written."""
    path = Path(os.fspath(out_png))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, format="png")
    return path
