"""rnnbp: backpropagation for feedforward and recurrent networks on one NumPy autograd core.

The top level holds PyTorch's names (``rnnbp.tensor``, ``rnnbp.float32``, ``rnnbp.cat``,
``rnnbp.no_grad``, ``rnnbp.save``, ...), so that ``import rnnbp as torch`` (or
``python -m rnnbp.torch script.py``) runs PyTorch programs.

``import rnnbp`` stays light: the heavy optional pieces (librosa, matplotlib)
load only when the code that needs them runs.
"""
from __future__ import annotations

import builtins as _builtins

from . import autograd
from .autograd import (
    DeviceError, Generator, Size, Tensor, arange, as_tensor, bernoulli, device, empty, empty_like,
    enable_grad, eye, from_numpy, full, full_like, is_grad_enabled, is_tensor, linspace, logspace, manual_seed,
    multinomial, no_grad, normal, ones, ones_like, rand, rand_like, randint, randn, randn_like, randperm,
    set_grad_enabled, tensor, zeros, zeros_like,
)
from .autograd.grad_mode import inference_mode, is_inference_mode_enabled
from .autograd.random import get_rng_state, set_rng_state
from .autograd.legacy import (  # PyTorch's legacy constructors (torch.Tensor itself: see autograd/legacy.py)
    BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor, HalfTensor, IntTensor, LongTensor, ShortTensor,
)
from .autograd.ops.cumulative import cummax, cummin, cumprod, logcumsumexp
from .autograd.ops.distance import cdist
from .autograd.ops.scatter import argwhere, bucketize, index_fill, nan_to_num, scatter, searchsorted, select


def clamp_min(input, min):
    """``torch.clamp_min``: ``clamp(input, min=min)``."""
    return clamp(input, min, None)


def clamp_max(input, max):
    """``torch.clamp_max``: ``clamp(input, max=max)``."""
    return clamp(input, None, max)
from .autograd.dtypes import (  # noqa: A004  (PyTorch's names: rnnbp.float, rnnbp.int, rnnbp.bool)
    finfo, bool, double, float, float16, float32, float64, half, int, int8, int16, int32, int64, long, short, uint8,
)
from .autograd.dtypes import default_dtype as get_default_dtype, set_default_dtype
from .autograd.memory_format import channels_last, channels_last_3d, contiguous_format, memory_format, preserve_format
from .autograd.ops import (
    amax, argmax, argmin, argsort, bitwise_and, bitwise_not, bitwise_or, bitwise_xor, cat, chunk, clamp, clip,
    clone, concatenate, cos, div, exp, flatten, flip, fmod, logical_and, logical_not, logical_or, logical_xor,
    log1p, nonzero, remainder, ceil, einsum, prod, concat, diag, dot, floor, hstack, isclose, masked_select, median, movedim,
    true_divide, lerp, dist,
    outer, repeat_interleave, tile, unflatten, unique, vstack, count_nonzero, diff, kthvalue, quantile, unique_consecutive, bincount, cumsum, index_add, roll, scatter_add,
    gather, index_select, isfinite, isinf, isnan, log, log_softmax, logsumexp, masked_fill, matmul,
    maximum, mean, minimum, mul, narrow, norm, permute, pow, relu, reshape, rsqrt, sigmoid, sign, sin,
    softmax, sort, split, sqrt, square, squeeze, stack, std, sub, tanh, topk, transpose, tril, triu,
    unsqueeze, var, where,
)
from .autograd.ops import abs, add, all, any, max, min, round, sum  # noqa: A004  (PyTorch's names)
from .autograd.printing import set_printoptions
from .io import load, save
from .threads import blas_threads

from . import accelerator, backends, cuda, onnx, serialization  # noqa: E402  (onnx itself loads inside export)
from . import bptt, data, linalg, nn, optim, train, utils  # noqa: E402  (light: heavy libraries load inside loaders)
from . import distributions  # noqa: E402  (torch.distributions)

__version__ = "0.1.0"

mm = bmm = matmul


def iinfo(type):
    """``torch.iinfo``: NumPy's integer type information (``max``, ``min``, ``bits``)."""
    import numpy

    return numpy.iinfo(type)


def numel(t: Tensor) -> int:
    return t.numel()


def equal(input: Tensor, other: Tensor) -> bool:
    """``torch.equal``: True if both Tensors have the same shape and elements."""
    if not isinstance(input, Tensor):
        raise TypeError(f"equal(): argument 'input' must be a Tensor, not {type(input).__name__}")
    return input.equal(other)


def allclose(a, b, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> bool:
    return Tensor(a).allclose(b, rtol=rtol, atol=atol, equal_nan=equal_nan)


def is_floating_point(t: Tensor) -> bool:
    return t.is_floating_point()


def set_num_threads(n: int) -> None:
    """Limit the BLAS thread pool to ``n`` threads for the rest of the program (threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=n, user_api="blas")


def get_num_threads() -> int:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return 1
    counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return _builtins.max(counts) if counts else 1
