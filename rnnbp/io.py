"""Checkpoints: ``save`` / ``load`` nested state dicts as one ``.npz`` file, atomically, without pickle.

A checkpoint is a NumPy ``.npz`` archive holding

* every array of the object, under generated names ``a0``, ``a1``, ...;
* ``__rnnbp__``: the skeleton, a UTF-8 JSON document stored as a uint8 array, that
  rebuilds the object around those arrays: dict key types (int keys stay int),
  tuples vs lists, Python scalars, strings, None and bools.

Loading never unpickles (``allow_pickle=False``), so a checkpoint from an untrusted
source cannot run code; nanoGPT's ``meta.pkl`` is the counter-example. Writing goes
to a temporary file beside ``path`` that is flushed, fsynced and then
``os.replace``d over ``path``, so a crash mid-write leaves the old file intact.

Round trips are exact: arrays keep dtype, shape (0-d included) and bytes; floats
are bit-exact (NaN payloads too); the same array object reached twice is stored
once and comes back as one object. Tensors (and Parameters) are saved as their
arrays and load as ``np.ndarray``. Subclasses load as their base type (a
``defaultdict`` as ``dict``, a namedtuple as ``tuple``), except ``OrderedDict``.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import struct
import zipfile
from collections import OrderedDict

import numpy as np

from .autograd.tensor import Tensor

__all__ = ["save", "load", "CheckpointError"]

FORMAT = "rnnbp-checkpoint"
VERSION = 1
_SKELETON = "__rnnbp__"


class CheckpointError(ValueError):
    """A file is not a readable rnnbp checkpoint (truncated, corrupt, or written by something else)."""


# ------------------------------------------------------------------- encode
class _Encoder:
    """Walks an object, moving its arrays into ``arrays`` and returning the JSON skeleton."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}
        self._keys_by_id: dict[int, str] = {}
        self._open: set[int] = set()  # containers being encoded, to catch cycles

    def _store(self, arr: np.ndarray, where: str, share: bool) -> str:
        if arr.dtype.hasobject:
            raise TypeError(
                f"save: {where} is an array of dtype {arr.dtype}; object arrays would need pickle, "
                "which rnnbp checkpoints do not use"
            )
        if share and id(arr) in self._keys_by_id:
            return self._keys_by_id[id(arr)]
        key = f"a{len(self.arrays)}"
        self.arrays[key] = arr
        if share:
            self._keys_by_id[id(arr)] = key
        return key

    def encode(self, obj, where: str):
        if isinstance(obj, np.generic):  # before float and str: np.float64 and np.str_ subclass them
            return {"$scalar": self._store(np.asarray(obj), where, share=False)}
        if obj is None or type(obj) is bool:
            return obj
        if isinstance(obj, str):
            return str(obj)
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            obj = float(obj)
            if obj == obj and obj not in (float("inf"), float("-inf")):
                return obj  # json writes repr(obj), which parses back to the same bits
            return {"$float": struct.pack(">d", obj).hex()}
        if isinstance(obj, Tensor):
            return {"$array": self._store(obj.data, where, share=True)}
        if isinstance(obj, np.ndarray):
            return {"$array": self._store(obj, where, share=True)}
        if isinstance(obj, (tuple, list, dict)):
            if id(obj) in self._open:
                raise TypeError(f"save: {where} contains itself (a reference cycle), which cannot be saved")
            self._open.add(id(obj))
            try:
                if isinstance(obj, dict):
                    return self._encode_dict(obj, where)
                items = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
                return {"$tuple": items} if isinstance(obj, tuple) else items
            finally:
                self._open.discard(id(obj))
        raise TypeError(
            f"save: cannot save {where} of type {type(obj).__name__}; supported are dict, list, "
            "tuple, str, int, float, bool, None, NumPy arrays and scalars, and Tensors"
        )

    def _encode_dict(self, obj: dict, where: str):
        plain = type(obj) is not OrderedDict and all(
            type(k) is str and not k.startswith("$") for k in obj
        )
        if plain:
            return {k: self.encode(v, f"{where}[{k!r}]") for k, v in obj.items()}
        items = []
        for k, v in obj.items():
            if isinstance(k, (np.ndarray, Tensor, list, dict)):
                raise TypeError(f"save: key {k!r} of {where} has unsupported type {type(k).__name__}")
            items.append([self.encode(k, f"{where} key {k!r}"), self.encode(v, f"{where}[{k!r}]")])
        return {"$odict" if type(obj) is OrderedDict else "$dict": items}


