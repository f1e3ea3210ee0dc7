"""Variable-length sequences: padding and PyTorch's packed format.

A ``PackedSequence`` stores the sequences of a batch time step by time step:
``data`` holds, for t = 0, 1, ..., the rows of every sequence still running at
step t (sequences sorted longest first), and ``batch_sizes[t]`` says how many.
``sorted_indices`` maps that order back to the caller's batch order.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...autograd.function import Function
from ...autograd.ops import cat, stack
from ...autograd.tensor import Tensor
from .kernels.common import batch_sizes_from_lengths, lengths_from_batch_sizes


class PackedSequence(NamedTuple):
    """data (sum of lengths, *), batch_sizes (T,), sorted_indices / unsorted_indices (B,) or None.

    As in PyTorch, the three index fields are int64 Tensors (``torch.equal`` and ``.tolist()``
    work on them); one built by hand may hold NumPy arrays instead.
    """

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None

    def to(self, *args, **kwargs) -> "PackedSequence":
        """``data.to(*args, **kwargs)`` (a dtype, ``'cpu'``, a Tensor, ``dtype=``/``device=``), as
        ``Tensor.to``; the index fields are kept (they stay int64, as in PyTorch). Returns self when
        nothing changes, a new PackedSequence otherwise; casts between float dtypes are
        differentiable. Any device other than the CPU raises ``DeviceError``."""
        data = self.data.to(*args, **kwargs)
        return self if data is self.data else self._replace(data=data)

    def cpu(self) -> "PackedSequence":
        return self.to("cpu")

    def double(self) -> "PackedSequence":
        return self.to(dtype=np.float64)

    def float(self) -> "PackedSequence":
        return self.to(dtype=np.float32)

    def half(self) -> "PackedSequence":
        return self.to(dtype=np.float16)

    @property
    def is_cuda(self) -> bool:
        return False

    def is_pinned(self) -> bool:
        return False


def as_index_tensor(values) -> Tensor | None:
    """``values`` (an integer array, a Tensor or None) as a Tensor: an array becomes the int64 Tensor
    PyTorch gives back; a Tensor is kept as it is."""
    if values is None or isinstance(values, Tensor):
        return values
    return Tensor(np.asarray(values, dtype=np.int64))


def as_index_array(values) -> np.ndarray | None:
    """The int64 array behind an index field (Tensor or array), None kept."""
    return None if values is None else np.asarray(values, dtype=np.int64)


def check_lengths(lengths, T: int, batch: int, op: str, shortest: int = 0) -> np.ndarray:
    """``lengths`` as int64 (batch,), each in [shortest, T]; every error names ``op``."""
    lengths = np.asarray(lengths._data if isinstance(lengths, Tensor) else lengths)
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
        raise ValueError(f"{op}: lengths must be a 1-D array of integers, got {lengths.dtype} of shape {lengths.shape}")
    if len(lengths) != batch:
        raise ValueError(f"{op}: lengths has {len(lengths)} entries but the batch has {batch} sequences")
    if batch and (lengths.min() < shortest or lengths.max() > T):
        raise ValueError(f"{op}: lengths must be between {shortest} and the sequence length {T}, "
                         f"got min {lengths.min()} and max {lengths.max()}")
    return lengths.astype(np.int64)


def _packed_positions(sorted_lengths: np.ndarray, order: np.ndarray):
    """(time, batch) positions of the packed rows, time-major; batch in the caller's order."""
    T = int(sorted_lengths.max()) if len(sorted_lengths) else 0
    batch_sizes = batch_sizes_from_lengths(sorted_lengths, T)
    t_idx = np.repeat(np.arange(T), batch_sizes)
    rank = np.concatenate([np.arange(b) for b in batch_sizes]) if T else np.zeros(0, np.int64)
    return t_idx, order[rank], batch_sizes


class _Gather(Function):
    """out = x[t_idx, b_idx] for distinct positions; backward scatters back (no sums needed)."""

    @staticmethod
    def forward(ctx, x, t_idx, b_idx):
        ctx.shape, ctx.t_idx, ctx.b_idx = x.shape, t_idx, b_idx
        return x[t_idx, b_idx]

    @staticmethod
    def backward(ctx, grad):
        out = np.zeros(ctx.shape, dtype=grad.dtype)
        out[ctx.t_idx, ctx.b_idx] = grad
        return out


class _Scatter(Function):
    """out = zeros (T, B, *) filled with rows of data at (t_idx, b_idx); backward gathers."""

    @staticmethod
    def forward(ctx, data, t_idx, b_idx, shape, padding_value):
        out = np.full(shape, padding_value, dtype=data.dtype)
        out[t_idx, b_idx] = data
        ctx.t_idx, ctx.b_idx = t_idx, b_idx
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.t_idx, ctx.b_idx]


