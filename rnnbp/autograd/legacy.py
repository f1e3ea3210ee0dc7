"""PyTorch's legacy tensor constructors: ``torch.Tensor(2, 3)``, ``torch.LongTensor([1, 2])``, ...

The official tutorials still use them. Each is a class whose call builds a tensor of one fixed dtype
from data or from sizes, and whose ``isinstance`` asks the tensor's dtype (``isinstance(x,
torch.LongTensor)`` is true exactly for int64 tensors), as PyTorch's ``torch.tensortype`` does.

Why ``torch.Tensor`` is :data:`LegacyTensor` and not ``rnnbp.Tensor`` under the stand-in:
``rnnbp.Tensor(array)`` is the constructor rnnbp itself uses everywhere (about fifty calls in
``rnnbp/`` and hundreds in the tests), and it keeps the array's dtype (an int64 array stays int64,
an int ``2`` is a 0-d tensor). PyTorch's ``torch.Tensor(...)`` casts all data to float32 and reads
ints as sizes. The two cannot be one callable, so the stand-in answers ``torch.Tensor`` with
:data:`LegacyTensor`: a subclass of ``rnnbp.Tensor`` (``torch.Tensor.add``, ``torch.Tensor.__add__``
... are rnnbp's) whose metaclass builds PyTorch's legacy way and makes ``isinstance(x,
torch.Tensor)``, ``issubclass(nn.Parameter, torch.Tensor)`` and ``type(x) == torch.Tensor`` hold for
every rnnbp tensor. Only ``type(x) is torch.Tensor`` is False. ``rnnbp.Tensor`` keeps its meaning.
"""
from __future__ import annotations

import warnings

import numpy as np

from . import grad_mode
from .device import as_device
from .tensor import Size, Tensor

__all__ = [
    "LegacyTensor", "FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor", "ShortTensor",
    "CharTensor", "ByteTensor", "BoolTensor", "legacy_dtype",
]


def _sizes(name: str, args) -> tuple:
    """The shape ``Tensor(2, 3)`` asks for: ints only (bools count, as in PyTorch), none negative."""
    shape = []
    for pos, arg in enumerate(args, 1):
        if isinstance(arg, np.ndarray) and arg.ndim == 0 and arg.dtype.kind in "iub":
            arg = arg.item()
        if not isinstance(arg, (int, np.integer)):
            raise TypeError(f"{name}(): argument 'size' must be a tuple of ints, but found element of type "
                            f"{type(arg).__name__} at pos {pos}")
        shape.append(int(arg))
    if any(d < 0 for d in shape):
        bad = next(d for d in shape if d < 0)
        raise RuntimeError(f"{name}(): trying to create tensor with negative dimension {bad}: {shape}")
    return tuple(shape)


def _is_size_arg(arg) -> bool:
    if isinstance(arg, (bool, np.bool_)):
        return False
    if isinstance(arg, (int, np.integer)):
        return True
    return isinstance(arg, np.ndarray) and arg.ndim == 0 and arg.dtype.kind in "iu"


def _from_data(name: str, data, dtype: np.dtype) -> np.ndarray:
    """``data`` as an array of ``dtype``: NumPy arrays of that dtype are shared, not copied (as PyTorch)."""
    if data is None or isinstance(data, (float, bool, str, bytes, np.floating, np.bool_)):
        what = "numpy." + type(data).__name__ if isinstance(data, np.generic) else type(data).__name__
        raise TypeError(f"{name}(): data must be a sequence (got {what}); "
                        f"for a 0-d tensor use torch.tensor({data!r}, dtype=...)")
    try:
        array = data if isinstance(data, np.ndarray) else np.asarray(data)
    except ValueError as exc:
        raise ValueError(f"{name}(): cannot make a tensor from ragged data: {exc}") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}(): rnnbp tensors are real-valued; got data of dtype {array.dtype}")
    if dtype.kind in "iu" and array.dtype.kind in "iuf" and array.size:
        info = np.iinfo(dtype)
        low = -np.inf if dtype == np.uint8 else info.min  # uint8 wraps negatives (-1 -> 255), as PyTorch
        if array.dtype.kind == "f" and not np.isfinite(array).all() or array.min() < low or array.max() > info.max:
            raise RuntimeError(f"{name}(): a value cannot be converted to type {dtype} without overflow "
                               f"(data ranges from {array.min()} to {array.max()})")
    with warnings.catch_warnings():  # float64 -> float32 overflow gives inf, as in PyTorch
        warnings.simplefilter("ignore", RuntimeWarning)
        return array.astype(dtype, copy=False)


