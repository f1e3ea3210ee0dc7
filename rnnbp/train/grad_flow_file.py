"""The gradient-flow file: ||dL/dh_t|| over the steps of some TBPTT windows, one JSON line per update.

The data of the gradient-flow picture (``rnnbp.plot.gradient_flow``, ``python -m rnnbp.plot``);
the format is described in :mod:`rnnbp.plot.grad_flow`.
"""
from __future__ import annotations

import json
import math
import os

from ..io import _atomic_write
from ..validation import check_int


class GradFlowFile:
    """Append the per-step state-gradient norms of some TBPTT updates to ``path`` (JSON lines).

    Give it to the engine as ``on_update``, and its ``wanted`` as ``diagnostics`` so that the
    updates it records, and only those, carry ``state_grad_norms`` (recording them runs the
    recurrent layers' backward as a Python loop over the steps, slower than the compiled one)::

        flow = GradFlowFile("runs/lm/grad_flow.jsonl")
        engine = TBPTT(model, loss_fn, opt, k1=64, diagnostics=flow.wanted, on_update=flow)

    One line per recorded update: ``{"update": index, "steps": [c0, c1], "window": [w0, w1],
    "loss": ..., "grad_norm": ..., "state_grad_norms": [{"module": name, "layer": l,
    "direction": d, "norms": [...]}]}``, ``null`` for a step without a gradient.

    Args:
        path : str or os.PathLike; its folder is created if missing.
        every : int > 0 or None. Record updates 0, every, 2 * every, ...; None (default): updates
            0, 1, 2, 4, 8, ... (powers of two: dense early, where the flow changes most, and
            about 20 lines over a million updates).

    Resume: the first update this object sees removes the file's lines of that update and later
    ones (a run resumed from a checkpoint repeats them); a fresh run (update 0) starts the file
    afresh. Updates are numbered by the engine (``Update.index``, its ``updates_done``), so a
    resumed run must restore the engine's count too (its ``state_dict``, or
    ``engine.updates_done = trainer.updates``).

    Raises (when called):
        ValueError: an update it wants carries no state-gradient norms (the engine runs without
            ``diagnostics``).
    """

    def __init__(self, path, every: int | None = None):
        self.path = os.fspath(path)
        self.every = check_int("GradFlowFile", "every", every, allow_none=True)
        self._started = False

    def wanted(self, index: int) -> bool:
        """Whether update ``index`` is recorded."""
        if self.every is not None:
            return index % self.every == 0
        return index & (index - 1) == 0  # 0 and the powers of two

    def __call__(self, engine, update) -> None:
        if not self._started:
            self._drop_from(update.index)
            self._started = True
        if not self.wanted(update.index):
            return
        if update.state_grad_norms is None:
            raise ValueError(f"GradFlowFile: update {update.index} carries no state-gradient norms; build the "
                             "engine with TBPTT(..., diagnostics=<this GradFlowFile>.wanted, on_update=<it>)")
        if not update.state_grad_norms:
            return  # the model has no recurrent layer to probe
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(_line(update))
            f.flush()
            os.fsync(f.fileno())

    def _drop_from(self, index: int) -> None:
        """Keep only the file's lines of updates before ``index`` (rewritten atomically)."""
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        kept = []
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    try:
                        if json.loads(line)["update"] < index:
                            kept.append(line)
                    except (ValueError, KeyError, TypeError):
                        pass  # a line cut short by a killed run
        text = "".join(kept)
        _atomic_write(self.path, lambda f: f.write(text.encode("utf-8")))


def _line(update) -> str:
    norms = [{"module": name, "layer": int(layer), "direction": int(direction),
              "norms": [float(v) if math.isfinite(v) else None for v in values]}
             for (name, layer, direction), values in update.state_grad_norms.items()]
    record = {"update": int(update.index), "steps": [int(s) for s in update.steps],
              "window": [int(w) for w in update.window], "loss": _finite(update.loss),
              "grad_norm": _finite(update.grad_norm), "state_grad_norms": norms}
    return json.dumps(record, allow_nan=False) + "\n"


def _finite(value: float):
    value = float(value)
    return value if math.isfinite(value) else repr(value)


__all__ = ["GradFlowFile"]
