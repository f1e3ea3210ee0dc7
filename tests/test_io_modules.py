"""rnnbp.save / rnnbp.load of whole Modules and objects: trees rebuilt by allow-list, never unpickled."""
import io
import json
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.io import CheckpointError
from rnnbp.serialization import UnsafeGlobalError


class RNNModel(nn.Module):
    """The word language model's shape: embedding, LSTM, dropout, decoder with tied weights."""

    def __init__(self, ntoken=11, ninp=6, nhid=6, nlayers=2, dropout=0.25, tie_weights=True):
        super().__init__()
        self.ntoken, self.nhid, self.nlayers, self.rnn_type = ntoken, nhid, nlayers, "LSTM"
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.config = {"sizes": (ntoken, ninp), "names": ["a", "b"], "dtype": np.dtype("float64"), "lr": None}
        self.register_buffer("seen", np.zeros(3, dtype=np.int64))

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        return self.decoder(self.drop(output)), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros((self.nlayers, bsz, self.nhid)), weight.new_zeros((self.nlayers, bsz, self.nhid)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 3)

    def forward(self, x):
        return self.linear(x)


class Config:
    """A plain class of the program: storable only once allowed."""

    def __init__(self, width=3):
        self.width = width
        self.names = ("x", "y")


def double_it(x):
    return x * 2


def _round_trip(obj, **load_kwargs):
    buf = io.BytesIO()
    rnnbp.save(obj, buf)
    buf.seek(0)
    return rnnbp.load(buf, **load_kwargs)


def _assert_same_state(a: nn.Module, b: nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and np.array_equal(sa[k], sb[k]), k


@pytest.fixture(autouse=True)
def _clean_allow_list():
    rnnbp.serialization.clear_safe_globals()
    yield
    rnnbp.serialization.clear_safe_globals()


# ---------------------------------------------------------- rnnbp's own modules
@pytest.mark.parametrize("make", [
    lambda: nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True),
    lambda: nn.GRU(3, 5, num_layers=2),
    lambda: nn.RNN(3, 5, nonlinearity="relu"),
    lambda: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)),
], ids=["LSTM", "GRU", "RNN", "Sequential"])
def test_rnnbp_modules_round_trip_with_identical_outputs(make):
    rnnbp.manual_seed(0)
    model = make().double()
    model.eval()
    back = _round_trip(model)  # no allow-list needed: rnnbp's own classes
    assert type(back) is type(model) and repr(back) == repr(model)
    assert back.training is False
    _assert_same_state(model, back)
    for p in back.parameters():
        assert type(p) is nn.Parameter and p.requires_grad
    x = rnnbp.tensor(np.random.default_rng(1).standard_normal((4, 2, 3)))
    out, ref = back(x), model(x)
    out, ref = (out[0], ref[0]) if isinstance(out, tuple) else (out, ref)
    np.testing.assert_array_equal(out.numpy(), ref.numpy())


def test_a_loaded_module_trains(tmp_path):
    """Gradients reach the loaded Parameters, and an optimizer built on them updates the module."""
    rnnbp.manual_seed(0)
    model = nn.LSTM(3, 4)
    rnnbp.save(model, tmp_path / "m.pt")
    back = rnnbp.load(tmp_path / "m.pt")
    opt = rnnbp.optim.SGD(back.parameters(), lr=0.1)
    before = back.weight_ih_l0.numpy().copy()
    back(rnnbp.randn(5, 2, 3))[0].sum().backward()
    assert back.weight_ih_l0.grad is not None
    opt.step()
    assert not np.array_equal(before, back.weight_ih_l0.numpy())
    assert np.shares_memory(back.state_dict()["weight_ih_l0"].numpy(), back.weight_ih_l0.numpy())  # the module sees the update


