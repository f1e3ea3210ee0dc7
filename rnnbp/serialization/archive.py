"""The checkpoint file: NumPy's ``.npz`` (an uncompressed zip of ``.npy`` members), written and read byte-checked.

:func:`write_archive` stores each array as one ``<key>.npy`` member, uncompressed, with
``np.savez``; :func:`member_crc` gives the CRC-32 of such a member beforehand, for the
skeleton to record.

:class:`ArchiveReader` reads without pickle and trusts nothing it reads. A foreign file (a
pickle, PyTorch's zip, a single ``.npy``) is refused by name. For each member it checks,
before allocating anything, that the ``.npy`` header agrees with the skeleton's record (dtype
and shape) and with the member's size, so a header claiming 10^12 elements allocates
nothing; then that every byte read matches the CRC-32 in the zip directory and, from format
version 3, the one recorded in the skeleton. Every failure is a :class:`CheckpointError`
naming the file and the entry; whatever a damaged file makes ``zipfile``, ``zlib``, ``ast``
or NumPy raise is turned into one.
"""
from __future__ import annotations

import ast
import io
import math
import zipfile
import zlib

import numpy as np

from . import skeleton
from .errors import CheckpointError

__all__ = ["write_archive", "member_crc", "ArchiveReader"]

_CHUNK = 1 << 24  # bytes read or checksummed at a time: 16 MiB
_MAGIC = b"\x93NUMPY"
_MAX_HEADER = 1 << 16  # NumPy writes headers of ~128 bytes; a longer one is damage
_MAX_DIMS = 64  # NumPy's limit on ndim
_write_array_header = getattr(np.lib.format, "_write_array_header", None)  # private, but what np.save uses
_TORCH_MAGIC = bytes.fromhex("8a0a6cfc9c46f9206aa85019")  # pickled long 0x1950a86a20f9469cfc6c, torch's legacy header
_TORCH_ADVICE = (
    "rnnbp never unpickles, so it cannot read it. Convert it where PyTorch is installed: "
    "sd = torch.load(path, weights_only=True)  (or model.state_dict()); "
    "numpy.savez('weights.npz', **{k: v.numpy() for k, v in sd.items()}); "
    "then in rnnbp: model.load_state_dict(dict(numpy.load('weights.npz')))"
)


# ------------------------------------------------------------------ writing
def write_archive(file, members: dict) -> None:
    """Write ``members`` (name -> array) to ``file`` with ``np.savez``: one uncompressed ``<name>.npy`` each."""
    np.savez(file, **members)


def member_crc(arr: np.ndarray) -> int:
    """The CRC-32 of the ``.npy`` member ``np.savez`` writes for ``arr`` (header and data), without writing it.

    The skeleton records it, so it must be known before the archive is written; computing it
    costs one pass over the bytes (about 0.1 s for 200 MB).
    """
    crc = zlib.crc32(_npy_header(arr))
    for chunk in _data_chunks(arr):
        crc = zlib.crc32(chunk, crc)
    return crc


def _npy_header(arr: np.ndarray) -> bytes:
    """The header ``np.save`` writes for ``arr``, byte for byte (fields, padding, format version)."""
    fields = np.lib.format.header_data_from_array_1_0(arr)
    out = io.BytesIO()
    if _write_array_header is not None:
        _write_array_header(out, fields, None)  # the very function np.save calls, picking the version as it does
        return out.getvalue()
    try:
        np.lib.format.write_array_header_1_0(out, fields)
    except ValueError:  # over 65535 bytes (a structured dtype with very many fields) needs format 2.0
        out = io.BytesIO()
        np.lib.format.write_array_header_2_0(out, fields)
    return out.getvalue()


