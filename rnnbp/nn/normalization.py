"""Layer normalisation (Ba et al. 2016), RMS normalisation (Zhang & Sennrich 2019) and batch
normalisation (Ioffe & Szegedy 2015), composed from ops."""
from __future__ import annotations

import numpy as np

from ..autograd.device import as_device
from ..autograd.dtypes import as_dtype
from ..autograd.tensor import Tensor
from ..autograd.dtypes import default_dtype
from ..validation import check_int
from . import functional as F
from . import init
from ..autograd.device import as_device
from .module import Module
from .parameter import Parameter


class LayerNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last ``len(normalized_shape)`` axes.

    ``var`` is the biased (population) variance, as in PyTorch.
    Shape: input (*, *normalized_shape) -> same; ``weight``, ``bias`` of ``normalized_shape``
    (ones and zeros at start).
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        as_device(device)  # the CPU: anything else is refused by name
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape, self.eps = tuple(normalized_shape), eps
        self.elementwise_affine = elementwise_affine
        dtype = np.dtype(dtype or default_dtype())
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class RMSNorm(Module):
    """y = x / sqrt(mean(x^2) + eps) * weight over the last ``len(normalized_shape)`` axes (Zhang &
    Sennrich 2019), PyTorch 2.4's ``nn.RMSNorm``: layer norm without centring or bias.

    Args:
        normalized_shape : int or tuple of ints, the trailing dims to normalise over.
        eps : float >= 0, or None for ``finfo(x.dtype).eps`` at each call.
        elementwise_affine : bool, whether to learn ``weight`` (ones at start).
    Shape: input (*, *normalized_shape) -> same; ``weight`` of ``normalized_shape``.
    """

    def __init__(self, normalized_shape, eps: float | None = None, elementwise_affine: bool = True,
                 device=None, dtype=None):
        super().__init__()
        as_device(device)  # the CPU: anything else is refused by name
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(int(n) for n in normalized_shape)
        if eps is not None and not eps >= 0:
            raise ValueError(f"RMSNorm: eps must be >= 0 or None, got {eps}")
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=np.dtype(dtype or default_dtype())))
        else:
            self.register_parameter("weight", None)

    def forward(self, x):
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


# ------------------------------------------------------------------ batch normalisation
def _array(buffer) -> np.ndarray:
    return buffer._data if isinstance(buffer, Tensor) else buffer


def _as_stat(buffer, shape: tuple) -> Tensor:
    """A running statistic (C,) as a constant Tensor of ``shape`` (1, C, 1, ...) for broadcasting."""
    return buffer.reshape(shape) if isinstance(buffer, Tensor) else Tensor(np.asarray(buffer).reshape(shape))


def _update_running(buffer, batch_stat: np.ndarray, factor: float) -> None:
    """buffer <- (1 - factor) * buffer + factor * batch_stat, in place (the buffer's own memory and dtype)."""
    data = _array(buffer)
    data *= 1.0 - factor
    data += factor * batch_stat.reshape(data.shape)
    if isinstance(buffer, Tensor):
        buffer._version += 1


def _values_per_channel(input, op: str) -> int:
    """N * (product of the dims after C): how many values each channel's batch statistics average."""
    n = input.numel() // input.shape[1]
    if n <= 1:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, got input of shape "
                         f"{tuple(input.shape)}")
    return n


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Normalise each channel (dim 1) over the batch and every dim after it, then scale and shift.

    Training (``training=True``): y = (x - mean_B) / sqrt(var_B + eps) * weight + bias with the
    batch's mean and biased variance per channel; if given, the running statistics are updated
    in place: running = (1 - momentum) * running + momentum * stat, the variance entering
    unbiased (var_B * n / (n - 1), n values per channel), as in PyTorch.
    Otherwise: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias.
    Gradients flow to x, weight and bias (composed from ops, so through mean_B and var_B too).

    Shape: input (N, C, *); running_mean, running_var, weight, bias (C,) (or None).
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of shape (N, C, *) with at least 2 dims, "
                         f"got shape {tuple(input.shape)}")
    C = input.shape[1]
    shape = (1, C) + (1,) * (input.ndim - 2)  # broadcasts a (C,) statistic over (N, C, *)
    for name, value in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                        ("bias", bias)):
        if value is not None and tuple(value.shape) != (C,):
            raise ValueError(f"batch_norm: {name} of shape {tuple(value.shape)} does not match the {C} channels of "
                             f"input of shape {tuple(input.shape)}; expected ({C},)")
    if training:
        n = _values_per_channel(input, "batch_norm")
        dims = (0,) + tuple(range(2, input.ndim))
        mean = input.mean(dim=dims, keepdim=True)  # (1, C, 1...)
        centred = input - mean  # (N, C, *)
        var = (centred * centred).mean(dim=dims, keepdim=True)  # (1, C, 1...), biased
        if running_mean is not None:
            _update_running(running_mean, mean._data, momentum)
        if running_var is not None:
            _update_running(running_var, var._data * (n / (n - 1)), momentum)
        y = centred * (var + eps).rsqrt()
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are needed when training=False")
        y = (input - _as_stat(running_mean, shape)) * (_as_stat(running_var, shape) + eps).rsqrt()
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y


