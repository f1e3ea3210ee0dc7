"""``torch.linalg``'s norms: the vector norm over any dims and the matrix norms a training script
logs (Frobenius, nuclear left out). Built on ``ops.norm``, so the gradient is PyTorch's (0 at a zero norm)."""
from __future__ import annotations

import math

from .autograd import ops
from .autograd.ops.promotion import cast
from .autograd.tensor import Tensor


def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The ``ord``-norm of ``x`` flattened (``dim`` None) or over ``dim`` (an int or a tuple):
    ord = any p > 0, inf, -inf (the smallest |x|) or 0 (the count of nonzero entries)."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    if dtype is not None:
        x = cast(x, dtype)
    if x.dtype.kind != "f":
        raise TypeError(f"linalg.vector_norm: expects a floating tensor, got {x.dtype}")
    if dim == () or dim == []:
        dim = None  # no dims named: all of them, as PyTorch reads it
    if ord == 0:  # the count of nonzero entries; zero gradient, but still in the graph as in PyTorch
        return ops.sum(x != 0, dim=dim, keepdim=keepdim).to(x.dtype) + ops.sum(x * 0.0, dim=dim, keepdim=keepdim)
    if ord == -math.inf:
        return -ops.amax(-ops.abs(x), dim=() if dim is None else dim, keepdim=keepdim)
    if dim is None and not keepdim:
        return ops.norm(ops.reshape(x, -1), ord)
    dims = tuple(range(x.ndim)) if dim is None else dim
    return ops.norm(x, ord, dim=dims, keepdim=keepdim)


def matrix_norm(x, ord="fro", dim=(-2, -1), keepdim: bool = False) -> Tensor:
    """The Frobenius norm over the two ``dim`` axes (the other matrix norms are not supported)."""
    if ord != "fro":
        raise ValueError(f"linalg.matrix_norm: only ord='fro' is supported on rnnbp, got {ord!r}")
    return vector_norm(x, 2, dim=tuple(dim), keepdim=keepdim)


def norm(x, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """``torch.linalg.norm``: with ``ord`` None, the 2-norm of the flattened ``x`` (or over ``dim``);
    otherwise a vector norm over one dim (``dim`` an int, or None for a 1-D ``x``) or the Frobenius
    norm over two (``dim`` a pair, or None for a 2-D ``x``)."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    if ord is None:
        return vector_norm(x, 2, dim=dim, keepdim=keepdim, dtype=dtype)
    dims = dim if dim is not None else tuple(range(x.ndim))
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(dims) == 1:
        return vector_norm(x, ord, dim=dims, keepdim=keepdim, dtype=dtype)
    if len(dims) == 2:
        return matrix_norm(x if dtype is None else cast(x, dtype), ord, dim=dims, keepdim=keepdim)
    raise ValueError(f"linalg.norm: with ord={ord!r}, dim must name one or two dims (or x be 1-D or 2-D), "
                     f"got dim={dim!r} for shape {tuple(x.shape)}")
