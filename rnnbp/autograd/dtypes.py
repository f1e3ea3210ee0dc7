"""PyTorch's dtype names (``rnnbp.float32``, ``rnnbp.long``, ...) as the NumPy dtypes they are.

rnnbp's dtypes *are* ``numpy.dtype`` objects, so ``t.dtype == rnnbp.float32``,
``t.dtype is rnnbp.float32``, ``dtype=rnnbp.long`` and NumPy code all agree, with no
conversion on any path. ``as_dtype`` reads every spelling a script may use: these objects,
NumPy types, strings, and Python's ``float`` / ``int`` / ``bool`` (float64 / int64 / bool,
as ``torch.tensor(..., dtype=float)`` gives).

Differs from PyTorch: ``repr(rnnbp.float32)`` is ``dtype('float32')``, and there is no
bfloat16 or complex support (rnnbp is real-valued).
"""
from __future__ import annotations

import builtins

import numpy as np

float16 = half = np.dtype(np.float16)
float32 = float = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
int16 = short = np.dtype(np.int16)
int32 = int = np.dtype(np.int32)
int64 = long = np.dtype(np.int64)
bool = np.dtype(np.bool_)

_PYTHON_TYPES = {builtins.float: float64, builtins.int: int64, builtins.bool: bool}
# The legacy tensor-type strings of Tensor.type() ("torch.FloatTensor"), both ways.
TYPE_NAMES = {
    float16: "torch.HalfTensor", float32: "torch.FloatTensor", float64: "torch.DoubleTensor",
    int8: "torch.CharTensor", uint8: "torch.ByteTensor", int16: "torch.ShortTensor",
    int32: "torch.IntTensor", int64: "torch.LongTensor", bool: "torch.BoolTensor",
}
_BY_TYPE_NAME = {name: dtype for dtype, name in TYPE_NAMES.items()}
_BY_TYPE_NAME.update({name.replace("torch.", "rnnbp."): dtype for name, dtype in _BY_TYPE_NAME.items()})


def as_dtype(spec) -> np.dtype:
    """The NumPy dtype a user's ``dtype=`` means; complex and object dtypes are refused by name."""
    if isinstance(spec, np.dtype):
        dtype = spec
    elif spec in _PYTHON_TYPES:
        dtype = _PYTHON_TYPES[spec]
    elif isinstance(spec, str) and spec in _BY_TYPE_NAME:
        dtype = _BY_TYPE_NAME[spec]
    else:
        try:
            dtype = np.dtype(spec.replace("torch.", "").replace("rnnbp.", "") if isinstance(spec, str) else spec)
        except TypeError:
            raise TypeError(f"dtype: {spec!r} is not a dtype (expected e.g. rnnbp.float32 or 'float64')") from None
    if dtype.kind not in "biuf":
        raise TypeError(f"dtype: rnnbp tensors are real-valued (bool, integer or float); {dtype} is not supported")
    return dtype


_default = [float32]  # the default floating dtype; set_default_dtype changes it for the process


def default_dtype() -> np.dtype:
    """The dtype of floating tensors made without a dtype (``torch.get_default_dtype()``): float32 unless
    ``set_default_dtype`` chose another."""
    return _default[0]


def set_default_dtype(spec) -> None:
    """Make ``spec`` (float16, float32 or float64) the dtype of floating tensors and parameters made
    from now on without a dtype (``torch.set_default_dtype``)."""
    dtype = as_dtype(spec)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: only floating-point types are supported as the default type, got {dtype}")
    _default[0] = dtype


def is_floating_point(dtype: np.dtype) -> builtins.bool:
    """Whether ``dtype`` is a floating type (``torch.dtype.is_floating_point``)."""
    return dtype.kind == "f"


class finfo:  # noqa: N801  (PyTorch's name)
    """``torch.finfo``: a floating dtype's limits as Python floats, as PyTorch gives them.

    NumPy's ``np.finfo`` answers with NumPy scalars of the dtype itself (``float32(1.1920929e-07)``,
    ``resolution`` 1e-06 rounded to float32), which print and compare differently from
    PyTorch's Python floats in a script; this class holds PyTorch's values.

    Attributes: bits (int), eps, max, min, tiny (= smallest_normal), resolution (10^-digits,
    exact as a Python float), dtype (the name, a str such as ``'float32'``).

    Args:
        type : a floating dtype (or any spelling ``as_dtype`` reads); float32 when omitted.
    """

    __slots__ = ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype")

    def __init__(self, type=None):  # noqa: A002  (PyTorch's argument name)
        dtype = default_dtype() if type is None else as_dtype(type)
        if dtype.kind != "f":
            raise TypeError(f"finfo: requires a floating point dtype, got {dtype}; use iinfo for integer "
                            "and bool types")
        info = np.finfo(dtype)
        self.bits = builtins.int(info.bits)
        self.eps = builtins.float(info.eps)
        self.max = builtins.float(info.max)
        self.min = builtins.float(info.min)
        self.tiny = self.smallest_normal = builtins.float(info.smallest_normal)
        self.resolution = 10.0 ** -builtins.int(info.precision)
        self.dtype = dtype.name

    def __eq__(self, other) -> builtins.bool:
        return isinstance(other, finfo) and self.dtype == other.dtype

    def __hash__(self) -> builtins.int:
        return hash(("finfo", self.dtype))

    def __repr__(self) -> str:
        fields = ("resolution", "min", "max", "eps", "smallest_normal", "tiny")
        return "finfo(" + ", ".join(f"{name}={getattr(self, name):g}" for name in fields) + f", dtype={self.dtype})"
