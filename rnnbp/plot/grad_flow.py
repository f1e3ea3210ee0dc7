"""The gradient-flow picture: ||dL/dh_t|| over the steps of a TBPTT window, at several points in training.

The norm of the loss's gradient at each step's hidden state, on a log scale, shows how far
back a loss still reaches: a line falling by a constant factor per step into the past is a
vanishing gradient, a rising one an exploding gradient. The data are the engine's
diagnostics (``TBPTT(..., diagnostics=True)``: ``Update.state_grad_norms``), taken from the
updates directly or from a run's gradient-flow file (``grad_flow.jsonl``, written during
training by :class:`rnnbp.train.GradFlowFile`, one JSON object per recorded update)::

    {"update": 120, "steps": [c0, c1], "window": [w0, w1], "loss": 1.83, "grad_norm": 0.41,
     "state_grad_norms": [{"module": "rnn", "layer": 0, "direction": 0, "norms": [0.0012, ..., 0.31]}]}

``norms[i]`` belongs to step ``window[0] + i`` of the run, in a forward direction; a reverse
direction counts in its own order (see :mod:`rnnbp.nn.recurrent.probes`: with one piece, step 0
is the window's last step). ``null`` where no gradient was recorded; ``steps`` are the chunk
whose outputs carry the loss.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..validation import check_int
from .figures import new_figure, save

_OWNER = "rnnbp.plot.gradient_flow"


def read_grad_flow(path) -> list[dict]:
    """The records of a gradient-flow file, in file order, with each ``norms`` a float64 array (NaN for null).

    A last line cut short (a run killed while writing it) is ignored.

    Raises:
        ValueError: a line that is not such a record, naming the file, the line and what is missing.
    """
    path = os.fspath(path)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    records, lines = [], text.splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) and not text.endswith("\n"):
                break
            raise ValueError(f"read_grad_flow: {path} line {i} is not JSON: {line[:80]!r}") from None
        missing = [k for k in ("update", "window", "state_grad_norms")
                   if not isinstance(record, dict) or k not in record]
        if missing:
            raise ValueError(f"read_grad_flow: {path} line {i} is not a gradient-flow record: no {missing} "
                             "(expected the keys update, steps, window, state_grad_norms)")
        for entry in record["state_grad_norms"]:
            entry["norms"] = np.array([np.nan if v is None else v for v in entry["norms"]], dtype=np.float64)
        records.append(record)
    return records


def gradient_flow(source, out_png, *, max_curves: int = 6, title: str | None = None,
                  xlabel: str | None = None, mark: tuple | None = None) -> Path:
    """Draw ||dL/dh_t|| against the step t as a PNG, log-scale y: where gradients vanish or explode.

    From training records, one panel per recurrent layer and direction (keyed by module name,
    layer, direction) and one line per update, coloured from early (dark) to late (light); at
    most ``max_curves`` updates, spread evenly over the ones recorded (the first and the last
    always among them). Where a window's first steps carry no loss (TBPTT with k2 > k1), the
    steps that do are shaded. Steps whose gradient is 0 or was not recorded leave a gap (a
    log scale has no 0).

    Args:
        source : one of
            * str or os.PathLike: a gradient-flow file (see the module docstring);
            * an iterable of training records: :class:`rnnbp.bptt.Update` objects (from the
              engine's ``on_update`` with ``diagnostics=True``) or dicts as in the file;
            * a mapping ``panel title -> {line label -> norms (T,)}``, for comparisons such as
              several cells at initialisation and after training.
        out_png : str or os.PathLike, the PNG to write (its folder is created if missing).
        max_curves : int > 0, lines per panel from training records (default 6).
        title : the figure's title (default: says what is drawn).
        xlabel : the x axis label (default: the step in the window).
        mark : ``(start, stop, label)`` or None: a range of steps to shade on every panel, e.g.
            where a task's dependency sits.

    Returns:
        pathlib.Path of the PNG.

    Raises:
        ImportError: matplotlib is not installed (``pip install rnnbp[plot]``).
        ValueError: no record holds state-gradient norms (the engine ran without diagnostics).
    """
    max_curves = check_int(_OWNER, "max_curves", max_curves)
    if isinstance(source, Mapping):
        panels = [(str(name), [(str(label), _norms(v, f"source[{name!r}][{label!r}]"), None)
                               for label, v in lines.items()], False) for name, lines in source.items()]
        default_title = "||dL/dh_t|| over the steps t (log scale)"
    else:
        records = read_grad_flow(source) if isinstance(source, (str, os.PathLike)) else [_record(r) for r in source]
        where = f" in {os.fspath(source)}" if isinstance(source, (str, os.PathLike)) else ""
        records = [r for r in records if r["state_grad_norms"]]
        if not records:
            raise ValueError(f"{_OWNER}: no update{where} holds state-gradient norms; run the engine with "
                             "TBPTT(..., diagnostics=True)")
        records.sort(key=lambda r: r["update"])
        chosen = _spread(records, max_curves)
        panels = _panels_of(chosen)
        default_title = (f"||dL/dh_t|| over the steps of a TBPTT window (log scale)\n"
                         f"{len(chosen)} points in training, of {len(records)} updates recorded")
    if not panels:
        raise ValueError(f"{_OWNER}: nothing to draw: the mapping is empty")

    cols = min(len(panels), 2)
    rows = -(-len(panels) // cols)
    fig = new_figure(_OWNER, (5.8 * cols, 3.9 * rows + 0.5))
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True).ravel()
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax, (name, lines, in_time) in zip(axes, panels):
        _draw_panel(ax, name, lines, in_time, mark, xlabel)
    for ax in axes[::cols]:
        ax.set_ylabel("||dL/dh_t||")
    fig.suptitle(default_title if title is None else title, fontsize=11)
    fig.tight_layout()
    return save(fig, out_png)


def _norms(values, where: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{_OWNER}: {where} must be a 1-D array of norms, one per step, got shape {a.shape}")
    return a


def _record(r) -> dict:
    """An Update or a record dict -> a record dict with ``state_grad_norms`` as a list of entries."""
    if isinstance(r, Mapping):
        if any(k not in r for k in ("update", "window", "state_grad_norms")):
            raise ValueError(f"{_OWNER}: a record must have the keys update, window and state_grad_norms, got "
                             f"{sorted(r)}")
        entries = r["state_grad_norms"] or []
        return {**r, "state_grad_norms": [{**e, "norms": _norms([np.nan if v is None else v for v in e["norms"]],
                                                                 "a record's norms")} for e in entries]}
    if not hasattr(r, "state_grad_norms"):
        raise TypeError(f"{_OWNER}: expected rnnbp.bptt.Update objects or record dicts, got {type(r).__name__}")
    entries = [{"module": k[0], "layer": k[1], "direction": k[2], "norms": _norms(v, "Update.state_grad_norms")}
               for k, v in (r.state_grad_norms or {}).items()]
    return {"update": r.index, "steps": list(r.steps), "window": list(r.window), "state_grad_norms": entries}


def _spread(records: list, n: int) -> list:
    """At most n records evenly spread over ``records``, the first and the last included."""
    idx = np.unique(np.linspace(0, len(records) - 1, min(n, len(records))).round().astype(int))
    return [records[i] for i in idx]


def _panels_of(records: list[dict]) -> list:
    """One panel per layer and direction: [(title, [(label, norms, loss steps (start, stop) in the window)], True)]."""
    panels: dict[tuple, list] = {}
    for r in records:
        w0 = r["window"][0]
        steps = r.get("steps")
        span = None if steps is None else (steps[0] - w0, steps[1] - w0)
        for e in r["state_grad_norms"]:
            key = (e["module"], e["layer"], e["direction"])
            # A reverse direction's steps run backwards within each piece the engine ran the window in
            # (two when k2 > k1): no single span of them carries the loss, so none is shaded.
            panels.setdefault(key, []).append((f"update {r['update']}", e["norms"], None if e["direction"] else span))
    first = {}
    for module, _, _ in panels:
        first.setdefault(module, len(first))
    order = sorted(panels, key=lambda k: (first[k[0]], k[1], k[2]))  # the probe meets the top layer first
    return [(_panel_title(k), panels[k], True) for k in order]


def _panel_title(key: tuple) -> str:
    module, layer, direction = key
    return f"{module or 'model'}, layer {layer}" + (", reverse direction (its own step order)" if direction else "")


def _draw_panel(ax, name: str, lines: list, in_time: bool, mark, xlabel) -> None:
    """One panel; ``in_time``: the lines are points in training, coloured from early (dark) to late (light)."""
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    drawn, zeros, length = 0, False, max((len(norms) for _, norms, _ in lines), default=0)
    for i, (label, norms, _) in enumerate(lines):
        finite = np.isfinite(norms)
        zeros |= bool((norms[finite] == 0).any())
        y = np.where(finite & (norms > 0), norms, np.nan)
        if not np.isfinite(y).any():
            continue
        color = cmap(0.85 * i / max(len(lines) - 1, 1)) if in_time else None
        x = np.arange(len(y))
        (line,) = ax.plot(x, y, color=color, marker="." if len(y) <= 40 else None, markersize=4, label=label)
        shown = np.isfinite(y)
        alone = shown & ~np.r_[False, shown[:-1]] & ~np.r_[shown[1:], False]  # no neighbour to draw a line to
        if alone.any() and len(y) > 40:
            ax.plot(x[alone], y[alone], ".", color=line.get_color(), markersize=6)
        drawn += 1
    span = lines[-1][2]
    if span is not None and span[0] > 0:  # the window's first steps only pass gradient back (k2 > k1)
        ax.axvspan(span[0] - 0.5, span[1] - 0.5, color="tab:orange", alpha=0.12, label="steps with a loss")
    if mark is not None:
        ax.axvspan(mark[0], mark[1], color="0.85", label=str(mark[2]), zorder=0)
    if drawn:
        ax.set_yscale("log")
    else:
        ax.text(0.5, 0.5, "no gradient recorded", ha="center", va="center", transform=ax.transAxes)
    if zeros:  # e.g. steps after the only loss in a reverse direction's own order
        ax.text(0.01, 0.01, "gaps: steps whose gradient is exactly 0", fontsize=7, color="0.4",
                transform=ax.transAxes, ha="left", va="bottom")
    if length:
        ax.set_xlim(-0.5, length - 0.5)
    ax.set_title(name, fontsize=10)
    ax.set_xlabel(xlabel or "step t of the window (0: its first step)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)


__all__ = ["gradient_flow", "read_grad_flow"]
