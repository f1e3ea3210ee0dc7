"""Pieces every fused recurrent kernel shares: active rows per step, input projection, final states.

Layout. A kernel runs one layer in one direction over a whole sequence. Its
input is time-major, ``x`` of shape (T, B, I), with the batch sorted by length,
longest first, so the sequences still running at step t are always the first
``batch_sizes[t]`` rows (PyTorch's ``PackedSequence.batch_sizes``). Every step
then works on row prefixes, which are views: rows that have ended keep their
state untouched and cost no recurrent work, and no mask or copy is needed.
(The input projection and the weight gradients still run over all T * B rows,
as single matrix products; padded rows of ``x`` are zeroed so that whatever the
caller left there cannot reach a gradient.)

State buffers have T + 1 steps, index 0 holding the initial state, so that
``buf[t]`` is the state before step t for every row still running at step t,
and ``buf[lengths[b], b]`` is row b's final state (its initial state when its
length is 0).
"""
from __future__ import annotations

import sys

import numpy as np


def active_rows(batch_sizes, T: int, B: int) -> list[int]:
    """Number of running rows at each step: ``batch_sizes`` as ints, or B everywhere."""
    if batch_sizes is None:
        return [B] * T
    return [int(b) for b in batch_sizes]


def zero_padding(x: np.ndarray, sizes: list[int]) -> np.ndarray:
    """``x`` (T, B, I) with the rows past each sequence's end set to zero (a copy, only when ragged).

    The weight gradient dW_ih = dgates^T x runs over every row; dgates is zero on
    padding, but 0 * NaN is NaN, so padding must not hold NaN or Inf.
    """
    B = x.shape[1]
    if all(b == B for b in sizes):
        return x
    x = x.copy()
    for t, b in enumerate(sizes):
        x[t, b:] = 0
    return x


def project_inputs(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, empty=np.empty) -> np.ndarray:
    """x W^T + b for all T steps in one matrix product. Shape: (T, B, I) -> (T, B, G)."""
    T, B, I = x.shape
    out = empty((T, B, weight.shape[0]), x.dtype)
    np.matmul(x.reshape(T * B, I), weight.T, out=out.reshape(T * B, -1))  # (T*B, G)
    if bias is not None:
        out += bias
    return out


