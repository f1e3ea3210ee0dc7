"""Tensor: an ndarray, its gradient, and a link to the op that made it; its whole method surface.

The Tensor knows no calculus: every method below is one call into the ops
(``autograd/ops``), and ``backward`` hands the walk to ``engine.backward``.

Two names matter for speed and for PyTorch's semantics:

* ``t._data`` is the ndarray underneath; rnnbp's ops, kernels, optimizers and clipping work on it
  directly. ``t.data`` is PyTorch's: a Tensor sharing that memory, outside autograd, so
  ``p.data.add_(p.grad, alpha=-lr)`` updates ``p`` in place without recording anything.
* ``t._grad`` is the gradient ndarray the graph walk accumulates into; ``t.grad`` is PyTorch's:
  None until a backward, then a Tensor sharing that array (``p.grad.zero_()`` zeroes it).

In-place methods (``add_``, ``zero_``, ``x[i] = v``, ...) follow PyTorch's rules: they bump the
version counter (a backward through a node that saved the old values then refuses to run);
a leaf that requires grad may only be changed under ``no_grad()``; on a tensor inside a
recorded graph they record the op and the tensor takes the result's place in the graph.
"""
from __future__ import annotations

from collections import namedtuple

import weakref

import numpy as np

from . import engine, grad_mode, printing, views
from . import random as _random
from .device import CPU, DEVICE_TYPES, as_device, refuse_cuda
from .dtypes import TYPE_NAMES, as_dtype, default_dtype


_NUMBER_TYPES = (int, float, bool, np.generic)

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


class Size(tuple):
    """``torch.Size``: the shape tuple ``Tensor.size()`` returns."""

    def numel(self) -> int:
        """The number of elements a tensor of this shape holds."""
        n = 1
        for d in self:
            n *= d
        return n

    def __repr__(self) -> str:
        return f"rnnbp.Size({list(self)})"


def _as_array(data, dtype=None) -> np.ndarray:
    """Convert user data to an ndarray: ndarrays keep their dtype, Python floats become the default dtype.

    rnnbp is real-valued: complex, string and object data are refused here, naming what came in
    (complex products would need conjugated gradients, which no op implements).
    """
    if isinstance(data, Tensor):
        data = data._data
    if data is None:
        raise TypeError("Tensor: got None; expected a number, a (nested) list of numbers or an array")
    try:
        if dtype is not None:
            array = np.asarray(data, dtype=dtype)
        elif isinstance(data, np.ndarray):
            array = data
        else:
            array = np.asarray(data)
            if array.dtype == np.float64 and not isinstance(data, np.generic):
                array = array.astype(default_dtype())
    except (ValueError, TypeError) as exc:
        raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__}: {exc}") from None
    if array.dtype.kind not in "biuf":
        what = {"c": "complex", "U": "string", "S": "bytes", "O": "object"}.get(array.dtype.kind, "non-numeric")
        raise TypeError(
            f"Tensor: rnnbp tensors are real-valued (bool, integer or float); got {what} data of dtype {array.dtype}"
        )
    return array


