"""Connectionist temporal classification loss: ``ctc_loss`` and ``nn.CTCLoss``, PyTorch's semantics.

The loss of one sequence is -log p(l | x), the negative log of the summed probability of every
frame-level path (alignment) that collapses to the target l once repeats are merged and blanks
dropped. It is computed in log space by the alpha-beta recursions of :mod:`.recursions`, the
whole batch at once, as one autograd node with a hand-written backward.

The gradient, and how it differs from the partial derivative
------------------------------------------------------------
Like PyTorch, the backward returns, for t < T_n,

    d loss_n / d log_probs[t, n, k]  :=  exp(log_probs[t, n, k]) - sum_{s: l'_s = k} gamma_t(s)

(gamma the state occupations, see :mod:`.recursions`), and 0 for t >= T_n. The exact partial
derivative g of -log p is the second term alone; PyTorch adds exp(log_probs), which makes the
result the exact gradient with respect to the *logits* when ``log_probs = log_softmax(logits)``:
that gradient is g - softmax * sum_k g_k, and sum_k g_k = -1 at every step (the occupations of a
step sum to 1), so it is g + softmax = g + exp(log_probs). Checked against PyTorch 2.13:

* with log_softmax outputs, as CTC is meant to be used, the two conventions give the same
  gradient at the logits, because log_softmax's backward (g - softmax * sum g) removes any
  multiple of softmax: end to end, through a log_softmax, rnnbp, PyTorch and the exact
  derivative all agree, and ``gradcheck`` passes through the log_softmax (the tests do this);
* a leaf ``log_probs`` (PyTorch's own example: ``randn(T, N, C).log_softmax(2).detach()
  .requires_grad_()``) gets PyTorch's gradient exactly, so code written against PyTorch sees the
  same ``.grad``;
* on log-probabilities that are *not* normalised, the loss is still PyTorch's (nothing is
  normalised inside), but the gradient is not its derivative (it is off by exp(log_probs)),
  exactly as in PyTorch; ``gradcheck`` on such raw inputs fails for both libraries. Feed
  normalised log-probabilities.

We follow PyTorch rather than return the raw partial derivative because the documented usage
(a detached normalised leaf) would otherwise give a different ``.grad`` from PyTorch's.

Differences from PyTorch, all on inputs PyTorch does not diagnose:

* A target that needs more steps than its input has (length + adjacent repeats > input length)
  raises ``ValueError`` naming the element, unless ``zero_infinity=True`` (PyTorch returns inf
  and NaN gradients). Other infinite losses (an alignment made impossible by -inf log-probs)
  are inf, with NaN gradients on the element's steps, as in PyTorch, or 0 under zero_infinity.
* Blank or out-of-range classes inside a target raise ``ValueError`` (PyTorch computes a number).
* An entry with log_probs = -inf gets gradient 0 (its derivative), where PyTorch gives NaN.
* Targets must have an integer dtype (PyTorch also takes floats).
"""
from __future__ import annotations

import numpy as np

from ...autograd.function import Function
from ...autograd.ops.loss import _check_reduction
from ...autograd.tensor import Tensor
from ...validation import check_int
from ..loss import _Loss
from . import recursions
from .inputs import array_of, check_blank, check_lengths, check_log_probs, elements


class CTC(Function):
    """The CTC loss of a batch, reduced, as one node. Inputs are checked by :func:`ctc_loss`."""

    @staticmethod
    def forward(ctx, log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
                zero_infinity=False, unbatched=False, backend="auto"):
        lp = log_probs[:, None, :] if unbatched else log_probs  # (T, N, C)
        dtype = lp.dtype
        ext, skip = recursions.extend_targets(targets, target_lengths, blank)  # (N, L)
        log_p, alpha = recursions.log_likelihood(lp, ext, skip, input_lengths, target_lengths, backend)
        nll = -log_p  # (N,)
        zeroed = zero_infinity & (nll == np.inf)
        nll = np.where(zeroed, dtype.type(0), nll)
        divisor = np.maximum(target_lengths, 1).astype(dtype)
        if reduction == "none":
            out = nll.reshape(()) if unbatched else nll
        elif reduction == "sum":
            out = np.asarray(nll.sum(dtype=dtype))
        else:  # PyTorch's 'mean': each loss over its target length (at least 1), then the batch mean
            out = np.asarray((nll / divisor).mean(dtype=dtype))
        if any(ctx.needs_input_grad):
            ctx.saved = (lp, ext, skip, input_lengths, target_lengths, alpha, log_p, zeroed, divisor)
            ctx.options = (reduction, unbatched, backend)
        return out

    @staticmethod
    def backward(ctx, grad):
        lp, ext, skip, input_lengths, target_lengths, alpha, log_p, zeroed, divisor = ctx.saved
        reduction, unbatched, backend = ctx.options
        dtype = lp.dtype
        g = recursions.grad(lp, ext, skip, input_lengths, target_lengths, alpha, log_p, backend)  # (T, N, C)
        # An infinite (or NaN) loss has no gradient: NaN on its steps as in PyTorch, 0 if zeroed.
        undefined = ~np.isfinite(log_p) & ~zeroed
        if undefined.any():
            steps = np.arange(lp.shape[0])[:, None] < input_lengths[None, undefined]  # (T, k)
            g[:, undefined] = np.where(steps[..., None], dtype.type(np.nan), dtype.type(0))
        n = lp.shape[1]
        grad = np.asarray(grad, dtype=dtype)
        if reduction == "none":
            scale = grad.reshape(n)
        elif reduction == "sum":
            scale = np.broadcast_to(grad, (n,))
        else:
            scale = grad / divisor / dtype.type(n)
        g *= scale[None, :, None]
        return (g[:, 0, :] if unbatched else g), None, None, None


