"""Tensor: an ndarray, its gradient, and a link to the op that made it.

The Tensor knows no calculus: arithmetic and methods dispatch to the ops in
``autograd/ops``, and ``backward`` hands the walk to ``engine.backward``.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from . import engine, grad_mode

DEFAULT_DTYPE = np.dtype(np.float32)

_NUMBER_TYPES = (int, float, bool, np.generic)

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def _as_array(data, dtype=None) -> np.ndarray:
    """Convert user data to an ndarray: ndarrays keep their dtype, Python floats become float32."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        return data
    array = np.asarray(data)
    if array.dtype == np.float64 and not isinstance(data, np.generic):
        array = array.astype(DEFAULT_DTYPE)
    return array


class Tensor:
    """An n-dimensional array that records the ops applied to it for backpropagation.

    Args:
        data: array-like. NumPy arrays keep their dtype; Python floats give float32.
        requires_grad: whether ``backward`` should fill ``.grad`` (floating dtypes only).
        dtype: optional dtype to convert ``data`` to.
    """

    # _version counts in-place writes to ``data`` (optimizer steps, nn.init, load_state_dict),
    # so that backward can refuse arrays that changed after an op saved them.
    __slots__ = ("data", "grad", "_requires_grad", "_node", "_out_index", "_nondiff_op", "_version", "__weakref__")
    # Makes ``ndarray + Tensor`` call Tensor.__radd__ instead of looping over the array.
    __array_priority__ = 1000
    __hash__ = object.__hash__

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _as_array(data, dtype)
        self.grad = None
        self._node = None
        self._out_index = 0
        self._nondiff_op = None
        self._version = 0
        self._requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data: np.ndarray, node=None, index: int = 0) -> "Tensor":
        """Wrap an op's output without the checks of ``__init__`` (hot path)."""
        t = object.__new__(Tensor)
        t.data = data
        t.grad = None
        t._node = node
        t._out_index = index
        t._nondiff_op = None
        t._version = 0
        t._requires_grad = node is not None
        return t

    # ------------------------------------------------------------------ autograd
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set whether this leaf tensor records gradients (in place); returns self."""
        if self._node is not None and not requires_grad:
            raise RuntimeError(
                "requires_grad_: you can only change requires_grad of leaf tensors; use detach() instead"
            )
        if requires_grad and self.data.dtype.kind not in "fc":
            raise TypeError(
                f"requires_grad_: only floating-point tensors can require gradients, got dtype {self.data.dtype}"
            )
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        """The node that made this tensor, or None for a leaf."""
        return self._node

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if self._node is None:
            return
        if self._node.retained is None:
            self._node.retained = {}
        self._node.retained[self._out_index] = self

    def detach(self) -> "Tensor":
        """A tensor sharing this one's data, cut from the graph."""
        return Tensor._make(self.data)

    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf), weighted by ``gradient``, into every leaf's ``.grad``.

        Args:
            gradient: dL/dself, same shape as self; may be omitted for one-element tensors.
            retain_graph: keep the graph's saved arrays so backward can run through it again.
        """
        if not self._requires_grad:
            if self._nondiff_op is not None:
                raise RuntimeError(
                    f"backward: {self._nondiff_op} is not differentiable; its output has no gradient"
                )
            raise RuntimeError("backward: this tensor does not require grad and has no grad_fn")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be implicitly created only for one-element outputs, "
                    f"got shape {self.data.shape}; pass gradient="
                )
            gradient = engine.grad_like(self.data)
        else:
            gradient = np.array(_as_array(gradient), dtype=self.data.dtype)
            if gradient.shape != self.data.shape:
                raise ValueError(
                    f"backward: gradient has shape {gradient.shape} but the tensor has shape {self.data.shape}"
                )
        if self._node is None:
            engine._accumulate_leaf(self, gradient, set())
            return
        engine.backward(self, gradient, retain_graph=retain_graph)

    # ------------------------------------------------------------- array facts
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def dim(self) -> int:
        return self.data.ndim

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def item(self):
        return self.data.item()

    def numpy(self) -> np.ndarray:
        return self.data

    def tolist(self):
        return self.data.tolist()

    def __array__(self, dtype=None, copy=None):
        # np.array(t) must not hand out the live buffer (a later optimizer step would change it).
        array = self.data if dtype is None else self.data.astype(dtype, copy=False)
        if copy is False and array is not self.data:
            raise ValueError("a copy is needed to convert this tensor to the requested dtype")
        return array.copy() if copy and array is self.data else array

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extras = []
        if self.data.dtype != DEFAULT_DTYPE:
            extras.append(f"dtype={self.data.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn={self._node!r}")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # ------------------------------------------------------------------- dtype
    def to(self, dtype) -> "Tensor":
        """Cast to ``dtype``: differentiable between float types, a constant otherwise."""
        return _ops.cast(self, dtype)

    astype = to

    def float(self) -> "Tensor":
        return self.to(np.float32)

    def double(self) -> "Tensor":
        return self.to(np.float64)

    def long(self) -> "Tensor":
        return self.to(np.int64)

    def int(self) -> "Tensor":
        return self.to(np.int32)

    def bool(self) -> "Tensor":
        return self.to(np.bool_)

    # -------------------------------------------------------------- arithmetic
    def __add__(self, other):
        return _ops.add(self, other)

    def __radd__(self, other):
        return _ops.add(other, self)

    def __sub__(self, other):
        return _ops.sub(self, other)

    def __rsub__(self, other):
        return _ops.sub(other, self)

    def __mul__(self, other):
        return _ops.mul(self, other)

    def __rmul__(self, other):
        return _ops.mul(other, self)

    def __truediv__(self, other):
        return _ops.div(self, other)

    def __rtruediv__(self, other):
        return _ops.div(other, self)

    def __pow__(self, other):
        return _ops.pow(self, other)

    def __rpow__(self, other):
        return _ops.pow(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __abs__(self):
        return _ops.abs(self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    # Comparisons give constant boolean tensors (not differentiable).
    def __lt__(self, other):
        return _ops.compare("lt", self, other)

    def __le__(self, other):
        return _ops.compare("le", self, other)

    def __gt__(self, other):
        return _ops.compare("gt", self, other)

    def __ge__(self, other):
        return _ops.compare("ge", self, other)

    def __eq__(self, other):
        return _ops.compare("eq", self, other)

    def __ne__(self, other):
        return _ops.compare("ne", self, other)


class _OpsNamespace:
    """Late-bound access to ``autograd.ops`` (which imports this module)."""

    def __getattr__(self, name):
        from . import ops

        value = getattr(ops, name)
        setattr(self, name, value)
        return value


_ops = _OpsNamespace()
