"""Linear (affine) layer, and the shape-only Identity and Flatten."""
from __future__ import annotations

import math

import numpy as np

from ..autograd.dtypes import default_dtype
from ..validation import check_int
from . import functional as F
from . import init
from ..autograd.device import as_device
from .module import Module
from .parameter import Parameter


class Linear(Module):
    """y = x W^T + b.

    Args:
        in_features : int > 0, out_features : int > 0
        bias : whether to learn an additive bias.
        dtype : parameter dtype (float32 by default).
        generator : optional ``np.random.Generator`` for the initialisation.

    Shape: input (*, H_in) -> output (*, H_out); ``weight`` (H_out, H_in), ``bias`` (H_out,).
    Initialisation (PyTorch's): W and b ~ U(-1/sqrt(H_in), 1/sqrt(H_in)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None,
                 generator=None):
        super().__init__()
        as_device(device)  # the CPU: anything else is refused by name
        in_features = check_int("Linear", "in_features", in_features)
        out_features = check_int("Linear", "out_features", out_features)
        self.in_features, self.out_features = in_features, out_features
        dtype = np.dtype(dtype or default_dtype())
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        # kaiming_uniform_(a=sqrt(5)) is PyTorch's way of writing U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        init.kaiming_uniform_(self.weight, a=math.sqrt(5), generator=generator)
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, x):
        params = self._parameters  # where weight and bias live; quicker than self.weight's fallback lookup
        if type(self) is Linear and "weight" in params and "bias" in params:  # a subclass may define them otherwise
            return F.linear(x, params["weight"], params["bias"])
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """Returns its input unchanged (a placeholder in a Sequential)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """Flattens dimensions ``start_dim`` to ``end_dim`` into one. Shape: (N, *dims) -> (N, prod(dims))."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
