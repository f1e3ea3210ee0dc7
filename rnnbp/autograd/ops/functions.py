"""The functional face of the ops: ``rnnbp.exp``, ``rnnbp.cat``, ... (and what Tensor methods call).

Each function here brings its arguments to one dtype (:mod:`.promotion`) and calls one
``Function.apply``. Non-differentiable results (comparisons, argmax, integer casts) are
constant tensors that remember which op made them, so a backward through them names that op.
"""
from __future__ import annotations

import builtins
import math
from collections.abc import Sequence

import numpy as np

from .. import grad_mode, views
from ..memory_format import copy_order
from .. import random as _random
from ..dtypes import as_dtype
from ..tensor import Tensor, ValuesIndices
from ..dtypes import default_dtype
from .elementwise import (
    ELU, GELU, Abs, Add, Cast, Clamp, Cos, Div, Exp, LeakyReLU, Log, Log1p, Maximum, Minimum, Mul, Neg, Pow,
    ReLU, Remainder, Sigmoid, SiLU, Sin, Softplus, Sqrt, Sub, Tanh, Where,
)
from .linalg import Einsum, Linear, MatMul, parse_einsum
from .nn import Dropout, LogSoftmax, LogSumExp, Softmax
from .promotion import check_dim, common, constant_result, float_input, operands, promote, shape_args, cast
from .reduce import MaxMinAll, MaxMinDim, Mean, Prod, Sum, Var, check_not_empty, normalize_dims
from .shape import Cat, Clone, Expand, Flip, Gather, GetItem, Permute, Repeat, Reshape, SetItem, Split, Stack


# ----------------------------------------------------------- elementwise ops
def add(a, b, alpha=1) -> Tensor:
    """a + alpha * b, broadcasting; ``alpha`` scales ``b`` first (``torch.add``)."""
    if alpha != 1:
        b = mul(b, alpha)
    return Add.apply(*operands(a, b))


def sub(a, b, alpha=1) -> Tensor:
    """a - alpha * b, broadcasting (``torch.sub``)."""
    if alpha != 1:
        b = mul(b, alpha)
    return Sub.apply(*operands(a, b))


def mul(a, b) -> Tensor:
    """a * b elementwise, broadcasting."""
    return Mul.apply(*operands(a, b))


def div(a, b, rounding_mode: str | None = None) -> Tensor:
    """a / b. True division by default: integer or bool operands give ``default_dtype()`` (float32 unless set).

    ``rounding_mode="trunc"`` rounds towards zero, ``"floor"`` down, as ``torch.div``; those keep
    integer dtypes and, being piecewise constant, have no gradient (a constant result).
    """
    if rounding_mode is None:
        return Div.apply(*operands(a, b, floating=True))
    if rounding_mode not in ("trunc", "floor"):
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}")
    a, b = operands(a, b)
    ad = a._data if isinstance(a, Tensor) else a
    bd = b._data if isinstance(b, Tensor) else b
    if np.result_type(ad, bd).kind in "iub":
        if np.any(np.asarray(bd) == 0):
            # NumPy would warn and give 0; PyTorch refuses integer division by zero.
            raise ZeroDivisionError(f"div (rounding_mode={rounding_mode!r}): integer division by zero")
        if rounding_mode == "floor":
            out = np.floor_divide(ad, bd)
        else:  # exact for any int64 (true_divide would round through float64)
            q = np.floor_divide(ad, bd)
            out = q + ((q < 0) & (q * bd != ad))
        out = np.asarray(out).astype(np.result_type(ad, bd))
    else:
        out = np.true_divide(ad, bd)
        out = np.floor(out) if rounding_mode == "floor" else np.trunc(out)
    return constant_result(out, f"div (rounding_mode={rounding_mode!r})")


def pow(a, b) -> Tensor:
    """a ** b elementwise, broadcasting."""
    return Pow.apply(*operands(a, b))


def neg(x) -> Tensor:
    """-x."""
    return Neg.apply(x)


def exp(x) -> Tensor:
    """e ** x elementwise."""
    return Exp.apply(float_input(x))


def log(x) -> Tensor:
    """Natural logarithm elementwise."""
    return Log.apply(float_input(x))


def sqrt(x) -> Tensor:
    """Square root elementwise."""
    return Sqrt.apply(float_input(x))


def sin(x) -> Tensor:
    """Sine elementwise."""
    return Sin.apply(float_input(x))


def cos(x) -> Tensor:
    """Cosine elementwise."""
    return Cos.apply(float_input(x))


def square(x) -> Tensor:
    """x * x elementwise."""
    return Mul.apply(x, x)


def rsqrt(x) -> Tensor:
    """1 / sqrt(x) elementwise."""
    return div(1.0, sqrt(x))


def _rounded(x, fn, op: str) -> Tensor:
    data = x._data if isinstance(x, Tensor) else np.asarray(x)
    return constant_result(fn(data), op)


