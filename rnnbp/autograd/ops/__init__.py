"""The functional face of the ops, also bound as ``Tensor`` methods.

Each function here turns its arguments into arrays or Tensors (constants take the
tensor's dtype, so a Python or NumPy float never promotes float32 to float64)
and calls one ``Function.apply``. Non-differentiable results (comparisons,
argmax, integer casts) are constant tensors that remember which op made them,
so a backward through them names that op.
"""
from __future__ import annotations

import builtins
import math
from collections.abc import Sequence

import numpy as np

from .. import random as _random
from ..tensor import DEFAULT_DTYPE, Tensor, ValuesIndices
from .elementwise import (
    GELU, Abs, Add, Cast, Clamp, Div, Exp, LeakyReLU, Log, Maximum, Minimum, Mul, Neg, Pow, ReLU,
    Sigmoid, Softplus, Sqrt, Sub, Tanh, Where,
)
from .linalg import Linear, MatMul
from .nn import Dropout, LogSoftmax, LogSumExp, Softmax
from .reduce import MaxMinAll, MaxMinDim, Mean, Sum, Var, normalize_dims
from .shape import Cat, Expand, GetItem, Permute, Reshape, Split, Stack


# ----------------------------------------------------------------- arguments
def _constant(x, dtype: np.dtype):
    """A non-Tensor operand as an array of ``dtype`` (float) or its natural type."""
    arr = np.asarray(x.data if isinstance(x, Tensor) else x)
    if dtype.kind == "f":
        return arr.astype(dtype, copy=False) if arr.dtype != dtype and arr.dtype.kind in "fiub" else arr
    if arr.dtype.kind == "f":
        return arr.astype(DEFAULT_DTYPE, copy=False)
    return arr


def _operands(a, b):
    """Pair two operands so that constants follow the Tensor's dtype."""
    a_is, b_is = isinstance(a, Tensor), isinstance(b, Tensor)
    if a_is and b_is:
        return _promote(a, b)
    if a_is:
        return a, _constant(b, a.data.dtype)
    if b_is:
        return _constant(a, b.data.dtype), b
    a = Tensor(a)
    return a, _constant(b, a.data.dtype)


def _promote(*tensors: Tensor) -> tuple:
    """Cast tensors of different dtypes to their common one, on the tape (as PyTorch promotes).

    The cast is a node of its own, so each op sees one dtype and every gradient
    comes back in its input's dtype.
    """
    first = tensors[0].data.dtype
    if all(t.data.dtype == first for t in tensors):
        return tensors
    common = np.result_type(*(t.data.dtype for t in tensors))
    return tuple(cast(t, common) for t in tensors)


def _constant_result(data, op: str) -> Tensor:
    t = Tensor._make(np.asarray(data))
    t._nondiff_op = op
    return t


def _shape_args(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (Sequence, np.ndarray)):
        return tuple(shape[0])
    return tuple(shape)


# ----------------------------------------------------------- elementwise ops
def add(a, b) -> Tensor:
    return Add.apply(*_operands(a, b))


def sub(a, b) -> Tensor:
    return Sub.apply(*_operands(a, b))


def mul(a, b) -> Tensor:
    return Mul.apply(*_operands(a, b))


def div(a, b) -> Tensor:
    return Div.apply(*_operands(a, b))


def pow(a, b) -> Tensor:
    return Pow.apply(*_operands(a, b))


def neg(x) -> Tensor:
    return Neg.apply(x)


def exp(x) -> Tensor:
    return Exp.apply(x)


def log(x) -> Tensor:
    return Log.apply(x)


def sqrt(x) -> Tensor:
    return Sqrt.apply(x)


def abs(x) -> Tensor:
    return Abs.apply(x)


def tanh(x) -> Tensor:
    return Tanh.apply(x)


def sigmoid(x) -> Tensor:
    return Sigmoid.apply(x)


def relu(x) -> Tensor:
    return ReLU.apply(x)


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLU.apply(x, negative_slope=negative_slope)


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return Softplus.apply(x, beta=beta, threshold=threshold)


