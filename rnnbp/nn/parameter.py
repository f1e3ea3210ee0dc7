"""Parameter: a Tensor that a Module registers as learnable."""
from __future__ import annotations

import numpy as np

from ..autograd.dtypes import default_dtype
from ..autograd.tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad and registers itself when assigned to a Module attribute.

    Args:
        data: array-like or Tensor; its array is used as is (no copy).
        requires_grad: default True.
    """

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:  # PyTorch's Parameter(): an empty one
            data = np.empty(0, default_dtype())
        super().__init__(data._data if isinstance(data, Tensor) else data)
        if self._data.dtype.kind != "f":
            self._data = self._data.astype(default_dtype())
        self.requires_grad_(requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
