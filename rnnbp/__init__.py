"""rnnbp: backpropagation for feedforward and recurrent networks on one NumPy autograd core.

``import rnnbp`` stays light: the heavy optional pieces (librosa, matplotlib)
load only when the code that needs them runs.
"""
from . import autograd
from .autograd import (
    Tensor, arange, enable_grad, full, is_grad_enabled, manual_seed, no_grad, ones, ones_like, rand,
    randn, set_grad_enabled, tensor, zeros, zeros_like,
)
from .autograd.ops import (
    argmax, argmin, cat, chunk, clamp, exp, log, logsumexp, matmul, maximum, mean, minimum,
    relu, sigmoid, softmax, split, sqrt, stack, tanh, where,
)
from .autograd.ops import sum, max, min, abs  # noqa: A004  (PyTorch's names, shadowing builtins)
from .io import load, save
from .threads import blas_threads

from . import bptt, data, nn, optim, train  # noqa: E402  (light: heavy libraries load inside loaders)

__version__ = "0.1.0"