def final_states(buf: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Each row's state after its own last step. Shape: (T+1, B, H) -> (B, H)."""
    if lengths is None:
        return buf[-1].copy()
    return buf[lengths, np.arange(buf.shape[1])]


def batch_sizes_from_lengths(sorted_lengths: np.ndarray, T: int) -> np.ndarray:
    """Rows still running at each step, for lengths sorted longest first. Shape: (B,) -> (T,)."""
    return (np.asarray(sorted_lengths)[None, :] > np.arange(T)[:, None]).sum(axis=1)


def lengths_from_batch_sizes(batch_sizes, B: int) -> np.ndarray | None:
    """Per-row lengths implied by ``batch_sizes`` (rows sorted longest first); None stays None."""
    if batch_sizes is None:
        return None
    return (np.asarray(batch_sizes)[None, :] > np.arange(B)[:, None]).sum(axis=1)


def carried_gradient(d_final, shape: tuple, dtype) -> np.ndarray:
    """The gradient carried backwards through time, starting from dL/d(final state) (or zeros).

    A copy: backward adds into it, and the incoming gradient must stay untouched.
    """
    return np.zeros(shape, dtype=dtype) if d_final is None else d_final.copy()


def forward_steps(sizes: list[int]):
    """Yield (t, b) for t = 0 .. T-1 with the b > 0 rows running at step t."""
    for t, b in enumerate(sizes):
        if b:
            yield t, b


def reverse_steps(sizes: list[int], dh: np.ndarray, d_out: np.ndarray | None, record=None):
    """Yield (t, b, dh_t) for t = T-1 .. 0 over the b rows running at step t.

    ``dh`` (B, H) carries dL/dh_t from the step after t (at first, dL/dh_n); the
    output's own gradient d_out[t] is added to its running rows before they are
    yielded. Rows not running at t keep their carried gradient, which is how a
    row's dL/dh_n reaches its own last step. ``record(t, dh_t)``, when given, sees
    each total dL/dh_t (see ``nn.recurrent.probes``).
    """
    for t in range(len(sizes) - 1, -1, -1):
        b = sizes[t]
        if b == 0:
            continue
        dh_t = dh[:b]
        if d_out is not None:
            dh_t += d_out[t, :b]
        if record is not None:
            record(t, dh_t)
        yield t, b, dh_t


def zone(new: np.ndarray, prev: np.ndarray, z: np.ndarray) -> None:
    """Zoneout, in place: new <- (1 - z) new + z prev (z 0/1 per unit in training, so that a zoned
    unit keeps prev exactly; the rate in eval). Shape: all (b, n). The compiled loops compute
    the same expression in the same order.
    """
    kept = prev * z
    new *= 1 - z
    new += kept


def zone_split(d: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Zoneout's backward, in place: returns d z (the gradient to the previous state) and sets
    d <- d (1 - z) (the gradient to the new state). Shape: (b, n)."""
    carry = d * z
    d *= 1 - z
    return carry


def weight_grads(dgates: np.ndarray, inputs: np.ndarray, weight_in: np.ndarray, need_x: bool, need_w: bool):
    """Gradients through the input projection, each one matrix product over all steps.

    Shape: dgates (T, B, G), inputs (T, B, I), weight_in (G, I) -> dx (T, B, I), dW (G, I).
    """
    T, B, G = dgates.shape
    d2 = dgates.reshape(T * B, G)
    dx = (d2 @ weight_in).reshape(inputs.shape) if need_x else None
    dw = d2.T @ inputs.reshape(T * B, -1) if need_w else None
    return dx, dw


def _free_refcount() -> int:
    """What ``sys.getrefcount`` reports, in ``Workspace.empty``'s loop, for a buffer nothing else holds.

    Measured with the same code shape rather than assumed (3 on CPython <= 3.13; newer
    interpreters may borrow the loop variable's reference and report one less).
    """
    pool = [np.empty(0)]
    for buf in pool:
        return sys.getrefcount(buf)


_FREE = _free_refcount()


class Workspace:
    """Reusable (T, B, .) buffers for one recurrent module's kernels.

    A fresh 20 MB array costs page faults on its first write (about 4 ms, five
    times the write itself), and a training step allocates several per layer and
    direction. A buffer is handed out again once nothing but the workspace holds it
    (backward freed the graph that saved it, and no output view keeps it). When no
    idle buffer fits, the idle ones are dropped before allocating, so a change of
    sequence length or batch size replaces the pool instead of growing it: memory
    stays at what the live graphs use plus one step's worth. Copies and pickles of
    a module start with an empty workspace.
    """

    def __init__(self):
        self._buffers: list[np.ndarray] = []

    def empty(self, shape: tuple, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        idle = []
        for buf in self._buffers:
            if sys.getrefcount(buf) == _FREE:
                if buf.shape == shape and buf.dtype == dtype:
                    return buf
                idle.append(id(buf))
        if idle:
            self._buffers = [b for b in self._buffers if id(b) not in idle]
        buf = np.empty(shape, dtype=dtype)
        self._buffers.append(buf)
        return buf

    def zeros(self, shape: tuple, dtype) -> np.ndarray:
        buf = self.empty(shape, dtype)
        buf.fill(0)
        return buf

    def clear(self) -> None:
        """Forget every buffer (those still in use stay alive with their users)."""
        self._buffers.clear()

    def __getstate__(self):
        return {"_buffers": []}

    def __deepcopy__(self, memo):
        return Workspace()


def allocator(workspace: Workspace | None):
    """(empty, zeros) functions: the workspace's, or NumPy's when there is none."""
    if workspace is None:
        return np.empty, np.zeros
    return workspace.empty, workspace.zeros
