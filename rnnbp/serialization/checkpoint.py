"""``save`` / ``load`` like ``torch.save`` / ``torch.load``: one ``.npz`` file, never pickled, every byte checked.

A checkpoint is a NumPy ``.npz`` archive (:mod:`.archive`) holding

* every array of the object, under generated names ``a0``, ``a1``, ...;
* ``__rnnbp__``: the skeleton (:mod:`.skeleton`), a UTF-8 JSON document stored as a uint8 array::

      {"format": "rnnbp-checkpoint", "version": 3,
       "arrays": {"a0": {"dtype": "<f4", "shape": [8, 3], "path": "obj.rnn.weight_ih_l0",
                         "crc32": 2834164371}, ...},
       "root": <the object, with its arrays replaced by their names>}

  ``arrays`` has one record per array; ``crc32`` is the CRC-32 of the array's ``.npy``
  member (header and data). ``root`` is the object's tree (:mod:`.encoder`, :mod:`.decoder`).

What can be saved (``torch.save``'s common uses): state dicts and any nesting of dicts,
lists, tuples, sets, numbers, strings, None, NumPy arrays, scalars and dtypes; Tensors and
Parameters (they load as Tensors and Parameters, ``requires_grad`` kept, gradients and
graph not saved, as in PyTorch); whole Modules, stored as their tree (class path,
``__dict__``-level attributes, parameters, buffers and submodules) and rebuilt on load
without calling ``__init__``; rnnbp's own objects and NumPy generators; classes and
functions by name. Anything else (a lambda, an open file, an object of another library)
is refused by ``save`` with its attribute path: save the ``state_dict()`` instead. Nesting
is bounded (about 10,000 levels, far beyond real checkpoints) so that loading stays safe.

Loading never unpickles and rebuilds only rnnbp's classes and those the program allows
(:mod:`.allowlist`), so a checkpoint from an untrusted source cannot run code. Before
anything is built, every array is checked against its record (dtype, shape, and from
version 3 its CRC-32) and against the zip directory: a damaged or foreign file raises
:class:`CheckpointError` naming the file and the entry, never a wrong array. Saving to a
path is atomic and cleans up after killed saves (:mod:`.files`).

Round trips are exact: arrays keep dtype, shape (0-d included) and bytes; floats are
bit-exact (NaN payloads too); the same array reached twice is stored once and comes back
as one array. Containers load as their base type (a ``defaultdict`` as ``dict``, a
namedtuple as ``tuple``), except ``OrderedDict``. Version 1 files (no records, Tensors
saved as bare arrays) and version 2 files (records without checksums) still load, with
the checks their contents allow.
"""
from __future__ import annotations

import contextlib
import os
import struct

import numpy as np

from . import allowlist, skeleton
from .archive import ArchiveReader, member_crc, write_archive
from .decoder import Decoder
from .encoder import Encoder
from .errors import CheckpointError
from .files import atomic_write, check_binary, is_path, reader

__all__ = ["save", "load", "get_unsafe_globals_in_checkpoint", "FORMAT", "VERSION"]

FORMAT, VERSION = skeleton.FORMAT, skeleton.VERSION


def save(obj, f, pickle_module=None, pickle_protocol=None, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False) -> None:
    """Write ``obj`` to ``f`` (``torch.save``): a state dict, a whole Module, Tensors, or any nesting.

    Args:
        obj: what to save, e.g. ``model``, ``model.state_dict()`` or ``{'model': model.state_dict(),
            'optimizer': opt.state_dict(), 'epoch': 3}``. What can be stored is listed in the
            module docstring; Modules may be of any class (the program's own too), other
            objects only of rnnbp's classes or of classes allowed by
            ``rnnbp.serialization.add_safe_globals``.
        f : str, os.PathLike or binary file object (``open(p, 'wb')``, ``io.BytesIO()``).
            A path is used exactly as given (no ``.npz`` suffix added; ``load`` recognises the
            file by its contents) and replaced atomically, after removing the temporary files
            of killed saves from its folder; a file object is written at its current position
            and left open.
        pickle_module, pickle_protocol, _use_new_zipfile_serialization, _disable_byteorder_record:
            PyTorch's; accepted and ignored (rnnbp never pickles).

    Raises:
        TypeError: a value cannot be saved; the message names its place, e.g.
            ``obj['param_groups'][0]['foo']`` or ``obj.decoder.act``, and says to save the
            ``state_dict()`` instead. Nothing is written then.
        ValueError: ``obj`` is nested too deeply (about 10,000 levels); nothing is written.
    """
    if not is_path(f):
        check_binary(f, "save", "write")
    encoder = Encoder()
    root_text = skeleton.encode_root(encoder.encode_root(obj))  # every refusal happens before writing
    for key, arr in encoder.arrays.items():
        encoder.records[key]["crc32"] = member_crc(arr)
    doc = skeleton.document(encoder.records, root_text)
    members = {skeleton.ENTRY: np.frombuffer(doc, dtype=np.uint8), **encoder.arrays}
    if is_path(f):
        atomic_write(os.fsdecode(f), lambda out: write_archive(out, members))
        return
    write_archive(f, members)
    with contextlib.suppress(AttributeError, OSError, ValueError):
        f.flush()


