"""Optimisers with PyTorch's API, update rules and state keys, and learning-rate schedulers.

Each optimiser's maths is a pure function over arrays (``sgd_update``, ``adam_update``,
``rmsprop_update``, ``adagrad_update``) that its class calls once per parameter.
"""
from . import lr_scheduler
from .adagrad import Adagrad, adagrad_update
from .adam import Adam, AdamW, adam_update
from .optimizer import Optimizer
from .rmsprop import RMSprop, rmsprop_update
from .sgd import SGD, sgd_update

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler",
    "sgd_update", "adam_update", "rmsprop_update", "adagrad_update",
]
