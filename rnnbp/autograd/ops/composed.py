"""PyTorch conveniences written from other ops: no backward of their own, so each is exactly as
differentiable as the ops it is made of (``functions``), and the constant ones say so.

Shapes follow PyTorch's (``torch.hstack``, ``torch.diag``, ...); errors name the op.
"""
from __future__ import annotations

import builtins

import numpy as np

from ..tensor import Tensor, ValuesIndices
from .functions import (add, cat, div, getitem, index_select, mul, norm, permute, reshape, setitem, sort, stack, sub, sum,
                        unsqueeze, where)
from .promotion import check_dim, constant_result, shape_args


def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def concat(tensors, dim: int = 0) -> Tensor:
    """``torch.concat``: another name of ``cat``."""
    return cat(tensors, dim)


def hstack(tensors) -> Tensor:
    """Join along dim 1 (dim 0 for 1-D tensors), as ``torch.hstack``."""
    tensors = [_tensor(t) for t in tensors]
    return cat(tensors, 0 if builtins.all(t.ndim <= 1 for t in tensors) else 1)


def vstack(tensors) -> Tensor:
    """Join along dim 0, 1-D tensors taken as rows (1, N), as ``torch.vstack``."""
    tensors = [_tensor(t) for t in tensors]
    return cat([reshape(t, 1, -1) if t.ndim <= 1 else t for t in tensors], 0)


def tile(x, *dims) -> Tensor:
    """Repeat ``x`` ``dims[i]`` times along each dim; fewer counts than dims repeat the trailing dims."""
    reps = shape_args(dims)
    reps = (1,) * (x.ndim - len(reps)) + tuple(reps)
    return x.repeat(*reps)


def outer(a, b) -> Tensor:
    """a (N,) and b (M,) -> (N, M) with entries a_i b_j."""
    a, b = _tensor(a), _tensor(b)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"outer: expects two 1-D tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return mul(unsqueeze(a, 1), unsqueeze(b, 0))


def dot(a, b) -> Tensor:
    """The inner product of two 1-D tensors of one length."""
    a, b = _tensor(a), _tensor(b)
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"dot: expects two 1-D tensors of one length, got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    if a.dtype != b.dtype or a.dtype.kind == "b":
        raise TypeError(f"dot: expects two tensors of one numeric dtype, got {a.dtype} and {b.dtype}")
    out = sum(mul(a, b))
    return out if out.dtype == a.dtype else constant_result(out._data.astype(a.dtype), "dot")


def movedim(x, source, destination) -> Tensor:
    """Move dims ``source`` to positions ``destination`` (ints or sequences), the rest keeping their order."""
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    if len(src) != len(dst):
        raise ValueError(f"movedim: source {source} and destination {destination} differ in length")
    src = [check_dim(d, x.ndim, x.shape, "movedim") for d in src]
    dst = [check_dim(d, x.ndim, x.shape, "movedim") for d in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"movedim: repeated dims in source {source} or destination {destination}")
    order = [d for d in range(x.ndim) if d not in src]
    for d, s_ in sorted(zip(dst, src)):
        order.insert(d, s_)
    return permute(x, *order)


def unflatten(x, dim: int, sizes) -> Tensor:
    """Split dim ``dim`` into ``sizes`` (one may be -1)."""
    axis = check_dim(dim, x.ndim, x.shape, "unflatten")
    shape = tuple(x.shape)
    return reshape(x, shape[:axis] + tuple(sizes) + shape[axis + 1:])


def diag(x, diagonal: int = 0) -> Tensor:
    """A 1-D ``x`` as the ``diagonal``-th diagonal of a square matrix; a 2-D ``x``'s ``diagonal``-th diagonal."""
    x = _tensor(x)
    k = diagonal
    if x.ndim == 1:
        n = x.shape[0] + builtins.abs(k)
        rows = np.arange(x.shape[0]) + builtins.max(-k, 0)
        zeros = Tensor(np.zeros((n, n), dtype=x.dtype))
        return setitem(zeros, (rows, rows + k), x)
    if x.ndim == 2:
        r, c = x.shape
        rows = np.arange(builtins.max(0, builtins.min(r + builtins.min(k, 0), c - builtins.max(k, 0))))
        return getitem(x, (rows + builtins.max(-k, 0), rows + builtins.max(k, 0)))
    raise ValueError(f"diag: expects a 1-D or 2-D tensor, got shape {tuple(x.shape)}")


def masked_select(x, mask) -> Tensor:
    """The elements of ``x`` where ``mask`` (broadcast with x) is True, as a 1-D tensor."""
    m = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    try:
        m = np.broadcast_to(m, x.shape)
    except ValueError:
        raise ValueError(f"masked_select: mask of shape {m.shape} does not broadcast to {tuple(x.shape)}") from None
    return getitem(x, m.astype(bool))


