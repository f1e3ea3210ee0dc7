"""Loss modules with PyTorch's names and constructor arguments, over the fused functional losses.

Each module stores its options and calls the function of the same name in
``rnnbp.autograd.ops.loss``; class weights are buffers, so they appear in
``state_dict()`` and follow ``.to(dtype)`` as in PyTorch.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..autograd.ops import likelihood as _LL, loss as _L
from ..autograd.dtypes import default_dtype
from ..autograd.tensor import Tensor
from .functional import kl_div as _kl_div
from .module import Module


def _legacy_reduction(name: str, size_average, reduce, reduction: str) -> str:
    """PyTorch's rule for the deprecated ``size_average`` / ``reduce`` arguments."""
    if size_average is None and reduce is None:
        _L._check_reduction(name, reduction)
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    result = "none" if not reduce else ("mean" if size_average else "sum")
    warnings.warn(
        f"{name}: size_average and reduce are deprecated; use reduction={result!r} instead",
        DeprecationWarning, stacklevel=3,
    )
    return result


def _buffer_array(name: str, arg: str, value, per_class: bool = False):
    """A weight argument as an array for ``register_buffer`` (integers become the default floating dtype)."""
    if value is None:
        return None
    arr = Tensor(value._data if isinstance(value, Tensor) else value)._data
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{name}: {arg} must be a numeric array, got dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(default_dtype())
    if per_class and arr.ndim != 1:
        raise ValueError(f"{name}: {arg} must be 1-D with one value per class, got shape {arr.shape}")
    return arr


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        self.reduction = _legacy_reduction(type(self).__name__, size_average, reduce, reduction)

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class L1Loss(_Loss):
    """Mean absolute error |input - target|. Shape: input and target the same shape (*);
    output scalar, or (*) for ``reduction='none'``."""

    def forward(self, input, target):
        return _L.l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error (input - target)^2. Shape: input and target the same shape (*);
    output scalar, or (*) for ``reduction='none'``."""

    def forward(self, input, target):
        return _L.mse_loss(input, target, reduction=self.reduction)


class HuberLoss(_Loss):
    """Huber loss: 0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere, d = input - target.

    Args:
        reduction : 'none' | 'mean' | 'sum'.
        delta : float > 0, where the loss turns from quadratic to linear.

    Shape: input and target the same shape (*); output scalar, or (*) for ``reduction='none'``.
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction=reduction)
        self.delta = _L._threshold("HuberLoss", "delta", delta, allow_zero=False)

    def forward(self, input, target):
        return _L.huber_loss(input, target, reduction=self.reduction, delta=self.delta)

    def extra_repr(self) -> str:
        parts = [super().extra_repr()] if self.reduction != "mean" else []
        if self.delta != 1.0:
            parts.append(f"delta={self.delta}")
        return ", ".join(parts)


class SmoothL1Loss(_Loss):
    """Smooth L1 loss: 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere, d = input - target.

    Args:
        reduction : 'none' | 'mean' | 'sum'.
        beta : float >= 0, where the loss turns from quadratic to linear; 0 gives L1 loss.

    Shape: input and target the same shape (*); output scalar, or (*) for ``reduction='none'``.
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = _L._threshold("SmoothL1Loss", "beta", beta, allow_zero=True)

    def forward(self, input, target):
        return _L.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)

    def extra_repr(self) -> str:
        parts = [super().extra_repr()] if self.reduction != "mean" else []
        if self.beta != 1.0:
            parts.append(f"beta={self.beta}")
        return ", ".join(parts)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities against class indices.

    Args:
        weight: optional [shape=(C,)] per-class rescaling, kept as the buffer ``weight``.
        ignore_index : int. Targets with this value add nothing to the loss or the mean.
        reduction : 'none' | 'mean' | 'sum'. 'mean' divides by sum of weight[target].

    Shape: input (N, C), (C,) or (N, C, d1, ...); target (N,), () or (N, d1, ...) integers.
    """

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", _buffer_array("NLLLoss", "weight", weight, per_class=True))
        self.ignore_index = int(ignore_index)

    def forward(self, input, target):
        return _L.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                           reduction=self.reduction)

    def extra_repr(self) -> str:
        parts = [super().extra_repr()] if self.reduction != "mean" else []
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        return ", ".join(parts)