def _targets(op: str, targets, batch: int, unbatched: bool, n_classes: int, blank: int,
             target_lengths_value) -> tuple[np.ndarray, np.ndarray]:
    """Targets as a padded (N, S) int64 array, and the checked target lengths (N,)."""
    arr = array_of(targets)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{op}: targets must be integer class indices, got dtype {arr.dtype}")
    if unbatched:
        arr = arr[None] if arr.ndim == 1 else arr
        if arr.ndim != 2 or arr.shape[0] != 1:
            raise ValueError(f"{op}: unbatched targets must have shape (S,) or (1, S), got shape {arr.shape}")
    if arr.ndim == 2:
        if arr.shape[0] != batch:
            raise ValueError(
                f"{op}: padded targets must have shape (N, S) with N = {batch} rows, one per batch element, "
                f"got shape {arr.shape}"
            )
        lengths = check_lengths(op, "target_lengths", target_lengths_value, batch, unbatched, arr.shape[1],
                                f"the width S of the padded targets of shape {arr.shape}")
        padded = arr
    elif arr.ndim == 1:  # the targets of the batch concatenated
        lengths = check_lengths(op, "target_lengths", target_lengths_value, batch, unbatched)
        total = int(lengths.sum())
        if arr.shape[0] != total:
            raise ValueError(
                f"{op}: 1-D targets are the targets of the batch concatenated, so their length must be "
                f"sum(target_lengths) = {total}, got {arr.shape[0]}; for padded targets pass shape (N, S)"
            )
        width = int(lengths.max())
        index = (np.cumsum(lengths) - lengths)[:, None] + np.arange(width)[None, :]  # (N, S): positions in arr
        valid = np.arange(width)[None, :] < lengths[:, None]
        padded = np.where(valid, arr[np.minimum(index, max(total - 1, 0))], blank) if total else index  # (N, 0)
    else:
        raise ValueError(
            f"{op}: targets must have shape (N, S) (padded) or (sum(target_lengths),) (concatenated), "
            f"got shape {arr.shape}"
        )
    padded = padded.astype(np.int64, copy=False)
    valid = np.arange(padded.shape[1])[None, :] < lengths[:, None]
    out_of_range = ((padded < 0) | (padded >= n_classes)) & valid
    is_blank = (padded == blank) & valid
    for bad, what in ((out_of_range, f"outside [0, C) = [0, {n_classes})"), (is_blank, f"equal to the blank {blank}")):
        if bad.any():
            rows, cols = np.nonzero(bad)
            raise ValueError(
                f"{op}: targets hold class indices {what}: {elements(np.unique(rows))}, e.g. element "
                f"{rows[0]} position {cols[0]} is {padded[rows[0], cols[0]]}; targets hold labels only, "
                "each in [0, C) and never the blank"
            )
    return padded, lengths


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank: int = 0, reduction: str = "mean",
             zero_infinity: bool = False, *, backend: str = "auto") -> Tensor:
    """Connectionist temporal classification loss (Graves et al., 2006), as ``torch.nn.functional.ctc_loss``.

    Sums the probability of every alignment of each target to its input in log space, so outputs
    of an RNN over T frames can be trained against shorter label sequences with no frame labels.

    Args:
        log_probs : Tensor [shape=(T, N, C) or (T, C), float32 or float64]. Log-probabilities per
            step, normally ``log_softmax(logits, dim=-1)`` (see the module docstring for why).
        targets : integer Tensor or array, [shape=(N, S)] padded (entries past each target length
            are ignored), or [shape=(sum(target_lengths),)] the targets concatenated; (S,) when
            unbatched. Labels in [0, C), never ``blank``.
        input_lengths : Tensor, list or tuple of ints [shape=(N,)], each in [0, T]: steps used per element.
        target_lengths : Tensor, list or tuple of ints [shape=(N,)], each >= 0 (and <= S when padded).
        blank : int in [0, C). The blank class.
        reduction : 'none' | 'mean' | 'sum'. 'none' gives (N,) (a scalar when unbatched); 'mean'
            divides each loss by its target length (at least 1), then averages over the batch.
        zero_infinity : bool. Give infinite losses (impossible alignments) loss and gradient 0
            instead of raising (for too-short inputs) or returning inf.
        backend : 'auto' | 'numba' | 'numpy' (keyword only). Who runs the recursions; see
            :mod:`rnnbp.nn.ctc.recursions`.

    Returns:
        Tensor of log_probs' dtype: (N,) for 'none', else a scalar.

    Raises:
        ValueError: a target needs more steps than its input has (unless zero_infinity), a target
            holds the blank or an out-of-range class, lengths out of range or of the wrong count,
            shapes that do not fit. TypeError: non-float log_probs, non-integer targets or lengths.
    """
    op = "ctc_loss"
    log_probs, unbatched = check_log_probs(op, log_probs)
    t_max = log_probs.shape[0]
    batch = 1 if unbatched else log_probs.shape[1]
    n_classes = log_probs.shape[-1]
    blank = check_blank(op, blank, n_classes)
    _check_reduction(op, reduction)
    if not isinstance(zero_infinity, (bool, np.bool_)):
        raise TypeError(f"{op}: zero_infinity must be a bool, got {zero_infinity!r}")
    if backend not in recursions.BACKENDS:
        raise ValueError(f"{op}: backend must be one of {recursions.BACKENDS}, got {backend!r}")
    in_lengths = check_lengths(op, "input_lengths", input_lengths, batch, unbatched, t_max,
                               f"the number of steps T of log_probs of shape {log_probs.shape}")
    padded, tg_lengths = _targets(op, targets, batch, unbatched, n_classes, blank, target_lengths)
    needed = tg_lengths + recursions.repeats(padded, tg_lengths)
    short = np.flatnonzero(needed > in_lengths)
    if short.size and not zero_infinity:
        details = "; ".join(
            f"element {i}: target length {tg_lengths[i]} with {needed[i] - tg_lengths[i]} repeated label(s) "
            f"needs at least {needed[i]} steps, input length is {in_lengths[i]}" for i in short[:5]
        )
        raise ValueError(
            f"{op}: {elements(short)} cannot be aligned: each label takes a step and each pair of equal "
            f"adjacent labels a blank between them ({details}). Pass zero_infinity=True to give such "
            "elements a zero loss and gradient instead."
        )
    return CTC.apply(log_probs, padded, in_lengths, tg_lengths, blank=blank, reduction=reduction,
                     zero_infinity=bool(zero_infinity), unbatched=unbatched, backend=backend)