def pack_padded_sequence(input, lengths, batch_first: bool = False, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) (or (B, T, *) if ``batch_first``) of the given lengths.

    With ``enforce_sorted=False`` the lengths may come in any order; the packing
    sorts them and records the permutation.
    """
    x = input if isinstance(input, Tensor) else Tensor(input)
    if batch_first:
        x = x.transpose(0, 1)
    T, B = x.shape[0], x.shape[1]
    lengths = check_lengths(lengths, T, B, "pack_padded_sequence", shortest=1)
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise ValueError("pack_padded_sequence: lengths must be sorted in decreasing order when "
                             "enforce_sorted=True; pass enforce_sorted=False to sort them here")
        return pack_in_order(x, lengths, None)
    return pack_in_order(x, lengths, np.argsort(-lengths, kind="stable"))


def pack_in_order(x, lengths: np.ndarray, sorted_indices: np.ndarray | None) -> PackedSequence:
    """Pack time-major ``x`` (T, B, *) with the rows taken in the order ``sorted_indices``
    (longest first; None when the batch is already in that order)."""
    sorted_indices = as_index_array(sorted_indices)
    perm = np.arange(len(lengths)) if sorted_indices is None else sorted_indices
    t_idx, b_idx, batch_sizes = _packed_positions(lengths[perm], perm)
    unsorted = None if sorted_indices is None else np.argsort(perm)
    return PackedSequence(_Gather.apply(x, t_idx=t_idx, b_idx=b_idx), as_index_tensor(batch_sizes),
                          as_index_tensor(sorted_indices), as_index_tensor(unsorted))


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None):
    """Inverse of :func:`pack_padded_sequence`: (padded (T, B, *), lengths (B,) int64 Tensor) in the caller's order."""
    padded, lengths = padded_arrays(sequence, batch_first, padding_value, total_length)
    return padded, Tensor(lengths)


def padded_arrays(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                  total_length: int | None = None):
    """:func:`pad_packed_sequence` with the lengths as an int64 array, for the library's own use."""
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"pad_packed_sequence: expected a PackedSequence (from pack_padded_sequence or a "
                        f"recurrent layer given one), got {type(sequence).__name__}")
    data, batch_sizes, sorted_indices, _ = sequence
    batch_sizes, sorted_indices = as_index_array(batch_sizes), as_index_array(sorted_indices)
    B = int(batch_sizes[0])
    T = len(batch_sizes)
    if total_length is not None:
        if total_length < T:
            raise ValueError(f"pad_packed_sequence: total_length {total_length} is shorter than the longest "
                             f"sequence ({T})")
        T = total_length
    sorted_lengths = lengths_from_batch_sizes(batch_sizes, B)
    perm = np.arange(B) if sorted_indices is None else sorted_indices
    t_idx, b_idx, _ = _packed_positions(sorted_lengths, perm)
    shape = (T, B) + tuple(data.shape[1:])
    padded = _Scatter.apply(data, t_idx=t_idx, b_idx=b_idx, shape=shape, padding_value=padding_value)
    lengths = np.empty(B, dtype=np.int64)
    lengths[perm] = sorted_lengths
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, lengths


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0, padding_side: str = "right"):
    """Stack tensors of shapes (L_i, *) into (max L, B, *) (or (B, max L, *)), padding the ends
    (``padding_side='right'``) or the starts (``'left'``)."""
    if padding_side not in ("right", "left"):
        raise ValueError(f"pad_sequence: padding_side must be 'right' or 'left', got {padding_side!r}")
    if not sequences:
        raise ValueError("pad_sequence: expected a non-empty list of tensors")
    seqs = [s if isinstance(s, Tensor) else Tensor(s) for s in sequences]
    T = max(s.shape[0] for s in seqs)
    trailing = seqs[0].shape[1:]
    padded = []
    for s in seqs:
        if s.shape[1:] != trailing:
            raise ValueError(f"pad_sequence: all sequences must share trailing dims {trailing}, got {s.shape[1:]}")
        if s.shape[0] < T:
            fill = Tensor(np.full((T - s.shape[0],) + trailing, padding_value, dtype=s.dtype))
            s = cat([s, fill] if padding_side == "right" else [fill, s], dim=0)
        padded.append(s)
    return stack(padded, dim=0 if batch_first else 1)


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of (L_i, *) tensors (longest first unless ``enforce_sorted=False``)."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences, lengths, batch_first: bool = False) -> list:
    """The inverse of :func:`pad_sequence`: the B sequences of a padded batch, each cut to its length.

    Shape: padded_sequences (T, B, *) (or (B, T, *) if ``batch_first``), lengths (B,) of integers
    in [0, T] -> a list of B Tensors (L_i, *). Each is a copy (as PyTorch's), not a view, and is
    differentiable: its gradient reaches the padded tensor's rows, the padding gets zero. Unlike
    PyTorch, the input is not transposed in place when ``batch_first`` is False.
    """
    if not isinstance(padded_sequences, Tensor):
        raise TypeError(f"unpad_sequence: padded_sequences must be a Tensor, got {type(padded_sequences).__name__}")
    if padded_sequences.ndim < 2:
        raise ValueError(f"unpad_sequence: padded_sequences must be (T, B, *) or, with batch_first, (B, T, *); "
                         f"got shape {tuple(padded_sequences.shape)}")
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)  # (B, T, *)
    lengths = check_lengths(lengths, x.shape[1], x.shape[0], "unpad_sequence")
    # An index array (not a slice) makes each piece a copy, as PyTorch's masked selection does.
    return [x[i, np.arange(length)] for i, length in enumerate(lengths.tolist())]


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The inverse of :func:`pack_sequence`: the list of (L_i, *) Tensors, in the caller's order
    (``sorted_indices`` undone); differentiable."""
    if not isinstance(packed_sequences, PackedSequence):
        raise TypeError(f"unpack_sequence: expected a PackedSequence (from pack_sequence or "
                        f"pack_padded_sequence), got {type(packed_sequences).__name__}")
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