def gelu(x, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(x, approximate=approximate)


def clamp(x, min=None, max=None) -> Tensor:
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return Clamp.apply(x, min=min, max=max)


clip = clamp


def maximum(a, b) -> Tensor:
    return Maximum.apply(*_operands(a, b))


def minimum(a, b) -> Tensor:
    return Minimum.apply(*_operands(a, b))


def where(condition, a, b) -> Tensor:
    """Elements of ``a`` where ``condition`` holds, else of ``b`` (broadcast together)."""
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    a, b = _operands(a, b)
    return Where.apply(cond, a, b)


def cast(x: Tensor, dtype) -> Tensor:
    """Cast to ``dtype``; only float-to-float casts keep the gradient."""
    dtype = np.dtype(dtype)
    if dtype == x.data.dtype:
        return x
    if dtype.kind == "f" and x.data.dtype.kind == "f":
        return Cast.apply(x, dtype=dtype)
    # Casting from a float cuts the gradient here; casting e.g. a comparison's booleans keeps
    # that comparison as the op a later backward blames.
    op = f"cast to {dtype}" if x.data.dtype.kind == "f" else x._nondiff_op
    return _constant_result(x.data.astype(dtype), op)


def compare(op: str, a, b) -> Tensor:
    a, b = _operands(a, b)
    fn = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
          "eq": np.equal, "ne": np.not_equal}[op]
    ad = a.data if isinstance(a, Tensor) else a
    bd = b.data if isinstance(b, Tensor) else b
    try:
        out = fn(ad, bd)
    except ValueError:
        raise ValueError(f"{op}: cannot broadcast shapes {np.shape(ad)} and {np.shape(bd)}") from None
    return _constant_result(out, f"comparison ({op})")


# --------------------------------------------------------------- reductions
def sum(x, dim=None, keepdim: bool = False) -> Tensor:
    return Sum.apply(x, dim=dim, keepdim=keepdim)


def mean(x, dim=None, keepdim: bool = False) -> Tensor:
    return Mean.apply(x, dim=dim, keepdim=keepdim)


def var(x, dim=None, keepdim: bool = False, correction: int = 1, unbiased: bool | None = None) -> Tensor:
    """Variance; ``correction=1`` (default) is unbiased, as in PyTorch."""
    if unbiased is not None:
        correction = 1 if unbiased else 0
    return Var.apply(x, dim=dim, keepdim=keepdim, correction=correction)


def _max_min(x, dim, keepdim, mode):
    if dim is None:
        return MaxMinAll.apply(x, mode=mode)
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{mode}: dim must be an int (one axis), got {dim!r}")
    values, indices = MaxMinDim.apply(x, dim=dim, keepdim=keepdim, mode=mode)
    return ValuesIndices(values, _constant_result(indices.data, f"{mode} indices"))


def max(x, dim=None, keepdim: bool = False):
    """Largest element; with ``dim``, a (values, indices) pair as in PyTorch."""
    return _max_min(x, dim, keepdim, "max")


def min(x, dim=None, keepdim: bool = False):
    """Smallest element; with ``dim``, a (values, indices) pair as in PyTorch."""
    return _max_min(x, dim, keepdim, "min")


def argmax(x, dim=None, keepdim: bool = False) -> Tensor:
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    out = np.argmax(data, axis=dim, keepdims=keepdim) if dim is not None else np.asarray(np.argmax(data))
    return _constant_result(out, "argmax")


def argmin(x, dim=None, keepdim: bool = False) -> Tensor:
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    out = np.argmin(data, axis=dim, keepdims=keepdim) if dim is not None else np.asarray(np.argmin(data))
    return _constant_result(out, "argmin")


# ---------------------------------------------------------------- shape ops
def reshape(x, *shape) -> Tensor:
    return Reshape.apply(x, shape=_shape_args(shape))


view = reshape


