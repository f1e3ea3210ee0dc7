"""Collation: a list of samples -> one batch, by PyTorch's rules (``default_collate``).

The rule follows the structure of the first sample:

=================================  ===============================================================
sample element                     batch
=================================  ===============================================================
Tensor (*)                         Tensor (B, *), stacked (stays in the graph)
NumPy array (*)                    Tensor (B, *), its dtype kept
NumPy scalar                       Tensor (B,) of its dtype
Python float / int / bool          Tensor (B,) float64 / int64 / bool (as PyTorch)
str, bytes                         the batch of them as given (a list or tuple), unchanged
dict (Mapping)                     a dict of the same type, each key collated
namedtuple                         the same namedtuple of collated fields
tuple / list                       a list (for a tuple, as PyTorch) of the transposed, collated fields
=================================  ===============================================================

``default_convert`` is what a DataLoader uses with ``batch_size=None``: arrays become
Tensors, nothing is batched. ``collate(batch, collate_fn_map=...)`` and
``default_collate_fn_map`` let a program add its own element types, as in PyTorch.
"""
from __future__ import annotations

import collections.abc
import copy
import numbers
import re

import numpy as np

from ...autograd.ops import stack
from ...autograd.tensor import Tensor

__all__ = ["default_collate", "default_convert", "collate", "default_collate_fn_map"]

_STRING_OR_OBJECT = re.compile(r"[SaUO]")  # NumPy dtype codes that cannot become a Tensor

default_collate_err_msg_format = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)


def _same_shapes(shapes: list, what: str) -> None:
    for i, shape in enumerate(shapes):
        if shape != shapes[0]:
            raise ValueError(
                f"default_collate: cannot stack {what} of different shapes: {shapes[0]} at entry 0 and {shape} at "
                f"entry {i}; pad them to one shape in a collate_fn (e.g. with nn.utils.rnn.pad_sequence)"
            )


def collate_tensor_fn(batch, *, collate_fn_map=None) -> Tensor:
    _same_shapes([tuple(t.shape) for t in batch], "tensors")
    return stack(list(batch), 0)


def collate_numpy_array_fn(batch, *, collate_fn_map=None) -> Tensor:
    elem = batch[0]
    if _STRING_OR_OBJECT.search(elem.dtype.str) is not None:
        raise TypeError(default_collate_err_msg_format.format(elem.dtype))
    _same_shapes([b.shape for b in batch], "arrays")
    return Tensor(np.stack(batch))


def collate_numpy_scalar_fn(batch, *, collate_fn_map=None) -> Tensor:
    return Tensor(np.array(batch))


def collate_float_fn(batch, *, collate_fn_map=None) -> Tensor:
    return Tensor(np.array(batch, dtype=np.float64))


def collate_int_fn(batch, *, collate_fn_map=None) -> Tensor:
    array = np.array(batch)  # all bools -> bool; a float among the ints -> float32; else int64 (torch.tensor(batch))
    if array.dtype == np.bool_:
        return Tensor(array)
    return Tensor(array.astype(np.float32 if array.dtype.kind == "f" else np.int64, copy=False))


def collate_str_fn(batch, *, collate_fn_map=None):
    return batch


default_collate_fn_map: dict = {
    Tensor: collate_tensor_fn,
    np.ndarray: collate_numpy_array_fn,
    (np.bool_, np.number, np.object_): collate_numpy_scalar_fn,
    float: collate_float_fn,
    int: collate_int_fn,
    str: collate_str_fn,
    bytes: collate_str_fn,
}


def _kind(x) -> str | None:
    """What a sample element is, for telling a batch of mixed samples apart (None: a type of the user's)."""
    if isinstance(x, Tensor):
        return "a Tensor"
    if isinstance(x, np.ndarray):
        return "a NumPy array"
    if isinstance(x, (str, bytes)):
        return "a string"
    if isinstance(x, (numbers.Number, np.generic)):
        return "a number"
    if isinstance(x, collections.abc.Mapping):
        return "a dict"
    if isinstance(x, collections.abc.Sequence):
        return "a sequence"
    return None