def _check_load_args(map_location, weights_only, mmap) -> None:
    from ..autograd.device import device

    if not (map_location is None or isinstance(map_location, (str, dict, device)) or callable(map_location)):
        raise TypeError(
            "load: map_location must be None, a string, a device, a dict or a callable, "
            f"got {type(map_location).__name__}"
        )
    for name, value in (("weights_only", weights_only), ("mmap", mmap)):
        if value is not None and not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"load: {name} must be True, False or None, got {value!r}")


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **pickle_load_args):
    """Read a checkpoint written by :func:`save` (``torch.load``), rebuilding the saved object.

    Args:
        f : str, os.PathLike or binary file object (``open(p, 'rb')``, ``io.BytesIO``).
        map_location: PyTorch's (None, a string, a device, a dict or a callable); accepted and
            ignored: everything loads on the CPU, where rnnbp runs (``'cuda:0'`` included).
        weights_only: None or True (PyTorch's default): classes are rebuilt only if rnnbp's own or
            allowed (:mod:`rnnbp.serialization`). False, where PyTorch would unpickle anything,
            also rebuilds ``nn.Module`` subclasses by their saved module path, importing that
            module as pickle would (``torch.load(f, weights_only=False)`` of a model saved by
            ``main.py``, in ``generate.py``); other classes stay refused, and nothing is unpickled.
        pickle_module, mmap, **pickle_load_args: PyTorch's; accepted and ignored.

    Returns:
        The saved object. Arrays come back as ``np.ndarray``, Tensors (a state dict's values)
        and Parameters as Tensors and Parameters sharing the loaded arrays, Modules as
        Modules of their class with their attributes, parameters, buffers and submodules.

    Raises:
        FileNotFoundError: ``f`` is a path that does not exist.
        CheckpointError: (a ValueError) the file is truncated, damaged (an array, its header,
            the skeleton or the zip directory: the message names the file and the entry, such as
            ``array 'a3' (obj['model']['rnn.weight_ih_l0'])``), not an ``.npz`` archive, not
            written by ``rnnbp.save``, holds pickled object arrays, or was written by PyTorch
            (the message says how to convert it). Checked before anything is built.
        UnsafeGlobalError: (a CheckpointError and a ``pickle.UnpicklingError``) the file
            names a class that is neither rnnbp's nor allowed; the message says how to allow it.
    """
    _check_load_args(map_location, weights_only, mmap)
    with reader(f) as (fh, name), ArchiveReader(fh, name) as archive:
        doc = archive.skeleton()
        arrays = {key: archive.array(key, record) for key, record in archive.records(doc).items()}
    try:
        return Decoder(arrays, name, trust_modules=weights_only is False).decode_root(doc.get("root"))
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError, struct.error) as exc:
        raise CheckpointError(f"load: {name}: the skeleton is corrupt ({type(exc).__name__}: {exc})") from None


def get_unsafe_globals_in_checkpoint(f) -> list:
    """The ``module.qualname`` of each class or function in checkpoint ``f`` that ``load`` would refuse.

    Reads the file's skeleton only; imports nothing.
    """
    with reader(f) as (fh, name), ArchiveReader(fh, name) as archive:
        root = archive.skeleton().get("root")
    found = []
    stack = [root]
    while stack:  # depth-first, in file order, without recursion (a skeleton may be deep)
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
        elif isinstance(node, dict):
            for tag in ("$object", "$global", "$generator"):
                spec = node.get(tag) if len(node) == 1 else None
                if isinstance(spec, dict) and all(isinstance(spec.get(k), str) for k in ("module", "qualname")):
                    path = f"{spec['module']}.{spec['qualname']}"
                    if (path != "numpy.random.Generator" and not allowlist.is_allowed(spec["module"], spec["qualname"])
                            and path not in found):
                        found.append(path)
            stack.extend(reversed(list(node.values())))
    return found
