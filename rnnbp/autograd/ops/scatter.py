"""``scatter``, ``index_fill``, ``select``, ``nan_to_num`` (differentiable) and ``argwhere``,
``searchsorted``, ``bucketize`` (integer results), with PyTorch's names, signatures and dtypes.

* ``scatter``: writes ``src`` (or a scalar ``value``) into a copy of ``x`` at ``index`` along
  ``dim``. Backward: ``x`` gets the gradient with the overwritten slots zeroed; ``src`` gets the
  gradient of the slot each element landed in (a gather). Repeated indices: the last write wins
  (PyTorch leaves the winner unspecified).
* ``index_fill``: sets whole slices ``x.select(dim, i)`` for ``i`` in ``index`` to ``value``;
  backward zeroes them for ``x``, and a 0-d tensor ``value`` gets their summed gradient.
* ``nan_to_num``: backward passes the gradient where ``x`` is finite, zero elsewhere (PyTorch's).
"""
from __future__ import annotations

import numpy as np

from ..function import Function
from ..tensor import Tensor
from .counting import _check_bounds, _index_array, _leading_block, _same_dtype_operand, _tensor
from .promotion import check_dim, constant_result

__all__ = ["argwhere", "bucketize", "index_fill", "nan_to_num", "scatter", "searchsorted", "select"]


# ------------------------------------------------------------------ scatter
class Scatter(Function):
    """``out = x.clone(); out[i][index[i][j]] = src[i][j]`` for ``dim=1`` (``torch.scatter``)."""

    @staticmethod
    def forward(ctx, x, src, index, axis):
        out = x.copy()
        grid = np.indices(index.shape, sparse=True)
        idx = tuple(index if d == axis else grid[d] for d in range(x.ndim))
        if index.size:
            out[idx] = src[_leading_block(index.shape, x.ndim, axis, False)]
        ctx.idx, ctx.index, ctx.axis, ctx.src_shape = idx, index, axis, np.shape(src)
        return out

    @staticmethod
    def backward(ctx, grad):
        need_x, need_src = ctx.needs_input_grad[:2]
        gx = gsrc = None
        if need_x:
            gx = grad.copy()
            if ctx.index.size:
                gx[ctx.idx] = 0
        if need_src:
            index, axis = ctx.index, ctx.axis
            gsrc = np.zeros(ctx.src_shape, dtype=grad.dtype)
            if index.size:
                view = grad[_leading_block(index.shape, grad.ndim, axis, True)]
                gsrc[_leading_block(index.shape, grad.ndim, axis, False)] = np.take_along_axis(view, index, axis=axis)
        return gx, gsrc, None  # no gradient for the integer index


def scatter(x, dim: int, index, src=None, *, value=None, reduce=None) -> Tensor:
    """A copy of ``x`` with ``src`` (a tensor of ``x``'s dtype) or a scalar ``value`` written at
    ``index`` along ``dim`` (``torch.scatter``); for 2-D, dim=0: ``out[index[i][j]][j] = src[i][j]``.

    Shapes: ``index`` (int64 or int32) has ``x``'s number of dims, is no larger than ``src`` on any
    dim and than ``x`` on the dims other than ``dim``; values in [0, x.shape[dim]). ``src`` may also
    be a number (PyTorch's ``scatter(dim, index, value)``). Differentiable in ``x`` and ``src``.
    ``reduce=`` is refused: use ``scatter_add``.
    """
    op = "scatter"
    if reduce is not None:
        raise NotImplementedError(f"{op}: reduce={reduce!r} is not supported by rnnbp; for reduce='add' use "
                                  "scatter_add(dim, index, src)")
    if (src is None) == (value is None):
        raise TypeError(f"{op}: give exactly one of src (a tensor or number) and value=")
    x = _tensor(x)
    axis = check_dim(dim, x.ndim, x.shape, op)
    idx = _index_array(index, op)
    if value is not None or not isinstance(src, Tensor):
        number = src if value is None else value
        if isinstance(number, Tensor):
            if number.ndim:
                raise ValueError(f"{op}: value must be a number or a 0-d tensor, got shape {number.shape}")
            number = number.item()
        if not isinstance(number, (int, float, bool, np.generic)):
            raise TypeError(f"{op}: src must be a Tensor or a number, got {type(number).__name__}")
        src = np.broadcast_to(np.asarray(number).astype(x.dtype), idx.shape)
    else:
        src = _same_dtype_operand(op, x, src, "src")
    src_shape = tuple(src.shape)
    flat = x.ndim == 0
    if flat:  # PyTorch treats a 0-d tensor as one element of a 1-D one
        x, idx = x.reshape(1), idx.reshape(-1)
        src = src.reshape(-1) if isinstance(src, Tensor) else np.asarray(src).reshape(-1)
        src_shape = tuple(src.shape)
    if idx.size == 0:
        out = x.clone() if not flat else x.reshape(()).clone()
        return out
    if idx.ndim != x.ndim or len(src_shape) != x.ndim:
        raise ValueError(f"{op}: index of shape {idx.shape} and src of shape {src_shape} must have as many dims "
                         f"as self of shape {x.shape}")
    if any(d != axis and idx.shape[d] > x.shape[d] for d in range(x.ndim)) or any(
            idx.shape[d] > src_shape[d] for d in range(x.ndim)):
        raise ValueError(f"{op}: index of shape {idx.shape} must be no larger than self of shape {x.shape} apart "
                         f"from dim {axis}, and no larger than src of shape {src_shape}")
    _check_bounds(idx, x.shape[axis], dim, op)
    out = Scatter.apply(x, src, idx, axis=axis)
    return out.reshape(()) if flat else out