# ------------------------------------------------------------------- decode
def _decode(node, arrays: dict, path: str):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, arrays, path) for v in node]
    if not isinstance(node, dict):
        raise CheckpointError(f"load: {path}: unexpected {type(node).__name__} in the skeleton")
    if len(node) == 1:
        tag, value = next(iter(node.items()))
        if tag in ("$array", "$scalar"):
            if value not in arrays:
                raise CheckpointError(f"load: {path}: the skeleton refers to array {value!r}, which is missing")
            return arrays[value] if tag == "$array" else arrays[value][()]
        if tag == "$tuple":
            return tuple(_decode(v, arrays, path) for v in value)
        if tag in ("$dict", "$odict"):
            pairs = ((_decode(k, arrays, path), _decode(v, arrays, path)) for k, v in value)
            return OrderedDict(pairs) if tag == "$odict" else dict(pairs)
        if tag == "$float":
            return struct.unpack(">d", bytes.fromhex(value))[0]
    if any(k.startswith("$") for k in node):
        raise CheckpointError(f"load: {path}: unknown entry {sorted(node)} in the skeleton")
    return {k: _decode(v, arrays, path) for k, v in node.items()}


# --------------------------------------------------------------------- save
def _fsync_directory(directory: str) -> None:
    """Make the rename durable; best effort (not every OS or file system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: str, write) -> None:
    """Call ``write(file)`` on a temp file beside ``path``, then move it over ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: cannot write {path}: directory {directory} does not exist")
    base = os.path.basename(path)
    while True:
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            # 0o666 lets the umask decide the permissions, as for a file opened with open().
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def save(obj, path) -> None:
    """Write ``obj`` (a state dict or any nesting of supported values) to ``path`` atomically.

    Supported values: dict (any str/int/float/bool/None/tuple keys), OrderedDict, list,
    tuple, str, int, float, bool, None, NumPy arrays and scalars (non-object dtypes),
    and Tensors/Parameters (saved as their arrays).

    Args:
        obj: the object to save, e.g. ``{'model': model.state_dict(),
            'optimizer': opt.state_dict(), 'epoch': 3}``.
        path : str or os.PathLike. Used exactly as given: no ``.npz`` suffix is added
            (``.npz`` is the convention; ``load`` recognises the file by its contents).

    Raises:
        TypeError: a value cannot be saved; the message names its place, e.g.
            ``obj['param_groups'][0]['foo']``. Nothing is written then.
    """
    path = os.fspath(path)
    encoder = _Encoder()
    root = encoder.encode(obj, "obj")
    skeleton = json.dumps({"format": FORMAT, "version": VERSION, "root": root},
                          ensure_ascii=True, allow_nan=False).encode("ascii")
    members = {_SKELETON: np.frombuffer(skeleton, dtype=np.uint8), **encoder.arrays}
    # Through a file object, np.savez writes to the temp file as is (given a name it would append .npz).
    _atomic_write(path, lambda f: np.savez(f, **members))


# --------------------------------------------------------------------- load
def load(path):
    """Read a checkpoint written by :func:`save`, rebuilding the saved object exactly.

    Args:
        path : str or os.PathLike.

    Returns:
        The saved object; arrays (and Tensors) come back as ``np.ndarray``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: (a ValueError) the file is truncated, corrupt, not an ``.npz``
            archive, not written by ``rnnbp.save``, or holds pickled object arrays.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            npz = np.load(f, allow_pickle=False)
        except (ValueError, EOFError, OSError, zipfile.BadZipFile) as exc:
            raise CheckpointError(
                f"load: {path} is not an rnnbp checkpoint: it is truncated or not an .npz archive ({exc})"
            ) from None
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise CheckpointError(f"load: {path} is a single .npy array, not an rnnbp checkpoint (.npz archive)")
        with npz:
            if _SKELETON not in npz.files:
                raise CheckpointError(
                    f"load: {path} is an .npz archive not written by rnnbp.save "
                    f"(no {_SKELETON!r} entry; it holds {sorted(npz.files)[:10]})"
                )
            arrays = {}
            for name in npz.files:
                try:
                    arrays[name] = npz[name]
                except ValueError as exc:
                    if "pickle" in str(exc) or "Object arrays" in str(exc):
                        raise CheckpointError(
                            f"load: {path}: entry {name!r} is an object array, which needs pickle; "
                            "rnnbp checkpoints never contain pickled data, so it is refused"
                        ) from None
                    raise CheckpointError(f"load: {path}: entry {name!r} is unreadable ({exc})") from None
                except (EOFError, OSError, zipfile.BadZipFile) as exc:
                    raise CheckpointError(
                        f"load: {path}: entry {name!r} is truncated or corrupt ({exc})"
                    ) from None
    raw = arrays.pop(_SKELETON)
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ValueError(f"skeleton has dtype {raw.dtype} and shape {raw.shape}")
        header = json.loads(raw.tobytes().decode("utf-8"))
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ValueError("unknown format")
    except ValueError as exc:
        raise CheckpointError(f"load: {path}: the {_SKELETON!r} entry is not an rnnbp skeleton ({exc})") from None
    version = header.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(
            f"load: {path} has format version {version!r}; this rnnbp reads versions up to {VERSION} "
            "(upgrade rnnbp)"
        )
    try:
        return _decode(header.get("root"), arrays, path)
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, struct.error) as exc:
        raise CheckpointError(f"load: {path}: the skeleton is corrupt ({type(exc).__name__}: {exc})") from None
