"""The autograd core: Tensor, the ops, the graph walk, grad mode, dtypes, the device, gradcheck.

Imports nothing else of rnnbp.
"""
from . import dtypes, ops
from .creation import (
    arange, as_tensor, bernoulli, empty, empty_like, eye, from_numpy, full, full_like, is_tensor, linspace, logspace,
    multinomial, normal, ones, ones_like, rand, rand_like, randint, randn, randn_like, randperm, tensor, zeros,
    zeros_like,
)
from .device import DeviceError, device
from .engine import GraphFreedError, grad
from .function import Function, unbroadcast
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
                        set_grad_enabled)
from .gradcheck import GradcheckError, gradcheck
from .random import Generator, default_generator, manual_seed
from .tensor import Size, Tensor

__all__ = [
    "Tensor", "Size", "Function", "unbroadcast", "gradcheck", "GradcheckError", "GraphFreedError", "no_grad",
    "enable_grad", "is_grad_enabled", "set_grad_enabled", "manual_seed", "default_generator", "Generator",
    "inference_mode", "is_inference_mode_enabled",
    "ops", "dtypes", "device", "DeviceError", "grad",
    "tensor", "as_tensor", "from_numpy", "is_tensor", "zeros", "ones", "empty", "full", "zeros_like",
    "ones_like", "empty_like", "full_like", "arange", "linspace", "logspace", "eye", "randn", "rand", "randn_like",
    "rand_like", "randint", "randperm", "multinomial", "bernoulli", "normal",
]