# --------------------------------------------------------------- index_fill
class IndexFill(Function):
    """``out = x.clone(); out.select(dim, i) = value`` for ``i`` in ``index``."""

    @staticmethod
    def forward(ctx, x, value, index, axis):
        out = x.copy()
        np.moveaxis(out, axis, 0)[index] = value
        ctx.index, ctx.axis = index, axis
        return out

    @staticmethod
    def backward(ctx, grad):
        need_x, need_value = ctx.needs_input_grad[:2]
        filled = np.zeros(grad.shape, dtype=bool)
        np.moveaxis(filled, ctx.axis, 0)[ctx.index] = True
        gx = np.where(filled, 0, grad).astype(grad.dtype) if need_x else None
        gvalue = np.asarray(grad[filled].sum(), dtype=grad.dtype) if need_value else None
        return gx, gvalue, None


def index_fill(x, dim: int, index, value) -> Tensor:
    """A copy of ``x`` with the slices at positions ``index`` (1-D or 0-d, int64; negative counts
    from the end) along ``dim`` set to ``value`` (a number or a 0-d tensor, cast to ``x``'s dtype).
    Differentiable in ``x`` and a float 0-d ``value``."""
    op = "index_fill"
    x = _tensor(x)
    axis = check_dim(dim, x.ndim, x.shape, op)
    idx = np.asarray(index._data if isinstance(index, Tensor) else index)
    if idx.dtype != np.int64:
        raise TypeError(f"{op}: index must be an int64 tensor, got dtype {idx.dtype}")
    if idx.ndim > 1:
        raise ValueError(f"{op}: index must be 1-D or 0-d, got shape {idx.shape}")
    size = x.shape[axis] if x.ndim else 1
    if idx.size and ((idx < -size) | (idx >= size)).any():
        bad = idx[(idx < -size) | (idx >= size)].flat[0]
        raise IndexError(f"{op}: index {bad} is out of bounds for dim {dim} with size {size}")
    idx = idx.reshape(-1) % size if size else idx.reshape(-1)
    if isinstance(value, Tensor):
        if value.ndim:
            raise ValueError(f"{op}: value must be a number or a 0-d tensor, got a tensor of shape {value.shape}")
        if value.dtype != x.dtype:
            value = value.to(x.dtype) if value.dtype.kind == "f" and x.dtype.kind == "f" else value._data.astype(x.dtype)
    else:
        value = np.asarray(value).astype(x.dtype)
    if x.ndim == 0:
        return IndexFill.apply(x.reshape(1), value, idx, axis=0).reshape(())
    return IndexFill.apply(x, value, idx, axis=axis)


# ------------------------------------------------------------------- select
def select(x, dim: int, index: int) -> Tensor:
    """``x.select(dim, index)``: the slice at ``index`` along ``dim`` (that dim removed); a view in the graph."""
    op = "select"
    x = _tensor(x)
    if x.ndim == 0:
        raise IndexError(f"{op}: cannot select from a 0-d tensor")
    axis = check_dim(dim, x.ndim, x.shape, op)
    if isinstance(index, Tensor):
        index = index.item()
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"{op}: index must be an int, got {index!r}")
    size = x.shape[axis]
    if not -size <= index < size:
        raise IndexError(f"{op}: index {index} out of range for tensor of size {list(x.shape)} at dimension {dim}")
    return x[(slice(None),) * axis + (int(index),)]