class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits against class indices or class probabilities (log-softmax fused in).

    Args:
        weight: optional [shape=(C,)] per-class rescaling, kept as the buffer ``weight``.
        ignore_index : int. Class-index targets with this value add nothing.
        reduction : 'none' | 'mean' | 'sum'. With class indices 'mean' divides by
            sum of weight[target] over non-ignored targets, as PyTorch does.
        label_smoothing : float in [0, 1]. Mixes the target with the uniform distribution.

    Shape: input (N, C), (C,) or (N, C, d1, ...); target class indices (N,), () or
    (N, d1, ...), or probabilities of the input's shape. See
    :func:`rnnbp.autograd.ops.loss.cross_entropy`.
    """

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(size_average, reduce, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.register_buffer("weight", _buffer_array("CrossEntropyLoss", "weight", weight, per_class=True))
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)

    def forward(self, input, target):
        return _L.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                                reduction=self.reduction, label_smoothing=self.label_smoothing)

    def extra_repr(self) -> str:
        parts = [super().extra_repr()] if self.reduction != "mean" else []
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid plus binary cross-entropy in one stable op.

    Args:
        weight: optional per-element rescaling broadcastable to the input, buffer ``weight``.
        reduction : 'none' | 'mean' | 'sum'.
        pos_weight: optional weight of positive examples broadcastable to the input
            (usually [shape=(C,)]), buffer ``pos_weight``.

    Shape: input and target the same shape (*); output scalar, or (*) for 'none'.
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean",
                 pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", _buffer_array("BCEWithLogitsLoss", "weight", weight))
        self.register_buffer("pos_weight", _buffer_array("BCEWithLogitsLoss", "pos_weight", pos_weight))

    def forward(self, input, target):
        return _L.binary_cross_entropy_with_logits(input, target, weight=self.weight,
                                                   reduction=self.reduction, pos_weight=self.pos_weight)


class GaussianNLLLoss(_Loss):
    """Gaussian negative log-likelihood of the target under N(input, var), for a regression that
    predicts its own variance: 0.5 (log var + (input - target)^2 / var) [+ 0.5 log(2 pi)].

    Args (keyword-only, as in PyTorch):
        full : bool, add the constant term.
        eps : float, the smallest variance used (var is clamped to it; gradients pass through).
        reduction : 'none' | 'mean' | 'sum'.

    Shape: input (N, *) or (*); target broadcastable to it; var of input's shape, of it without the
    last dim, or with one dim of size 1 (or a number); output scalar, or the broadcast shape for
    'none'. See :func:`rnnbp.autograd.ops.likelihood.gaussian_nll_loss`.
    """

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
        super().__init__(None, None, reduction)
        self.full = full
        self.eps = eps

    def forward(self, input, target, var):
        return _LL.gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps, reduction=self.reduction)

    def extra_repr(self) -> str:
        parts = [super().extra_repr()] if self.reduction != "mean" else []
        if self.full:
            parts.append("full=True")
        if self.eps != 1e-6:
            parts.append(f"eps={self.eps}")
        return ", ".join(parts)


class PoissonNLLLoss(_Loss):
    """Poisson negative log-likelihood of counts: exp(input) - target * input for a log-rate input
    (``log_input=True``), else input - target * log(input + eps); ``full`` adds Stirling's
    approximation of log(target!) where target > 1.

    Args:
        log_input : bool, whether the input is the log of the rate.
        full : bool, add the Stirling term.
        size_average, reduce : deprecated, as in PyTorch.
        eps : float, keeps log(input + eps) finite (``log_input=False``).
        reduction : 'none' | 'mean' | 'sum'.

    Shape: input (*); target broadcastable to it; output scalar, or the broadcast shape for 'none'.
    """

    def __init__(self, log_input: bool = True, full: bool = False, size_average=None, eps: float = 1e-8,
                 reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, log_input, target):
        return _LL.poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full, eps=self.eps,
                                    reduction=self.reduction)

    def extra_repr(self) -> str:
        parts = [super().extra_repr()] if self.reduction != "mean" else []
        if not self.log_input:
            parts.append("log_input=False")
        if self.full:
            parts.append("full=True")
        if self.eps != 1e-8:
            parts.append(f"eps={self.eps}")
        return ", ".join(parts)


class KLDivLoss(Module):
    """Kullback-Leibler divergence D(target || q) with the input as log q, as ``F.kl_div``.

    Args:
        reduction : 'none' | 'mean' (over all elements) | 'sum' | 'batchmean' (over the batch
            size N: the mathematical KL divergence per sample, what most callers want).
        log_target : bool, whether the target is given as log-probabilities.
    Shape: input (N, *) of log-probabilities, target of the same shape; output scalar, or
    (N, *) for ``reduction='none'``.
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False):
        super().__init__()
        if size_average is not None or reduce is not None:
            reduction = _legacy_reduction("KLDivLoss", size_average, reduce, "mean")
        if reduction not in ("none", "sum", "mean", "batchmean"):
            raise ValueError(f"KLDivLoss: reduction must be 'none', 'sum', 'mean' or 'batchmean', got {reduction!r}")
        self.reduction, self.log_target = reduction, bool(log_target)

    def forward(self, input, target):
        return _kl_div(input, target, reduction=self.reduction, log_target=self.log_target)

    def extra_repr(self) -> str:
        parts = [] if self.reduction == "mean" else [f"reduction={self.reduction!r}"]
        return ", ".join(parts + (["log_target=True"] if self.log_target else []))
