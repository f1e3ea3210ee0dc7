"""Monitor: the best value of one logged metric so far, and how many epochs since it improved."""
from __future__ import annotations

import math


class Monitor:
    """Tracks ``logs[name]`` epoch by epoch for early stopping, ``best.npz`` and ``restore_best``.

    An epoch improves on the best when its value beats it by more than ``min_delta``
    (mode "min": value < best - min_delta; "max": value > best + min_delta). NaN never improves.

    Args:
        name : str, the key of the epoch's logs to watch (e.g. "val_loss").
        mode : "min" or "max".
        min_delta : float >= 0.

    Attributes:
        best : float or None (None before the first finite value). best_epoch : int or None.
        bad_epochs : int, epochs since the last improvement.
    """

    def __init__(self, name: str, mode: str = "min", min_delta: float = 0.0):
        if not isinstance(name, str) or not name:
            raise ValueError(f"Trainer: monitor must be a non-empty str (a key of the epoch's logs), got {name!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"Trainer: mode must be 'min' or 'max', got {mode!r}")
        if not (isinstance(min_delta, (int, float)) and min_delta >= 0 and math.isfinite(min_delta)):
            raise ValueError(f"Trainer: min_delta must be a finite number >= 0, got {min_delta!r}")
        self.name, self.mode, self.min_delta = name, mode, float(min_delta)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0

    def value(self, logs: dict) -> float:
        """The watched value in ``logs``; raises ValueError naming the keys there when it is absent."""
        if self.name not in logs:
            raise ValueError(
                f"Trainer: monitor={self.name!r} is not among the epoch's logs {sorted(logs)}; pass "
                "monitor= one of them (validation metrics carry the prefix 'val_')")
        return float(logs[self.name])

    def improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, epoch: int, value: float) -> bool:
        """Record ``epoch``'s value; True when it is the new best."""
        if self.improves(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    def state_dict(self) -> dict:
        return {"name": self.name, "mode": self.mode, "best": self.best, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        if (state["name"], state["mode"]) != (self.name, self.mode):
            raise ValueError(
                f"Trainer: the checkpoint watched {state['name']!r} (mode {state['mode']!r}), this Trainer "
                f"watches {self.name!r} (mode {self.mode!r}); its best value would not compare: resume with "
                "the same monitor and mode, or start afresh")
        best = state["best"]
        self.best = None if best is None else float(best)
        self.best_epoch = None if state["best_epoch"] is None else int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])


__all__ = ["Monitor"]
