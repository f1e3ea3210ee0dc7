"""The optimizer's class, recorded in what the engine and the Trainer save, and checked on load.

An optimizer's ``state_dict`` (PyTorch's format) does not say which optimizer made it, and
loading an Adam state into SGD raises nothing: SGD takes Adam's hyperparameters and ignores
``exp_avg``, and the run goes on, silently different. So checkpoints record the class's name
beside the state, and a resume into another class is refused, naming both.
"""
from __future__ import annotations


def optimizer_class(optimizer) -> str:
    """The name a checkpoint records for ``optimizer``: its class's qualified name ("Adam", "SGD").

    The module is left out so that a checkpoint survives the class moving between files.
    """
    return type(optimizer).__qualname__


def optimizer_mismatch(saved, optimizer) -> str | None:
    """Why a state recorded with optimizer class ``saved`` cannot go into ``optimizer``, or None.

    ``saved`` None (a state written before the class was recorded) fits anything. An Adam state
    loaded into SGD would run on silently: SGD ignores ``exp_avg`` and takes Adam's learning rate,
    betas and all, so a resume must use the optimizer class it was saved with.
    """
    if saved is None:
        return None
    ours = "no optimizer" if optimizer is None else optimizer_class(optimizer)
    saved = "no optimizer" if saved == "" else str(saved)
    if saved == ours:
        return None
    return (f"it was written with optimizer {saved}, this one has {ours} (optimizer state does not carry over "
            f"between classes: resume with {saved}, or start a fresh run)")