class _BatchNorm(Module):
    """Batch normalisation (Ioffe & Szegedy 2015) over dim 1; subclasses say which input ranks they take.

    Args:
        num_features : int > 0, C, the channels.
        eps : added to the variance, for stability.
        momentum : weight of the newest batch in the running statistics, or None for their
            cumulative average (momentum 1 / num_batches_tracked).
        affine : learn ``weight`` (ones at start) and ``bias`` (zeros) of shape (C,).
        track_running_stats : keep ``running_mean`` (zeros at start), ``running_var`` (ones) and
            ``num_batches_tracked`` buffers, used in eval mode; if False, always normalise with the
            batch's statistics (the buffers are None).
        device : accepted for PyTorch programs; must be the CPU.
        dtype : dtype of the parameters and running statistics (float32 by default).
        bias : (keyword) with ``affine``, whether to learn ``bias``.

    Training mode normalises with the batch's mean and biased variance and updates the running
    statistics with the unbiased variance; eval mode normalises with the running statistics.
    The buffers are Tensors (``bn.running_mean``), updated in place, saved in ``state_dict``.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        op = type(self).__name__
        check_int(op, "num_features", num_features)
        if not isinstance(eps, (int, float, np.floating)) or not eps >= 0:
            raise ValueError(f"{op}: eps must be a non-negative number, got {eps!r}")
        if momentum is not None and (not isinstance(momentum, (int, float, np.floating)) or not 0 <= momentum <= 1):
            raise ValueError(f"{op}: momentum must be a number in [0, 1] or None (cumulative average), "
                             f"got {momentum!r}")
        as_device(device)
        dtype = as_dtype(dtype) if dtype is not None else default_dtype()
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        if self.affine:
            self.weight = Parameter(np.ones(self.num_features, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.num_features, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(self.num_features, dtype=dtype)))
            self.register_buffer("running_var", Tensor(np.ones(self.num_features, dtype=dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked."""
        if self.track_running_stats:
            for name, value in (("running_mean", 0), ("running_var", 1), ("num_batches_tracked", 0)):
                buffer = getattr(self, name)
                _array(buffer)[...] = value
                if isinstance(buffer, Tensor):
                    buffer._version += 1

    def reset_parameters(self) -> None:
        """Reset the running statistics, and ``weight`` to ones and ``bias`` to zeros."""
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _check_input_dim(self, x) -> None:
        raise NotImplementedError

    def forward(self, x):
        self._check_input_dim(x)
        dtype = np.dtype(getattr(x, "dtype", None) or np.asarray(x).dtype)
        if dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}: expected a floating-point input, got {dtype} of shape "
                            f"{tuple(x.shape)}; cast it with .float()")
        if self.training:
            _values_per_channel(x, type(self).__name__)  # before counting the batch
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            _array(self.num_batches_tracked)[...] += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(_array(self.num_batches_tracked))
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        keep_stats = not self.training or self.track_running_stats
        return batch_norm(x, self.running_mean if keep_stats else None, self.running_var if keep_stats else None,
                          self.weight, self.bias, use_batch_stats, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) features or (N, C, L) sequences, per channel C.

    y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias, the statistics per channel over N
    (and L); see :class:`_BatchNorm` for the arguments, buffers and train/eval behaviour.

    Shape: input (N, C) or (N, C, L) -> same shape; C = num_features.
    """

    def _check_input_dim(self, x) -> None:
        shape = tuple(x.shape)
        C = self.num_features
        if len(shape) not in (2, 3) or shape[1] != C:
            raise ValueError(f"BatchNorm1d: expected input of shape (N, {C}) or (N, {C}, L) (num_features={C}), "
                             f"got shape {shape}")
