"""Memory formats, PyTorch's names for the order of a tensor's elements in memory.

``torch.contiguous_format`` (row-major), ``torch.preserve_format`` (the input's order, what
``clone()`` keeps by default) and ``torch.channels_last`` / ``channels_last_3d`` (an (N, C, H, W)
tensor stored as (N, H, W, C), or (N, C, D, H, W) as (N, D, H, W, C)). A format never changes
values; it matters to programs that test ``is_contiguous()`` and to which reshapes can be views.
"""
from __future__ import annotations


class memory_format:  # noqa: N801  (PyTorch's name)
    """One memory format: ``axes``, the order of the dims in memory, or None for row-major ("C") or the
    input's own order ("K")."""

    __slots__ = ("name", "order", "ndim")

    def __init__(self, name: str, order, ndim: int | None = None):
        self.name, self.order, self.ndim = name, order, ndim

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def copy_order(self, ndim: int, op: str):
        """NumPy's ``order`` for a copy in this format ("C" or "K"), or the axes in memory order."""
        if self.ndim is not None and ndim != self.ndim:
            raise RuntimeError(f"{op}: required rank {self.ndim} tensor to use {self.name} format, got rank {ndim}")
        return self.order


contiguous_format = memory_format("contiguous_format", "C")
preserve_format = memory_format("preserve_format", "K")
channels_last = memory_format("channels_last", (0, 2, 3, 1), 4)
channels_last_3d = memory_format("channels_last_3d", (0, 2, 3, 4, 1), 5)


def copy_order(fmt, ndim: int, op: str, default: memory_format = preserve_format):
    """``fmt`` (a memory_format or None for ``default``) as ``Clone``'s order, checked."""
    fmt = default if fmt is None else fmt
    if not isinstance(fmt, memory_format):
        raise TypeError(f"{op}: memory_format must be a torch memory format (torch.contiguous_format, ...), "
                        f"got {fmt!r}")
    return fmt.copy_order(ndim, op)
