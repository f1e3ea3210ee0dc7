"""What a Trainer checkpoint holds, and the checks that one fits the Trainer resuming from it.

A checkpoint (``last.npz``, ``best.npz``: ``Trainer.state_dict()`` written by ``rnnbp.save``,
atomically) is a dict::

    format, version   "rnnbp-trainer", 1
    model             model.state_dict()
    optimizer         optimizer.state_dict()
    optimizer_class   the optimizer's class name ("Adam"); a resume into another class is refused
                      (absent from checkpoints written before it was recorded: those load unchecked)
    scheduler         scheduler.state_dict(), or None
    stateful          {name: obj.state_dict()}  ({"bit_generator": state} for a np.random.Generator)
    rng               rnnbp's default generator: default_generator().bit_generator.state (PCG64's
                      128-bit ints are JSON ints in the skeleton, exact)
    loop              seed; epoch (completed); position (batches done in epoch + 1; 0 at an epoch's
                      end); updates; the running epoch's per-metric sums of value * count, their
                      weights, its item count and seconds so far
    monitor           name, mode, best, best_epoch, bad_epochs (early stopping and best.npz)
    history           the logs of every completed epoch
    ranks             only when written by K > 1 data-parallel ranks (rank 0 writes): per rank, its
                      stateful, rng and running sums (the top-level ones are rank 0's stateful and
                      rng and the sums over all ranks); see :mod:`rnnbp.distributed.training`

The model's weights are ``rnnbp.load(path)["model"]``, ready for ``model.load_state_dict``.
"""
from __future__ import annotations

import numpy as np

from ..autograd import random as _random
from ..bptt.optimizer_record import optimizer_mismatch

FORMAT = "rnnbp-trainer"
VERSION = 1
LAST, BEST = "last.npz", "best.npz"


def check_fits(state, seed: int, has_scheduler: bool, stateful_names, optimizer=None) -> None:
    """Raise ValueError listing every way ``state`` does not fit a Trainer with these settings.

    ``optimizer``: the Trainer's optimizer, checked against the class the checkpoint recorded.
    """
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        keys = sorted(state)[:10] if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"Trainer.load_state_dict: not a Trainer checkpoint (no format {FORMAT!r}; got {keys})")
    if not isinstance(state.get("version"), int) or state["version"] > VERSION:
        raise ValueError(f"Trainer.load_state_dict: checkpoint version {state.get('version')!r}; this rnnbp "
                         f"reads versions up to {VERSION} (upgrade rnnbp)")
    problems = []
    mismatch = optimizer_mismatch(state.get("optimizer_class"), optimizer) if optimizer is not None else None
    if mismatch:
        problems.append(mismatch)
    saved_seed = int(state["loop"]["seed"])
    if saved_seed != seed:
        problems.append(f"it was written with seed={saved_seed}, this Trainer has seed={seed} "
                        "(the batch order would differ)")
    if (state["scheduler"] is not None) != has_scheduler:
        problems.append("it has scheduler state, this Trainer has no scheduler" if not has_scheduler else
                        "it has no scheduler state, this Trainer has a scheduler")
    saved, ours = set(state["stateful"]), set(stateful_names)
    if saved - ours:
        problems.append(f"stateful {sorted(saved - ours)} in the checkpoint but not in this Trainer")
    if ours - saved:
        problems.append(f"stateful {sorted(ours - saved)} in this Trainer but not in the checkpoint")
    if problems:
        raise ValueError("Trainer.load_state_dict: the checkpoint does not fit this Trainer: " + "; ".join(problems))


def rng_state() -> dict:
    """The state of rnnbp's default generator (dropout and initialisation draw from it)."""
    return _random.default_generator().bit_generator.state


def set_rng_state(state: dict) -> None:
    # manual_seed replaces the generator object, so go through default_generator() each time.
    _random.default_generator().bit_generator.state = state


def state_of(obj):
    """A ``stateful`` object's state: its ``state_dict()``, or a Generator's bit generator state."""
    if isinstance(obj, np.random.Generator):
        return {"bit_generator": obj.bit_generator.state}
    return obj.state_dict()


def load_state(obj, state) -> None:
    if isinstance(obj, np.random.Generator):
        obj.bit_generator.state = state["bit_generator"]
    else:
        obj.load_state_dict(state)


def is_stateful(obj) -> bool:
    return isinstance(obj, np.random.Generator) or (
        callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None)))
