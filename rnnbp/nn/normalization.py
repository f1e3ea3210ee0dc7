"""Layer normalisation (Ba et al. 2016), composed from primitive ops."""
from __future__ import annotations

import numpy as np

from ..autograd.tensor import DEFAULT_DTYPE
from . import functional as F
from .module import Module
from .parameter import Parameter


class LayerNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last ``len(normalized_shape)`` axes.

    ``var`` is the biased (population) variance, as in PyTorch.
    Shape: input (*, *normalized_shape) -> same; ``weight``, ``bias`` of ``normalized_shape``
    (ones and zeros at start).
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 dtype=None):
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape, self.eps = tuple(normalized_shape), eps
        self.elementwise_affine = elementwise_affine
        dtype = np.dtype(dtype or DEFAULT_DTYPE)
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
