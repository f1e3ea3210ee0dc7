"""Scans, rolls, counts and scatter-adds: ``cumsum``, ``roll``, ``bincount``, ``one_hot``,
``scatter_add``, ``index_add``, with PyTorch's names, signatures, dtypes and results.

The differentiable ones (``cumsum``, ``roll``, ``scatter_add``, ``index_add``) are one
``Function`` each, forward and backward side by side:

* ``cumsum``: each output sums the inputs before it, so each input's gradient sums the
  upstream gradients after it: the reversed cumulative sum;
* ``roll``: a permutation of the elements; backward rolls the gradient back;
* ``scatter_add`` / ``index_add``: ``x`` passes its gradient through unchanged; each added
  element of ``src`` / ``source`` gets the gradient of the slot it landed in (a gather, or an
  ``index_select`` times ``alpha``).

``bincount`` and ``one_hot`` count integers: their results are constants (int64, or the
weights' float dtype for a weighted ``bincount``), as in PyTorch.

Integer index arguments (``index`` of ``scatter_add`` and ``index_add``) may be int32 or
int64, as in PyTorch; they are never negative (no wrap-around) and must fall inside the
target dim. Errors name the op and the shapes.
"""
from __future__ import annotations

import operator

import numpy as np

from ..dtypes import as_dtype
from ..function import Function
from ..tensor import Tensor
from .promotion import cast, check_dim, constant_result

__all__ = ["bincount", "cumsum", "index_add", "one_hot", "roll", "scatter_add"]


# ------------------------------------------------------------------ helpers
def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _array(x) -> np.ndarray:
    return np.asarray(x._data if isinstance(x, Tensor) else x)