def test_a_model_and_its_optimizer_saved_together_continue_identically():
    """torch.save({'model': model, 'optimizer': opt}): the optimizer's state is keyed by the same Parameters."""
    rnnbp.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = rnnbp.optim.Adam(model.parameters(), lr=0.01)
    x = rnnbp.randn(4, 3)

    def step(m, o):
        o.zero_grad()
        m(x).pow(2).sum().backward()
        o.step()

    step(model, opt)
    back = _round_trip({"model": model, "optimizer": opt})
    m2, o2 = back["model"], back["optimizer"]
    assert o2.param_groups[0]["params"][0] is m2.weight and m2.weight in o2.state
    with zipfile.ZipFile(_saved_bytes({"model": model, "optimizer": opt})) as z:
        skeleton = z.read("__rnnbp__.npy")
    assert b"state[<Parameter>]['exp_avg']" in skeleton and b"Parameter containing" not in skeleton  # no reprs
    for _ in range(3):
        step(model, opt)
        step(m2, o2)
    _assert_same_state(model, m2)


def _saved_bytes(obj) -> io.BytesIO:
    buf = io.BytesIO()
    rnnbp.save(obj, buf)
    buf.seek(0)
    return buf


def test_frozen_parameters_stay_frozen():
    model = nn.Linear(2, 2)
    model.bias.requires_grad_(False)
    back = _round_trip(model)
    assert back.weight.requires_grad and not back.bias.requires_grad


# -------------------------------------------------------- the program's modules
def test_a_user_module_round_trips_once_allowed():
    rnnbp.manual_seed(3)
    model = RNNModel()
    model.eval()
    with rnnbp.serialization.safe_globals([RNNModel]):
        back = _round_trip(model)
    assert rnnbp.serialization.get_safe_globals() == []  # the block's entries are gone again
    assert type(back) is RNNModel and back.rnn_type == "LSTM" and back.nhid == 6
    assert back.config == {"sizes": (11, 6), "names": ["a", "b"], "dtype": np.dtype("float64"), "lr": None}
    assert type(back.config["sizes"]) is tuple
    assert back.decoder.weight is back.encoder.weight  # tied weights stay one Parameter
    assert len(list(back.parameters())) == len(list(model.parameters()))
    assert back.seen.dtype == np.int64 and "seen" in back.state_dict()
    _assert_same_state(model, back)
    inp = rnnbp.tensor(np.array([[1, 2], [3, 4], [5, 6]]))
    out, (h, c) = back(inp, back.init_hidden(2))
    ref, (rh, rc) = model(inp, model.init_hidden(2))
    np.testing.assert_array_equal(out.numpy(), ref.numpy())
    np.testing.assert_array_equal(c.numpy(), rc.numpy())


def test_a_class_not_allowed_is_refused_with_a_one_line_error():
    buf = io.BytesIO()
    rnnbp.save(RNNModel(), buf)  # saving needs no permission
    buf.seek(0)
    with pytest.raises(UnsafeGlobalError) as exc:
        rnnbp.load(buf)
    message = str(exc.value)
    assert "\n" not in message
    assert f"{RNNModel.__module__}.RNNModel is not allowed" in message
    assert "rnnbp.serialization.add_safe_globals([RNNModel])" in message and "state_dict()" in message
    # PyTorch raises pickle.UnpicklingError here; scripts that catch it keep working.
    assert isinstance(exc.value, pickle.UnpicklingError) and isinstance(exc.value, CheckpointError)


def test_an_allowed_class_nested_inside_rnnbp_containers_is_checked_too():
    model = nn.Sequential(Block(), nn.Tanh())
    with pytest.raises(UnsafeGlobalError, match=r"obj\.0: .*Block is not allowed"):
        _round_trip(model)
    rnnbp.serialization.add_safe_globals([Block])
    back = _round_trip(model)
    x = rnnbp.randn(2, 3)
    np.testing.assert_array_equal(back(x).numpy(), model(x).numpy())


