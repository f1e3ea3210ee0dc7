"""Functional forms of the layers and losses (``rnnbp.nn.functional as F``), PyTorch's names."""
from __future__ import annotations

import numpy as np

from ..autograd.ops import (  # noqa: F401  (re-exported)
    dropout, gelu, leaky_relu, linear, log_softmax, logsumexp, relu, sigmoid, softmax, softplus, tanh,
)
from ..autograd.ops.embedding import EmbeddingLookup
from ..autograd.ops.loss import (  # noqa: F401  (re-exported)
    binary_cross_entropy_with_logits, cross_entropy, l1_loss, mse_loss, nll_loss,
)
from ..autograd.tensor import Tensor


def embedding(indices, weight, padding_idx: int | None = None):
    """Rows of ``weight`` (V, D) at integer ``indices`` (*) -> (*, D).

    Row ``padding_idx`` (negative counts from the end, as in PyTorch) gets no gradient.
    """
    idx = indices.data if isinstance(indices, Tensor) else indices
    return EmbeddingLookup.apply(np.asarray(idx), weight, padding_idx=padding_idx)


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