# --------------------------------------------------------------- nan_to_num
class NanToNum(Function):
    @staticmethod
    def forward(ctx, x, nan, posinf, neginf):
        ctx.finite = np.isfinite(x)
        return np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def backward(ctx, grad):
        return (np.where(ctx.finite, grad, 0).astype(grad.dtype),)


def nan_to_num(x, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None) -> Tensor:
    """NaN to ``nan``, +inf to ``posinf`` (default: the dtype's max), -inf to ``neginf`` (its min).
    Integer and bool tensors come back as a copy. Gradient: passed where ``x`` is finite, else zero."""
    x = _tensor(x)
    if x.dtype.kind != "f":
        return x.clone()
    return NanToNum.apply(x, nan=nan, posinf=posinf, neginf=neginf)


# ---------------------------------------------------------------- integer results
def argwhere(x) -> Tensor:
    """The indices of the nonzero elements, one row each: int64 of shape (count, x.ndim)."""
    x = _tensor(x)
    if x.ndim == 0:  # one row of no columns if the value is nonzero, as in PyTorch
        return constant_result(np.zeros((int(bool(x._data)), 0), dtype=np.int64), "argwhere")
    return constant_result(np.argwhere(x._data).astype(np.int64), "argwhere")


def _side(op: str, right: bool, side) -> str:
    if side is None:
        return "right" if right else "left"
    if side not in ("left", "right"):
        raise ValueError(f"{op}: side must be 'left' or 'right', got {side!r}")
    if right and side == "left":
        raise ValueError(f"{op}: side and right can't be set to opposites, got side of left while right was True")
    return side


def searchsorted(sorted_sequence, input, *, out_int32: bool = False, right: bool = False, side=None,
                 sorter=None) -> Tensor:
    """Where ``input``'s values would go in ``sorted_sequence`` to keep it sorted (``torch.searchsorted``).

    ``sorted_sequence`` is 1-D, or N-D with ``input`` of the same leading dims (searched row by row);
    ``input`` may be a number (a 0-d result). int64 indices (int32 with ``out_int32``); not differentiable.
    """
    op = "searchsorted"
    how = _side(op, right, side)
    seq = np.asarray(sorted_sequence._data if isinstance(sorted_sequence, Tensor) else sorted_sequence)
    if sorter is not None:
        order = np.asarray(sorter._data if isinstance(sorter, Tensor) else sorter)
        if order.shape != seq.shape:
            raise ValueError(f"{op}: sorter of shape {order.shape} must have sorted_sequence's shape {seq.shape}")
        seq = np.take_along_axis(seq, order, axis=-1)
    values = np.asarray(input._data if isinstance(input, Tensor) else input)
    if seq.ndim == 0:
        raise ValueError(f"{op}: sorted_sequence must have at least one dim, got a 0-d tensor")
    if seq.ndim == 1:
        out = np.searchsorted(seq, values, side=how)
    else:
        if values.ndim != seq.ndim or values.shape[:-1] != seq.shape[:-1]:
            raise ValueError(f"{op}: sorted_sequence of shape {seq.shape} and input of shape {values.shape} must "
                             "have the same leading dims (all but the last), or sorted_sequence must be 1-D")
        rows_seq, rows_val = seq.reshape(-1, seq.shape[-1]), values.reshape(-1, values.shape[-1])
        out = np.stack([np.searchsorted(s, v, side=how) for s, v in zip(rows_seq, rows_val)]).reshape(values.shape)
    return constant_result(np.asarray(out, dtype=np.int32 if out_int32 else np.int64), op)


def bucketize(input, boundaries, *, out_int32: bool = False, right: bool = False) -> Tensor:
    """The bucket of each value of ``input`` given 1-D increasing ``boundaries`` (``torch.bucketize``):
    ``boundaries[i-1] < x <= boundaries[i]`` (``right=False``), ``boundaries[i-1] <= x < boundaries[i]``
    (``right=True``). int64 (int32 with ``out_int32``); not differentiable."""
    bounds = np.asarray(boundaries._data if isinstance(boundaries, Tensor) else boundaries)
    if bounds.ndim != 1:
        raise ValueError(f"bucketize: boundaries tensor must be 1 dimension, but got dim({bounds.ndim})")
    out = searchsorted(bounds, input, out_int32=out_int32, right=right)
    out._nondiff_op = "bucketize"
    return out