def test_allow_list_api():
    api = rnnbp.serialization
    api.add_safe_globals([RNNModel, (Block, "old_module.Block")])
    api.add_safe_globals([RNNModel])  # no duplicates
    assert api.get_safe_globals() == [RNNModel, (Block, "old_module.Block")]
    with api.safe_globals([Config, RNNModel]):
        assert api.get_safe_globals() == [RNNModel, (Block, "old_module.Block"), Config]
    assert api.get_safe_globals() == [RNNModel, (Block, "old_module.Block")]  # RNNModel was there before
    api.clear_safe_globals()
    assert api.get_safe_globals() == []
    with pytest.raises(TypeError, match=r"expected a list .* got type"):
        api.add_safe_globals(RNNModel)
    with pytest.raises(TypeError, match="expected classes or functions, got 3"):
        api.add_safe_globals([3])
    with pytest.raises(TypeError, match="tuple entry must be"):
        api.add_safe_globals([(RNNModel, 3)])
    with pytest.raises(ValueError, match=r"system comes from module '(posix|nt)', which is never allowed"):
        api.add_safe_globals([os.system])
    with pytest.raises(ValueError, match="module 'builtins', which is never allowed"):
        api.add_safe_globals([eval])
    assert api.save is rnnbp.save and api.load is rnnbp.load


