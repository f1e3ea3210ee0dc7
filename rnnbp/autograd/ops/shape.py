"""Shape ops: reshape, permute, expand, repeat, indexing (read, write, gather), concatenation, splitting.

Most forwards return NumPy views (no copy); backwards put the gradient back into
the input's layout.
"""
from __future__ import annotations

import numpy as np

from ..function import Function, unbroadcast


class Reshape(Function):
    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) into {tuple(shape)}"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.in_shape)


class Permute(Function):
    @staticmethod
    def forward(ctx, x, dims):
        in_range = all(-x.ndim <= d < x.ndim for d in dims)
        if not in_range or sorted(d % max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
            raise ValueError(f"permute: dims {tuple(dims)} are not a permutation of the {x.ndim} axes of {x.shape}")
        ctx.inverse = np.argsort([d % x.ndim for d in dims])
        return x.transpose(dims)

    @staticmethod
    def backward(ctx, grad):
        return grad.transpose(ctx.inverse)


class Flip(Function):
    """Reverse the order of elements along ``dims`` (a copy, as in PyTorch); backward flips the gradient back."""

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return np.flip(x, dims).copy()

    @staticmethod
    def backward(ctx, grad):
        return np.flip(grad, ctx.dims).copy()


class Pad(Function):
    """Constant padding: ``widths`` a (before, after) pair per dim; backward keeps the inner part."""

    @staticmethod
    def forward(ctx, x, widths, value=0.0):
        ctx.inner = tuple(slice(before, before + n) for (before, _), n in zip(widths, x.shape))
        return np.pad(x, widths, constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.inner]


class Expand(Function):
    """Broadcast to a larger shape without copying; backward sums over the stretched axes.

    A size of -1 keeps an existing dim's size; new leading dims need explicit sizes (PyTorch).
    """

    @staticmethod
    def forward(ctx, x, shape):
        shape = tuple(shape)
        new = len(shape) - x.ndim
        if new < 0:
            raise ValueError(
                f"expand: cannot expand shape {x.shape} to {shape}: "
                f"the target needs at least {x.ndim} sizes, got {len(shape)}"
            )
        for i, size in enumerate(shape):
            if size == -1 and i < new:
                raise ValueError(
                    f"expand: size -1 at position {i} of {shape} is only allowed for an existing dim; "
                    f"the tensor of shape {x.shape} gets new leading dims there, so give their sizes"
                )
            if size < -1:
                raise ValueError(f"expand: sizes must be non-negative or -1, got {size} in {shape}")
        shape = tuple(x.shape[i - new] if s == -1 else s for i, s in enumerate(shape))
        ctx.in_shape = x.shape
        try:
            return np.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"expand: cannot expand shape {x.shape} to {shape}") from None

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.in_shape)


def is_advanced_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, (np.ndarray, list)) for i in items)


class GetItem(Function):
    """x[index] with basic and integer-array indexing; repeated indices accumulate."""

    @staticmethod
    def forward(ctx, x, index):
        ctx.in_shape, ctx.index = x.shape, index
        ctx.advanced = is_advanced_index(index)
        try:
            out = x[index]
        except IndexError as exc:
            raise IndexError(f"getitem: index {index!r} is invalid for a tensor of shape {x.shape}: {exc}") from None
        if not isinstance(out, np.ndarray):
            # An integer per dim: NumPy gives a scalar (a copy). A 0-d view instead, as PyTorch's
            # x[i] is, so that x[i] += 1 or x[i].zero_() write into x.
            out = x[(index if isinstance(index, tuple) else (index,)) + (Ellipsis,)]
        return out

    @staticmethod
    def backward(ctx, grad):
        out = np.zeros(ctx.in_shape, dtype=grad.dtype)
        if ctx.advanced:
            np.add.at(out, ctx.index, grad)
        else:
            out[ctx.index] = grad
        return out