class CTCLoss(_Loss):
    """Connectionist temporal classification loss, as ``torch.nn.CTCLoss``; see :func:`ctc_loss`.

    Args:
        blank : int >= 0. The blank class (must be < C of the inputs).
        reduction : 'none' | 'mean' | 'sum'.
        zero_infinity : bool. Zero infinite losses and their gradients.
        backend : 'auto' | 'numba' | 'numpy' (keyword only). Who runs the recursions.

    Shape: log_probs (T, N, C) or (T, C); targets (N, S) or (sum(target_lengths),);
    input_lengths (N,); target_lengths (N,); output scalar, or (N,) for ``reduction='none'``.
    """

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False, *,
                 backend: str = "auto"):
        super().__init__(reduction=reduction)
        blank = check_int("CTCLoss", "blank", blank, minimum=0)
        if not isinstance(zero_infinity, (bool, np.bool_)):
            raise TypeError(f"CTCLoss: zero_infinity must be a bool, got {zero_infinity!r}")
        if backend not in recursions.BACKENDS:
            raise ValueError(f"CTCLoss: backend must be one of {recursions.BACKENDS}, got {backend!r}")
        self.blank = int(blank)
        self.zero_infinity = bool(zero_infinity)
        self.backend = backend

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        return ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=self.blank,
                        reduction=self.reduction, zero_infinity=self.zero_infinity, backend=self.backend)

    def extra_repr(self) -> str:
        parts = [f"blank={self.blank}"] if self.blank != 0 else []
        if self.reduction != "mean":
            parts.append(f"reduction={self.reduction!r}")
        if self.zero_infinity:
            parts.append("zero_infinity=True")
        if self.backend != "auto":
            parts.append(f"backend={self.backend!r}")
        return ", ".join(parts)