def legacy_new(name: str, dtype: np.dtype | None, args: tuple, kwargs: dict) -> Tensor:
    """Build a tensor the way PyTorch's legacy constructor ``name`` does (``dtype`` None: torch.Tensor's float32).

    ``()`` gives an empty (0,) tensor; ints or a ``torch.Size`` give that shape, zero-filled (PyTorch
    leaves it uninitialised); a list, tuple or array gives its values cast to the dtype; a tensor
    gives an alias of it (torch.Tensor takes any dtype, a typed constructor only its own).
    """
    kwargs = dict(kwargs)
    as_device(kwargs.pop("device", None))
    size = kwargs.pop("size", None)
    if kwargs:
        raise TypeError(f"{name}(): unexpected keyword argument(s) {sorted(kwargs)}: the legacy constructor takes "
                        "data or sizes and device=; use torch.tensor(data, dtype=..., requires_grad=...) instead")
    target = np.dtype(np.float32) if dtype is None else dtype
    if size is not None:
        if args:
            raise TypeError(f"{name}(): got both positional arguments {args!r} and size={size!r}")
        args = (Size(size),)
    if not args:
        return Tensor(np.zeros((0,), dtype=target))
    if len(args) == 1 and isinstance(args[0], Tensor):
        src = args[0]
        if dtype is not None and src._data.dtype != dtype:
            raise TypeError(f"{name}(): expected a tensor of dtype {dtype} (got {src._data.dtype}); "
                            f"convert it with .to({dtype}) instead")
        # An alias sharing memory (and, for a tensor in a graph, its gradient), as PyTorch's AliasBackward.
        return src.view(src.shape) if src._requires_grad and grad_mode._enabled else src.detach()
    if len(args) == 1 and isinstance(args[0], Size):
        args = tuple(args[0])
    elif len(args) == 1 and not _is_size_arg(args[0]):
        return Tensor(_from_data(name, args[0], target))
    elif len(args) > 1 and not _is_size_arg(args[0]):
        raise TypeError(f"{name}(): got {len(args)} positional arguments starting with a "
                        f"{type(args[0]).__name__}; expected data (one argument) or sizes (ints)")
    return Tensor(np.zeros(_sizes(name, args), dtype=target))


class _LegacyType(type):
    """Metaclass of the legacy constructors: calling builds a tensor, ``isinstance`` checks the dtype."""

    _legacy_dtype: np.dtype | None

    def __call__(cls, *args, **kwargs):
        if "_legacy_dtype" not in cls.__dict__:  # a user's subclass of torch.Tensor: plain construction
            return super().__call__(*args, **kwargs)
        return legacy_new(f"torch.{cls.__name__}", cls._legacy_dtype, args, kwargs)

    def __instancecheck__(cls, obj) -> bool:
        if not isinstance(obj, Tensor):
            return False
        return cls._legacy_dtype is None or obj._data.dtype == cls._legacy_dtype

    def __subclasscheck__(cls, sub) -> bool:
        if cls.__dict__.get("_legacy_dtype", 0) is None:  # torch.Tensor: every rnnbp tensor class
            return issubclass(sub, Tensor)
        return type.__subclasscheck__(cls, sub)

    def __eq__(cls, other) -> bool:
        # ``type(x) == torch.Tensor`` holds for a plain tensor (only ``is`` tells the two apart).
        if cls.__dict__.get("_legacy_dtype", 0) is None and other is Tensor:
            return True
        return type.__eq__(cls, other)

    def __hash__(cls) -> int:
        return hash(Tensor) if cls.__dict__.get("_legacy_dtype", 0) is None else type.__hash__(cls)

    def __repr__(cls) -> str:
        return f"<class 'torch.{cls.__name__}'>"


class LegacyTensor(Tensor, metaclass=_LegacyType):
    """``torch.Tensor`` under the stand-in: ``torch.Tensor(data)`` is float32 data, ``torch.Tensor(2, 3)``
    a zero-filled float32 (2, 3) (PyTorch leaves it uninitialised), ``torch.Tensor()`` an empty (0,);
    a tensor argument gives an alias of it. ``isinstance(x, torch.Tensor)`` holds for every tensor."""

    __slots__ = ()
    _legacy_dtype = None


LegacyTensor.__name__ = LegacyTensor.__qualname__ = "Tensor"
LegacyTensor.__module__ = "torch"


def _typed(name: str, dtype) -> type:
    cls = _LegacyType(name, (), {
        "__doc__": f"``torch.{name}``: the legacy constructor of {np.dtype(dtype)} tensors "
                   f"(``torch.{name}([1, 2])``, ``torch.{name}(2, 3)``); ``isinstance`` checks the dtype.",
        "__module__": "torch", "_legacy_dtype": np.dtype(dtype), "dtype": np.dtype(dtype), "is_cuda": False,
    })
    return cls


FloatTensor = _typed("FloatTensor", np.float32)
DoubleTensor = _typed("DoubleTensor", np.float64)
HalfTensor = _typed("HalfTensor", np.float16)
LongTensor = _typed("LongTensor", np.int64)
IntTensor = _typed("IntTensor", np.int32)
ShortTensor = _typed("ShortTensor", np.int16)
CharTensor = _typed("CharTensor", np.int8)
ByteTensor = _typed("ByteTensor", np.uint8)
BoolTensor = _typed("BoolTensor", np.bool_)

_BY_NAME = {f"torch.{cls.__name__}": cls for cls in (
    FloatTensor, DoubleTensor, HalfTensor, LongTensor, IntTensor, ShortTensor, CharTensor, ByteTensor, BoolTensor)}


def legacy_dtype(spec):
    """The dtype a legacy type spec names (``torch.LongTensor``, ``'torch.LongTensor'``, ``torch.Tensor``
    or ``'torch.Tensor'``: float32), or None if ``spec`` is not one; other strings raise, as PyTorch's
    ``Tensor.type`` does."""
    if isinstance(spec, _LegacyType):
        return np.dtype(np.float32) if spec._legacy_dtype is None else spec._legacy_dtype
    if isinstance(spec, str):
        if spec in ("torch.Tensor", "rnnbp.Tensor"):
            return np.dtype(np.float32)
        cls = _BY_NAME.get(spec.replace("rnnbp.", "torch.", 1))
        if cls is None:
            raise ValueError(f"type: invalid type: {spec!r} (expected a legacy type name such as 'torch.LongTensor', "
                             "or a dtype such as torch.int64)")
        return cls._legacy_dtype
    if isinstance(spec, type) and spec in (int, float, bool):
        raise ValueError(f"type: invalid type: {spec.__name__!r} (expected e.g. torch.int64 or torch.LongTensor)")
    return None