class SetItem(Function):
    """``x[index] = value`` as a new array: the out-of-place form behind ``Tensor.__setitem__``.

    The gradient of ``x`` is the incoming one with the overwritten elements zeroed; ``value``
    gets the gradient of the elements it wrote, summed back over broadcasting (for repeated
    integer indices the last write wins in the forward, and every copy is credited, as
    PyTorch's ``index_put_`` does). Neither needs ``x``'s values, so when no one else holds
    ``x``'s array the write goes into it (``into``: that array; ``Tensor.__setitem__`` decides).
    """

    @staticmethod
    def forward(ctx, x, value, index, into=None):
        out = x.copy() if into is None else into
        try:
            out[index] = value
        except (IndexError, ValueError) as exc:
            raise type(exc)(
                f"setitem: cannot assign a value of shape {np.shape(value)} to index {index!r} "
                f"of a tensor of shape {x.shape}: {exc}"
            ) from None
        ctx.index, ctx.value_shape = index, np.shape(value)
        return out

    @staticmethod
    def backward(ctx, grad):
        need_x, need_value = ctx.needs_input_grad[:2]
        gx = gv = None
        if need_x:
            gx = np.array(grad)  # a copy, and an array for a 0-d x (NumPy's indexing may give scalars)
            gx[ctx.index] = 0
        if need_value:
            # a copy: a view would keep all of ``grad`` alive for as long as the value's gradient waits
            # (a loop of out[t] = h held T gradients of out's size)
            gv = unbroadcast(np.array(grad[ctx.index]), ctx.value_shape)
        return gx, gv


class Gather(Function):
    """``out[i][j][k] = x[i][index[i][j][k]][k]`` along ``dim`` (``torch.gather``); backward scatters.

    Shapes: ``index`` has ``x``'s number of dims and, on every other dim, a size no larger
    than ``x``'s; the output has ``index``'s shape.
    """

    @staticmethod
    def forward(ctx, x, index, dim):
        if index.ndim != x.ndim:
            raise ValueError(
                f"gather: index of shape {index.shape} must have as many dims as the input of shape {x.shape}"
            )
        if index.dtype.kind not in "iu":
            raise TypeError(f"gather: index must be an integer tensor, got dtype {index.dtype}")
        bad = [d for d in range(x.ndim) if d != dim and index.shape[d] > x.shape[d]]
        if bad:
            raise ValueError(
                f"gather: index of shape {index.shape} is larger than the input of shape {x.shape} on dim {bad[0]}"
            )
        if index.size and (index.min() < 0 or index.max() >= x.shape[dim]):  # no negative indices, as torch
            raise IndexError(
                f"gather: index out of range for dim {dim} of size {x.shape[dim]} "
                f"(got values from {index.min()} to {index.max()})"
            )
        # take_along_axis needs the other dims equal: view the input's leading block.
        src = x[tuple(slice(None) if d == dim else slice(0, index.shape[d]) for d in range(x.ndim))]
        ctx.in_shape, ctx.index, ctx.dim = x.shape, index, dim
        return np.take_along_axis(src, index, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        out = np.zeros(ctx.in_shape, dtype=grad.dtype)
        block = tuple(slice(None) if d == ctx.dim else slice(0, ctx.index.shape[d]) for d in range(out.ndim))
        view = out[block]
        idx = np.indices(ctx.index.shape, sparse=True)
        idx = tuple(ctx.index if d == ctx.dim else idx[d] for d in range(out.ndim))
        np.add.at(view, idx, grad)
        return out, None  # no gradient for the integer index


class Repeat(Function):
    """Tile ``x`` ``repeats`` times along each dim (``Tensor.repeat``); backward sums the tiles."""

    @staticmethod
    def forward(ctx, x, repeats):
        repeats = tuple(int(r) for r in repeats)
        if len(repeats) < x.ndim:
            raise ValueError(
                f"repeat: number of repeat dims ({len(repeats)}) can not be smaller than the number of "
                f"dims of the tensor of shape {x.shape}"
            )
        ctx.in_shape = (1,) * (len(repeats) - x.ndim) + x.shape
        ctx.repeats = repeats
        ctx.orig_shape = x.shape
        return np.tile(x.reshape(ctx.in_shape), repeats)

    @staticmethod
    def backward(ctx, grad):
        split = []
        for r, n in zip(ctx.repeats, ctx.in_shape):
            split += [r, n]
        summed = grad.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
        return summed.reshape(ctx.orig_shape)


class Clone(Function):
    """A copy of ``x`` with its own memory; the gradient passes through unchanged."""

    @staticmethod
    def forward(ctx, x, order="K"):
        """order: "K" keeps x's layout (PyTorch's preserve_format, its clone's default), "C" row-major,
        or the dims in memory order (channels_last: (0, 2, 3, 1))."""
        if isinstance(order, str):
            return x.copy(order=order)
        return np.ascontiguousarray(x.transpose(order)).transpose(np.argsort(order))

    @staticmethod
    def backward(ctx, grad):
        return grad


class Cat(Function):
    """Concatenate along ``dim``; backward slices the gradient back into pieces."""

    @staticmethod
    def forward(ctx, *xs, dim=0):
        if not xs:
            raise ValueError("cat: expected a non-empty sequence of tensors")
        ndim = xs[0].ndim
        if not -ndim <= dim < ndim:
            raise IndexError(f"cat: dim {dim} is out of range for tensors of shape {xs[0].shape}")
        axis = dim % ndim
        try:
            out = np.concatenate(xs, axis=axis)
        except ValueError:
            raise ValueError(
                f"cat: shapes {[x.shape for x in xs]} differ outside dim {dim}; all sizes but dim's must match"
            ) from None
        ctx.axis = axis
        ctx.bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]
        return out

    @staticmethod
    def backward(ctx, grad):
        pieces = np.split(grad, ctx.bounds, axis=ctx.axis)
        return tuple(p if need else None for p, need in zip(pieces, ctx.needs_input_grad))