def _int(value, op: str, what: str) -> int:
    """``value`` as a Python int; bools and floats are refused, as PyTorch's int arguments do."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {what} must be an int, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{op}: {what} must be an int, got {value!r}") from None


def _ints(values, op: str, what: str) -> tuple:
    """An int or a sequence of ints as a tuple of Python ints."""
    if isinstance(values, (list, tuple, np.ndarray)):
        return tuple(_int(v, op, what) for v in values)
    return (_int(values, op, what),)


def _index_array(index, op: str) -> np.ndarray:
    """An index argument as an int32 / int64 array (PyTorch refuses every other dtype)."""
    idx = _array(index)
    if idx.dtype not in (np.dtype(np.int64), np.dtype(np.int32)):
        raise TypeError(f"{op}: index must be an int64 or int32 tensor, got dtype {idx.dtype}")
    return idx


def _check_bounds(idx: np.ndarray, size: int, dim: int, op: str) -> None:
    """Every index in [0, size): PyTorch does not wrap negative indices here."""
    if idx.size == 0:
        return
    bad = (idx < 0) | (idx >= size)
    if bad.any():
        value = idx[bad].flat[0]
        raise IndexError(
            f"{op}: index {value} is out of bounds for dim {dim} with size {size} "
            f"(indices must be in [0, {size}); {int(bad.sum())} out of range)"
        )


# ------------------------------------------------------------------- cumsum
def _cumsum_array(x: np.ndarray, axis: int) -> np.ndarray:
    if x.ndim == 0:
        return x.copy()
    if x.dtype == np.float16:
        return np.cumsum(x, axis=axis, dtype=np.float32).astype(np.float16)
    return np.cumsum(x, axis=axis, dtype=x.dtype)


class CumSum(Function):
    """Running sum along ``axis``: ``out[..., i, ...] = sum_{j <= i} x[..., j, ...]``.

    Backward: ``dL/dx_j = sum_{i >= j} g_i``, the cumulative sum of the flipped gradient,
    flipped back. float16 accumulates in float32 and rounds once at the end.
    """

    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return _cumsum_array(x, axis)

    @staticmethod
    def backward(ctx, grad):
        if grad.ndim == 0:
            return grad
        flipped = np.flip(grad, ctx.axis)
        return np.flip(np.cumsum(flipped, axis=ctx.axis, dtype=grad.dtype), ctx.axis).copy()


def cumsum(x, dim, *, dtype=None) -> Tensor:
    """The cumulative sum of ``x`` along ``dim`` (``torch.cumsum``). Shape: the input's.

    ``dtype``: cast the input to it first (a float-to-float cast keeps the gradient, which
    comes back in the input's dtype). Without it, integer and bool inputs sum in int64, as in
    PyTorch, so the running sums of small integer types do not overflow; floats keep their
    dtype. Only a floating result is differentiable; an integer one is a constant.
    A 0-d tensor accepts dim 0 or -1 and is returned as a copy.
    """
    x = _tensor(x)
    axis = check_dim(dim, x.ndim, x.shape, "cumsum")
    if dtype is not None:
        x = cast(x, as_dtype(dtype))
    elif x.dtype.kind in "biu":
        x = cast(x, np.int64)
    if x.dtype.kind != "f":
        return constant_result(_cumsum_array(x._data, axis), "cumsum (integer)")
    return CumSum.apply(x, axis=axis)


# --------------------------------------------------------------------- roll
class Roll(Function):
    """Shift elements along ``axes`` by ``shifts``, wrapping around (``np.roll``).

    ``axes=None`` rolls the flattened tensor and restores the shape. Backward rolls the
    gradient by the opposite shifts.
    """

    @staticmethod
    def forward(ctx, x, shifts, axes):
        ctx.shifts, ctx.axes = shifts, axes
        if x.ndim == 0:
            return x.copy()
        return np.roll(x, shifts, axis=axes)

    @staticmethod
    def backward(ctx, grad):
        if grad.ndim == 0:
            return grad
        back = tuple(-s for s in ctx.shifts) if isinstance(ctx.shifts, tuple) else -ctx.shifts
        return np.roll(grad, back, axis=ctx.axes)


def roll(x, shifts, dims=None) -> Tensor:
    """``x`` with its elements shifted ``shifts`` places along ``dims``, wrapping round
    (``torch.roll``; a copy). Shape: the input's.

    ``shifts`` and ``dims`` are ints or equal-length tuples; a dim named twice rolls by the sum
    of its shifts. With ``dims=None`` the tensor is rolled as if flattened (then one shift only).
    """
    x = _tensor(x)
    shift_list = _ints(shifts, "roll", "shifts")
    if not shift_list:
        raise ValueError("roll: shifts must not be empty (give an int or a tuple of ints)")
    if dims is None:
        if len(shift_list) != 1:
            raise ValueError(
                f"roll: shifts {tuple(shift_list)} and dims must align: without dims, give one shift "
                f"(the tensor of shape {tuple(x.shape)} is rolled as if flattened)"
            )
        return Roll.apply(x, shifts=shift_list[0], axes=None)
    dim_list = _ints(dims, "roll", "dims")
    if len(dim_list) != len(shift_list):
        raise ValueError(
            f"roll: shifts and dims must align: got {len(shift_list)} shift(s) {tuple(shift_list)} "
            f"and {len(dim_list)} dim(s) {tuple(dim_list)}"
        )
    if x.ndim == 0:
        raise IndexError(f"roll: dim {dim_list[0]} given but the tensor is 0-d (it has no dims to roll)")
    axes = tuple(check_dim(d, x.ndim, x.shape, "roll") for d in dim_list)
    return Roll.apply(x, shifts=tuple(shift_list), axes=axes)


# ----------------------------------------------------------------- bincount
def bincount(x, weights=None, minlength: int = 0) -> Tensor:
    """How often each value 0, 1, ..., max(x) occurs in ``x`` (``torch.bincount``).

    Shape: ``x`` is 1-D with non-negative integer values (not bool) -> ``(max(max(x) + 1,
    minlength),)``; an empty ``x`` gives ``(minlength,)``.

    ``weights`` (1-D, ``x``'s length) sums each value's weights instead of counting. dtypes, as
    in PyTorch: int64 counts without weights (or with an empty ``x``); float32 weights give
    float32 sums; every other weight dtype (float64, float16, integers, bool) gives float64.
    The result is a constant: no gradient reaches ``weights``.
    """
    op = "bincount"
    data = _array(x)
    minlength = _int(minlength, op, "minlength")
    if minlength < 0:
        raise ValueError(f"{op}: minlength must be >= 0, got {minlength}")
    if data.dtype.kind not in "iu":
        raise TypeError(f"{op}: input must be an integer tensor, got dtype {data.dtype}")
    if data.ndim != 1:
        raise ValueError(f"{op}: only supports 1-d non-negative integral inputs, got a tensor of shape {data.shape}")
    if data.size and data.min() < 0:
        raise ValueError(
            f"{op}: only supports 1-d non-negative integral inputs, got the value {data.min()} "
            f"in a tensor of shape {data.shape}"
        )
    if weights is None or data.size == 0:
        if weights is not None:
            _check_weights(op, _array(weights), data)
        counts = np.bincount(data.astype(np.int64, copy=False), minlength=minlength).astype(np.int64, copy=False)
        return constant_result(counts, op)
    w = _array(weights)
    _check_weights(op, w, data)
    out_dtype = np.float32 if w.dtype == np.float32 else np.float64
    sums = np.bincount(data.astype(np.int64, copy=False), weights=w.astype(np.float64, copy=False), minlength=minlength)
    return constant_result(sums.astype(out_dtype, copy=False), op)


def _check_weights(op: str, w: np.ndarray, data: np.ndarray) -> None:
    if w.ndim != 1 or w.shape[0] != data.shape[0]:
        raise ValueError(
            f"{op}: weights should be 1-d and have the same length as the input: got weights of shape "
            f"{w.shape} for an input of shape {data.shape}"
        )
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{op}: weights must be numeric, got dtype {w.dtype}")


# ------------------------------------------------------------------ one_hot
def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """One-hot encoding of int64 class indices (``torch.nn.functional.one_hot``).

    Shape: ``(*)`` -> ``(*, num_classes)``, int64, 1 at each index and 0 elsewhere.
    ``num_classes=-1`` takes ``max(tensor) + 1`` (which an empty tensor cannot give).
    Values must be in [0, num_classes). The result is a constant.
    """
    op = "one_hot"
    num_classes = _int(num_classes, op, "num_classes")
    data = _array(tensor)
    if data.dtype != np.int64:
        raise TypeError(f"{op}: only applicable to index tensors of dtype int64 (LongTensor), got {data.dtype}")
    if data.size == 0:
        if num_classes <= 0:
            raise ValueError(
                f"{op}: cannot infer the number of classes from an empty tensor of shape {data.shape}; "
                "pass num_classes > 0"
            )
        return constant_result(np.zeros(data.shape + (num_classes,), dtype=np.int64), op)
    low, high = data.min(), data.max()
    if low < 0:
        raise ValueError(f"{op}: class values must be non-negative, got {low} (tensor of shape {data.shape})")
    if num_classes == -1:
        num_classes = int(high) + 1
    elif high >= num_classes:
        raise ValueError(
            f"{op}: class values must be smaller than num_classes={num_classes}, got {high} "
            f"(tensor of shape {data.shape})"
        )
    out = (data[..., None] == np.arange(num_classes)).astype(np.int64)
    return constant_result(out, op)


# -------------------------------------------------------------- scatter_add
def _leading_block(index_shape: tuple, ndim: int, axis: int, full_axis: bool) -> tuple:
    """Slices selecting the first ``index_shape[d]`` entries of every dim (all of ``axis`` if ``full_axis``)."""
    return tuple(slice(None) if (d == axis and full_axis) else slice(0, index_shape[d]) for d in range(ndim))


class ScatterAdd(Function):
    """``out = x.clone(); out[i][index[i][j]] += src[i][j]`` for ``dim=1`` (``torch.scatter_add``).

    Shapes: ``index`` has ``x``'s number of dims, is no larger than ``src`` on any dim and no
    larger than ``x`` on any dim but ``dim``; only ``src``'s leading ``index.shape`` block is
    added. Backward: ``x`` gets the gradient as is; ``src`` gets ``grad.gather(dim, index)`` in
    that block and zeros outside it.
    """

    @staticmethod
    def forward(ctx, x, src, index, axis):
        out = x.copy()
        if index.size:
            idx = np.indices(index.shape, sparse=True)
            idx = tuple(index if d == axis else idx[d] for d in range(x.ndim))
            block = src[_leading_block(index.shape, x.ndim, axis, False)]
            np.add.at(out, idx, block)
        ctx.index, ctx.axis, ctx.src_shape = index, axis, src.shape
        return out

    @staticmethod
    def backward(ctx, grad):
        need_x, need_src = ctx.needs_input_grad[:2]
        gsrc = None
        if need_src:
            index, axis = ctx.index, ctx.axis
            gsrc = np.zeros(ctx.src_shape, dtype=grad.dtype)
            if index.size:
                view = grad[_leading_block(index.shape, grad.ndim, axis, True)]
                gsrc[_leading_block(index.shape, grad.ndim, axis, False)] = np.take_along_axis(view, index, axis=axis)
        return (grad if need_x else None), gsrc, None  # no gradient for the integer index


def _same_dtype_operand(op: str, x: Tensor, other, what: str):
    """``other`` in ``x``'s dtype: a Tensor must already have it (PyTorch); arrays are cast."""
    if isinstance(other, Tensor):
        if other.dtype != x.dtype:
            raise TypeError(f"{op}: self ({x.dtype}) and {what} ({other.dtype}) must have the same dtype")
        return other
    return np.asarray(other).astype(x.dtype, copy=False)


def scatter_add(x, dim: int, index, src) -> Tensor:
    """Add ``src``'s values into a copy of ``x`` at ``index`` along ``dim`` (``torch.scatter_add``).

    For 2-D, dim=0: ``out[index[i][j]][j] += src[i][j]``; repeated indices accumulate.

    Shapes: ``x`` (*); ``index`` (int64 or int32) with ``x``'s number of dims, no larger than
    ``src`` on any dim and than ``x`` on the dims other than ``dim``; ``src`` in ``x``'s dtype.
    Output: ``x``'s shape and dtype. Differentiable in ``x`` and ``src``.
    """
    op = "scatter_add"
    x = _tensor(x)
    axis = check_dim(dim, x.ndim, x.shape, op)
    idx = _index_array(index, op)
    src = _same_dtype_operand(op, x, src, "src")
    src_shape = tuple(src.shape)
    if x.ndim == 0:  # PyTorch treats a 0-d tensor as one element of a 1-D one
        if idx.ndim > 1 or len(src_shape) > 1:
            raise ValueError(
                f"{op}: index of shape {idx.shape} and src of shape {src_shape} must be 0-d or 1-D "
                "for a 0-d self"
            )
        flat_idx = idx.reshape(-1)
        flat_src = src.reshape(-1)
        if flat_idx.size > flat_src.shape[0]:
            raise ValueError(
                f"{op}: index of shape {idx.shape} is larger than src of shape {src_shape}"
            )
        _check_bounds(flat_idx, 1, dim, op)
        out = ScatterAdd.apply(x.reshape(1), flat_src, flat_idx, axis=0)
        return out.reshape(())
    if idx.size == 0:  # nothing to add (PyTorch checks no shapes then)
        return ScatterAdd.apply(x, src, idx.reshape((0,) * x.ndim), axis=axis)
    if idx.ndim != x.ndim:
        raise ValueError(
            f"{op}: index of shape {idx.shape} must have as many dims as self of shape {x.shape}"
        )
    if len(src_shape) != x.ndim:
        raise ValueError(
            f"{op}: src of shape {src_shape} must have as many dims as self of shape {x.shape}"
        )
    bad_self = [d for d in range(x.ndim) if d != axis and idx.shape[d] > x.shape[d]]
    bad_src = [d for d in range(x.ndim) if idx.shape[d] > src_shape[d]]
    if bad_self or bad_src:
        raise ValueError(
            f"{op}: index of shape {idx.shape} must be no larger than self of shape {x.shape} apart "
            f"from dim {axis}, and no larger than src of shape {src_shape}"
        )
    _check_bounds(idx, x.shape[axis], dim, op)
    return ScatterAdd.apply(x, src, idx, axis=axis)


# ---------------------------------------------------------------- index_add
class IndexAdd(Function):
    """``out = x.clone(); out.select(dim, index[i]) += alpha * source.select(dim, i)``.

    Repeated indices accumulate. Backward: ``x`` gets the gradient as is; ``source`` gets
    ``alpha * grad.index_select(dim, index)``.
    """

    @staticmethod
    def forward(ctx, x, source, index, axis, alpha):
        out = x.copy()
        if index.size:
            add = source * alpha if alpha != 1 else source
            np.add.at(np.moveaxis(out, axis, 0), index, np.moveaxis(np.asarray(add, dtype=x.dtype), axis, 0))
        ctx.index, ctx.axis, ctx.alpha = index, axis, alpha
        return out

    @staticmethod
    def backward(ctx, grad):
        need_x, need_source = ctx.needs_input_grad[:2]
        gsource = None
        if need_source:
            gsource = np.take(grad, ctx.index, axis=ctx.axis)
            if ctx.alpha != 1:
                gsource = gsource * grad.dtype.type(ctx.alpha)
        return (grad if need_x else None), gsource, None  # no gradient for the integer index


def index_add(x, dim: int, index, source, *, alpha=1) -> Tensor:
    """A copy of ``x`` with ``alpha * source`` added at positions ``index`` along ``dim``
    (``torch.index_add``): ``out.select(dim, index[i]) += alpha * source.select(dim, i)``.

    Shapes: ``x`` (*); ``index`` 1-D (or 0-d) of int64 or int32, values in [0, x.shape[dim]);
    ``source`` of ``x``'s dtype and shape except ``source.shape[dim] == len(index)``.
    Repeated indices accumulate. ``alpha`` is converted to ``x``'s dtype (for an integer ``x``
    a float alpha is truncated, as PyTorch does). Differentiable in ``x`` and ``source``.
    """
    op = "index_add"
    x = _tensor(x)
    axis = check_dim(dim, x.ndim, x.shape, op)
    idx = _index_array(index, op)
    if idx.ndim > 1:
        raise IndexError(f"{op}: index must be a vector (0-d or 1-D), got shape {idx.shape}")
    idx = idx.reshape(-1)
    source = _same_dtype_operand(op, x, source, "source")
    src_shape = tuple(source.shape)
    if x.ndim == 0:
        expected = ()
        if src_shape != () or idx.size != 1:
            raise ValueError(
                f"{op}: for a 0-d self, index must hold one value and source must be 0-d, got index of "
                f"shape {idx.shape} and source of shape {src_shape}"
            )
    else:
        expected = x.shape[:axis] + (idx.size,) + x.shape[axis + 1:]
        if src_shape != expected:
            if len(src_shape) == x.ndim and src_shape[:axis] + src_shape[axis + 1:] == x.shape[:axis] + x.shape[axis + 1:]:
                raise ValueError(
                    f"{op}: the number of indices ({idx.size}) must equal source.shape[{dim}] "
                    f"({src_shape[axis]}); source of shape {src_shape}, self of shape {x.shape}"
                )
            raise ValueError(
                f"{op}: source of shape {src_shape} must match self of shape {x.shape} except on dim "
                f"{dim}, which must have len(index) = {idx.size} entries: expected {expected}"
            )
    _check_bounds(idx, x.shape[axis] if x.ndim else 1, dim, op)
    alpha_value = np.asarray(alpha).astype(x.dtype).item()
    if x.ndim == 0:
        out = IndexAdd.apply(x.reshape(1), source.reshape(1), idx, axis=0, alpha=alpha_value)
        return out.reshape(())
    return IndexAdd.apply(x, source, idx, axis=axis, alpha=alpha_value)