def floor(x) -> Tensor:
    """Round down elementwise; a constant (its gradient is zero almost everywhere)."""
    return _rounded(x, np.floor, "floor")


def ceil(x) -> Tensor:
    """Round up elementwise; a constant."""
    return _rounded(x, np.ceil, "ceil")


def round(x, decimals: int = 0) -> Tensor:
    """Round half to even elementwise, as ``torch.round``; a constant."""
    return _rounded(x, lambda a: np.round(a, decimals), "round")


def sign(x) -> Tensor:
    """-1, 0 or 1 elementwise; a constant."""
    return _rounded(x, np.sign, "sign")


def isnan(x) -> Tensor:
    """A bool tensor, True where x is NaN."""
    return _rounded(x, np.isnan, "isnan")


def isinf(x) -> Tensor:
    """A bool tensor, True where x is +-Inf."""
    return _rounded(x, np.isinf, "isinf")


def isfinite(x) -> Tensor:
    """A bool tensor, True where x is neither NaN nor Inf."""
    return _rounded(x, np.isfinite, "isfinite")


def abs(x) -> Tensor:
    """|x| elementwise (gradient sign(x), 0 at 0 as in PyTorch)."""
    return Abs.apply(x)


def tanh(x) -> Tensor:
    """Hyperbolic tangent elementwise."""
    return Tanh.apply(float_input(x))


def sigmoid(x) -> Tensor:
    """Logistic function 1 / (1 + e^-x) elementwise, without overflow."""
    return Sigmoid.apply(float_input(x))


def relu(x) -> Tensor:
    """max(x, 0) elementwise."""
    return ReLU.apply(x)


