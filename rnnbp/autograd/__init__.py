"""The autograd core: Tensor, the ops, the graph walk, grad mode and gradcheck.

Imports nothing else of rnnbp.
"""
from . import ops
from .creation import arange, full, ones, ones_like, rand, randn, tensor, zeros, zeros_like
from .engine import GraphFreedError, grad
from .function import Function, unbroadcast
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck
from .random import default_generator, manual_seed
from .tensor import Tensor

__all__ = [
    "Tensor", "Function", "unbroadcast", "gradcheck", "GradcheckError", "GraphFreedError", "no_grad",
    "enable_grad", "is_grad_enabled", "set_grad_enabled", "manual_seed", "default_generator", "ops",
    "tensor", "zeros", "ones", "full", "zeros_like", "ones_like", "arange", "randn", "rand", "grad",
]
