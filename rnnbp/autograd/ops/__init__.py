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
# PyTorch's dtype categories: a higher category always wins, whatever the widths.
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
# The dtype a constant of a higher category than every tensor brings in (torch's defaults,
# with rnnbp's float32 default).
_CATEGORY_DEFAULT = {1: np.dtype(np.int64), 2: DEFAULT_DTYPE, 3: np.dtype(np.complex64)}


def _category(dtype: np.dtype) -> int:
    return _CATEGORY.get(dtype.kind, -1)


def _group_dtype(dtypes: list) -> np.dtype:
    """The widest dtype of the highest category present (``torch.promote_types`` over a group)."""
    top = builtins.max(_category(d) for d in dtypes)
    return np.result_type(*(d for d in dtypes if _category(d) == top))


def _tensor_dtype(tensors) -> np.dtype:
    """The common dtype of Tensors: dimensioned ones decide unless a 0-d one has a higher category."""
    dims = [t.data.dtype for t in tensors if t.data.ndim]
    zero_d = [t.data.dtype for t in tensors if not t.data.ndim]
    if not dims:
        return _group_dtype(zero_d)
    dtype = _group_dtype(dims)
    if zero_d:
        other = _group_dtype(zero_d)
        if _category(other) > _category(dtype):
            return other
    return dtype


def _promote(*tensors: Tensor) -> tuple:
    """Cast Tensors to their common dtype by PyTorch's category rule (bool < integer < float).

    A float tensor meeting an integer or bool tensor gives the float tensor's dtype; within a
    category the wider dtype wins (int32 and int64 give int64, float32 and float64 float64),
    except that a 0-d tensor does not upcast a dimensioned tensor of the same category
    (float32 (3,) times a 0-d float64 gives float32). Unlike ``np.result_type``, int64 and
    float32 give float32. A float-to-float cast is a ``Cast`` node only when the tensor
    requires grad, so every gradient comes back in its input's dtype; other casts are constants.
    """
    first = tensors[0].data.dtype
    if all(t.data.dtype == first for t in tensors):
        return tensors
    common = _tensor_dtype(tensors)
    return tuple(cast(t, common) for t in tensors)


def _common(*operands, floating: bool = False) -> tuple:
    """Bring Tensors and constants (Python or NumPy numbers, arrays) to one dtype; None passes.

    Tensors promote among themselves (:func:`_promote`). A constant takes the tensors' dtype
    unless its category is higher: then everything goes to that category's default dtype, so
    ``int_tensor * 0.5`` is float32 and a NumPy float64 never promotes a float32 tensor (rnnbp
    treats NumPy arrays like Python numbers here, where PyTorch would treat them as tensors).
    ``floating`` lifts an integer or bool result to ``DEFAULT_DTYPE`` (true division).
    """
    if not any(isinstance(x, Tensor) for x in operands):  # e.g. add(ndarray, 2.0)
        operands = (Tensor(operands[0]),) + operands[1:]
    tensors = [x for x in operands if isinstance(x, Tensor)]
    consts = {i: np.asarray(x) for i, x in enumerate(operands) if x is not None and not isinstance(x, Tensor)}
    dtype = tensors[0].data.dtype if len(tensors) == 1 else _tensor_dtype(tensors)
    const_category = builtins.max((_category(c.dtype) for c in consts.values()), default=-1)
    if const_category > _category(dtype):
        dtype = _CATEGORY_DEFAULT[const_category]
    if floating and _category(dtype) < 2:
        dtype = DEFAULT_DTYPE
    out = []
    for i, x in enumerate(operands):
        if i in consts:
            c = consts[i]
            x = c.astype(dtype, copy=False) if c.dtype.kind in "biufc" else c
        elif x is not None:
            x = cast(x, dtype)
        out.append(x)
    return tuple(out)


def _operands(a, b, floating: bool = False):
    """Pair two operands in one dtype (:func:`_common`), with fast paths for the common cases."""
    a_is, b_is = isinstance(a, Tensor), isinstance(b, Tensor)
    if a_is and b_is:
        if a.data.dtype == b.data.dtype and (not floating or a.data.dtype.kind in "fc"):
            return a, b
    elif a_is and type(b) in (float, int) and a.data.dtype.kind == "f":
        return a, np.asarray(b, dtype=a.data.dtype)
    elif b_is and type(a) in (float, int) and b.data.dtype.kind == "f":
        return np.asarray(a, dtype=b.data.dtype), b
    return _common(a, b, floating=floating)


def _float_input(x) -> Tensor:
    """``x`` as a Tensor, integer or bool cast to ``DEFAULT_DTYPE`` (for exp, log, softmax, ...)."""
    if not isinstance(x, Tensor):
        x = Tensor(x)
    return x if x.data.dtype.kind in "fc" else cast(x, DEFAULT_DTYPE)


def _check_dim(dim, ndim: int, shape: tuple, op: str) -> int:
    """``dim`` as a non-negative axis; a 0-d tensor accepts 0 and -1, as in PyTorch."""
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    n = builtins.max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"{op}: dim {dim} is out of range for a tensor of shape {shape} (expected {-n} to {n - 1})"
        )
    return int(dim) % n


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
    """True division: integer or bool operands give ``DEFAULT_DTYPE`` (float32), as in PyTorch."""
    return Div.apply(*_operands(a, b, floating=True))