def repeat_interleave(x, repeats, dim: int | None = None) -> Tensor:
    """Each element (along ``dim``; of the flattened ``x`` when None) repeated ``repeats`` times
    (an int, or one count per element)."""
    x = _tensor(x)
    if dim is None:
        x, dim = reshape(x, -1), 0
    axis = check_dim(dim, x.ndim, x.shape, "repeat_interleave")
    counts = repeats._data if isinstance(repeats, Tensor) else np.asarray(repeats)
    n = x.shape[axis] if x.ndim else 1
    if counts.ndim and counts.shape != (n,) or np.any(counts < 0):
        raise ValueError(f"repeat_interleave: repeats must be a non-negative int or one per element ({n}), "
                         f"got {counts.tolist()}")
    return index_select(x, axis, np.repeat(np.arange(n), counts))


def median(x, dim: int | None = None, keepdim: bool = False):
    """The lower median (the element at (n - 1) // 2 in sorted order), NaN if any element is NaN, as
    ``torch.median``. Without ``dim`` the gradient is shared by every element equal to the result
    (PyTorch's rule for a full reduction); with ``dim``, a (values, indices) pair whose gradient goes
    to the element at the index (the first NaN of a row that has one)."""
    x = _tensor(x)
    data = x._data
    if dim is None:
        if data.size == 0:
            raise ValueError("median: cannot take the median of an empty tensor")
        flat = data.reshape(-1)
        value = np.nan if np.isnan(flat).any() else np.sort(flat)[(flat.size - 1) // 2]
        hits = np.isnan(data) if np.isnan(value) else data == value
        share = (hits / hits.sum()).astype(data.dtype)
        return sum(mul(where(hits, x, 0.0), share))
    axis = check_dim(dim, x.ndim, x.shape, "median")
    if x.ndim == 0:
        return ValuesIndices(x, constant_result(np.zeros((), np.int64), "median indices"))
    order = np.argsort(np.where(np.isnan(data), np.inf, data), axis=axis, kind="stable")
    middle = np.take(order, [(x.shape[axis] - 1) // 2], axis=axis)
    first_nan = np.expand_dims(np.argmax(np.isnan(data), axis=axis), axis)
    index = np.where(np.isnan(data).any(axis=axis, keepdims=True), first_nan, middle).astype(np.int64)
    values = x.gather(axis, Tensor(index))
    if not keepdim:
        values, index = values.squeeze(axis), np.squeeze(index, axis)
    return ValuesIndices(values, constant_result(index, "median indices"))


def isclose(a, b, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> Tensor:
    """|a - b| <= atol + rtol |b| elementwise; a constant bool tensor."""
    ad = a._data if isinstance(a, Tensor) else np.asarray(a)
    bd = b._data if isinstance(b, Tensor) else np.asarray(b)
    return constant_result(np.isclose(ad, bd, rtol=rtol, atol=atol, equal_nan=equal_nan), "isclose")


def unique(x, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim=None):
    """The distinct elements in ascending order (constants), with the inverse indices (x's shape)
    and the counts if asked, as ``torch.unique``."""
    if dim is not None:
        raise ValueError("unique: dim is not supported on rnnbp (unique over all elements only)")
    data = x._data if isinstance(x, Tensor) else np.asarray(x)
    values, inverse, counts = np.unique(data, return_inverse=True, return_counts=True, equal_nan=False)
    out = [constant_result(values, "unique")]
    if return_inverse:
        out.append(constant_result(inverse.reshape(data.shape).astype(np.int64), "unique inverse"))
    if return_counts:
        out.append(constant_result(counts.astype(np.int64), "unique counts"))
    return out[0] if len(out) == 1 else tuple(out)


def unique_consecutive(x, return_inverse: bool = False, return_counts: bool = False, dim=None):
    """Each run of equal consecutive elements (of the flattened ``x``) kept once, in order; with the
    inverse indices and the run lengths if asked (``torch.unique_consecutive``; CTC's greedy collapse)."""
    if dim is not None:
        raise ValueError("unique_consecutive: dim is not supported on rnnbp (over all elements only)")
    data = x._data if isinstance(x, Tensor) else np.asarray(x)
    flat = data.reshape(-1)
    starts = np.concatenate([[True], flat[1:] != flat[:-1]]) if flat.size else np.zeros(0, bool)
    out = [constant_result(flat[starts], "unique_consecutive")]
    if return_inverse:
        out.append(constant_result((np.cumsum(starts) - 1).reshape(data.shape).astype(np.int64), "unique_consecutive"))
    if return_counts:
        out.append(constant_result(np.diff(np.append(np.flatnonzero(starts), flat.size)).astype(np.int64),
                                   "unique_consecutive"))
    return out[0] if len(out) == 1 else tuple(out)


def diff(x, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:
    """The ``n``-th forward difference along ``dim`` (``prepend``/``append`` joined first), differentiable."""
    x = _tensor(x)
    if x.ndim == 0:
        raise ValueError("diff: expects a tensor with at least one dimension, got a 0-d tensor")
    axis = check_dim(dim, x.ndim, x.shape, "diff")
    if n < 0:
        raise ValueError(f"diff: order n must be non-negative, got {n}")
    pieces = [_tensor(t) for t in (prepend, x, append) if t is not None]
    x = cat(pieces, axis) if len(pieces) > 1 else x
    for _ in range(n):
        size = x.shape[axis]
        later = getitem(x, (slice(None),) * axis + (slice(1, size),))
        earlier = getitem(x, (slice(None),) * axis + (slice(0, builtins.max(size - 1, 0)),))
        x = later - earlier if x.dtype.kind != "b" else constant_result(later._data != earlier._data, "diff")
    return x


def quantile(x, q, dim: int | None = None, keepdim: bool = False, *, interpolation: str = "linear") -> Tensor:
    """The ``q``-quantile(s) (a number or a 1-D tensor in [0, 1]) of ``x`` along ``dim`` (all
    elements when None), between sorted neighbours as ``interpolation`` says ('linear', 'lower',
    'higher', 'midpoint', 'nearest'), as ``torch.quantile``; a 1-D ``q`` adds a leading dim.
    Differentiable through the sorted values it picks."""
    x = _tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"quantile: expects a floating tensor, got {x.dtype}")
    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise ValueError(f"quantile: interpolation must be linear, lower, higher, midpoint or nearest, got "
                         f"{interpolation!r}")
    qs = np.asarray(q._data if isinstance(q, Tensor) else q, dtype=np.float64)
    if qs.ndim > 1 or np.any((qs < 0) | (qs > 1)):
        raise ValueError(f"quantile: q must be a number or a 1-D tensor of values in [0, 1], got {qs.tolist()}")
    if dim is None:
        values, axis = sort(reshape(x, -1)).values, 0
    else:
        axis = check_dim(dim, x.ndim, x.shape, "quantile")
        values = sort(x, dim=axis).values
    n = values.shape[axis]
    if n == 0:
        raise ValueError("quantile: cannot take a quantile of an empty tensor")

    def at(i):  # the i-th sorted value along the axis
        return getitem(values, (slice(None),) * axis + (i,))

    last = at(n - 1) if np.isnan(x._data).any() else None  # NaN sorts last: a slice with one has a NaN quantile
    outs = []
    for qv in np.atleast_1d(qs):
        pos = qv * (n - 1)
        lo, hi = int(np.floor(pos)), int(np.ceil(pos))
        if interpolation == "lower":
            hi = lo
        elif interpolation == "higher":
            lo = hi
        elif interpolation == "nearest":
            lo = hi = int(np.round(pos))  # half to even, as PyTorch
        frac = 0.5 if interpolation == "midpoint" else pos - lo
        low, high = at(lo), at(hi)
        picked = low if lo == hi else low + (high - low) * frac
        if last is not None:
            picked = where(np.isnan(last._data), last, picked)
        if keepdim:
            picked = unsqueeze(picked, axis) if dim is not None else reshape(picked, (1,) * x.ndim)
        outs.append(picked)
    if qs.ndim == 0:
        return outs[0]
    return stack(outs, 0)


def kthvalue(x, k: int, dim: int = -1, keepdim: bool = False):
    """(values, indices) of the ``k``-th smallest element (1-based) along ``dim``, as ``torch.kthvalue``;
    the gradient goes to that element."""
    x = _tensor(x)
    if x.ndim == 0:
        if k != 1:
            raise IndexError(f"kthvalue: k ({k}) is out of range for a 0-d tensor")
        return ValuesIndices(x, constant_result(np.zeros((), np.int64), "kthvalue indices"))
    axis = check_dim(dim, x.ndim, x.shape, "kthvalue")
    if not 1 <= k <= x.shape[axis]:
        raise IndexError(f"kthvalue: k ({k}) is out of range for dim {dim} of size {x.shape[axis]} (shape {tuple(x.shape)})")
    values, indices = sort(x, dim=axis)
    index = (slice(None),) * axis + (slice(k - 1, k) if keepdim else k - 1,)
    return ValuesIndices(getitem(values, index), constant_result(indices._data[index], "kthvalue indices"))


def count_nonzero(x, dim=None) -> Tensor:
    """How many elements (along ``dim``, an int or a tuple) are nonzero; a constant int64 tensor."""
    data = x._data if isinstance(x, Tensor) else np.asarray(x)
    return constant_result(np.asarray(np.count_nonzero(data, axis=dim), dtype=np.int64), "count_nonzero")


def true_divide(a, b) -> Tensor:
    """``torch.true_divide``: another name of ``div`` (true division)."""
    return div(a, b)


def lerp(input, end, weight) -> Tensor:
    """``input + weight * (end - input)``, as ``torch.lerp`` (``weight`` a number or a tensor)."""
    return add(input, mul(weight, sub(end, input)))


def dist(input, other, p=2) -> Tensor:
    """The ``p``-norm of ``input - other`` over all elements, as ``torch.dist``."""
    return norm(sub(input, other), p)