def _data_chunks(arr: np.ndarray):
    """The array's bytes in the order ``.npy`` stores them (a Fortran-ordered array's memory as it is)."""
    if arr.flags.f_contiguous and not arr.flags.c_contiguous:
        arr = arr.T
    if arr.flags.c_contiguous and arr.dtype.itemsize:
        flat = arr.reshape(-1).view(np.uint8)
        for start in range(0, flat.size, _CHUNK):
            yield flat[start:start + _CHUNK]
    elif arr.size and arr.dtype.itemsize:
        rows = max(_CHUNK // arr.dtype.itemsize, 1)
        for chunk in np.nditer(arr, flags=["external_loop", "buffered", "zerosize_ok"], buffersize=rows, order="C"):
            yield chunk.tobytes("C")


# ------------------------------------------------------------------ reading
class _ObjectArray(Exception):
    """A member's dtype holds Python objects, which only pickle could read."""


class ArchiveReader:
    """Reads and checks the members of checkpoint ``file`` (a seekable binary file object); ``name`` is for messages.

    Raises:
        CheckpointError: (on construction) the file is not a zip archive, a pickle (PyTorch's
            legacy format among them, refused with how to convert it), a single ``.npy`` array,
            PyTorch's zip format, or an ``.npz`` not written by ``rnnbp.save``.
    """

    def __init__(self, file, name: str):
        self.name = name
        start = file.tell()
        head = file.read(16)
        size = file.seek(0, io.SEEK_END)
        file.seek(start)
        self._size = size - start
        _refuse_foreign(head, name)
        try:
            self._zip = zipfile.ZipFile(file)
        except Exception as exc:  # noqa: BLE001  (a damaged zip directory makes zipfile raise many kinds)
            raise CheckpointError(
                f"load: {name} is not an rnnbp checkpoint: it is truncated or not an .npz archive ({_why(exc)})"
            ) from None
        self.entries: dict[str, zipfile.ZipInfo] = {}
        for info in self._zip.infolist():
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if key in self.entries:
                raise CheckpointError(
                    f"load: {name}: the zip directory lists {info.filename!r} twice; the file is corrupt"
                )
            self.entries[key] = info
        if skeleton.ENTRY not in self.entries:
            self._refuse_foreign_zip()

    def __enter__(self) -> "ArchiveReader":
        return self

    def __exit__(self, *exc) -> None:
        self._zip.close()

    def _refuse_foreign_zip(self):
        pickles = [n for n in self.entries if n == "data.pkl" or n.endswith("/data.pkl")]
        if pickles:
            raise CheckpointError(
                f"load: {self.name} was written by PyTorch's torch.save (a zip archive holding a pickle, "
                f"{pickles[0]!r}); " + _TORCH_ADVICE
            )
        raise CheckpointError(
            f"load: {self.name} is an .npz archive not written by rnnbp.save "
            f"(no {skeleton.ENTRY!r} entry; it holds {sorted(self.entries)[:10]})"
        )

    # -------------------------------------------------------------- the skeleton and its records
    def skeleton(self) -> dict:
        """The parsed skeleton document (format and version checked)."""
        what = f"the skeleton ({skeleton.ENTRY!r})"
        raw, _ = self._read(skeleton.ENTRY, what, None)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise self._corrupt(what, f"it is an array of dtype {raw.dtype} and shape {raw.shape}, not bytes")
        try:
            return skeleton.parse(raw.tobytes())
        except Exception as exc:  # noqa: BLE001  (any failure to parse a damaged document is damage)
            raise CheckpointError(f"load: {self.name}: {what} is not readable: {_why(exc)}") from None

    def records(self, doc: dict) -> dict:
        """``{key: record}`` for every array in the archive, each checked to be well formed.

        Version 1 files have no records (every record is None); from version 2 each array has
        ``{"dtype", "shape", "path"}``, from version 3 also ``"crc32"``. The skeleton's records
        and the archive's arrays must name the same arrays.
        """
        keys = [k for k in self.entries if k != skeleton.ENTRY]
        version = doc["version"]
        if version < 2:
            return {key: None for key in keys}
        records = doc.get("arrays")
        if not isinstance(records, dict):
            raise CheckpointError(f"load: {self.name}: the skeleton has no 'arrays' records; the file is corrupt")
        missing, extra = sorted(set(records) - set(keys)), sorted(set(keys) - set(records))
        if missing or extra:
            raise CheckpointError(
                f"load: {self.name}: the archive's arrays do not match the skeleton (missing {missing}, "
                f"unexpected {extra}); the file is corrupt"
            )
        for key, record in records.items():
            if not _well_formed(record, need_crc=version >= 3):
                raise CheckpointError(
                    f"load: {self.name}: the skeleton's record of array {key!r} is malformed ({record!r:.200}); "
                    "the file is corrupt"
                )
        return records

    # -------------------------------------------------------------- arrays
    def array(self, key: str, record) -> np.ndarray:
        """Array ``key``, checked against ``record`` (None for version 1 files) before and after reading."""
        what = f"array {key!r}" + (f" ({record['path']})" if record and record.get("path") else "")
        arr, crc = self._read(key, what, record)
        if record is not None and "crc32" in record and crc != record["crc32"]:
            raise self._corrupt(what, "its bytes do not match the CRC-32 recorded in the skeleton when it was saved")
        return arr

    def _corrupt(self, what: str, why: str) -> CheckpointError:
        return CheckpointError(f"load: {self.name}: {what}: {why}; the file is corrupt")

    def _read(self, key: str, what: str, record):
        info = self.entries.get(key)
        if info is None:
            raise CheckpointError(f"load: {self.name}: {what} is missing from the archive; the file is corrupt")
        try:
            return self._read_member(info, what, record)
        except CheckpointError:
            raise
        except _ObjectArray:
            raise CheckpointError(
                f"load: {self.name}: {what} is an object array, which needs pickle; rnnbp checkpoints never "
                "contain pickled data, so it is refused"
            ) from None
        except Exception as exc:  # noqa: BLE001  (zipfile, zlib, ast, NumPy: whatever damaged bytes make them raise)
            raise self._corrupt(what, f"it is unreadable ({_why(exc)})") from None

    def _read_member(self, info: zipfile.ZipInfo, what: str, record):
        if info.compress_type != zipfile.ZIP_STORED:
            raise self._corrupt(
                what, f"it is compressed (zip method {info.compress_type}); rnnbp stores members as they are"
            )
        if info.compress_size != info.file_size or info.file_size > self._size:
            raise self._corrupt(what, f"the zip directory gives it {info.file_size} bytes in a file of {self._size}")
        with self._zip.open(info) as member:
            prefix = _read_exactly(member, 8)
            if prefix[:6] != _MAGIC:
                raise self._corrupt(what, "it is not a .npy array (no .npy magic)")
            major = prefix[6]
            if major not in (1, 2, 3):
                raise self._corrupt(what, f"its .npy format version {major}.{prefix[7]} is unknown")
            prefix += _read_exactly(member, 2 if major == 1 else 4)
            header_len = int.from_bytes(prefix[8:], "little")
            if header_len > _MAX_HEADER or len(prefix) + header_len > info.file_size:
                raise self._corrupt(what, f"its .npy header claims {header_len} bytes")
            header = _read_exactly(member, header_len)
            crc = zlib.crc32(header, zlib.crc32(prefix))
            dtype, fortran, shape = _parse_header(header.decode("utf-8" if major >= 3 else "latin1"))
            if record is not None and [dtype.str, list(shape)] != [record["dtype"], record["shape"]]:
                raise self._corrupt(
                    what, f"its .npy header gives dtype {dtype.str} and shape {shape}, but the skeleton records "
                          f"dtype {record['dtype']} and shape {tuple(record['shape'])}"
                )
            nbytes = dtype.itemsize * math.prod(shape)
            if len(prefix) + header_len + nbytes != info.file_size:
                raise self._corrupt(
                    what, f"its .npy header (dtype {dtype.str}, shape {shape}) needs {nbytes} bytes of data, "
                          f"but the member holds {info.file_size - len(prefix) - header_len}"
                )
            # Only now, with the size confirmed by the file itself, is memory allocated.
            arr = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
            if nbytes:
                view = arr.reshape(-1).view(np.uint8)
                pos = 0
                while pos < nbytes:
                    data = member.read(min(_CHUNK, nbytes - pos))
                    if not data:
                        raise self._corrupt(what, f"it ends after {pos} of its {nbytes} bytes of data")
                    view[pos:pos + len(data)] = np.frombuffer(data, dtype=np.uint8)
                    crc = zlib.crc32(data, crc)
                    pos += len(data)
        if crc != info.CRC:
            raise self._corrupt(what, "its bytes do not match the CRC-32 in the zip directory")
        return (arr.T if fortran else arr), crc


def _read_exactly(member, n: int) -> bytes:
    data = member.read(n)
    if len(data) != n:
        raise EOFError(f"the member ends after {len(data)} of {n} bytes")
    return data


def _parse_header(text: str):
    """``(dtype, fortran_order, shape)`` from a ``.npy`` header, each checked; ``ast.literal_eval`` runs no code."""
    try:
        fields = ast.literal_eval(text.strip())
    except Exception:  # noqa: BLE001  (SyntaxError, ValueError, MemoryError, RecursionError on damaged text)
        raise ValueError(f"its .npy header is not a Python literal: {text.strip()[:80]!r}") from None
    if not isinstance(fields, dict) or set(fields) != {"descr", "fortran_order", "shape"}:
        raise ValueError(f"its .npy header is not one NumPy writes: {text.strip()[:80]!r}")
    shape, fortran = fields["shape"], fields["fortran_order"]
    if not (isinstance(shape, tuple) and len(shape) <= _MAX_DIMS and all(type(n) is int and n >= 0 for n in shape)):
        raise ValueError(f"its .npy header gives the shape {shape!r:.80}")
    if type(fortran) is not bool:
        raise ValueError(f"its .npy header gives fortran_order {fortran!r:.80}")
    try:
        dtype = np.lib.format.descr_to_dtype(fields["descr"])
    except Exception:  # noqa: BLE001
        raise ValueError(f"its .npy header gives the dtype {fields['descr']!r:.80}, which is not one") from None
    if dtype.hasobject:
        raise _ObjectArray()
    return dtype, fortran, shape


def _well_formed(record, need_crc: bool) -> bool:
    if not isinstance(record, dict) or not isinstance(record.get("dtype"), str):
        return False
    shape = record.get("shape")
    if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
        return False
    if not isinstance(record.get("path", ""), str):
        return False
    crc = record.get("crc32")
    if crc is None:
        return not need_crc
    return type(crc) is int and 0 <= crc < 2**32


def _refuse_foreign(head: bytes, name: str) -> None:
    """A Python pickle (PyTorch's legacy torch.save format among them) or a lone .npy is named and refused."""
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        if head[2:14] == _TORCH_MAGIC:
            raise CheckpointError(
                f"load: {name} was written by PyTorch's torch.save in its legacy format (a pickle); " + _TORCH_ADVICE
            )
        raise CheckpointError(f"load: {name} is a Python pickle, not an rnnbp checkpoint; " + _TORCH_ADVICE)
    if head.startswith(_MAGIC):
        raise CheckpointError(f"load: {name} is a single .npy array, not an rnnbp checkpoint (.npz archive)")


def _why(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
