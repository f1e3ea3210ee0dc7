"""The dtype policy of the ops: PyTorch's promotion rules, and how constants join tensors.

Every op's functional form (:mod:`.functions`) passes its operands through here before
calling its ``Function``, so the rules live in one place: a higher category (bool < integer <
float) wins, the wider dtype within a category wins, a 0-d tensor does not widen a dimensioned
one, and a Python or NumPy number never promotes a float32 tensor.
"""
from __future__ import annotations

import builtins
from collections.abc import Sequence

import numpy as np

from ..tensor import Tensor
from ..dtypes import default_dtype
from .elementwise import Cast

# ----------------------------------------------------------------- arguments
# PyTorch's dtype categories: a higher category always wins, whatever the widths.
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
# The dtype a constant of a higher category than every tensor brings in (torch's defaults: int64, and
# the default floating dtype, ``default_dtype()``).
_INTEGER_DEFAULT = np.dtype(np.int64)


def _category(dtype: np.dtype) -> int:
    return _CATEGORY.get(dtype.kind, -1)


def _group_dtype(dtypes: list) -> np.dtype:
    """The widest dtype of the highest category present (``torch.promote_types`` over a group)."""
    top = builtins.max(_category(d) for d in dtypes)
    return np.result_type(*(d for d in dtypes if _category(d) == top))


def _tensor_dtype(tensors) -> np.dtype:
    """The common dtype of Tensors: dimensioned ones decide unless a 0-d one has a higher category."""
    dims = [t._data.dtype for t in tensors if t._data.ndim]
    zero_d = [t._data.dtype for t in tensors if not t._data.ndim]
    if not dims:
        return _group_dtype(zero_d)
    dtype = _group_dtype(dims)
    if zero_d:
        other = _group_dtype(zero_d)
        if _category(other) > _category(dtype):
            return other
    return dtype


def promote(*tensors: Tensor) -> tuple:
    """Cast Tensors to their common dtype by PyTorch's category rule (bool < integer < float).

    A float tensor meeting an integer or bool tensor gives the float tensor's dtype; within a
    category the wider dtype wins (int32 and int64 give int64, float32 and float64 float64),
    except that a 0-d tensor does not upcast a dimensioned tensor of the same category
    (float32 (3,) times a 0-d float64 gives float32). Unlike ``np.result_type``, int64 and
    float32 give float32. A float-to-float cast is a ``Cast`` node only when the tensor
    requires grad, so every gradient comes back in its input's dtype; other casts are constants.
    """
    first = tensors[0]._data.dtype
    if all(t._data.dtype == first for t in tensors):
        return tensors
    common = _tensor_dtype(tensors)
    return tuple(cast(t, common) for t in tensors)


def common(*operands, floating: bool = False) -> tuple:
    """Bring Tensors and constants (Python or NumPy numbers, arrays) to one dtype; None passes.

    Tensors promote among themselves (:func:`promote`). A constant takes the tensors' dtype
    unless its category is higher: then everything goes to that category's default dtype, so
    ``int_tensor * 0.5`` is float32 and a NumPy float64 never promotes a float32 tensor (rnnbp
    treats NumPy arrays like Python numbers here, where PyTorch would treat them as tensors).
    ``floating`` lifts an integer or bool result to ``default_dtype()`` (true division).
    """
    if not any(isinstance(x, Tensor) for x in operands):  # e.g. add(ndarray, 2.0)
        operands = (Tensor(operands[0]),) + operands[1:]
    tensors = [x for x in operands if isinstance(x, Tensor)]
    consts = {i: np.asarray(x) for i, x in enumerate(operands) if x is not None and not isinstance(x, Tensor)}
    dtype = tensors[0]._data.dtype if len(tensors) == 1 else _tensor_dtype(tensors)
    const_category = builtins.max((_category(c.dtype) for c in consts.values()), default=-1)
    if const_category == 3:
        raise TypeError(
            f"complex operands are not supported: rnnbp tensors are real-valued (got a constant of dtype "
            f"{next(c.dtype for c in consts.values() if c.dtype.kind == 'c')})"
        )
    if const_category > _category(dtype):
        dtype = _INTEGER_DEFAULT if const_category == 1 else default_dtype()
    if floating and _category(dtype) < 2:
        dtype = default_dtype()
    out = []
    for i, x in enumerate(operands):
        if i in consts:
            c = consts[i]
            x = c.astype(dtype, copy=False) if c.dtype.kind in "biufc" else c
        elif x is not None:
            x = cast(x, dtype)
        out.append(x)
    return tuple(out)


def operands(a, b, floating: bool = False):
    """Pair two operands in one dtype (:func:`common`), with fast paths for the common cases."""
    a_is, b_is = isinstance(a, Tensor), isinstance(b, Tensor)
    if a_is and b_is:
        if a._data.dtype == b._data.dtype and (not floating or a._data.dtype.kind in "fc"):
            return a, b
    elif a_is and type(b) in (float, int) and a._data.dtype.kind == "f":
        return a, np.asarray(b, dtype=a._data.dtype)
    elif b_is and type(a) in (float, int) and b._data.dtype.kind == "f":
        return np.asarray(a, dtype=b._data.dtype), b
    return common(a, b, floating=floating)


def float_input(x) -> Tensor:
    """``x`` as a Tensor, integer or bool cast to ``default_dtype()`` (for exp, log, softmax, ...)."""
    if not isinstance(x, Tensor):
        x = Tensor(x)
    return x if x._data.dtype.kind in "fc" else cast(x, default_dtype())


def check_dim(dim, ndim: int, shape: tuple, op: str) -> int:
    """``dim`` as a non-negative axis; a 0-d tensor accepts 0 and -1, as in PyTorch."""
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    n = builtins.max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"{op}: dim {dim} is out of range for a tensor of shape {shape} (expected {-n} to {n - 1})"
        )
    return int(dim) % n


def constant_result(data, op: str) -> Tensor:
    t = Tensor._make(np.asarray(data))
    t._nondiff_op = op
    return t


def shape_args(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (Sequence, np.ndarray)):
        return tuple(shape[0])
    return tuple(shape)




def cast(x: Tensor, dtype) -> Tensor:
    """Cast to ``dtype``; only float-to-float casts keep the gradient."""
    dtype = np.dtype(dtype)
    if dtype == x._data.dtype:
        return x
    if dtype.kind == "f" and x._data.dtype.kind == "f":
        return Cast.apply(x, dtype=dtype)
    # Casting from a float cuts the gradient here; casting e.g. a comparison's booleans keeps
    # that comparison as the op a later backward blames.
    op = f"cast to {dtype}" if x._data.dtype.kind == "f" else x._nondiff_op
    return constant_result(x._data.astype(dtype), op)