class Stack(Function):
    """Stack equal-shaped tensors along a new ``dim``."""

    @staticmethod
    def forward(ctx, *xs, dim=0):
        if not xs:
            raise ValueError("stack: expected a non-empty sequence of tensors")
        shapes = {x.shape for x in xs}
        if len(shapes) > 1:
            raise ValueError(f"stack: all tensors must have the same shape, got {[x.shape for x in xs]}")
        ndim = xs[0].ndim + 1
        if not -ndim <= dim < ndim:
            raise IndexError(
                f"stack: dim {dim} is out of range for stacking tensors of shape {xs[0].shape} "
                f"(expected {-ndim} to {ndim - 1})"
            )
        out = np.stack(xs, axis=dim)
        ctx.axis = dim % out.ndim
        return out

    @staticmethod
    def backward(ctx, grad):
        n = grad.shape[ctx.axis]
        return tuple(
            np.take(grad, i, axis=ctx.axis) if need else None for i, need in zip(range(n), ctx.needs_input_grad)
        )


class Split(Function):
    """Split along ``dim`` at ``sizes``: one node, several outputs (views)."""

    @staticmethod
    def forward(ctx, x, sizes, dim=0):
        axis = dim % max(x.ndim, 1)
        if sum(sizes) != x.shape[axis]:
            raise ValueError(f"split: sizes {list(sizes)} do not add up to {x.shape[axis]} (dim {dim} of {x.shape})")
        ctx.in_shape, ctx.axis, ctx.sizes = x.shape, axis, sizes
        return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))

    @staticmethod
    def backward(ctx, *grads):
        parts = []
        for g, size in zip(grads, ctx.sizes):
            if g is None:
                shape = list(ctx.in_shape)
                shape[ctx.axis] = size
                g = np.zeros(shape, dtype=next(x for x in grads if x is not None).dtype)
            parts.append(g)
        return np.concatenate(parts, axis=ctx.axis)
