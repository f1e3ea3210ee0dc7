"""rnnbp.save / rnnbp.load: exact round trips, atomic writes, clear errors, never pickle."""
import io
import json
import math
import os
import struct
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.io import CheckpointError


def assert_identical(a, b, where="obj"):
    """Same types all the way down, arrays equal in dtype, shape and bytes, floats bit-equal."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        assert np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes(), where
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), where
    elif isinstance(a, float):
        assert struct.pack(">d", a) == struct.pack(">d", b), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for (ka, va), kb in zip(a.items(), b):
            assert type(ka) is type(kb), f"{where}: key {ka!r}"
            assert_identical(va, b[kb], f"{where}[{ka!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def _checkpoint():
    rng = np.random.default_rng(0)
    model = OrderedDict([
        ("rnn.weight_ih_l0", rng.standard_normal((8, 3)).astype(np.float32)),
        ("rnn.bias_ih_l0", rng.standard_normal(8).astype(np.float32)),
        ("norm.num_batches", np.array(7, dtype=np.int64)),  # 0-d array must stay an array
    ])
    optimizer = {
        "state": {0: {"step": 3, "exp_avg": rng.standard_normal((8, 3))},
                  1: {"step": 3.0, "exp_avg": rng.standard_normal(8).astype(np.float32)}},
        "param_groups": [{"lr": 0.1 + 0.2, "betas": (0.9, 0.999), "amsgrad": False, "params": [0, 1, 2],
                          "foo": None}],
    }
    return {"model": model, "optimizer": optimizer, "epoch": 12, "meta": "char-LM ünïcødé ✓",
            "history": [(1, 2.5), (2, 2.25)]}


def test_round_trip_of_a_training_checkpoint(tmp_path):
    obj = _checkpoint()
    rnnbp.save(obj, tmp_path / "ckpt.npz")
    assert_identical(obj, rnnbp.load(tmp_path / "ckpt.npz"))


VALUES = {
    "int-keys": {0: "a", -3: "b", 10**30: "big"},
    "mixed-keys": {1: 1, "1": "one", False: "bool", None: "none", (1, "x"): "tuple", 2.5: "float"},
    "dollar-keys": {"$array": 1, "$tuple": [2]},  # look like the skeleton's tags
    "bools-vs-ints": [True, False, 1, 0],
    "floats": [0.1 + 0.2, -0.0, 1e-310, math.inf, -math.inf, math.nan, 1.7976931348623157e308],
    "nan-payload": struct.unpack(">d", bytes.fromhex("7ff8000000000123"))[0],
    "negative-nan": struct.unpack(">d", bytes.fromhex("fff8000000000000"))[0],
    "numpy-scalars": [np.float32(1.5), np.float64(0.1), np.int8(-3), np.bool_(True), np.uint64(2**63)],
    "dtypes": [np.arange(4).astype(d) for d in ("f2", "f4", "f8", ">f8", "i1", "u2", "i8", "c16", "?", "M8[s]")],
    "zero-d": np.array(2.5),
    "empty": [np.zeros((0, 3)), {}, [], (), ""],
    "nested": {"a": [{"b": ({"c": None},)}]},
    "non-contiguous": np.arange(24.0).reshape(4, 6)[:, ::2].T,
    "strings": ["", "line\nbreak", "quote\"s", "\x00nul", "\ud800 lone surrogate"],
    "ordered": OrderedDict([("z", 1), ("a", 2)]),
    "top-level-array": np.ones((2, 2), dtype=np.float32),
    "sets": [{1, 2, 3}, frozenset({"a", "b"}), set(), {(1, "x"), (2, "y")}],
    "dtypes-as-values": [np.dtype("float32"), np.dtype(">i2"), np.dtype("M8[s]"), np.float64, np.int8, float, int],
}


@pytest.mark.parametrize("name", sorted(VALUES))
def test_values_round_trip_exactly(tmp_path, name):
    rnnbp.save(VALUES[name], tmp_path / "v.npz")
    assert_identical(VALUES[name], rnnbp.load(tmp_path / "v.npz"))


def test_tensors_and_parameters_load_as_tensors_and_parameters(tmp_path):
    t = rnnbp.tensor(np.arange(3.0), requires_grad=True)
    p = nn.Parameter(np.ones((2, 2), dtype=np.float32), requires_grad=False)
    ints = rnnbp.tensor(np.arange(4, dtype=np.int64))
    rnnbp.save({"t": t, "p": p, "ints": ints, "weights": p._data}, tmp_path / "t.npz")
    out = rnnbp.load(tmp_path / "t.npz")
    assert type(out["t"]) is rnnbp.Tensor and out["t"].requires_grad and out["t"].is_leaf
    assert type(out["p"]) is nn.Parameter and not out["p"].requires_grad
    assert type(out["ints"]) is rnnbp.Tensor and not out["ints"].requires_grad
    for name, original in (("t", t), ("p", p), ("ints", ints)):
        assert_identical(original._data, out[name]._data, name)
    # A bare array stays an array (state_dict values), and still shares memory with the Parameter.
    assert type(out["weights"]) is np.ndarray and out["weights"] is out["p"]._data


def test_version_1_files_still_load(tmp_path):
    """Written by the first rnnbp.save: no per-array records, Tensors stored as bare arrays."""
    path = tmp_path / "v1.npz"
    root = {"w": {"$array": "a0"}, "step": {"$scalar": "a1"}, "ids": {"$tuple": [1, 2]}}
    _write_npz(path, __rnnbp__=_skeleton(root), a0=np.arange(6.0).reshape(2, 3), a1=np.array(3, dtype=np.int64))
    out = rnnbp.load(path)
    assert_identical(out, {"w": np.arange(6.0).reshape(2, 3), "step": np.int64(3), "ids": (1, 2)})


def test_every_array_is_checked_against_its_record(tmp_path):
    path = tmp_path / "c.npz"
    rnnbp.save({"w": np.ones((2, 3), dtype=np.float32)}, path)
    with zipfile.ZipFile(path) as z:
        header = json.loads(np.load(io.BytesIO(z.read("__rnnbp__.npy"))).tobytes())
        crc = z.getinfo("a0.npy").CRC
    assert header["version"] == 3
    assert header["arrays"] == {"a0": {"dtype": "<f4", "shape": [2, 3], "path": "obj['w']", "crc32": crc}}
    wrong = dict(header, arrays={"a0": {"dtype": "<f8", "shape": [2, 3], "path": "obj['w']", "crc32": crc}})
    _write_npz(path, __rnnbp__=np.frombuffer(json.dumps(wrong).encode(), dtype=np.uint8),
               a0=np.ones((2, 3), dtype=np.float32))
    assert "array 'a0' (obj['w']): its .npy header gives dtype <f4 and shape (2, 3), but the skeleton records " \
           "dtype <f8" in _load_error(path)
    _write_npz(path, __rnnbp__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
               a0=np.ones((2, 3), dtype=np.float32), a1=np.zeros(1))
    assert "unexpected ['a1']" in _load_error(path)
    # Same dtype and shape, other bytes: only the checksum can tell.
    _write_npz(path, __rnnbp__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
               a0=np.full((2, 3), 2, dtype=np.float32))
    assert "array 'a0' (obj['w']): its bytes do not match the CRC-32 recorded in the skeleton" in _load_error(path)


def test_version_2_files_load_without_checksums(tmp_path):
    """Written before records had a crc32: dtype and shape are still checked."""
    path = tmp_path / "v2.npz"
    records = {"a0": {"dtype": "<f8", "shape": [3], "path": "obj['w']"}}
    raw = json.dumps({"format": "rnnbp-checkpoint", "version": 2, "arrays": records,
                      "root": {"w": {"$array": "a0"}}}).encode()
    _write_npz(path, __rnnbp__=np.frombuffer(raw, dtype=np.uint8), a0=np.arange(3.0))
    assert_identical(rnnbp.load(path), {"w": np.arange(3.0)})
    _write_npz(path, __rnnbp__=np.frombuffer(raw, dtype=np.uint8), a0=np.arange(4.0))
    assert "array 'a0' (obj['w']): its .npy header gives dtype <f8 and shape (4,)" in _load_error(path)


def test_an_array_reached_twice_is_stored_once_and_loads_as_one(tmp_path):
    shared = np.arange(5.0)
    rnnbp.save({"encoder": shared, "decoder": shared, "copy": shared.copy()}, tmp_path / "tied.npz")
    with np.load(tmp_path / "tied.npz", allow_pickle=False) as npz:
        assert len(npz.files) == 3  # skeleton + 2 arrays
    out = rnnbp.load(tmp_path / "tied.npz")
    assert out["encoder"] is out["decoder"] and out["copy"] is not out["encoder"]


def test_module_state_dict_round_trips_into_a_fresh_module(tmp_path):
    rnnbp.manual_seed(1)
    a = nn.Linear(4, 3)
    rnnbp.save(a.state_dict(), str(tmp_path / "linear.npz"))  # a str path works too
    rnnbp.manual_seed(2)
    b = nn.Linear(4, 3)
    b.load_state_dict(rnnbp.load(str(tmp_path / "linear.npz")))
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[k], v)


def test_path_is_used_exactly_as_given(tmp_path):
    path = tmp_path / "model.ckpt"
    rnnbp.save({"x": 1}, path)
    assert sorted(os.listdir(tmp_path)) == ["model.ckpt"]  # no .npz appended, no temp left
    assert rnnbp.load(path) == {"x": 1}


def test_file_permissions_follow_the_umask(tmp_path):
    if os.name != "posix":
        pytest.skip("POSIX permissions")
    old = os.umask(0o022)
    try:
        rnnbp.save({"x": 1}, tmp_path / "p.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "p.npz").stat().st_mode & 0o777 == 0o644


# -------------------------------------------------------------- atomicity
def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    rnnbp.save({"epoch": 1, "w": np.ones(3)}, path)
    before = path.read_bytes()

    def broken_savez(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")  # something reaches the temp file first
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        rnnbp.save({"epoch": 2, "w": np.zeros(3)}, path)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]
    assert path.read_bytes() == before
    assert rnnbp.load(path)["epoch"] == 1


def test_a_failed_rename_leaves_no_temp_file(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise PermissionError("read-only")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(PermissionError):
        rnnbp.save({"x": 1}, tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []


def test_interrupt_mid_write_is_cleaned_up(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        rnnbp.save({"x": 1}, tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("value, where", [
    ({"param_groups": [{"foo": range(3)}]}, "obj['param_groups'][0]['foo']"),
    ({"param_groups": [{"foo": 1 + 2j}]}, "obj['param_groups'][0]['foo']"),
    ({"state": {0: {"fn": print}}}, "obj['state'][0]['fn']"),
    ([1, (2, b"bytes")], "obj[1][1]"),
    ({"x": np.array([None, 1], dtype=object)}, "obj['x']"),
])
def test_unsupported_values_raise_type_error_naming_the_key_path(tmp_path, value, where):
    path = tmp_path / "bad.npz"
    with pytest.raises(TypeError) as exc:
        rnnbp.save(value, path)
    assert where in str(exc.value)
    assert not path.exists() and os.listdir(tmp_path) == []


def test_reference_cycles_are_refused(tmp_path):
    loop = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(TypeError, match=r"obj\['a'\]\[0\] contains itself"):
        rnnbp.save(loop, tmp_path / "c.npz")


def test_missing_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        rnnbp.save({"x": 1}, tmp_path / "nope" / "c.npz")


# -------------------------------------------------------- unreadable files
def _load_error(path) -> str:
    with pytest.raises(CheckpointError) as exc:
        rnnbp.load(path)
    assert isinstance(exc.value, ValueError)
    assert str(path) in str(exc.value)
    return str(exc.value)


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.95])
def test_truncated_file_names_the_path(tmp_path, keep):
    path = tmp_path / "ckpt.npz"
    rnnbp.save(_checkpoint(), path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    _load_error(path)


def test_corrupted_member_names_the_path(tmp_path):
    path = tmp_path / "ckpt.npz"
    rnnbp.save({"w": np.arange(1000.0)}, path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the array's bytes: the zip CRC no longer matches
    path.write_bytes(bytes(data))
    _load_error(path)


def test_non_npz_files_name_the_path(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    _load_error(text)
    npy = tmp_path / "array.npy"
    np.save(npy, np.ones(3))
    assert ".npy" in _load_error(npy)


def test_foreign_npz_is_refused(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.ones(3))
    assert "not written by rnnbp.save" in _load_error(path)


def _write_npz(path, **members):
    with open(path, "wb") as f:
        np.savez(f, **members)


def _skeleton(root, version=1):
    raw = json.dumps({"format": "rnnbp-checkpoint", "version": version, "root": root}).encode()
    return np.frombuffer(raw, dtype=np.uint8)


def test_bad_skeletons_are_refused(tmp_path):
    path = tmp_path / "c.npz"
    _write_npz(path, __rnnbp__=np.frombuffer(b"{not json", dtype=np.uint8))
    _load_error(path)
    _write_npz(path, __rnnbp__=_skeleton({"$array": "a0"}))  # refers to a missing array
    assert "missing" in _load_error(path)
    _write_npz(path, __rnnbp__=_skeleton(1, version=99))
    assert "version 99" in _load_error(path)


class _Boom:
    """Unpickling this would flip ``EXECUTED``: proves load never unpickles."""

    EXECUTED = []

    def __reduce__(self):
        return (_Boom.EXECUTED.append, ("unpickled!",))


def test_pickled_object_arrays_are_refused_without_unpickling(tmp_path):
    path = tmp_path / "evil.npz"
    evil = np.empty(1, dtype=object)
    evil[0] = _Boom()
    _write_npz(path, __rnnbp__=_skeleton({"w": {"$array": "a0"}}), a0=evil)  # np.savez pickles it
    with zipfile.ZipFile(path) as z:
        assert b"unpickled!" in z.read("a0.npy")  # the payload really is in the file
    message = _load_error(path)
    assert "pickle" in message and "'a0'" in message
    assert _Boom.EXECUTED == []


def test_saved_files_contain_no_pickle(tmp_path):
    path = tmp_path / "c.npz"
    rnnbp.save(_checkpoint(), path)
    with np.load(path, allow_pickle=False) as npz:
        for name in npz.files:
            assert npz[name].dtype != object
    with zipfile.ZipFile(path) as z:
        skeleton = json.loads(np.load(io.BytesIO(z.read("__rnnbp__.npy"))).tobytes())
    assert skeleton["format"] == "rnnbp-checkpoint"


# ------------------------------------------------------------ file objects
def test_bytesio_round_trip_and_the_file_object_is_left_open():
    buf = io.BytesIO()
    obj = _checkpoint()
    rnnbp.save(obj, buf)
    assert not buf.closed and buf.tell() == len(buf.getvalue()) > 0
    buf.seek(0)
    assert_identical(obj, rnnbp.load(buf))


def test_open_binary_files_round_trip(tmp_path):
    path = tmp_path / "model.pt"
    with open(path, "wb") as f:
        rnnbp.save({"w": np.arange(3.0), "epoch": 2}, f)
    with open(path, "rb") as f:
        out = rnnbp.load(f)
    assert_identical(out, {"w": np.arange(3.0), "epoch": 2})
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]


class _Unseekable(io.RawIOBase):
    """A pipe-like reader: read() only, no seek."""

    def __init__(self, data: bytes):
        self._buf = io.BytesIO(data)

    def readable(self):
        return True

    def readinto(self, b):
        chunk = self._buf.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_an_unseekable_reader_is_read_whole():
    buf = io.BytesIO()
    rnnbp.save({"x": np.ones(4)}, buf)
    assert_identical(rnnbp.load(_Unseekable(buf.getvalue())), {"x": np.ones(4)})


def test_text_files_and_other_objects_are_refused_by_name(tmp_path):
    with open(tmp_path / "t.txt", "w") as f, pytest.raises(TypeError, match=r"text mode.*'wb'"):
        rnnbp.save({"x": 1}, f)
    (tmp_path / "t.txt").write_text("x")
    with open(tmp_path / "t.txt") as f, pytest.raises(TypeError, match=r"text mode.*'rb'"):
        rnnbp.load(f)
    with pytest.raises(TypeError, match="expected a path .* got int"):
        rnnbp.save({"x": 1}, 3)
    with pytest.raises(TypeError, match="expected a path .* got list"):
        rnnbp.load([])


def test_errors_on_file_objects_name_the_file(tmp_path):
    path = tmp_path / "junk.bin"
    path.write_bytes(b"not a checkpoint at all")
    with open(path, "rb") as f, pytest.raises(CheckpointError, match="junk.bin"):
        rnnbp.load(f)
    with pytest.raises(CheckpointError, match="<BytesIO>"):
        rnnbp.load(io.BytesIO(b"junk"))


# ------------------------------------------------- PyTorch's load arguments
@pytest.mark.parametrize("map_location", [
    None, "cpu", "cuda", "cuda:0", rnnbp.device("cpu"), {"cuda:0": "cpu"}, lambda storage, loc: storage,
])
def test_map_location_is_accepted_and_ignored(tmp_path, map_location):
    rnnbp.save({"w": np.arange(3.0)}, tmp_path / "c.pt")
    assert_identical(rnnbp.load(tmp_path / "c.pt", map_location=map_location), {"w": np.arange(3.0)})
    assert_identical(rnnbp.load(tmp_path / "c.pt", map_location), {"w": np.arange(3.0)})  # positional, as torch


@pytest.mark.parametrize("weights_only", [None, True, False])
@pytest.mark.parametrize("mmap", [None, True, False])
def test_weights_only_and_mmap_are_accepted(tmp_path, weights_only, mmap):
    rnnbp.save({"w": np.arange(3.0)}, tmp_path / "c.pt")
    out = rnnbp.load(tmp_path / "c.pt", map_location="cpu", weights_only=weights_only, mmap=mmap)
    assert_identical(out, {"w": np.arange(3.0)})


def test_bad_load_arguments_are_refused_by_name(tmp_path):
    rnnbp.save({"w": 1}, tmp_path / "c.pt")
    with pytest.raises(TypeError, match="weights_only must be True, False or None, got 'yes'"):
        rnnbp.load(tmp_path / "c.pt", weights_only="yes")
    with pytest.raises(TypeError, match="map_location must be .* got int"):
        rnnbp.load(tmp_path / "c.pt", map_location=3)


def test_torch_save_arguments_are_accepted(tmp_path):
    rnnbp.save({"w": 1}, tmp_path / "c.pt", pickle_protocol=4, _use_new_zipfile_serialization=True)
    assert rnnbp.load(tmp_path / "c.pt") == {"w": 1}


# ------------------------------------------------------- PyTorch's pickles
def _assert_refused_as_pytorch(path_or_file, what: str):
    with pytest.raises(CheckpointError) as exc:
        rnnbp.load(path_or_file)
    message = str(exc.value)
    assert "\n" not in message
    assert what in message and "never unpickles" in message
    assert "numpy.savez" in message and "state_dict()" in message and "load_state_dict" in message
    return message


def _torch_like_zip(path, archive="archive"):
    """The layout torch.save writes: a zip whose data.pkl is a pickle (this one would run code if unpickled)."""
    payload = b"\x80\x02cbuiltins\nexec\nq\x00X\x1d\x00\x00\x00import builtins; builtins.X=1q\x01\x85q\x02Rq\x03."
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{archive}/data.pkl", payload)
        z.writestr(f"{archive}/version", "3\n")
        z.writestr(f"{archive}/data/0", b"\x00" * 16)


def test_a_pytorch_zip_checkpoint_is_refused_with_how_to_convert(tmp_path):
    import builtins

    path = tmp_path / "model.pt"
    _torch_like_zip(path)
    assert "written by PyTorch's torch.save" in _assert_refused_as_pytorch(path, "'archive/data.pkl'")
    assert not hasattr(builtins, "X")  # the pickle was never run
    with open(path, "rb") as f:
        _assert_refused_as_pytorch(f, "torch.save")


def test_pytorch_legacy_and_plain_pickles_are_refused(tmp_path):
    import pickle

    legacy = tmp_path / "legacy.pt"  # torch.save(..., _use_new_zipfile_serialization=False) starts so
    legacy.write_bytes(b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.")
    _assert_refused_as_pytorch(legacy, "legacy format")
    plain = tmp_path / "obj.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    _assert_refused_as_pytorch(plain, "is a Python pickle")


def test_real_torch_save_files_are_refused(tmp_path):
    torch = pytest.importorskip("torch")
    model = torch.nn.LSTM(3, 4)
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    _assert_refused_as_pytorch(tmp_path / "sd.pt", "'sd/data.pkl'")
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    _assert_refused_as_pytorch(buf, "'archive/data.pkl'")
    torch.save({"w": torch.ones(2)}, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    _assert_refused_as_pytorch(tmp_path / "old.pt", "legacy format")


def test_the_advised_conversion_works(tmp_path):
    """The message's recipe, run: PyTorch's weights through numpy.savez into an rnnbp LSTM."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(3, 4).double()
    sd = theirs.state_dict()
    np.savez(tmp_path / "weights.npz", **{k: v.numpy() for k, v in sd.items()})
    ours = nn.LSTM(3, 4).double()
    ours.load_state_dict(dict(np.load(tmp_path / "weights.npz")))
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    expected = theirs(torch.from_numpy(x))[0].detach().numpy()
    np.testing.assert_allclose(ours(rnnbp.tensor(x))[0].numpy(), expected, rtol=0, atol=1e-12)