def flatten(x, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    shape = x.shape
    if not shape:
        return reshape(x, 1)
    start, end = start_dim % len(shape), end_dim % len(shape)
    return reshape(x, shape[:start] + (-1,) + shape[end + 1:])


def permute(x, *dims) -> Tensor:
    return Permute.apply(x, dims=_shape_args(dims))


def transpose(x, dim0: int, dim1: int) -> Tensor:
    dims = list(range(x.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute.apply(x, dims=tuple(dims))


def _T(x) -> Tensor:
    return Permute.apply(x, dims=tuple(reversed(range(x.ndim))))


def squeeze(x, dim=None) -> Tensor:
    """Drop axes of size 1 (all of them, or those in ``dim`` that have size 1)."""
    if dim is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        dims = normalize_dims(dim, x.ndim, "squeeze")
        shape = tuple(n for i, n in enumerate(x.shape) if not (i in dims and n == 1))
    return Reshape.apply(x, shape=shape)


def unsqueeze(x, dim: int) -> Tensor:
    """Insert an axis of size 1 at ``dim`` (negative counts from the end of the result)."""
    ndim = x.ndim + 1
    if not -ndim <= dim < ndim:
        raise IndexError(f"unsqueeze: dim {dim} is out of range for a result with {ndim} dimensions")
    shape = list(x.shape)
    shape.insert(dim % ndim, 1)
    return Reshape.apply(x, shape=tuple(shape))


def expand(x, *sizes) -> Tensor:
    return Expand.apply(x, shape=_shape_args(sizes))


def expand_as(x, other) -> Tensor:
    return Expand.apply(x, shape=other.shape)


def _index_arrays(index):
    """Tensors inside an index become their arrays; lists of ints become arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(_index_arrays(i) for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def getitem(x, index) -> Tensor:
    return GetItem.apply(x, index=_index_arrays(index))


def _as_tensors(tensors):
    """Tensors as they are; other items become constants of the first Tensor's dtype."""
    tensors = list(tensors)
    like = next((t.data.dtype for t in tensors if isinstance(t, Tensor)), None)
    if like is None:
        return [Tensor(t) for t in tensors]
    return list(_promote(*(t if isinstance(t, Tensor) else Tensor(_constant(t, like)) for t in tensors)))


def cat(tensors, dim: int = 0) -> Tensor:
    return Cat.apply(*_as_tensors(tensors), dim=dim)


concatenate = cat


def stack(tensors, dim: int = 0) -> Tensor:
    return Stack.apply(*_as_tensors(tensors), dim=dim)


def split(x, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces along ``dim``: of size ``split_size`` (last one smaller), or of the listed sizes."""
    if not -x.ndim <= dim < x.ndim:
        raise IndexError(f"split: dim {dim} is out of range for a tensor of shape {x.shape}")
    n = x.shape[dim]
    if isinstance(split_size_or_sections, (int, np.integer)):
        step = int(split_size_or_sections)
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}")
        sizes = [builtins.min(step, n - i) for i in range(0, n, step)]
    else:
        sizes = [int(s) for s in split_size_or_sections]
    out = Split.apply(x, sizes=tuple(sizes), dim=dim)
    return out if isinstance(out, tuple) else (out,)


def chunk(x, chunks: int, dim: int = 0) -> tuple:
    """Split into ``chunks`` pieces of equal size (the last may be smaller), as in PyTorch."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    return split(x, math.ceil(x.shape[dim] / chunks), dim)


# ------------------------------------------------------------------- linalg
def matmul(a, b) -> Tensor:
    return MatMul.apply(*_operands(a, b))


def linear(x, weight, bias=None) -> Tensor:
    """y = x W^T + b. Shape: x (*, H_in), weight (H_out, H_in), bias (H_out,) -> (*, H_out)."""
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)


# ----------------------------------------------------------------- nn ops
def softmax(x, dim: int = -1) -> Tensor:
    return Softmax.apply(x, dim=dim)


def log_softmax(x, dim: int = -1) -> Tensor:
    return LogSoftmax.apply(x, dim=dim)


def logsumexp(x, dim: int = -1, keepdim: bool = False) -> Tensor:
    return LogSumExp.apply(x, dim=dim, keepdim=keepdim)


def dropout(x, p: float = 0.5, training: bool = True, generator: np.random.Generator | None = None) -> Tensor:
    """Inverted dropout: zero with probability ``p``, scale survivors by 1/(1-p); identity when not training."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return Dropout.apply(x, p=p, generator=_random.get_generator(generator))


# ------------------------------------------------- bind the ops as methods
_METHODS = [
    "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "leaky_relu", "softplus", "gelu", "clamp",
    "clip", "maximum", "minimum", "sum", "mean", "var", "max", "min", "argmax", "argmin",
    "reshape", "view", "flatten", "permute", "transpose", "squeeze", "unsqueeze", "expand",
    "expand_as", "split", "chunk", "matmul", "softmax", "log_softmax", "logsumexp", "abs",
]
for _name in _METHODS:
    setattr(Tensor, _name, globals()[_name])
Tensor.T = property(_T)
Tensor.mT = property(lambda x: transpose(x, -2, -1))
Tensor.pow = pow
Tensor.neg = neg
del _name