def pow(a, b) -> Tensor:
    return Pow.apply(*_operands(a, b))


def neg(x) -> Tensor:
    return Neg.apply(x)


def exp(x) -> Tensor:
    return Exp.apply(_float_input(x))


def log(x) -> Tensor:
    return Log.apply(_float_input(x))


def sqrt(x) -> Tensor:
    return Sqrt.apply(_float_input(x))


def abs(x) -> Tensor:
    return Abs.apply(x)


def tanh(x) -> Tensor:
    return Tanh.apply(_float_input(x))


def sigmoid(x) -> Tensor:
    return Sigmoid.apply(_float_input(x))


def relu(x) -> Tensor:
    return ReLU.apply(x)


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLU.apply(x, negative_slope=negative_slope)


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return Softplus.apply(_float_input(x), beta=beta, threshold=threshold)


def gelu(x, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(_float_input(x), approximate=approximate)


def clamp(x, min=None, max=None) -> Tensor:
    """Clip ``x`` into [min, max]; bounds are numbers, arrays or Tensors, broadcast against ``x``.

    Tensor bounds that require grad get PyTorch's gradient (where ``x`` falls outside them).
    Dtypes promote as in arithmetic, so an integer tensor with a float bound gives float32.
    """
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return Clamp.apply(*_common(x, min, max))


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


def _arg(x, dim, keepdim, op):
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    fn = np.argmax if op == "argmax" else np.argmin
    if dim is None:
        return _constant_result(np.asarray(fn(data)), op)
    axis = _check_dim(dim, data.ndim, data.shape, op)
    out = fn(data.reshape(data.shape or (1,)), axis=axis, keepdims=keepdim and data.ndim > 0)
    return _constant_result(np.asarray(out), op)


def argmax(x, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the largest element (flat), or along ``dim``; a constant int64 tensor."""
    return _arg(x, dim, keepdim, "argmax")


def argmin(x, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the smallest element (flat), or along ``dim``; a constant int64 tensor."""
    return _arg(x, dim, keepdim, "argmin")


# ---------------------------------------------------------------- shape ops
def reshape(x, *shape) -> Tensor:
    return Reshape.apply(x, shape=_shape_args(shape))


view = reshape


def flatten(x, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim`` to ``end_dim`` (inclusive) into one; a 0-d tensor becomes (1,)."""
    shape = x.shape
    start = _check_dim(start_dim, len(shape), shape, "flatten")
    end = _check_dim(end_dim, len(shape), shape, "flatten")
    if start > end:
        raise ValueError(
            f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a tensor of shape {shape}"
        )
    if not shape:
        return reshape(x, 1)
    return reshape(x, shape[:start] + (-1,) + shape[end + 1:])


def permute(x, *dims) -> Tensor:
    return Permute.apply(x, dims=_shape_args(dims))


def transpose(x, dim0: int, dim1: int) -> Tensor:
    """Swap two dims; a 0-d tensor accepts 0 and -1 and is returned unchanged in shape."""
    d0 = _check_dim(dim0, x.ndim, x.shape, "transpose")
    d1 = _check_dim(dim1, x.ndim, x.shape, "transpose")
    dims = list(range(x.ndim))
    if x.ndim:
        dims[d0], dims[d1] = dims[d1], dims[d0]
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
    """Items in one dtype (:func:`_common`); non-Tensor items become constant Tensors."""
    tensors = list(tensors)
    if not any(isinstance(t, Tensor) for t in tensors):
        return [Tensor(t) for t in tensors]
    return [t if isinstance(t, Tensor) else Tensor(t) for t in _common(*tensors)]


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
    if not -x.ndim <= dim < x.ndim:
        raise IndexError(f"chunk: dim {dim} is out of range for a tensor of shape {x.shape}")
    return split(x, math.ceil(x.shape[dim] / chunks), dim)


# ------------------------------------------------------------------- linalg
def matmul(a, b) -> Tensor:
    return MatMul.apply(*_operands(a, b))


def linear(x, weight, bias=None) -> Tensor:
    """y = x W^T + b. Shape: x (*, H_in), weight (H_out, H_in), bias (H_out,) -> (*, H_out)."""
    w_shape = np.shape(weight)
    if len(w_shape) != 2:
        raise ValueError(f"linear: weight must be 2-D (H_out, H_in), got shape {w_shape}")
    if bias is None:
        return Linear.apply(x, weight)
    if np.shape(bias) != w_shape[:1]:
        raise ValueError(
            f"linear: bias of shape {np.shape(bias)} does not match weight of shape {w_shape}: "
            f"expected {w_shape[:1]}"
        )
    return Linear.apply(x, weight, bias)


# ----------------------------------------------------------------- nn ops
def softmax(x, dim: int = -1) -> Tensor:
    return Softmax.apply(_float_input(x), dim=dim)


def log_softmax(x, dim: int = -1) -> Tensor:
    return LogSoftmax.apply(_float_input(x), dim=dim)


def logsumexp(x, dim=-1, keepdim: bool = False) -> Tensor:
    """log sum exp over ``dim`` (an int or a tuple of ints, as in PyTorch)."""
    return LogSumExp.apply(_float_input(x), dim=dim, keepdim=keepdim)


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
