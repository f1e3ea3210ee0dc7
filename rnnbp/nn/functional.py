"""Functional forms of the layers and losses (``rnnbp.nn.functional as F``), PyTorch's names."""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..autograd import random as _random
from ..autograd.ops import (  # noqa: F401  (re-exported)
    dropout, elu, gelu, leaky_relu, linear, logsumexp, relu, sigmoid, silu, softplus, tanh,
)
from ..autograd.ops import cast as _cast, clamp as _clamp, mul as _mul, norm as _norm, where as _where
from ..autograd.ops import log_softmax as _log_softmax, softmax as _softmax
from ..autograd.ops.promotion import check_dim as _check_dim
from ..autograd.ops.shape import Pad as _Pad
from ..autograd.ops.counting import one_hot  # noqa: F401  (re-exported)
from ..autograd.ops.embedding import EmbeddingLookup
from ..autograd.ops.likelihood import gaussian_nll_loss, poisson_nll_loss  # noqa: F401  (re-exported)
from ..autograd.ops.loss import (  # noqa: F401  (re-exported)
    binary_cross_entropy_with_logits, cross_entropy, huber_loss, l1_loss, mse_loss, nll_loss, smooth_l1_loss,
)
from ..autograd.tensor import Tensor


def _softmax_dim(input, dim, op: str) -> int:
    """``dim``, or PyTorch's deprecated implicit choice when it is None (0 for 0-, 1- and 3-D
    input, else 1), with PyTorch's warning."""
    if dim is not None:
        return dim
    ndim = input.ndim if isinstance(input, Tensor) else np.ndim(input)
    dim = 0 if ndim in (0, 1, 3) else 1
    warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the call to include "
                  f"dim={dim} as an argument.", UserWarning, stacklevel=3)
    return dim