class Tensor:
    """An n-dimensional array that records the ops applied to it for backpropagation.

    Args:
        data: array-like. NumPy arrays keep their dtype; Python floats give float32.
        requires_grad: whether ``backward`` should fill ``.grad`` (floating dtypes only).
        dtype: optional dtype to convert ``data`` to (``rnnbp.float64``, ``'int64'``, ...).
    """

    # _version counts in-place writes to ``_data`` (optimizer steps, nn.init, add_, x[i] = v),
    # so that backward can refuse arrays that changed after an op saved them.
    # ``_base`` is None but on a ``detach()``ed tensor or a view ``x[i, 1:3]``: a weak reference to the
    # tensor it shares memory with, whose version its in-place changes bump too (weak: a kept
    # ``loss.detach()`` must not keep the graph). ``_view`` and ``_views`` are None but on a view and on
    # a tensor views were taken of: how a view keeps showing its base and writes into it (``views``).
    # (All three are read with getattr where a tensor made by ``__new__`` alone, as unpickling may,
    # could reach; set, they cost a plain attribute read.)
    # ``_inference`` is set (True) only on a tensor made in inference mode; read it with getattr.
    # ``_hooks`` is set by ``requires_grad_``: None, or the leaf's backward hooks (``register_hook``); the walk
    # reads it with getattr on each edge into a leaf (fast when set).
    __slots__ = ("_data", "_grad", "_requires_grad", "_node", "_out_index", "_nondiff_op", "_version", "_base",
                 "_view", "_views", "_inference", "_hooks", "__weakref__")
    # Makes ``ndarray + Tensor`` call Tensor.__radd__ instead of looping over the array.
    __array_priority__ = 1000
    __hash__ = object.__hash__

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self._data = _as_array(data, None if dtype is None else as_dtype(dtype))
        self._grad = None
        self._node = None
        self._out_index = 0
        self._nondiff_op = None
        self._version = 0
        self._base = self._view = self._views = None
        self._requires_grad = False
        if grad_mode._inference:
            self._inference = True
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data: np.ndarray, node=None, index: int = 0) -> "Tensor":
        """Wrap an op's output without the checks of ``__init__`` (hot path)."""
        t = object.__new__(Tensor)
        t._data = data
        t._grad = None
        t._node = node
        t._out_index = index
        t._nondiff_op = None
        t._version = 0
        t._base = t._view = t._views = None
        t._requires_grad = node is not None
        if grad_mode._inference:
            t._inference = True
        return t

    # ------------------------------------------------------- data and grad (PyTorch's)
    @property
    def data(self) -> "Tensor":
        """This tensor's values as a Tensor outside autograd, sharing memory (writes show here)."""
        t = Tensor._make(self._data)
        if getattr(self, "_inference", False):
            t._inference = True
        return t

    @data.setter
    def data(self, value) -> None:
        self._data = _as_array(value)
        views.orphan(self)  # as PyTorch's: the views keep the old memory

    @property
    def grad(self) -> "Tensor | None":
        """dL/dself after ``backward`` (a Tensor sharing the accumulated array), or None."""
        return None if self._grad is None else Tensor._make(self._grad)

    @grad.setter
    def grad(self, value) -> None:
        if value is None:
            self._grad = None
            return
        array = value._data if isinstance(value, Tensor) else np.asarray(value)
        if array.shape != self._data.shape or array.dtype != self._data.dtype:
            raise ValueError(
                f"grad: assigned grad has shape {array.shape} and dtype {array.dtype}, but the tensor has "
                f"shape {self._data.shape} and dtype {self._data.dtype}"
            )
        self._grad = array

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
        if requires_grad and self._data.dtype.kind not in "fc":
            raise TypeError(
                f"requires_grad_: only floating-point tensors can require gradients, got dtype {self._data.dtype}"
            )
        if requires_grad and not grad_mode._inference and getattr(self, "_inference", False):
            raise RuntimeError(
                "requires_grad_: setting requires_grad=True on an inference tensor (made in inference_mode) "
                "outside inference_mode is not allowed, as in PyTorch; use a clone(), or no_grad() instead"
            )
        self._requires_grad = bool(requires_grad)
        if requires_grad and getattr(self, "_hooks", None) is None:
            self._hooks = None  # set, so that the backward walk's look-up on each edge into a leaf is fast
        return self

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        """The node that made this tensor, or None for a leaf."""
        return self._node

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward: the gradient its hooks have made,
        whenever they were registered, as in PyTorch."""
        if self._node is None:
            return
        from .hooks import retain_grad

        retain_grad(self)

    def register_hook(self, hook):
        """Call ``hook(grad) -> Tensor or None`` with dL/dself each time a backward computes it.

        ``grad`` has this tensor's shape and dtype: on a non-leaf, the total gradient flowing
        into it (summed over all its uses) before it propagates further; on a leaf, this
        backward's gradient before it is added into ``.grad``. A returned Tensor (same shape and
        dtype) replaces it. Hooks run in registration order, with gradient recording off.
        Returns a handle whose ``remove()`` takes the hook off. Raises RuntimeError (a ValueError
        too) if this tensor does not require grad. See ``autograd/hooks.py``.
        """
        from .hooks import register_tensor_hook

        return register_tensor_hook(self, hook)

    def __getattr__(self, name: str):
        # Reached only when normal lookup fails: a PyTorch method rnnbp does not have gets a message
        # that says so (and where the list of what is covered is), not a bare AttributeError.
        if name.startswith("_"):
            raise AttributeError(f"'Tensor' object has no attribute {name!r}")
        raise AttributeError(f"'Tensor' object has no attribute {name!r}: rnnbp's Tensor does not have "
                             f"Tensor.{name} (the README's 'PyTorch programs on rnnbp' lists what is covered)")

    def detach(self) -> "Tensor":
        """A tensor sharing this one's data, cut from the graph. An in-place change to it counts as one
        to this tensor too (as PyTorch's shared version counter does): a graph that saved this
        tensor's values refuses to run backward after, instead of using the new values, and the other
        way round."""
        t = Tensor._make(self._data)
        base = getattr(self, "_base", None)
        t._base = weakref.ref(self) if base is None else base
        if getattr(self, "_inference", False):
            t._inference = True
        return t

    def _bump_version(self) -> None:
        """Record an in-place change of ``_data``, here and in the tensor this one was detached from."""
        self._version += 1
        ref = getattr(self, "_base", None)
        base = None if ref is None else ref()
        if base is not None:
            base._version += 1

    def detach_(self) -> "Tensor":
        """Cut this tensor from the graph in place; it becomes a leaf that does not require grad."""
        self._node = None
        self._out_index = 0
        self._requires_grad = False
        return self

    def backward(self, gradient=None, retain_graph: bool = False, create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf), weighted by ``gradient``, into every leaf's ``.grad``.

        Args:
            gradient: dL/dself, same shape as self; may be omitted for one-element tensors.
            retain_graph: keep the graph's saved arrays so backward can run through it again.
            create_graph: not supported (rnnbp has no higher-order gradients); True raises.
        """
        if create_graph:
            raise NotImplementedError("backward: create_graph=True (higher-order gradients) is not supported by rnnbp")
        if not self._requires_grad:
            if self._nondiff_op is not None:
                raise RuntimeError(
                    f"backward: {self._nondiff_op} is not differentiable; its output has no gradient"
                )
            raise RuntimeError("backward: this tensor does not require grad and has no grad_fn")
        if gradient is None:
            if self._data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be implicitly created only for one-element outputs, "
                    f"got shape {self._data.shape}; pass gradient="
                )
            gradient = engine.grad_like(self._data)
        else:
            gradient = np.array(_as_array(gradient), dtype=self._data.dtype)
            if gradient.shape != self._data.shape:
                raise ValueError(
                    f"backward: gradient has shape {gradient.shape} but the tensor has shape {self._data.shape}"
                )
        engine.backward(self, gradient, retain_graph=retain_graph)

    # ------------------------------------------------------------- array facts
    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def device(self):
        """Always the CPU (``rnnbp.device('cpu')``)."""
        return CPU

    is_cuda = False

    def dim(self) -> int:
        return self._data.ndim

    def size(self, dim: int | None = None):
        """The shape as a ``Size`` (a tuple), or the size of one ``dim``."""
        return Size(self._data.shape) if dim is None else self._data.shape[dim]

    def numel(self) -> int:
        return self._data.size

    def nelement(self) -> int:
        return self._data.size

    def element_size(self) -> int:
        """Bytes per element."""
        return self._data.itemsize

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    def is_contiguous(self, memory_format=None) -> bool:
        """Whether the elements lie in memory in ``memory_format``'s order (default: row-major) without gaps."""
        from .memory_format import contiguous_format, copy_order

        order = copy_order(memory_format, self._data.ndim, "is_contiguous", default=contiguous_format)
        if order == "C":
            return self._data.flags.c_contiguous
        if order == "K":
            raise RuntimeError("is_contiguous: preserve memory format is unsupported by the is_contiguous operator")
        return self._data.transpose(order).flags.c_contiguous

    def is_inference(self) -> bool:
        """Whether this tensor was made inside ``inference_mode`` (or is a ``detach()``/``.data`` of one)."""
        return getattr(self, "_inference", False)

    def __len__(self) -> int:
        if not self._data.ndim:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ValueError(
                f"item: a Tensor with {self._data.size} elements cannot be converted to a Python number "
                f"(shape {self._data.shape})"
            )
        return self._data.item()

    def numpy(self, force: bool = False) -> np.ndarray:
        """The ndarray underneath (shared: later in-place writes show in it)."""
        return self._data

    def tolist(self):
        return self._data.tolist()

    def __array__(self, dtype=None, copy=None):
        data = np.asarray(self._data)  # an op may leave a NumPy scalar for a 0-d result
        array = data if dtype is None else data.astype(dtype, copy=False)
        if copy is False and array is not data:
            raise ValueError("a copy is needed to convert this tensor to the requested dtype")
        return array.copy() if copy and array is data else array

    def __repr__(self) -> str:
        body = printing.array_text(np.asarray(self._data), prefix="tensor(")
        extras = []
        if self._data.dtype not in (default_dtype(), np.int64, np.bool_):  # the dtypes PyTorch leaves unsaid
            extras.append(f"dtype={self._data.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn={self._node!r}")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0 and type(self) is Tensor:  # f"{loss}", f"{loss:.4f}": the number, as PyTorch
            return format(self._data.item(), spec)
        if spec:
            raise TypeError(f"unsupported format string passed to {type(self).__name__}.__format__")
        return repr(self)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __float__(self) -> float:
        return float(self._scalar("float"))

    def __int__(self) -> int:
        return int(self._scalar("int"))

    def _scalar(self, what: str):
        """The one element of a one-element tensor of any shape (PyTorch converts ``tensor([2.5])`` too)."""
        if self._data.size != 1:
            raise ValueError(f"{what}(): only one element tensors can be converted to Python scalars, got shape "
                             f"{self._data.shape}")
        return self._data.reshape(()).item()

    def __index__(self) -> int:
        if self._data.ndim or self._data.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors of a single element can be converted to an index, got shape "
                            f"{self._data.shape} and dtype {self._data.dtype}")
        return int(self._data)

    def __iter__(self):
        if not self._data.ndim:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self)))

    def __reduce_ex__(self, protocol):
        # copy.deepcopy(module) goes through here; pickling to a file is refused by rnnbp.save.
        return (_rebuild_tensor, (self._data.copy(), self._requires_grad, type(self)))

    # ------------------------------------------------------------- dtype and device
    def to(self, *args, **kwargs) -> "Tensor":
        """Cast and/or move, as ``Tensor.to``: ``to(dtype)``, ``to(device)``, ``to('cpu')``,
        ``to(other)`` (its dtype), ``to(device, dtype)``, with ``dtype=``, ``device=``, ``copy=``,
        ``non_blocking=`` keywords. Casts between float types are differentiable; any device
        other than the CPU raises ``DeviceError``.
        """
        dtype, copy = parse_to_args(args, kwargs)
        out = self if dtype is None else _ops.cast(self, dtype)
        if copy and out is self:
            out = _ops.clone(self)
        return out

    def type(self, dtype=None, non_blocking: bool = False):
        """With no argument, the legacy type name (``'torch.FloatTensor'``); else a cast to ``dtype``: a
        dtype, a legacy type (``torch.LongTensor``, ``torch.Tensor``: float32) or its name
        (``'torch.LongTensor'``; other strings raise ValueError, as in PyTorch)."""
        if dtype is None:
            return TYPE_NAMES.get(self._data.dtype, f"torch.{self._data.dtype}Tensor")
        from .legacy import legacy_dtype

        legacy = legacy_dtype(dtype)
        return self.to(as_dtype(dtype) if legacy is None else legacy)

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.to(other.dtype)

    def cpu(self) -> "Tensor":
        return self

    def cuda(self, *args, **kwargs):
        raise refuse_cuda(".cuda()")

    def float(self) -> "Tensor":
        return self.to(np.float32)

    def double(self) -> "Tensor":
        return self.to(np.float64)

    def half(self) -> "Tensor":
        return self.to(np.float16)

    def long(self) -> "Tensor":
        return self.to(np.int64)

    def int(self) -> "Tensor":
        return self.to(np.int32)

    def bool(self) -> "Tensor":
        return self.to(np.bool_)

    def byte(self) -> "Tensor":
        return self.to(np.uint8)

    # --------------------------------------------------------------- new tensors
    def new_tensor(self, data, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """A new leaf holding a copy of ``data``, in this tensor's dtype unless ``dtype`` is given."""
        as_device(device)
        t = Tensor(np.array(_as_array(data), dtype=as_dtype(dtype) if dtype is not None else self._data.dtype))
        return t.requires_grad_(requires_grad) if requires_grad else t

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        as_device(device)
        array = np.full(_size_args((size,)), fill_value, dtype=self._new_dtype(dtype))
        return Tensor(array, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        """Zeros of ``size`` in this tensor's dtype (``weight.new_zeros(layers, batch, hidden)``)."""
        return self.new_full(_size_args(size), 0, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return self.new_full(_size_args(size), 1, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad: bool = False) -> "Tensor":
        return self.new_full(_size_args(size), 0, dtype=dtype, device=device, requires_grad=requires_grad)

    def _new_dtype(self, dtype) -> np.dtype:
        return self._data.dtype if dtype is None else as_dtype(dtype)

    def clone(self, memory_format=None) -> "Tensor":
        """A copy with its own memory, still in the graph, in ``memory_format`` (default: this tensor's layout)."""
        return _ops.clone(self, memory_format)

    def contiguous(self, memory_format=None) -> "Tensor":
        """Self if already laid out in ``memory_format`` (default: row-major), else a copy so laid out (in the graph)."""
        from .memory_format import contiguous_format, copy_order

        order = copy_order(memory_format, self._data.ndim, "contiguous", default=contiguous_format)
        if order == "K":
            raise RuntimeError("contiguous: preserve memory format is unsupported by the contiguous operator")
        if self.is_contiguous(memory_format):
            return self
        return _ops.clone(self, contiguous_format if order == "C" else memory_format)

    # ------------------------------------------------------------------ arithmetic
    def add(self, other, alpha=1) -> "Tensor":
        """self + alpha * other."""
        return _ops.add(self, other, alpha=alpha)

    def sub(self, other, alpha=1) -> "Tensor":
        """self - alpha * other."""
        return _ops.sub(self, other, alpha=alpha)

    def mul(self, other) -> "Tensor":
        return _ops.mul(self, other)

    def div(self, other, rounding_mode: str | None = None) -> "Tensor":
        """self / other; ``rounding_mode`` ``'trunc'`` or ``'floor'`` as ``torch.div``."""
        return _ops.div(self, other, rounding_mode=rounding_mode)

    def pow(self, exponent) -> "Tensor":
        return _ops.pow(self, exponent)

    def neg(self) -> "Tensor":
        return _ops.neg(self)

    multiply, divide, subtract, true_divide = mul, div, sub, div

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

    def __floordiv__(self, other):
        return _ops.div(self, other, rounding_mode="floor")

    def __rfloordiv__(self, other):
        return _ops.div(other, self, rounding_mode="floor")

    def __pow__(self, other):
        return _ops.pow(self, other)

    def __rpow__(self, other):
        return _ops.pow(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __mod__(self, other):
        return _ops.remainder(self, other)

    def __rmod__(self, other):
        return _ops.remainder(other, self)

    def log1p(self):
        return _ops.log1p(self)

    def prod(self, dim=None, keepdim: bool = False, *, dtype=None):
        return _ops.prod(self, dim, keepdim, dtype=dtype)

    def cumsum(self, dim, *, dtype=None):
        return _ops.cumsum(self, dim, dtype=dtype)

    def cumprod(self, dim, *, dtype=None):
        return _ops.cumprod(self, dim, dtype=dtype)

    def cumprod_(self, dim, *, dtype=None) -> "Tensor":
        if dtype is not None and as_dtype(dtype) != self._data.dtype:
            raise TypeError(f"cumprod_: dtype {as_dtype(dtype)} differs from the tensor's {self._data.dtype}; "
                            "an in-place op keeps the dtype (use cumprod(dim, dtype=...))")
        return self._inplace("cumprod_", _ops.cumprod, dim)

    def cummax(self, dim):
        return _ops.cummax(self, dim)

    def cummin(self, dim):
        return _ops.cummin(self, dim)

    def logcumsumexp(self, dim):
        return _ops.logcumsumexp(self, dim)

    def roll(self, shifts, dims=None):
        return _ops.roll(self, shifts, dims)

    def bincount(self, weights=None, minlength: int = 0):
        return _ops.bincount(self, weights, minlength)

    def scatter_add(self, dim: int, index, src):
        return _ops.scatter_add(self, dim, index, src)

    def scatter_add_(self, dim: int, index, src) -> "Tensor":
        return self._inplace("scatter_add_", _ops.scatter_add, dim, index, src)

    def scatter(self, dim: int, index, src=None, *, value=None, reduce=None):
        return _ops.scatter(self, dim, index, src, value=value, reduce=reduce)

    def scatter_(self, dim: int, index, src=None, *, value=None, reduce=None) -> "Tensor":
        return self._inplace("scatter_", _ops.scatter, dim, index, src, value=value, reduce=reduce)

    def index_fill(self, dim: int, index, value):
        return _ops.index_fill(self, dim, index, value)

    def index_fill_(self, dim: int, index, value) -> "Tensor":
        return self._inplace("index_fill_", _ops.index_fill, dim, index, value)

    def select(self, dim: int, index: int):
        return _ops.select(self, dim, index)

    def nan_to_num(self, nan: float = 0.0, posinf=None, neginf=None):
        return _ops.nan_to_num(self, nan, posinf, neginf)

    def nan_to_num_(self, nan: float = 0.0, posinf=None, neginf=None) -> "Tensor":
        return self._inplace("nan_to_num_", _ops.nan_to_num, nan, posinf, neginf)

    def argwhere(self):
        return _ops.argwhere(self)

    def clamp_min(self, min):
        return _ops.clamp(self, min, None)

    def clamp_max(self, max):
        return _ops.clamp(self, None, max)

    def clamp_min_(self, min) -> "Tensor":
        return self._inplace("clamp_min_", _ops.clamp, min, None)

    def clamp_max_(self, max) -> "Tensor":
        return self._inplace("clamp_max_", _ops.clamp, None, max)

    def unsqueeze_(self, dim: int) -> "Tensor":
        return self._reshape_inplace("unsqueeze_", _ops.unsqueeze, dim)

    def squeeze_(self, dim=None) -> "Tensor":
        return self._reshape_inplace("squeeze_", _ops.squeeze, dim)

    def _reshape_inplace(self, op: str, fn, *args) -> "Tensor":
        """An in-place shape change (``unsqueeze_``): a view of the same memory, in the graph if self is."""
        self._check_inplace(op)
        alias = Tensor._make(self._data, self._node, self._out_index)
        alias._requires_grad = self._requires_grad
        result = fn(alias, *args)
        self._data, self._node, self._out_index = result._data, result._node, result._out_index
        self._bump_version()
        return self

    def index_add(self, dim: int, index, source, *, alpha=1):
        return _ops.index_add(self, dim, index, source, alpha=alpha)

    def index_add_(self, dim: int, index, source, *, alpha=1) -> "Tensor":
        return self._inplace("index_add_", _ops.index_add, dim, index, source, alpha=alpha)

    def kthvalue(self, k: int, dim: int = -1, keepdim: bool = False):
        return _ops.kthvalue(self, k, dim, keepdim)

    def count_nonzero(self, dim=None):
        return _ops.count_nonzero(self, dim)

    def quantile(self, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear"):
        return _ops.quantile(self, q, dim, keepdim, interpolation=interpolation)

    def diff(self, n: int = 1, dim: int = -1, prepend=None, append=None):
        return _ops.diff(self, n, dim, prepend, append)

    def unique_consecutive(self, return_inverse: bool = False, return_counts: bool = False, dim=None):
        return _ops.unique_consecutive(self, return_inverse, return_counts, dim)

    def tile(self, *dims):
        return _ops.tile(self, *dims)

    def diag(self, diagonal: int = 0):
        return _ops.diag(self, diagonal)

    def dot(self, other):
        return _ops.dot(self, other)

    def outer(self, other):
        return _ops.outer(self, other)

    def movedim(self, source, destination):
        return _ops.movedim(self, source, destination)

    def unflatten(self, dim: int, sizes):
        return _ops.unflatten(self, dim, sizes)

    def masked_select(self, mask):
        return _ops.masked_select(self, mask)

    def repeat_interleave(self, repeats, dim=None):
        return _ops.repeat_interleave(self, repeats, dim)

    def median(self, dim=None, keepdim: bool = False):
        return _ops.median(self, dim, keepdim)

    def isclose(self, other, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False):
        return _ops.isclose(self, other, rtol, atol, equal_nan)

    def unique(self, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False, dim=None):
        return _ops.unique(self, sorted, return_inverse, return_counts, dim)

    def remainder(self, other):
        return _ops.remainder(self, other)

    def fmod(self, other):
        return _ops.fmod(self, other)

    # ~ & | ^ as PyTorch: logical on bool tensors, bitwise on integers, refused on floats.
    def __invert__(self):
        return _ops.bitwise("not", self)

    def __and__(self, other):
        return _ops.bitwise("and", self, other)

    def __rand__(self, other):
        return _ops.bitwise("and", other, self)

    def __or__(self, other):
        return _ops.bitwise("or", self, other)

    def __ror__(self, other):
        return _ops.bitwise("or", other, self)

    def __xor__(self, other):
        return _ops.bitwise("xor", self, other)

    def __rxor__(self, other):
        return _ops.bitwise("xor", other, self)

    def __iand__(self, other):
        return self._overwrite_cast("bitwise_and_", _ops.bitwise("and", self, other)._data)

    def __ior__(self, other):
        return self._overwrite_cast("bitwise_or_", _ops.bitwise("or", self, other)._data)

    def __ixor__(self, other):
        return self._overwrite_cast("bitwise_xor_", _ops.bitwise("xor", self, other)._data)

    def _overwrite_cast(self, op: str, values: np.ndarray) -> "Tensor":
        """``_overwrite`` with a result whose dtype may differ: refused when it cannot become this
        tensor's (an int result into a bool mask), as PyTorch refuses it."""
        if not np.can_cast(values.dtype, self._data.dtype, casting="same_kind"):
            raise TypeError(f"{op}: the result type {values.dtype} cannot be cast to this tensor's {self._data.dtype}")
        return self._overwrite(op, values)

    def bitwise_not(self):
        return _ops.bitwise("not", self)

    def bitwise_and(self, other):
        return _ops.bitwise("and", self, other)

    def bitwise_or(self, other):
        return _ops.bitwise("or", self, other)

    def bitwise_xor(self, other):
        return _ops.bitwise("xor", self, other)

    def logical_not(self):
        return _ops.logical("not", self)

    def logical_and(self, other):
        return _ops.logical("and", self, other)

    def logical_or(self, other):
        return _ops.logical("or", self, other)

    def logical_xor(self, other):
        return _ops.logical("xor", self, other)

    def nonzero(self, *, as_tuple: bool = False):
        return _ops.nonzero(self, as_tuple=as_tuple)

    def __abs__(self):
        return _ops.abs(self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    # In place, as PyTorch: ``x += y`` writes into x.
    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    # ----------------------------------------------------------- comparisons
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

    def lt(self, other):
        return _ops.compare("lt", self, other)

    def le(self, other):
        return _ops.compare("le", self, other)

    def gt(self, other):
        return _ops.compare("gt", self, other)

    def ge(self, other):
        return _ops.compare("ge", self, other)

    def eq(self, other):
        return _ops.compare("eq", self, other)

    def ne(self, other):
        return _ops.compare("ne", self, other)

    def equal(self, other) -> bool:
        """True if ``other`` has the same shape and elements (``torch.equal``); a Tensor, as in PyTorch."""
        if not isinstance(other, Tensor):
            raise TypeError(f"equal(): argument 'other' must be a Tensor, not {type(other).__name__}")
        return self._data.shape == other._data.shape and bool(np.array_equal(self._data, other._data))

    def allclose(self, other, rtol: float = 1e-5, atol: float = 1e-8, equal_nan: bool = False) -> bool:
        other = other._data if isinstance(other, Tensor) else np.asarray(other)
        return bool(np.allclose(self._data, other, rtol=rtol, atol=atol, equal_nan=equal_nan))

    # ------------------------------------------------------------ pointwise
    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def sqrt(self):
        return _ops.sqrt(self)

    def rsqrt(self):
        return _ops.rsqrt(self)

    def square(self):
        return _ops.square(self)

    def abs(self):
        return _ops.abs(self)

    def sin(self):
        return _ops.sin(self)

    def cos(self):
        return _ops.cos(self)

    def tanh(self):
        return _ops.tanh(self)

    def sigmoid(self):
        return _ops.sigmoid(self)

    def relu(self):
        return _ops.relu(self)

    def leaky_relu(self, negative_slope: float = 0.01):
        return _ops.leaky_relu(self, negative_slope)

    def softplus(self, beta: float = 1.0, threshold: float = 20.0):
        return _ops.softplus(self, beta, threshold)

    def gelu(self, approximate: str = "none"):
        return _ops.gelu(self, approximate)

    def clamp(self, min=None, max=None):
        return _ops.clamp(self, min, max)

    clip = clamp

    def maximum(self, other):
        return _ops.maximum(self, other)

    def minimum(self, other):
        return _ops.minimum(self, other)

    def floor(self):
        return _ops.floor(self)

    def ceil(self):
        return _ops.ceil(self)

    def round(self, decimals: int = 0):
        return _ops.round(self, decimals)

    def sign(self):
        return _ops.sign(self)

    def isnan(self):
        return _ops.isnan(self)

    def isinf(self):
        return _ops.isinf(self)

    def isfinite(self):
        return _ops.isfinite(self)

    def masked_fill(self, mask, value):
        """Self with ``value`` where the bool ``mask`` is True."""
        return _ops.masked_fill(self, mask, value)

    def where(self, condition, other):
        """``self`` where ``condition`` holds, else ``other`` (``Tensor.where``)."""
        return _ops.where(condition, self, other)

    def tril(self, diagonal: int = 0):
        return _ops.tril(self, diagonal)

    def triu(self, diagonal: int = 0):
        return _ops.triu(self, diagonal)

    # ------------------------------------------------------------- reductions
    def sum(self, dim=None, keepdim: bool = False, dtype=None):
        out = _ops.sum(self, dim=dim, keepdim=keepdim)
        return out if dtype is None else out.to(dtype)

    def mean(self, dim=None, keepdim: bool = False):
        return _ops.mean(self, dim=dim, keepdim=keepdim)

    def var(self, dim=None, keepdim: bool = False, correction: int = 1, unbiased: bool | None = None):
        return _ops.var(self, dim=dim, keepdim=keepdim, correction=correction, unbiased=unbiased)

    def std(self, dim=None, keepdim: bool = False, correction: int = 1, unbiased: bool | None = None):
        return _ops.std(self, dim=dim, keepdim=keepdim, correction=correction, unbiased=unbiased)

    def norm(self, p=2, dim=None, keepdim: bool = False):
        """The ``p``-norm of all elements or along ``dim`` (``p.grad.norm()``)."""
        return _ops.norm(self, p=p, dim=dim, keepdim=keepdim)

    def max(self, dim=None, keepdim: bool = False):
        return _ops.max(self, dim=dim, keepdim=keepdim)

    def min(self, dim=None, keepdim: bool = False):
        return _ops.min(self, dim=dim, keepdim=keepdim)

    def amax(self, dim=(), keepdim: bool = False):
        return _ops.amax(self, dim=dim, keepdim=keepdim)

    def argmax(self, dim=None, keepdim: bool = False):
        return _ops.argmax(self, dim=dim, keepdim=keepdim)

    def argmin(self, dim=None, keepdim: bool = False):
        return _ops.argmin(self, dim=dim, keepdim=keepdim)

    def logsumexp(self, dim=-1, keepdim: bool = False):
        return _ops.logsumexp(self, dim=dim, keepdim=keepdim)

    def softmax(self, dim: int = -1, dtype=None):
        return _ops.softmax(self, dim=dim, dtype=dtype)

    def log_softmax(self, dim: int = -1, dtype=None):
        return _ops.log_softmax(self, dim=dim, dtype=dtype)

    # ``axis`` is PyTorch's alias of ``dim``; it also lets ``np.all(t)`` and ``np.any(t)`` work.
    def any(self, dim=None, keepdim: bool = False, *, axis=None, out=None, keepdims=None):
        return _ops.any(self, dim=_dim_alias(dim, axis, out), keepdim=bool(keepdims) or keepdim)

    def all(self, dim=None, keepdim: bool = False, *, axis=None, out=None, keepdims=None):
        return _ops.all(self, dim=_dim_alias(dim, axis, out), keepdim=bool(keepdims) or keepdim)

    # ---------------------------------------------------- sorting and selection
    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        return _ops.sort(self, dim=dim, descending=descending, stable=stable)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        return _ops.argsort(self, dim=dim, descending=descending, stable=stable)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
        return _ops.topk(self, k, dim=dim, largest=largest, sorted=sorted)

    def gather(self, dim: int, index):
        return _ops.gather(self, dim, index)

    def index_select(self, dim: int, index):
        return _ops.index_select(self, dim, index)

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape):
        return _ops.reshape(self, *shape)

    def view(self, *shape):
        """Same as ``reshape`` (rnnbp makes a view whenever NumPy can, and copies otherwise)."""
        return _ops.reshape(self, *shape)

    def view_as(self, other):
        return _ops.reshape(self, other.shape)

    def reshape_as(self, other):
        return _ops.reshape(self, other.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        return _ops.flatten(self, start_dim, end_dim)

    def permute(self, *dims):
        return _ops.permute(self, *dims)

    def transpose(self, dim0: int, dim1: int):
        return _ops.transpose(self, dim0, dim1)

    def flip(self, *dims, **kwargs):
        """The elements in reverse order along ``dims`` (a copy, ``torch.flip``)."""
        return _ops.flip(self, *dims, **kwargs)

    def t(self):
        """The transpose of a 2-D tensor (a 0-d or 1-D one is returned as is)."""
        if self._data.ndim > 2:
            raise ValueError(f"t: expects a tensor with <= 2 dimensions, got shape {self._data.shape}")
        return _ops.transpose(self, 0, -1) if self._data.ndim == 2 else self

    @property
    def T(self):
        """All dims reversed."""
        return _ops.permute(self, *reversed(range(self._data.ndim)))

    @property
    def mT(self):
        """The last two dims swapped."""
        return _ops.transpose(self, -2, -1)

    def squeeze(self, dim=None):
        return _ops.squeeze(self, dim)

    def unsqueeze(self, dim: int):
        return _ops.unsqueeze(self, dim)

    def expand(self, *sizes):
        return _ops.expand(self, *sizes)

    def expand_as(self, other):
        return _ops.expand_as(self, other)

    def repeat(self, *repeats):
        return _ops.repeat(self, *repeats)

    def narrow(self, dim: int, start: int, length: int):
        return _ops.narrow(self, dim, start, length)

    def split(self, split_size_or_sections, dim: int = 0):
        return _ops.split(self, split_size_or_sections, dim)

    def chunk(self, chunks: int, dim: int = 0):
        return _ops.chunk(self, chunks, dim)

    def unbind(self, dim: int = 0):
        """The slices along ``dim``, as a tuple."""
        n = self._data.shape[dim]
        index = (slice(None),) * (dim % self._data.ndim)
        return tuple(_ops.getitem(self, index + (i,)) for i in range(n))

    def matmul(self, other):
        return _ops.matmul(self, other)

    def true_divide(self, other):
        return _ops.true_divide(self, other)

    def lerp(self, end, weight):
        """``self + weight * (end - self)``."""
        return _ops.lerp(self, end, weight)

    def dist(self, other, p=2):
        """The ``p``-norm of ``self - other``."""
        return _ops.dist(self, other, p)

    mm = bmm = matmul

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    # ------------------------------------------------------------------ in place
    def _check_inplace(self, op: str) -> None:
        if not grad_mode._inference and getattr(self, "_inference", False):
            raise RuntimeError(
                f"{op}: an in-place update of an inference tensor (made in inference_mode) outside "
                "inference_mode is not allowed, as in PyTorch; make a clone() first"
            )
        if self._requires_grad and grad_mode._enabled and self._node is None:
            raise RuntimeError(
                f"{op}: a leaf Tensor that requires grad is being used in an in-place operation; "
                "do it under rnnbp.no_grad() or on .data"
            )
        view = getattr(self, "_view", None)
        if view is not None and grad_mode._enabled and views.made_without_grad(self) and \
                views.root_of(self)._requires_grad:
            raise RuntimeError(
                f"{op}: A view was created in no_grad mode and is being modified inplace with grad mode enabled. "
                "Given that this use case is ambiguous and error-prone, it is forbidden. You can clarify your code "
                "by moving both the view and the inplace either both inside the no_grad block (if you don't want "
                "the inplace to be tracked) or both outside (if you want the inplace to be tracked)."
            )

    def _own_array(self) -> np.ndarray:
        """The array to write into directly: a private copy if an op of the graph may have saved it
        (for a view, its root's copy, so that the write still reaches the root: ``views.own_array``)."""
        if self._node is None and getattr(self, "_view", None) is None:
            return self._data
        return views.own_array(self)

    def _assign(self, result: "Tensor", op: str) -> "Tensor":
        """Make ``result`` (computed out of place from this tensor) this tensor's new value.

        Outside a recorded graph the values are written into the existing array, so every
        alias (``p.data``, a view) sees them. Inside one, this tensor takes the result's place
        in the graph (the old array stays intact for the ops that saved it), a view writes the
        change back into its base, and the views taken from it are re-pointed at the new value.
        """
        if result._node is None:
            try:
                np.copyto(self._own_array(), result._data, casting="same_kind")
            except TypeError:
                raise TypeError(
                    f"{op}: result type {result._data.dtype} can't be cast to the tensor's dtype {self._data.dtype}"
                ) from None
            except ValueError:
                raise ValueError(
                    f"{op}: the result of shape {result._data.shape} does not fit the tensor of shape "
                    f"{self._data.shape} (an in-place op cannot change the shape)"
                ) from None
            self._bump_version()
            return self
        if result._data.shape != self._data.shape:
            raise ValueError(
                f"{op}: the result of shape {result._data.shape} does not fit the tensor of shape "
                f"{self._data.shape} (an in-place op cannot change the shape)"
            )
        is_view = getattr(self, "_view", None) is not None
        if is_view and views.viewed_leaf(self):
            raise RuntimeError(
                f"{op}: a view of a leaf Tensor that requires grad is being used in an in-place "
                "operation; do it under rnnbp.no_grad() or on .data"
            )
        if result._data.dtype != self._data.dtype:
            result = _ops.cast(result, self._data.dtype)
        self._take_value(result)
        if is_view:
            views.write_back(self)  # up to the root, which re-points its views (this one among them)
        else:
            views.refresh(self, record=True)
        return self

    def _take_value(self, result: "Tensor") -> None:
        """Take ``result``'s place in the graph (an in-place change recorded there)."""
        old_node, old_index = self._node, self._out_index
        data = result._data
        if getattr(self, "_views", None) and data.strides != self._data.strides and data.shape == self._data.shape:
            # the tensor keeps its layout (PyTorch's keeps its memory), so that its reshaped views stay views
            kept = np.empty_like(self._data)
            kept[...] = data
            data = kept
        self._data, self._node, self._out_index = data, result._node, result._out_index
        self._requires_grad = True
        if old_node is not None and getattr(old_node, "tensor_hooks", None):
            from .hooks import follow_in_place

            follow_in_place(self, old_node, old_index)
        self._bump_version()

    def _inplace(self, op: str, fn, *args, **kwargs) -> "Tensor":
        self._check_inplace(op)
        alias = Tensor._make(self._data, self._node, self._out_index)
        alias._requires_grad = self._requires_grad
        result = fn(alias, *args, **kwargs)
        if result is not alias:
            views.release(alias)
        return self._assign(result, op)

    def add_(self, other, alpha=1) -> "Tensor":
        """self += alpha * other, in place."""
        return self._inplace("add_", _ops.add, other, alpha=alpha)

    def sub_(self, other, alpha=1) -> "Tensor":
        return self._inplace("sub_", _ops.sub, other, alpha=alpha)

    def mul_(self, other) -> "Tensor":
        return self._inplace("mul_", _ops.mul, other)

    def div_(self, other, rounding_mode: str | None = None) -> "Tensor":
        return self._inplace("div_", _ops.div, other, rounding_mode=rounding_mode)

    def pow_(self, exponent) -> "Tensor":
        return self._inplace("pow_", _ops.pow, exponent)

    def clamp_(self, min=None, max=None) -> "Tensor":
        return self._inplace("clamp_", _ops.clamp, min, max)

    clip_ = clamp_

    def neg_(self) -> "Tensor":
        return self._inplace("neg_", _ops.neg)

    def exp_(self) -> "Tensor":
        return self._inplace("exp_", _ops.exp)

    def sqrt_(self) -> "Tensor":
        return self._inplace("sqrt_", _ops.sqrt)

    def tanh_(self) -> "Tensor":
        return self._inplace("tanh_", _ops.tanh)

    def sigmoid_(self) -> "Tensor":
        return self._inplace("sigmoid_", _ops.sigmoid)

    def relu_(self) -> "Tensor":
        return self._inplace("relu_", _ops.relu)

    def masked_fill_(self, mask, value) -> "Tensor":
        return self._inplace("masked_fill_", _ops.masked_fill, mask, value)

    def copy_(self, src, non_blocking: bool = False) -> "Tensor":
        """Write ``src`` (broadcast to this shape, cast to this dtype) into self; in the graph if src is."""
        self._check_inplace("copy_")
        if isinstance(src, Tensor) and src._requires_grad and grad_mode._enabled:
            src = _ops.cast(src, self._data.dtype) if src._data.dtype.kind == "f" else src
            if self._node is not None:  # self[...] = src: the old values get a zero gradient, as in PyTorch
                return self._overwrite("copy_", src)
            # expand's result is a read-only broadcast: cloned, so that the tensor holds an array of its own
            return self._assign(_ops.clone(_ops.expand(src, self._data.shape) if src.shape != self.shape else src),
                                "copy_")
        array = src._data if isinstance(src, Tensor) else np.asarray(src)
        try:
            np.broadcast_to(array, self._data.shape)
        except ValueError:
            raise ValueError(f"copy_: source of shape {array.shape} does not broadcast to the tensor of shape "
                             f"{self._data.shape}") from None
        return self._overwrite("copy_", array.astype(self._data.dtype, copy=False))

    def fill_(self, value) -> "Tensor":
        """Set every element to ``value`` (a number or a one-element tensor)."""
        self._check_inplace("fill_")
        if isinstance(value, Tensor):
            if value._data.size != 1:
                raise ValueError(f"fill_: value must be a number or a one-element tensor, got shape {value.shape}")
            value = value._data.item()
        return self._overwrite("fill_", np.asarray(value).astype(self._data.dtype))

    def zero_(self) -> "Tensor":
        """Set every element to zero."""
        return self.fill_(0)

    def uniform_(self, a: float = 0.0, b: float = 1.0, generator=None) -> "Tensor":
        """Fill with samples from U(a, b), drawn from ``generator`` or the default one."""
        self._check_inplace("uniform_")
        return self._overwrite("uniform_", _random.get_generator(generator).uniform(a, b, self._data.shape))

    def normal_(self, mean: float = 0.0, std: float = 1.0, generator=None) -> "Tensor":
        """Fill with samples from N(mean, std^2), drawn from ``generator`` or the default one."""
        self._check_inplace("normal_")
        return self._overwrite("normal_", _random.get_generator(generator).normal(mean, std, self._data.shape))

    def _overwrite(self, op: str, values) -> "Tensor":
        """Write ``values`` (an array, or a Tensor in the graph: broadcast) over every element and bump the version.

        Inside a recorded graph this is recorded (as ``self[...] = values``), so the tensor stays
        in the graph with a zero gradient for its old values, as in PyTorch.
        """
        if self._node is not None and grad_mode._enabled:
            alias = Tensor._make(self._data, self._node, self._out_index)
            result = _ops.setitem(alias, Ellipsis, values)
            views.release(alias)
            return self._assign(result, op)
        self._own_array()[...] = values
        self._bump_version()
        return self

    def __setitem__(self, index, value) -> None:
        """``x[index] = value``: in place; differentiable for ``x`` and ``value`` as in PyTorch."""
        self._check_inplace("setitem")
        if isinstance(value, Tensor) and views.holds_view(self, value, index):
            return  # ``x[i] op= v``: the view x[i] already wrote its new value into x
        recording = grad_mode._enabled and (self._requires_grad or (isinstance(value, Tensor) and value._requires_grad))
        if recording:
            # When no op, view or alias holds this array (nothing can have saved it), the write goes
            # into it: a loop filling ``out[t] = h`` costs O(T), not a copy of ``out`` per step.
            # (Only into a tensor of the graph: a constant's values may still be read, as a traced
            # cell's recording keeps the constants it meets.)
            sole = self._node is not None and views.sole_owner(self)
            alias = Tensor._make(views.placeholder(self._data) if sole else self._data, self._node, self._out_index)
            alias._requires_grad = self._requires_grad
            result = _ops.setitem(alias, index, value, into=self._data if sole else None)
            views.release(alias)
            self._assign(result, "setitem")
            return
        array = value._data if isinstance(value, Tensor) else value
        try:
            self._own_array()[_ops.index_arrays(index)] = array
        except (IndexError, ValueError) as exc:
            raise type(exc)(
                f"setitem: cannot assign a value of shape {np.shape(array)} to index {index!r} of a tensor "
                f"of shape {self._data.shape}: {exc}"
            ) from None
        self._bump_version()


def _dim_alias(dim, axis, out):
    if out is not None:
        raise TypeError("out= is not supported by rnnbp")
    return dim if axis is None else axis


def _rebuild_tensor(data, requires_grad, cls):
    t = Tensor.__new__(cls)
    Tensor.__init__(t, data)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _size_args(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def parse_to_args(args, kwargs):
    """(dtype or None, copy) from ``Tensor.to``'s / ``Module.to``'s many call forms."""
    dtype = kwargs.pop("dtype", None)
    as_device(kwargs.pop("device", None))
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to: unexpected keyword argument(s) {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, Tensor):
            dtype = arg.dtype
        elif isinstance(arg, bool) or arg is None:
            continue
        elif isinstance(arg, str) and arg.partition(":")[0] in DEVICE_TYPES:
            as_device(arg)
        elif isinstance(arg, (str, np.dtype, type)):
            dtype = as_dtype(arg)
        else:
            as_device(arg)
    return (None if dtype is None else as_dtype(dtype)), copy


class _OpsNamespace:
    """Late-bound access to ``autograd.ops`` (which imports this module)."""

    def __getattr__(self, name):
        from . import ops

        value = getattr(ops, name)
        setattr(self, name, value)
        return value


_ops = _OpsNamespace()