def _check_same_kind(batch) -> None:
    """Every sample like the first (a Tensor, an array, a number, ...), or a TypeError naming the first that is not."""
    first = _kind(batch[0])
    if first is None:
        return
    for i, sample in enumerate(batch):
        kind = _kind(sample)
        if kind is not None and kind != first:
            raise TypeError(f"default_collate: sample {i} is {kind} ({type(sample).__name__}) where sample 0 is "
                            f"{first} ({type(batch[0]).__name__}); every sample must have the same structure")


def collate(batch, *, collate_fn_map: dict | None = None):
    """Collate ``batch`` (a list of samples) following the structure of ``batch[0]``.

    ``collate_fn_map`` maps an element type (or a tuple of types) to ``fn(batch, *, collate_fn_map)``;
    an exact type match wins, then the first entry the element is an instance of. Containers
    (mappings, namedtuples, sequences) are walked here.
    """
    elem = batch[0]
    elem_type = type(elem)
    _check_same_kind(batch)
    if collate_fn_map is not None:
        if elem_type in collate_fn_map:
            return collate_fn_map[elem_type](batch, collate_fn_map=collate_fn_map)
        for collate_type, fn in collate_fn_map.items():
            if isinstance(elem, collate_type):
                return fn(batch, collate_fn_map=collate_fn_map)
    if isinstance(elem, collections.abc.Mapping):
        for i, sample in enumerate(batch):
            if set(sample) != set(elem):
                raise ValueError(f"default_collate: sample {i} has keys {sorted(map(str, sample))} but sample 0 "
                                 f"has {sorted(map(str, elem))}; every sample needs the same keys")
        fields = {key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map) for key in elem}
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)  # keeps the mapping type and its extra attributes
                clone.update(fields)
                return clone
            return elem_type(fields)
        except TypeError:
            return fields
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return elem_type(*(collate(samples, collate_fn_map=collate_fn_map) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        for i, sample in enumerate(batch):
            if len(sample) != size:
                raise ValueError(f"default_collate: each element in list of batch should be of equal size; "
                                 f"sample 0 has {size} fields and sample {i} has {len(sample)}")
        fields = [collate(samples, collate_fn_map=collate_fn_map) for samples in zip(*batch)]
        if isinstance(elem, tuple):
            return fields  # a list, as PyTorch returns for tuples
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, field in enumerate(fields):
                    clone[i] = field
                return clone
            return elem_type(fields)
        except TypeError:
            return fields
    raise TypeError(default_collate_err_msg_format.format(elem_type))


def default_collate(batch):
    """Stack a list of samples into a batch with a new leading dimension B (table in the module docstring).

    Example: samples ``(x_i, y_i)`` with x_i a (T, H) array and y_i an int give
    ``[Tensor (B, T, H), Tensor (B,) int64]``.
    """
    return collate(batch, collate_fn_map=default_collate_fn_map)


def default_convert(data):
    """One sample with its NumPy arrays (and NumPy scalars) turned into Tensors; nothing is batched.

    Containers are walked as in :func:`default_collate` (tuples become lists); other values,
    Python numbers included, are returned unchanged.
    """
    if isinstance(data, Tensor):
        return data
    elem_type = type(data)
    if elem_type.__module__ == "numpy" and elem_type.__name__ not in ("str_", "bytes_", "string_"):
        if isinstance(data, np.ndarray) and _STRING_OR_OBJECT.search(data.dtype.str) is not None:
            return data
        return Tensor(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        fields = {key: default_convert(data[key]) for key in data}
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update(fields)
                return clone
            return elem_type(fields)
        except TypeError:
            return fields
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return elem_type(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        fields = [default_convert(d) for d in data]
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, field in enumerate(fields):
                    clone[i] = field
                return clone
            return elem_type(fields)
        except TypeError:
            return fields
    return data