def test_an_entry_with_a_path_allows_a_class_that_moved(tmp_path):
    """(cls, 'module.Name') lets a file that names an old path load into today's class."""
    path = tmp_path / "m.pt"
    rnnbp.save(Block(), path)
    with zipfile.ZipFile(path) as z:
        header = json.loads(np.load(io.BytesIO(z.read("__rnnbp__.npy"))).tobytes())
        arrays = {n[:-4]: np.load(io.BytesIO(z.read(n))) for n in z.namelist() if n != "__rnnbp__.npy"}
    header["root"]["$object"]["module"] = "old_package.layers"
    with open(path, "wb") as f:
        np.savez(f, __rnnbp__=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
    with pytest.raises(UnsafeGlobalError, match="old_package.layers.Block is not allowed"):
        rnnbp.load(path)
    assert rnnbp.serialization.get_unsafe_globals_in_checkpoint(path) == ["old_package.layers.Block"]
    with rnnbp.serialization.safe_globals([(Block, "old_package.layers.Block")]):
        assert rnnbp.serialization.get_unsafe_globals_in_checkpoint(path) == []
        assert type(rnnbp.load(path)) is Block


def test_a_class_saved_from_main_loads_where_the_loader_holds_the_allowed_class(monkeypatch):
    """Saved by a script that defined the class in __main__; the loading script imported it."""
    monkeypatch.setattr(sys.modules["__main__"], "Block", Block, raising=False)
    monkeypatch.setattr(Block, "__module__", "__main__")
    buf = io.BytesIO()
    rnnbp.save(Block(), buf)
    monkeypatch.setattr(Block, "__module__", __name__)
    assert b"__main__" in buf.getvalue()
    buf.seek(0)
    with rnnbp.serialization.safe_globals([Block]):  # names Block by its own module, not __main__
        assert type(rnnbp.load(buf)) is Block


def _forged(tmp_path, root) -> str:
    path = tmp_path / "forged.pt"
    raw = json.dumps({"format": "rnnbp-checkpoint", "version": 2, "arrays": {}, "root": root}).encode()
    with open(path, "wb") as f:
        np.savez(f, __rnnbp__=np.frombuffer(raw, dtype=np.uint8))
    return path


def test_a_refused_class_is_never_imported(tmp_path, monkeypatch):
    (tmp_path / "evil_module_xyz.py").write_text("import builtins\nbuiltins.EVIL_IMPORTED = True\nclass Evil: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = _forged(tmp_path, {"$object": {"id": 0, "module": "evil_module_xyz", "qualname": "Evil", "state": None}})
    with pytest.raises(UnsafeGlobalError, match="evil_module_xyz.Evil is not allowed"):
        rnnbp.load(path)
    assert "evil_module_xyz" not in sys.modules
    import builtins

    assert not hasattr(builtins, "EVIL_IMPORTED")


@pytest.mark.parametrize("module, qualname", [
    ("rnnbp.serialization.files", "os.system"),  # reaching through rnnbp's imports
    ("rnnbp.serialization.archive", "np.load"),
    ("rnnbp.torch.__main__", "main"),     # running an rnnbp entry point
    ("os", "system"),
    ("builtins", "eval"),
])
def test_paths_that_reach_outside_rnnbp_are_refused(tmp_path, module, qualname):
    path = _forged(tmp_path, {"$global": {"module": module, "qualname": qualname}})
    with pytest.raises(UnsafeGlobalError):
        rnnbp.load(path)


def test_an_rnnbp_path_that_no_longer_exists_is_named(tmp_path):
    path = _forged(tmp_path, {"$object": {"id": 0, "module": "rnnbp.nn.recurrent.layers", "qualname": "LSTM2", "state": None}})
    with pytest.raises(CheckpointError, match="rnnbp.nn.recurrent.layers.LSTM2 does not exist in this version of rnnbp"):
        rnnbp.load(path)


# ------------------------------------------------------------ what cannot be saved
def _save_error(obj) -> str:
    with pytest.raises(TypeError) as exc:
        rnnbp.save(obj, io.BytesIO())
    message = str(exc.value)
    assert "\n" not in message and "state_dict()" in message
    return message


def test_a_lambda_attribute_is_refused_naming_it():
    model = nn.Sequential(Block())
    model[0].act = lambda x: x
    assert "obj.0.act, a lambda" in _save_error(model)


def test_an_open_file_attribute_is_refused_naming_it(tmp_path):
    block = Block()
    with open(tmp_path / "log.txt", "w") as block.log:
        message = _save_error(block)
    assert "obj.log, an object of class _io.TextIOWrapper" in message and "add_safe_globals" not in message


def test_objects_of_other_classes_need_to_be_allowed():
    block = Block()
    block.cfg = Config()
    message = _save_error(block)
    assert f"obj.cfg, an object of class {__name__}.Config" in message
    assert "rnnbp.serialization.add_safe_globals([Config])" in message
    rnnbp.serialization.add_safe_globals([Block, Config])
    back = _round_trip(block)
    assert type(back.cfg) is Config and vars(back.cfg) == {"width": 3, "names": ("x", "y")}


def test_functions_are_stored_by_name():
    block = Block()
    block.act = rnnbp.tanh  # rnnbp's own: always fine
    block.fn = double_it
    assert f"obj.fn, {__name__}.double_it" in _save_error(block)
    rnnbp.serialization.add_safe_globals([Block, double_it])
    back = _round_trip(block)
    assert back.act is rnnbp.tanh and back.fn is double_it


def test_classes_defined_inside_functions_are_refused():
    class Local(nn.Module):
        pass

    assert "is defined inside a function" in _save_error({"m": Local()})


def test_a_reference_cycle_through_modules_is_kept():
    parent = Block()
    parent.child = Block()
    object.__setattr__(parent.child, "parent", parent)  # a plain attribute pointing back up
    rnnbp.serialization.add_safe_globals([Block])
    back = _round_trip(parent)
    assert back.child.parent is back


# -------------------------------------------------------------- Tensors, objects
def test_tensors_round_trip_as_tensors_keeping_identity_and_sharing():
    rnnbp.manual_seed(0)
    w = rnnbp.randn(3, 2, requires_grad=True)
    y = (w * 2).sum(0)  # not a leaf: loads as a leaf that requires grad, as in PyTorch
    view = w.detach()  # another Tensor on the same array
    out = _round_trip({"w": w, "again": w, "y": y, "hidden": (view, [w]), "ids": rnnbp.tensor([1, 2])})
    assert type(out["w"]) is rnnbp.Tensor and out["w"].requires_grad and out["w"].is_leaf
    assert out["again"] is out["w"] and out["hidden"][1][0] is out["w"]
    assert out["hidden"][0] is not out["w"] and out["hidden"][0]._data is out["w"]._data
    assert not out["hidden"][0].requires_grad
    assert out["y"].requires_grad and out["y"].is_leaf and out["y"].grad_fn is None
    np.testing.assert_array_equal(out["y"].numpy(), y.numpy())
    assert out["ids"].dtype == np.int64 and out["ids"].tolist() == [1, 2]
    assert _round_trip(w).requires_grad  # at top level too


def test_generators_continue_their_streams():
    g = rnnbp.Generator().manual_seed(7)
    g.random(3)
    rng = np.random.default_rng(5)
    mt = np.random.Generator(np.random.MT19937(3))
    drop = nn.Dropout(0.5, generator=g)
    out = _round_trip({"g": g, "rng": rng, "mt": mt, "drop": drop})
    assert type(out["g"]) is rnnbp.Generator and out["g"].initial_seed() == 7
    assert out["drop"].generator is out["g"]
    np.testing.assert_array_equal(out["g"].random(4), g.random(4))
    np.testing.assert_array_equal(out["rng"].integers(0, 100, 5), rng.integers(0, 100, 5))
    np.testing.assert_array_equal(out["mt"].random(2), mt.random(2))


def test_a_device_attribute_round_trips():
    block = Block()
    block.device = rnnbp.device("cpu")
    rnnbp.serialization.add_safe_globals([Block])
    assert _round_trip(block).device == rnnbp.device("cpu")


# ------------------------------------------------------------------ parity
def test_whole_model_semantics_match_pytorch():
    """What torch.save/torch.load keep for a whole model, rnnbp keeps too."""
    torch = pytest.importorskip("torch")

    def facts(module, load):
        module.decoder.weight = module.encoder.weight
        module.decoder.bias.requires_grad_(False)
        module.eval()
        back = load(module)
        return {
            "type": type(back).__name__, "training": back.training,
            "tied": back.decoder.weight is back.encoder.weight,
            "param types": sorted({type(p).__name__ for p in back.parameters()}),
            "requires_grad": [p.requires_grad for p in back.parameters()],
            "n params": len(list(back.parameters())),
        }

    def torch_load(m):
        buf = io.BytesIO()
        torch.save(m, buf)
        buf.seek(0)
        return torch.load(buf, weights_only=False)

    def make(lib):
        m = lib.nn.Sequential()
        m.encoder = lib.nn.Embedding(7, 4)
        m.decoder = lib.nn.Linear(4, 7)
        return m

    assert facts(make(rnnbp), _round_trip) == facts(make(torch), torch_load)


def test_tensor_semantics_match_pytorch():
    torch = pytest.importorskip("torch")

    def facts(lib, load):
        w = lib.ones(2, requires_grad=True)
        out = load({"w": w, "y": w * 2, "again": w, "p": lib.nn.Parameter(lib.ones(2))})
        return [(type(out[k]).__name__, out[k].requires_grad, out[k].is_leaf) for k in ("w", "y", "p")] + [
            out["again"] is out["w"]]

    def torch_load(obj):
        buf = io.BytesIO()
        torch.save(obj, buf)
        buf.seek(0)
        return torch.load(buf)

    assert facts(rnnbp, _round_trip) == facts(torch, torch_load)


# --------------------------------------------------------- scripts, as users run them
def test_the_word_language_model_flow_across_two_scripts(tmp_path):
    """main.py saves the whole model (class in model.py); generate.py, another process, loads it."""
    (tmp_path / "model.py").write_text(textwrap.dedent("""
        import rnnbp as torch
        import rnnbp.nn as nn

        class RNNModel(nn.Module):
            def __init__(self, ntoken, nhid):
                super().__init__()
                self.encoder = nn.Embedding(ntoken, nhid)
                self.rnn = nn.LSTM(nhid, nhid)
                self.decoder = nn.Linear(nhid, ntoken)
                self.decoder.weight = self.encoder.weight
                self.nhid = nhid

            def forward(self, x, hidden):
                out, hidden = self.rnn(self.encoder(x), hidden)
                return self.decoder(out), hidden
    """))
    (tmp_path / "main.py").write_text(textwrap.dedent("""
        import rnnbp as torch
        import model
        torch.manual_seed(0)
        m = model.RNNModel(10, 4)
        with open("model.pt", "wb") as f:
            torch.save(m, f)
        x = torch.tensor([[1], [2], [3]])
        h = (torch.zeros(1, 1, 4), torch.zeros(1, 1, 4))
        print(m(x, h)[0].sum().item())
    """))
    (tmp_path / "generate.py").write_text(textwrap.dedent("""
        import sys
        import rnnbp as torch
        import model
        with open("model.pt", "rb") as f:
            try:
                torch.load(f, map_location="cpu")
            except torch.serialization.UnsafeGlobalError as e:
                print("refused:", e, file=sys.stderr)
        with open("model.pt", "rb") as f:
            with torch.serialization.safe_globals([model.RNNModel]):
                m = torch.load(f, map_location=torch.device("cpu"), weights_only=True)
        assert m.decoder.weight is m.encoder.weight
        x = torch.tensor([[1], [2], [3]])
        h = (torch.zeros(1, 1, 4), torch.zeros(1, 1, 4))
        print(m(x, h)[0].sum().item())
    """))
    run = lambda script: subprocess.run([sys.executable, script], cwd=tmp_path, capture_output=True,  # noqa: E731
                                        text=True, timeout=120)
    saved, loaded = run("main.py"), run("generate.py")
    assert saved.returncode == 0, saved.stderr
    assert loaded.returncode == 0, loaded.stderr
    assert "refused: load: <BufferedReader>" not in loaded.stderr  # an open file is named by its path
    assert "model.RNNModel is not allowed" in loaded.stderr and "model.pt" in loaded.stderr
    assert loaded.stdout == saved.stdout and saved.stdout.strip()


def test_weights_only_false_rebuilds_a_module_class_from_its_saved_module(tmp_path, monkeypatch):
    """torch.load(f, weights_only=False) in generate.py, of a model main.py saved: the model's module
    is imported by its saved path, as pickle would; without weights_only=False it stays refused."""
    (tmp_path / "rnnbp_test_wo_model.py").write_text(
        "import rnnbp.nn as nn\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.lin = nn.Linear(3, 2)\n"
        "    def forward(self, x):\n"
        "        return self.lin(x)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib
    mod = importlib.import_module("rnnbp_test_wo_model")
    net = mod.Net()
    rnnbp.save({"net": net, "plain": None}, tmp_path / "net.pt")
    x = rnnbp.randn(4, 3)
    expected = net(x).numpy().copy()
    monkeypatch.delitem(sys.modules, "rnnbp_test_wo_model")  # generate.py has not imported it
    with pytest.raises(UnsafeGlobalError, match="rnnbp_test_wo_model.Net is not allowed"):
        rnnbp.load(tmp_path / "net.pt")
    loaded = rnnbp.load(tmp_path / "net.pt", weights_only=False)["net"]
    assert type(loaded).__module__ == "rnnbp_test_wo_model"
    np.testing.assert_array_equal(loaded(x).numpy(), expected)


def test_a_whole_module_checkpoint_naming_the_recurrent_family_s_old_paths_still_loads(tmp_path):
    """Files written before the recurrent family moved into nn/recurrent/ name rnnbp.nn.rnn.LSTM."""
    from rnnbp.serialization.allowlist import MOVED_MODULES, find_global

    assert find_global("rnnbp.nn.rnn", "LSTM") is nn.LSTM
    assert find_global("rnnbp.nn.rnn_cells", "GRUCell") is nn.GRUCell
    assert find_global("rnnbp.nn.recurrent", "Recurrent") is nn.Recurrent
    assert find_global("rnnbp.nn.tree", "TreeLSTM") is nn.TreeLSTM
    for old, new in MOVED_MODULES.items():
        assert __import__(new, fromlist=["x"]) is not None