def leaky_relu(x, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else ``negative_slope * x``."""
    return LeakyReLU.apply(x, negative_slope=negative_slope)


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta x)) / beta; linear where beta x > ``threshold`` (PyTorch's rule)."""
    return Softplus.apply(float_input(x), beta=beta, threshold=threshold)


def silu(x) -> Tensor:
    """x sigmoid(x) (``F.silu``, swish)."""
    return SiLU.apply(float_input(x))


def elu(x, alpha: float = 1.0) -> Tensor:
    """x where x > 0, else alpha (e^x - 1) (``F.elu``)."""
    return ELU.apply(float_input(x), alpha=alpha)


def log1p(x) -> Tensor:
    """log(1 + x), accurate for small x."""
    return Log1p.apply(float_input(x))


def gelu(x, approximate: str = "none") -> Tensor:
    """x Phi(x) with the exact normal CDF, or its tanh approximation (``approximate='tanh'``)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(float_input(x), approximate=approximate)


def clamp(x, min=None, max=None) -> Tensor:
    """Clip ``x`` into [min, max]; bounds are numbers, arrays or Tensors, broadcast against ``x``.

    Tensor bounds that require grad get PyTorch's gradient (where ``x`` falls outside them).
    Dtypes promote as in arithmetic, so an integer tensor with a float bound gives float32.
    """
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    return Clamp.apply(*common(x, min, max))


clip = clamp


def maximum(a, b) -> Tensor:
    """Elementwise larger of a and b; at ties each gets half the gradient, as in PyTorch."""
    return Maximum.apply(*operands(a, b))


def minimum(a, b) -> Tensor:
    """Elementwise smaller of a and b; at ties each gets half the gradient, as in PyTorch."""
    return Minimum.apply(*operands(a, b))


def where(condition, a=None, b=None):
    """Elements of ``a`` where ``condition`` holds, else of ``b`` (broadcast together); with the
    condition alone, ``nonzero(condition, as_tuple=True)`` (as ``torch.where(cond)``)."""
    if a is None and b is None:
        return nonzero(condition, as_tuple=True)
    if a is None or b is None:
        raise TypeError("where: takes a condition alone, or a condition and both of a and b")
    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    a, b = operands(a, b)
    return Where.apply(cond, a, b)


def nonzero(x, *, as_tuple: bool = False):
    """Indices of the nonzero (True) elements: an int64 (count, ndim) tensor, or with ``as_tuple``
    one 1-D int64 tensor per dim (a 0-d input counts as 1-D)."""
    data = x._data if isinstance(x, Tensor) else np.asarray(x)
    index = np.nonzero(np.atleast_1d(data))
    if as_tuple:
        return tuple(constant_result(i.astype(np.int64), "nonzero") for i in index)
    if data.ndim == 0:  # one row per true element, no columns
        return constant_result(np.zeros((int(bool(data)), 0), np.int64), "nonzero")
    return constant_result(np.stack(index, axis=1).astype(np.int64), "nonzero")


def remainder(a, b) -> Tensor:
    """a mod b with the sign of b (Python's ``%``, ``torch.remainder``); ``fmod``: the sign of a.
    Floating operands are differentiable; integer ones give a constant and refuse a zero divisor."""
    return _mod(a, b, "remainder")


def fmod(a, b) -> Tensor:
    """a mod b with the sign of a (C's fmod, ``torch.fmod``); see ``remainder``."""
    return _mod(a, b, "fmod")


def _mod(a, b, mode: str) -> Tensor:
    a, b = operands(a, b)
    ad = a._data if isinstance(a, Tensor) else np.asarray(a)
    bd = b._data if isinstance(b, Tensor) else np.asarray(b)
    if np.result_type(ad, bd).kind in "fc":
        return Remainder.apply(a, b, mode=mode)
    if np.any(bd == 0):
        raise ZeroDivisionError(f"{mode}: integer division by zero")
    out = (np.mod if mode == "remainder" else np.fmod)(ad, bd)
    return constant_result(np.asarray(out), mode)


_BITWISE = {"not": np.invert, "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}
_LOGICAL = {"not": np.logical_not, "and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}


def bitwise(op: str, a, b=None) -> Tensor:
    """``~a``, ``a & b``, ``a | b``, ``a ^ b`` (``torch.bitwise_*``) on bool or integer tensors: bool
    operands give bool (the logical operation), integers their bits; a constant. Floating
    operands are refused, as in PyTorch (``logical_*`` takes any dtype)."""
    for x in (a,) if op == "not" else (a, b):
        dtype = (x._data if isinstance(x, Tensor) else np.asarray(x)).dtype
        if dtype.kind not in "biu":
            raise TypeError(f"bitwise_{op}: needs bool or integer tensors, got {dtype} (logical_{op} takes any dtype)")
    # Binary operands are promoted as arithmetic promotes them (Tensors by dtype, Python scalars weakly).
    pair = (a,) if op == "not" else operands(a, b)
    arrays = [x._data if isinstance(x, Tensor) else np.asarray(x) for x in pair]
    try:
        out = _BITWISE[op](*arrays)
    except ValueError:
        raise ValueError(f"bitwise_{op}: cannot broadcast shapes {' and '.join(str(x.shape) for x in arrays)}") from None
    return constant_result(np.asarray(out), f"bitwise_{op}")


def logical(op: str, a, b=None) -> Tensor:
    """``torch.logical_*``: the truth values (nonzero is True) of a (and b) combined, a bool tensor."""
    arrays = [x._data if isinstance(x, Tensor) else np.asarray(x) for x in ((a,) if op == "not" else (a, b))]
    try:
        out = _LOGICAL[op](*arrays)
    except ValueError:
        raise ValueError(f"logical_{op}: cannot broadcast shapes {' and '.join(str(x.shape) for x in arrays)}") from None
    return constant_result(np.asarray(out), f"logical_{op}")


def bitwise_not(x) -> Tensor:
    return bitwise("not", x)


def bitwise_and(a, b) -> Tensor:
    return bitwise("and", a, b)


def bitwise_or(a, b) -> Tensor:
    return bitwise("or", a, b)


def bitwise_xor(a, b) -> Tensor:
    return bitwise("xor", a, b)


def logical_not(x) -> Tensor:
    return logical("not", x)


def logical_and(a, b) -> Tensor:
    return logical("and", a, b)


def logical_or(a, b) -> Tensor:
    return logical("or", a, b)


def logical_xor(a, b) -> Tensor:
    return logical("xor", a, b)


def compare(op: str, a, b) -> Tensor:
    """A constant bool tensor from the comparison ``op`` (lt, le, gt, ge, eq, ne), broadcasting."""
    a, b = operands(a, b)
    fn = {"lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
          "eq": np.equal, "ne": np.not_equal}[op]
    ad = a._data if isinstance(a, Tensor) else a
    bd = b._data if isinstance(b, Tensor) else b
    try:
        out = fn(ad, bd)
    except ValueError:
        raise ValueError(f"{op}: cannot broadcast shapes {np.shape(ad)} and {np.shape(bd)}") from None
    return constant_result(out, f"comparison ({op})")


# --------------------------------------------------------------- reductions
def sum(x, dim=None, keepdim: bool = False) -> Tensor:
    """Sum over all elements, or over ``dim`` (an int or a tuple of ints)."""
    return Sum.apply(x, dim=dim, keepdim=keepdim)


def prod(x, dim: int | None = None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Product of all elements, or along one ``dim``. Integer and bool inputs give int64 (as PyTorch),
    a constant; floating ones are differentiable (zeros included)."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    if dtype is not None:
        x = cast(x, dtype)
    axis = None if dim is None else check_dim(dim, x.ndim, x.shape, "prod")
    if x.dtype.kind not in "fc":
        data = x._data.astype(np.int64)
        out = np.prod(data) if axis is None else np.prod(data, axis=axis, keepdims=keepdim)
        return constant_result(np.asarray(out, dtype=np.int64), "prod")
    if x.ndim == 0:
        axis = None
    return Prod.apply(x, dim=axis, keepdim=keepdim)


def mean(x, dim=None, keepdim: bool = False) -> Tensor:
    """Mean over all elements, or over ``dim`` (an int or a tuple of ints)."""
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
    return ValuesIndices(values, constant_result(indices._data, f"{mode} indices"))


def max(x, dim=None, keepdim: bool = False):
    """Largest element; with ``dim``, a (values, indices) pair; with a tensor in place of ``dim``,
    the elementwise ``maximum`` (``torch.max(a, b)``), as in PyTorch."""
    if isinstance(dim, (Tensor, np.ndarray)):
        return maximum(x, dim)
    return _max_min(x, dim, keepdim, "max")


def min(x, dim=None, keepdim: bool = False):
    """Smallest element; with ``dim``, a (values, indices) pair; with a tensor in place of ``dim``,
    the elementwise ``minimum`` (``torch.min(a, b)``), as in PyTorch."""
    if isinstance(dim, (Tensor, np.ndarray)):
        return minimum(x, dim)
    return _max_min(x, dim, keepdim, "min")


def _arg(x, dim, keepdim, op):
    data = x._data if isinstance(x, Tensor) else np.asarray(x)
    fn = np.argmax if op == "argmax" else np.argmin
    if dim is None:
        if data.size == 0:
            raise ValueError(f"{op}: cannot reduce an empty tensor of shape {data.shape}; pass dim")
        return constant_result(np.asarray(fn(data)), op)
    axis = check_dim(dim, data.ndim, data.shape, op)
    check_not_empty(data, axis, op)
    out = fn(data.reshape(data.shape or (1,)), axis=axis, keepdims=keepdim and data.ndim > 0)
    return constant_result(np.asarray(out), op)


def argmax(x, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the largest element (flat), or along ``dim``; a constant int64 tensor."""
    return _arg(x, dim, keepdim, "argmax")


def argmin(x, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the smallest element (flat), or along ``dim``; a constant int64 tensor."""
    return _arg(x, dim, keepdim, "argmin")


# ---------------------------------------------------------------- shape ops
def reshape(x, *shape) -> Tensor:
    """The same elements in ``shape`` (one size may be -1); a view where NumPy can make one."""
    return _arranged(x, Reshape, shape=shape_args(shape))


def _arranged(x, op, **kwargs) -> Tensor:
    """``op.apply(x, **kwargs)`` for ``Reshape`` or ``Permute``: a view of all of ``x``'s elements where
    NumPy makes one, kept as PyTorch's are (an in-place change of either reaches the other; see
    ``autograd.views.Arrangement``), else a copy."""
    if not isinstance(x, Tensor):
        return op.apply(x, **kwargs)
    out = _on_value(x, lambda source: op.apply(source, **kwargs))
    if views.shares_memory(out, x):
        dims = kwargs.get("dims")
        if dims is not None:
            dims = tuple(d % builtins.max(x.ndim, 1) for d in dims)
        views.register_arranged(x, out, views.Arrangement(out._data.shape, dims))
    return out


view = reshape


def flatten(x, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim`` to ``end_dim`` (inclusive) into one; a 0-d tensor becomes (1,)."""
    shape = x.shape
    start = check_dim(start_dim, len(shape), shape, "flatten")
    end = check_dim(end_dim, len(shape), shape, "flatten")
    if start > end:
        raise ValueError(
            f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a tensor of shape {shape}"
        )
    if not shape:
        return reshape(x, 1)
    return reshape(x, shape[:start] + (-1,) + shape[end + 1:])


def permute(x, *dims) -> Tensor:
    """Reorder the dims: output dim i is input dim ``dims[i]``."""
    return _arranged(x, Permute, dims=shape_args(dims))


def flip(x, *dims, **kwargs) -> Tensor:
    """``x`` with the order of its elements reversed along each of ``dims`` (``torch.flip``: a copy).
    ``dims``: a list or tuple, varargs, or the keyword ``dims=``."""
    if kwargs:
        if set(kwargs) != {"dims"} or dims:
            raise TypeError(f"flip: takes the dims as a list, as varargs or as dims=, got {dims} and {kwargs}")
        dims = (kwargs["dims"],)
    if not dims:
        raise TypeError("flip: missing the dims to flip (e.g. flip(x, [0]) or x.flip(0))")
    dims = shape_args(dims)
    axes = tuple(check_dim(d, x.ndim, x.shape, "flip") for d in dims)
    if len(set(axes)) != len(axes):
        raise ValueError(f"flip: dims {tuple(dims)} name a dim more than once (tensor of shape {tuple(x.shape)})")
    if x.ndim == 0:
        return Flip.apply(x, dims=())
    return Flip.apply(x, dims=axes)


def transpose(x, dim0: int, dim1: int) -> Tensor:
    """Swap two dims; a 0-d tensor accepts 0 and -1 and is returned unchanged in shape."""
    d0 = check_dim(dim0, x.ndim, x.shape, "transpose")
    d1 = check_dim(dim1, x.ndim, x.shape, "transpose")
    dims = list(range(x.ndim))
    if x.ndim:
        dims[d0], dims[d1] = dims[d1], dims[d0]
    return _arranged(x, Permute, dims=tuple(dims))


def _T(x) -> Tensor:
    """All dims reversed (``Tensor.T``)."""
    return _arranged(x, Permute, dims=tuple(reversed(range(x.ndim))))


def squeeze(x, dim=None) -> Tensor:
    """Drop axes of size 1 (all of them, or those in ``dim`` that have size 1)."""
    if dim is None:
        shape = tuple(n for n in x.shape if n != 1)
    else:
        dims = normalize_dims(dim, x.ndim, "squeeze")
        shape = tuple(n for i, n in enumerate(x.shape) if not (i in dims and n == 1))
    return _arranged(x, Reshape, shape=shape)


def unsqueeze(x, dim: int) -> Tensor:
    """Insert an axis of size 1 at ``dim`` (negative counts from the end of the result)."""
    ndim = x.ndim + 1
    if not -ndim <= dim < ndim:
        raise IndexError(f"unsqueeze: dim {dim} is out of range for a result with {ndim} dimensions")
    shape = list(x.shape)
    shape.insert(dim % ndim, 1)
    return _arranged(x, Reshape, shape=tuple(shape))


def expand(x, *sizes) -> Tensor:
    """Broadcast size-1 dims to ``sizes`` without copying (-1 keeps a dim); backward sums."""
    return Expand.apply(x, shape=shape_args(sizes))


def expand_as(x, other) -> Tensor:
    """``expand(x, other.shape)``."""
    return Expand.apply(x, shape=other.shape)


def index_arrays(index):
    """Tensors inside an index become their arrays; lists of ints become arrays."""
    if isinstance(index, Tensor):
        array = index._data
        # a 0-d integer tensor indexes as an integer does (a view, as in PyTorch), not as an array
        return int(array) if array.ndim == 0 and array.dtype.kind in "iu" else array
    if isinstance(index, tuple):
        return tuple(index_arrays(i) for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index


def getitem(x, index) -> Tensor:
    """x[index]: basic slicing and integer/bool array indexing; repeated indices accumulate in backward.

    Basic indexing (integers, slices) gives a view, as in PyTorch: it shows ``x``'s values and an
    in-place change of it reaches ``x`` (``y[1:] *= 3``, ``c[t] += h``); see ``autograd.views``.
    """
    index = index_arrays(index)
    if not isinstance(x, Tensor):
        return GetItem.apply(x, index=index)
    out = _on_value(x, lambda source: GetItem.apply(source, index=index))
    if views.shares_memory(out, x):
        views.register(x, out, index)
    return out


def _on_value(x: Tensor, op):
    """``op(source)``, where ``source`` is ``x`` or, if ``x`` is in the graph, an alias of its value now, for
    the ops that make views (which save no values): an in-place change of ``x`` made later (often
    through the very view: ``y[0] += 1``) gives ``x`` a new place in the graph, which the view's
    gradient must not follow."""
    if x._node is None:
        return op(x)
    source = Tensor._make(x._data, x._node, x._out_index)
    out = op(source)
    views.release(source)
    return out


def _as_tensors(tensors):
    """Items in one dtype (:func:`common`); non-Tensor items become constant Tensors."""
    tensors = list(tensors)
    if not builtins.any(isinstance(t, Tensor) for t in tensors):
        return [Tensor(t) for t in tensors]
    return [t if isinstance(t, Tensor) else Tensor(t) for t in common(*tensors)]


def cat(tensors, dim: int = 0) -> Tensor:
    """Join tensors of equal shape but for ``dim`` along ``dim``."""
    return Cat.apply(*_as_tensors(tensors), dim=dim)


concatenate = cat


def stack(tensors, dim: int = 0) -> Tensor:
    """Join equal-shaped tensors along a new dim ``dim``."""
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
    if not isinstance(x, Tensor):
        out = Split.apply(x, sizes=tuple(sizes), dim=dim)
        return out if isinstance(out, tuple) else (out,)
    out = _on_value(x, lambda source: Split.apply(source, sizes=tuple(sizes), dim=dim))
    out = out if isinstance(out, tuple) else (out,)
    # each piece is a view of x, as x[..., start:stop] would be (an in-place change of it reaches x)
    lead, start = (slice(None),) * (dim % x.ndim), 0
    for piece, size in zip(out, sizes):
        if views.shares_memory(piece, x):
            views.register(x, piece, lead + (slice(start, start + size),))
        start += size
    return out


def chunk(x, chunks: int, dim: int = 0) -> tuple:
    """Split into ``chunks`` pieces of equal size (the last may be smaller), as in PyTorch."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    if not -x.ndim <= dim < x.ndim:
        raise IndexError(f"chunk: dim {dim} is out of range for a tensor of shape {x.shape}")
    return split(x, math.ceil(x.shape[dim] / chunks), dim)


# ------------------------------------------------------------------- linalg
def matmul(a, b) -> Tensor:
    """Matrix product with NumPy's (and PyTorch's) rules for 1-D and batched operands."""
    return MatMul.apply(*operands(a, b))


def einsum(equation: str, *operands) -> Tensor:
    """``torch.einsum`` over letter subscripts (``"bij,bjk->bik"``, implicit output too); operands
    as arguments or one list. Not supported: ``...`` and a letter twice in one operand."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str):
        raise TypeError(f"einsum: the equation must be a str, got {type(equation).__name__}")
    inputs, output = parse_einsum(equation, len(operands))
    return Einsum.apply(*_as_tensors(operands), inputs=tuple(inputs), output=output)


def linear(x, weight, bias=None) -> Tensor:
    """y = x W^T + b. Shape: x (*, H_in), weight (H_out, H_in), bias (H_out,) -> (*, H_out)."""
    w_shape = weight._data.shape if isinstance(weight, Tensor) else np.shape(weight)
    if len(w_shape) != 2:
        raise ValueError(f"linear: weight must be 2-D (H_out, H_in), got shape {w_shape}")
    if bias is None:
        return Linear.apply(x, weight)
    if (bias._data.shape if isinstance(bias, Tensor) else np.shape(bias)) != w_shape[:1]:
        raise ValueError(
            f"linear: bias of shape {np.shape(bias)} does not match weight of shape {w_shape}: "
            f"expected {w_shape[:1]}"
        )
    return Linear.apply(x, weight, bias)


# ----------------------------------------------------------------- nn ops
def _cast_first(x, dtype, op: str) -> Tensor:
    """``x`` cast to ``dtype`` before a softmax, as PyTorch does (to avoid float32 over- or
    underflow, or to get float64 probabilities); None keeps floats and casts integers to float32."""
    if dtype is None:
        return float_input(x)
    dtype = as_dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{op}: dtype must be a floating dtype, got {dtype}")
    return cast(x if isinstance(x, Tensor) else Tensor(x), dtype)


def softmax(x, dim: int = -1, dtype=None) -> Tensor:
    """exp(x) / sum exp(x) along ``dim``, computed stably; ``dtype``: cast ``x`` to it first
    (the gradient reaches ``x`` in its own dtype)."""
    return Softmax.apply(_cast_first(x, dtype, "softmax"), dim=dim)


def log_softmax(x, dim: int = -1, dtype=None) -> Tensor:
    """x - logsumexp(x) along ``dim``, computed stably; ``dtype``: cast ``x`` to it first."""
    return LogSoftmax.apply(_cast_first(x, dtype, "log_softmax"), dim=dim)


def logsumexp(x, dim=-1, keepdim: bool = False) -> Tensor:
    """log sum exp over ``dim`` (an int or a tuple of ints, as in PyTorch)."""
    return LogSumExp.apply(float_input(x), dim=dim, keepdim=keepdim)


def dropout(x, p: float = 0.5, training: bool = True, generator: np.random.Generator | None = None) -> Tensor:
    """Inverted dropout: zero with probability ``p``, scale survivors by 1/(1-p); identity when not training."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    return Dropout.apply(x, p=p, generator=_random.get_generator(generator))




# ------------------------------------------------- copies, selection, sorting
def clone(x, memory_format=None) -> Tensor:
    """A copy with its own memory that stays in the graph (``Tensor.clone``), in ``memory_format``
    (default: ``preserve_format``, the layout of ``x``)."""
    return Clone.apply(x, order=copy_order(memory_format, np.ndim(x), "clone"))


def repeat(x, *repeats) -> Tensor:
    """Tile ``x`` along each dim (``Tensor.repeat``; extra leading counts add dims)."""
    return Repeat.apply(x, repeats=shape_args(repeats))


def narrow(x, dim: int, start: int, length: int) -> Tensor:
    """Elements ``start`` to ``start + length`` along ``dim``: a view, as in PyTorch."""
    axis = check_dim(dim, x.ndim, x.shape, "narrow")
    size = x.shape[axis]
    start = start + size if start < 0 else start
    if not 0 <= start <= size or length < 0 or start + length > size:
        raise IndexError(
            f"narrow: start {start} and length {length} exceed dim {dim} of size {size} (shape {x.shape})"
        )
    return getitem(x, (slice(None),) * axis + (slice(start, start + length),))


def index_select(x, dim: int, index) -> Tensor:
    """The entries ``index`` (1-D integers) along ``dim``; gradients of repeated entries add."""
    axis = check_dim(dim, x.ndim, x.shape, "index_select")
    idx = np.asarray(index._data if isinstance(index, Tensor) else index)
    if idx.ndim > 1 or idx.dtype.kind not in "iu":
        raise ValueError(f"index_select: index must be a 1-D integer tensor, got shape {idx.shape} dtype {idx.dtype}")
    return getitem(x, (slice(None),) * axis + (idx.reshape(-1),))


def gather(x, dim: int, index) -> Tensor:
    """``out[i][j] = x[i][index[i][j]]`` for ``dim=1`` (``torch.gather``); index is an int64 tensor."""
    axis = check_dim(dim, x.ndim, x.shape, "gather")
    idx = np.asarray(index._data if isinstance(index, Tensor) else index)
    return Gather.apply(x, idx, dim=axis)


def masked_fill(x, mask, value) -> Tensor:
    """``x`` with ``value`` wherever the bool ``mask`` (broadcast to x) is True.

    The gradient reaches ``x`` where the mask is False (and ``value`` where it is True, if it is a
    0-d tensor that requires grad).
    """
    m = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got dtype {m.dtype}")
    try:
        np.broadcast_shapes(m.shape, x.shape)
    except ValueError:
        raise ValueError(f"masked_fill: mask of shape {m.shape} does not broadcast to the input of shape {x.shape}") from None
    if isinstance(value, Tensor):
        if value.ndim:
            raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape {value.shape}")
        value = cast(value, x.dtype)
    else:
        value = np.asarray(value, dtype=x.dtype)
    out = Where.apply(m, value, x)
    return out if out.shape == x.shape else expand(out, x.shape)


def _triangle(x, diagonal: int, upper: bool, op: str) -> Tensor:
    if x.ndim < 2:
        raise ValueError(f"{op}: input must have at least 2 dims, got shape {x.shape}")
    rows, cols = x.shape[-2:]
    keep = np.triu(np.ones((rows, cols), dtype=bool), diagonal) if upper else np.tril(np.ones((rows, cols), dtype=bool), diagonal)
    return Where.apply(keep, x, np.zeros((), dtype=x.dtype))


def tril(x, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (on and below ``diagonal``), zeros above."""
    return _triangle(x, diagonal, False, "tril")


def triu(x, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (on and above ``diagonal``), zeros below."""
    return _triangle(x, diagonal, True, "triu")


def _sort_order(data: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Indices that sort ``data`` along ``axis``: always stable (equal keys keep their order), as
    PyTorch's CPU sort is even with ``stable=False``; NaN sorts last ascending, first descending.
    """
    if not descending:
        return np.argsort(data, axis=axis, kind="stable")
    if data.dtype.kind in "biu":
        # ~x = -x - 1 reverses the order of every integer type without overflow (unlike -x at
        # the minimum of a signed type); for bool it is logical not.
        return np.argsort(~data, axis=axis, kind="stable")
    # Floats: NaNs first (primary key), then by -x; np.lexsort is stable, last key primary.
    return np.lexsort((-data, ~np.isnan(data)), axis=axis)


def sort(x, dim: int = -1, descending: bool = False, stable: bool = False):
    """(values, indices) sorted along ``dim``; the values carry the gradient (``torch.sort``)."""
    axis = check_dim(dim, x.ndim, x.shape, "sort")
    if not x.ndim:
        return ValuesIndices(x, constant_result(np.zeros((), dtype=np.int64), "sort indices"))
    order = _sort_order(x._data, axis, descending).astype(np.int64)
    return ValuesIndices(Gather.apply(x, order, dim=axis), constant_result(order, "sort indices"))


def argsort(x, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    """Indices that sort ``x`` along ``dim``; a constant int64 tensor."""
    axis = check_dim(dim, x.ndim, x.shape, "argsort")
    if not x.ndim:
        return constant_result(np.zeros((), dtype=np.int64), "argsort")
    return constant_result(_sort_order(x._data, axis, descending).astype(np.int64), "argsort")


def topk(x, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """(values, indices) of the ``k`` largest (or smallest) entries along ``dim`` (``torch.topk``)."""
    axis = check_dim(dim, x.ndim, x.shape, "topk")
    size = x.shape[axis] if x.ndim else 1
    if not 0 <= k <= size:
        raise ValueError(f"topk: k ({k}) is out of range for dim {dim} of size {size} (shape {x.shape})")
    data = x._data if x.ndim else x._data.reshape(1)
    order = _sort_order(data, axis, largest)
    order = np.take(order, np.arange(k), axis=axis).astype(np.int64)
    if not x.ndim:
        return ValuesIndices(x, constant_result(np.zeros((), dtype=np.int64), "topk indices"))
    return ValuesIndices(Gather.apply(x, order, dim=axis), constant_result(order, "topk indices"))


def std(x, dim=None, keepdim: bool = False, correction: int = 1, unbiased: bool | None = None) -> Tensor:
    """Standard deviation: sqrt of :func:`var` (``correction=1``, unbiased, by default)."""
    return sqrt(var(x, dim=dim, keepdim=keepdim, correction=correction, unbiased=unbiased))


def norm(x, p=2, dim=None, keepdim: bool = False) -> Tensor:
    """The ``p``-norm over all elements or ``dim`` (``Tensor.norm``): p = 1, 2, inf or any p > 0.

    Where the norm is 0 its gradient is 0, as in PyTorch (not the NaN of d sqrt(s) at s = 0).
    """
    if p in ("fro", 2, 2.0):
        squares = sum(x * x, dim=dim, keepdim=keepdim)
        safe = where(squares._data > 0, squares, 1.0)
        return where(squares._data > 0, sqrt(safe), 0.0)
    if p in (1, 1.0):
        return sum(abs(x), dim=dim, keepdim=keepdim)
    if p == math.inf:
        if dim is None:
            return max(abs(x))
        return amax(abs(x), dim=dim, keepdim=keepdim)
    if not (isinstance(p, (int, float)) and p > 0):
        raise ValueError(f"norm: p must be 'fro', a positive number or inf, got {p!r}")
    # Zero entries stay out of pow's backward (p |x|^(p-1) is inf there for p < 1): 0, as in PyTorch.
    entry = x._data != 0
    powers = sum(where(entry, pow(where(entry, abs(x), 1.0), float(p)), 0.0), dim=dim, keepdim=keepdim)
    nonzero = powers._data > 0
    return where(nonzero, pow(where(nonzero, powers, 1.0), 1.0 / p), 0.0)


def amax(x, dim=(), keepdim: bool = False) -> Tensor:
    """The largest entries along ``dim`` (an int or a tuple; ``()`` or None: all dims).

    Unlike ``max(dim)``, which credits the one index it returns, ties share the gradient
    equally, as ``torch.amax`` does; a NaN makes the result NaN and takes the gradient.
    """
    if not isinstance(x, Tensor):
        x = Tensor(x)
    dims = normalize_dims(None if dim is None or dim == () else dim, x.ndim, "amax")
    data = x._data
    if data.size == 0:
        raise ValueError(f"amax: cannot reduce an empty tensor of shape {data.shape}")
    values = np.max(data, axis=dims, keepdims=True)  # NaN propagates
    if not (x.requires_grad and grad_mode.is_grad_enabled()):
        return Tensor._make(np.asarray(values if keepdim else values.reshape(
            [n for i, n in enumerate(data.shape) if i not in dims])))
    # out = values + sum(share * (x - values)) over the tied entries: the forward is exactly
    # ``values`` (x - values is 0 there), the gradient is ``share`` = 1/count on the ties.
    # ``finite`` stands in for +-inf maxima so that no inf - inf makes a NaN.
    hits = (data == values) | (np.isnan(data) & np.isnan(values))
    share = (hits / hits.sum(axis=dims, keepdims=True)).astype(data.dtype)
    finite = np.where(np.isfinite(values), values, 0).astype(data.dtype)
    offsets = Sub.apply(Where.apply(hits, x, finite), finite)
    out = Add.apply(values, Sum.apply(Mul.apply(offsets, share), dim=dims, keepdim=True))
    return out if keepdim else squeeze(out, dim=dims)


def any(x, dim=None, keepdim: bool = False) -> Tensor:
    """Whether any element (along ``dim``) is nonzero; a constant bool tensor."""
    data = x._data if isinstance(x, Tensor) else np.asarray(x)
    return constant_result(np.any(data, axis=dim, keepdims=keepdim), "any")


def all(x, dim=None, keepdim: bool = False) -> Tensor:
    """Whether every element (along ``dim``) is nonzero; a constant bool tensor."""
    data = x._data if isinstance(x, Tensor) else np.asarray(x)
    return constant_result(np.all(data, axis=dim, keepdims=keepdim), "all")


def setitem(x: Tensor, index, value, into: np.ndarray | None = None) -> Tensor:
    """x with ``x[index] = value``, as a new tensor in the graph (see ``Tensor.__setitem__``); ``into``:
    write into this array (``x``'s, which no one else holds) instead of a copy of ``x``."""
    if isinstance(value, Tensor):
        value = cast(value, x.dtype) if value.dtype != x.dtype else value
    else:
        value = np.asarray(value._data if isinstance(value, Tensor) else value)
        if value.dtype != x.dtype:
            value = value.astype(x.dtype)
    return SetItem.apply(x, value, index=index_arrays(index), into=into)
