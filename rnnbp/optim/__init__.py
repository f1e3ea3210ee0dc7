"""Optimisers with PyTorch's API, update rules and state keys, and learning-rate schedulers.

Each optimiser's maths is a pure function over arrays (``sgd_update``, ``adam_update``,
``rmsprop_update``, ``adagrad_update``, ``adadelta_update``, ``adamax_update``, ``nadam_update``,
``radam_update``) that its class calls once per parameter. LBFGS works on the flat vector of all
parameters at once; its maths is ``lbfgs_direction`` (two-loop recursion) and ``lbfgs_remember``,
its line search ``line_search.strong_wolfe``.
"""
from . import lr_scheduler
from .adadelta import Adadelta, adadelta_update
from .adagrad import Adagrad, adagrad_update
from .adam import Adam, AdamW, adam_update
from .adamax import Adamax, adamax_update
from .lbfgs import LBFGS, lbfgs_direction, lbfgs_remember
from .nadam import NAdam, nadam_update
from .optimizer import Optimizer
from .radam import RAdam, radam_update
from .rmsprop import RMSprop, rmsprop_update
from .sgd import SGD, sgd_update

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam",
    "LBFGS", "lr_scheduler",
    "sgd_update", "adam_update", "rmsprop_update", "adagrad_update", "adadelta_update", "adamax_update",
    "nadam_update", "radam_update", "lbfgs_direction", "lbfgs_remember",
]