def softmax(input, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """exp(x) / sum exp(x) along ``dim``, with PyTorch's ``F.softmax`` signature.

    ``dtype``: cast ``input`` to it before the softmax, as PyTorch does (float64 probabilities
    from float32 logits; the gradient comes back to ``input`` in its own dtype).
    Shape: any; the output has the input's shape.
    """
    return _softmax(input, _softmax_dim(input, dim, "softmax"), dtype)


def log_softmax(input, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """x - logsumexp(x) along ``dim``, with PyTorch's ``F.log_softmax`` signature; ``dtype`` as
    in :func:`softmax` (cast first)."""
    return _log_softmax(input, _softmax_dim(input, dim, "log_softmax"), dtype)


def gumbel_softmax(logits, tau: float = 1.0, hard: bool = False, eps: float = 1e-10, dim: int = -1, *,
                   generator=None) -> Tensor:
    """A differentiable sample from the categorical distribution of ``logits`` (Jang et al. 2017).

    y = softmax((logits + g) / tau) along ``dim``, with g ~ Gumbel(0, 1) drawn independently per
    element (``-log(Exponential(1))``, as PyTorch draws them) from ``generator`` (an rnnbp
    extension; default: the one ``manual_seed`` sets). A small ``tau`` gives nearly one-hot
    samples with high-variance gradients. ``hard=True`` returns the exact one-hot of the argmax
    in the forward pass and the soft sample's gradient in the backward (straight-through).
    ``eps`` is unused, as in PyTorch (kept for its signature).

    Args:
        logits : Tensor [shape=(*, C, *)], unnormalised log-probabilities, floating.
        tau : float > 0, the temperature.
    Shape: the output has the shape and dtype of ``logits``; it sums to 1 along ``dim``.
    """
    if not isinstance(logits, Tensor):
        raise TypeError(f"gumbel_softmax: logits must be a Tensor, got {type(logits).__name__}")
    if logits.dtype.kind != "f":
        raise TypeError(f"gumbel_softmax: logits must be floating point, got dtype {logits.dtype}")
    if not tau > 0:
        raise ValueError(f"gumbel_softmax: tau must be > 0, got {tau}")
    axis = _check_dim(dim, logits.ndim, tuple(logits.shape), "gumbel_softmax")
    rng = _random.get_generator(generator)
    with np.errstate(divide="ignore"):  # an exponential draw of exactly 0 gives +inf, as in PyTorch
        gumbels = -np.log(rng.standard_exponential(logits.shape)).astype(logits.dtype)
    y_soft = _softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    index = np.expand_dims(np.argmax(y_soft._data, axis=axis), axis)
    y_hard = np.zeros(logits.shape, dtype=logits.dtype)
    np.put_along_axis(y_hard, index, 1, axis=axis)
    return (y_soft - y_soft.detach()) + Tensor(y_hard)  # value y_hard, gradient y_soft's


def embedding(indices, weight, padding_idx: int | None = None):
    """Rows of ``weight`` (V, D) at integer ``indices`` (*) -> (*, D).

    Row ``padding_idx`` (negative counts from the end, as in PyTorch) gets no gradient.
    """
    idx = indices._data if isinstance(indices, Tensor) else indices
    return EmbeddingLookup.apply(np.asarray(idx), weight, padding_idx=padding_idx)


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12):
    """``input`` divided by its ``p``-norm along ``dim``, the norm clamped to at least ``eps``."""
    return input / _clamp(_norm(input, p, dim=dim, keepdim=True), min=eps)


def pad(input, pad, mode: str = "constant", value: float = 0.0):
    """Pad the trailing dims: ``pad`` = (last_left, last_right, second_last_left, ...), as PyTorch.

    Only ``mode='constant'`` with non-negative widths; the gradient is the unpadded part.
    """
    if mode != "constant":
        raise ValueError(f"pad: mode {mode!r} is not supported on rnnbp; only 'constant'")
    pad = tuple(int(w) for w in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: expected pairs of widths for at most {input.ndim} dims of shape "
                         f"{tuple(input.shape)}, got {pad}")
    if any(w < 0 for w in pad):
        raise ValueError(f"pad: negative widths (cropping) are not supported on rnnbp, got {pad}")
    pairs = [(0, 0)] * (input.ndim - len(pad) // 2) + [(pad[2 * k], pad[2 * k + 1]) for k in reversed(range(len(pad) // 2))]
    return _Pad.apply(input, widths=tuple(pairs), value=value)


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8):
    """Cosine of the angle between x1 and x2 along ``dim`` (broadcast together): each divided by its
    2-norm clamped to at least ``eps``, then the dot product, as PyTorch computes it."""
    a = x1 / _clamp(_norm(x1, 2, dim=dim, keepdim=True), min=eps)
    b = x2 / _clamp(_norm(x2, 2, dim=dim, keepdim=True), min=eps)
    return (a * b).sum(dim=dim)


def kl_div(input, target, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False):
    """KL divergence D(target || q) with ``input`` = log q: pointwise target (log target - input)
    (0 where target is 0), reduced by 'none' | 'sum' | 'mean' (over elements) | 'batchmean'
    (the sum over the batch size, input.shape[0]: the KL divergence's definition per sample).

    ``log_target=True`` takes ``target`` as log-probabilities too: exp(target) (target - input).
    Shape: input (N, *) of log-probabilities, target broadcastable to it; 'none' gives their
    broadcast shape, the others a scalar. ``size_average``/``reduce`` are PyTorch's deprecated
    spellings of ``reduction``.
    """
    if size_average is not None or reduce is not None:
        from .loss import _legacy_reduction

        reduction = _legacy_reduction("kl_div", size_average, reduce, "mean")
    if reduction not in ("none", "sum", "mean", "batchmean"):
        raise ValueError(f"kl_div: reduction must be 'none', 'sum', 'mean' or 'batchmean', got {reduction!r}")
    input = input if isinstance(input, Tensor) else Tensor(input)
    t = target if isinstance(target, Tensor) else Tensor(target)
    if _broadcast_or_none(tuple(input.shape), tuple(t.shape)) is None:
        raise ValueError(f"kl_div: input of shape {tuple(input.shape)} and target of shape {tuple(t.shape)} "
                         "do not broadcast; give target the input's shape (N, *)")
    if log_target:
        pointwise = t.exp() * (t - input)
    else:
        positive = t._data > 0
        safe_log = _where(positive, t, 1.0).log()
        pointwise = _where(positive, t * safe_log, 0.0) - t * input
    if reduction == "none":
        return pointwise
    if reduction == "sum":
        return pointwise.sum()
    if reduction == "mean":
        return pointwise.mean()
    return pointwise.sum() / (input.shape[0] if input.ndim else 1)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    """Normalise over the trailing ``normalized_shape`` axes, then scale and shift.

    Shape: x (*, *normalized_shape); weight, bias: normalized_shape.
    """
    normalized_shape = tuple(normalized_shape)
    if tuple(x.shape[x.ndim - len(normalized_shape):]) != normalized_shape:
        raise ValueError(
            f"layer_norm: input of shape {x.shape} does not end in normalized_shape {normalized_shape}"
        )
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None and tuple(param.shape) != normalized_shape:
            raise ValueError(
                f"layer_norm: {name} of shape {tuple(param.shape)} does not match normalized_shape "
                f"{normalized_shape}"
            )
    dims = tuple(range(x.ndim - len(normalized_shape), x.ndim))
    centred = x - x.mean(dim=dims, keepdim=True)
    var = (centred * centred).mean(dim=dims, keepdim=True)
    y = centred / (var + eps).sqrt()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def rms_norm(input, normalized_shape, weight=None, eps: float | None = None):
    """y = x / sqrt(mean(x^2) + eps) * weight over the trailing ``normalized_shape`` axes (Zhang &
    Sennrich 2019): layer norm without the centring and the bias, cheaper and as good in
    transformers.

    Args:
        normalized_shape : int or tuple of ints, the trailing dims to normalise over.
        weight : Tensor [shape=normalized_shape] or None.
        eps : float >= 0, or None for ``finfo(input.dtype).eps``, as PyTorch.
    Shape: input (*, *normalized_shape) -> the same.
    """
    if isinstance(normalized_shape, (int, np.integer)):
        normalized_shape = (int(normalized_shape),)
    normalized_shape = tuple(normalized_shape)
    if not isinstance(input, Tensor):
        raise TypeError(f"rms_norm: input must be a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"rms_norm: input must be floating point, got dtype {input.dtype}")
    if not normalized_shape or tuple(input.shape[input.ndim - len(normalized_shape):]) != normalized_shape \
            or len(normalized_shape) > input.ndim:
        raise ValueError(f"rms_norm: input of shape {tuple(input.shape)} does not end in normalized_shape "
                         f"{normalized_shape}")
    if weight is not None and tuple(weight.shape) != normalized_shape:
        raise ValueError(f"rms_norm: weight of shape {tuple(weight.shape)} does not match normalized_shape "
                         f"{normalized_shape}")
    if eps is None:
        eps = float(np.finfo(input.dtype).eps)
    dims = tuple(range(input.ndim - len(normalized_shape), input.ndim))
    y = input * ((input * input).mean(dim=dims, keepdim=True) + eps).rsqrt()
    return y if weight is None else y * weight


# ------------------------------------------------------------------ attention
def _mask_bias(mask, dtype: np.dtype, op: str, name: str, true_means_keep: bool):
    """An attention mask as an additive bias of ``dtype``: 0 where a key takes part, -inf where not.

    A bool mask's True keeps a key (``scaled_dot_product_attention``'s convention) or masks it
    out (``MultiheadAttention``'s and the Transformer layers'), as ``true_means_keep`` says. A
    float mask is the bias itself, cast to ``dtype`` so that a float64 mask never promotes float32
    attention; a float Tensor that requires grad stays in the graph. Returns None, an ndarray or
    a Tensor.
    """
    if mask is None:
        return None
    data = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    if data.dtype == np.bool_:
        keep = data if true_means_keep else ~data
        return np.where(keep, dtype.type(0), dtype.type(-np.inf))
    if data.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be a bool or floating-point mask, got dtype {data.dtype}")
    if isinstance(mask, Tensor) and mask.requires_grad:
        return _cast(mask, dtype)
    return data.astype(dtype, copy=False)


def _attend(query, key, value, bias=None, dropout_p: float = 0.0, scale: float | None = None,
            zero_masked_rows: bool = True):
    """(dropout(softmax(query key^T * scale + bias)) @ value, the weights): the attention both
    ``scaled_dot_product_attention`` and ``MultiheadAttention`` run, composed from ops.

    ``bias`` (ndarray or Tensor) broadcasts to the scores (*, L, S). A query whose every key is
    masked (a row of -inf) gets zero weights and gradients when ``zero_masked_rows`` (PyTorch's
    SDPA) and NaN otherwise (PyTorch's MultiheadAttention when it returns weights).
    Shape: query (*, L, E), key (*, S, E), value (*, S, Ev) -> (*, L, Ev) and (*, L, S).
    """
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    scores = (query @ key.transpose(-2, -1)) * scale  # (*, L, S)
    dead = None
    if bias is not None:
        scores = scores + bias
        if zero_masked_rows:
            dead = np.isneginf(bias._data if isinstance(bias, Tensor) else bias).all(axis=-1, keepdims=True)
            if dead.any():
                scores = _where(dead, 0.0, scores)  # keeps the softmax (and its backward) finite
            else:
                dead = None
    with np.errstate(invalid="ignore"):  # an all -inf row is NaN by design here, silently as in PyTorch
        weights = softmax(scores, dim=-1)
    if dead is not None:
        weights = _where(dead, 0.0, weights)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
    return weights @ value, weights


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, *, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(Q K^T * scale + mask) V (Vaswani et al. 2017), with PyTorch's arguments and masks.

    Args:
        query, key, value : Tensors of one floating dtype; batch dims broadcast.
        attn_mask : broadcastable to (*, L, S). bool: True means the key takes part (the
            opposite of MultiheadAttention's bool masks); float: added to the scores.
        dropout_p : float in [0, 1], applied to the weights on every call, as in PyTorch
            (pass ``p if self.training else 0.0``).
        is_causal : query i sees keys 0..i (upper-left aligned when L != S); not with attn_mask.
        scale : the score scale, 1/sqrt(E) by default.
        enable_gqa : let key and value have fewer heads (dim -3) than query, each shared by a
            group of query heads (grouped-query attention).

    Shape: query (*, L, E), key (*, S, E), value (*, S, Ev) -> (*, L, Ev).
    A query with every key masked gets zeros (and zero gradients), as in PyTorch, not NaN.
    """
    op = "scaled_dot_product_attention"
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} must have at least 2 dims (*, length, features), got shape {t.shape}")
    if not query.dtype == key.dtype == value.dtype or query.dtype.kind != "f":
        raise TypeError(
            f"{op}: query, key and value must have one floating dtype, got {query.dtype}, {key.dtype} and {value.dtype}"
        )
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(
            f"{op}: query of shape {query.shape} and key of shape {key.shape} must end in the same size E"
        )
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(
            f"{op}: key of shape {key.shape} and value of shape {value.shape} must have the same length S (dim -2)"
        )
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1], got {dropout_p}")
    if enable_gqa:
        key, value = (_repeat_heads(t, query, name, op) for t, name in ((key, "key"), (value, "value")))
    L, S = query.shape[-2], key.shape[-2]
    try:
        scores_shape = np.broadcast_shapes(query.shape[:-2], key.shape[:-2], value.shape[:-2]) + (L, S)
    except ValueError:
        raise ValueError(
            f"{op}: the batch dims of query {query.shape}, key {key.shape} and value {value.shape} do not broadcast"
        ) from None
    dtype = query.dtype
    bias = _mask_bias(attn_mask, dtype, op, "attn_mask", true_means_keep=True)
    if is_causal:
        if attn_mask is not None:
            raise ValueError(f"{op}: pass attn_mask or is_causal=True, not both")
        bias = np.where(np.tril(np.ones((L, S), dtype=bool)), dtype.type(0), dtype.type(-np.inf))
    if bias is not None and _broadcast_or_none(np.shape(bias), scores_shape) != scores_shape:
        raise ValueError(
            f"{op}: attn_mask of shape {tuple(np.shape(bias))} does not broadcast to the attention weights' "
            f"shape {scores_shape} (*, L, S)"
        )
    return _attend(query, key, value, bias, dropout_p, scale)[0]


def _broadcast_or_none(a: tuple, b: tuple):
    try:
        return np.broadcast_shapes(a, b)
    except ValueError:
        return None


def _repeat_heads(t, query, name: str, op: str):
    """key/value (*, Hk, S, E) with each head repeated for its group of query heads -> (*, Hq, S, E)."""
    if t.ndim < 3 or query.ndim < 3 or query.shape[-3] % t.shape[-3]:
        raise ValueError(
            f"{op}: enable_gqa needs query (*, Hq, L, E) and {name} (*, Hk, S, E) with Hq a multiple of Hk, "
            f"got shapes {query.shape} and {t.shape}"
        )
    group = query.shape[-3] // t.shape[-3]
    lead, (heads, length, features) = t.shape[:-3], t.shape[-3:]
    t = t.unsqueeze(-3).expand(*lead, heads, group, length, features)
    return t.reshape(*lead, heads * group, length, features)


# Layers whose functional forms live beside their modules (normalization.py imports this file first).
from .dropout import dropout1d, dropout2d  # noqa: E402,F401
from .normalization import batch_norm  # noqa: E402,F401
from .ctc import ctc_loss  # noqa: E402,F401  (re-exported)


def prelu(input, weight):
    """x for x > 0, else weight * x, with one weight for all channels or one per channel (dim 1, or dim 0
    of a 1-D input), as ``torch.nn.functional.prelu``."""
    if weight.numel() > 1:
        channel = 0 if input.ndim == 1 else 1
        if input.ndim == 0 or input.shape[channel] != weight.numel():
            raise ValueError(f"prelu: {weight.numel()} weights for an input of shape {tuple(input.shape)} "
                             "(one per channel, dim 1)")
        weight = weight.reshape((-1,) + (1,) * (input.ndim - channel - 1))
    return _where(input > 0, input, _mul(weight, input))
