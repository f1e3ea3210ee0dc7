"""rnnbp.onnx.export: every built-in feed-forward module gives ONNX Runtime rnnbp's outputs (float32, 1e-5)
on a batch size other than the export's; the API (file targets, names, dynamic axes, keyword arguments);
the onnx_export hook and exporters; the errors (an unsupported module named with its path, bad arguments)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the ONNX export needs the onnx package: pip install rnnbp[onnx]")
pytest.importorskip("onnxruntime", reason="the exported files are checked with onnxruntime: pip install rnnbp[onnx]")

import onnx  # noqa: E402

import rnnbp  # noqa: E402
import rnnbp.onnx  # noqa: E402
from rnnbp import nn  # noqa: E402
from rnnbp.onnx import ExportError, UnsupportedModuleError  # noqa: E402

TOL = 1e-5


def randomized(module, seed: int = 0):
    """The module with every parameter redrawn (LayerNorm's ones and zeros would test little)."""
    rng = np.random.default_rng(seed)
    for p in module.parameters():
        p._data[...] = rng.standard_normal(p.shape).astype(p.dtype)
    return module


def floats(*shape, seed=1, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


# id: (module factory, example input, another input of other batch / length sizes, dynamic axes of x)
CASES = {
    "Linear 2-D": (lambda: nn.Linear(4, 3), floats(2, 4), floats(5, 4, seed=2), [0]),
    "Linear 3-D": (lambda: nn.Linear(4, 3), floats(3, 2, 4), floats(6, 5, 4, seed=2), [0, 1]),
    "Linear no bias": (lambda: nn.Linear(4, 3, bias=False), floats(2, 4), floats(7, 4, seed=2), [0]),
    "Embedding": (lambda: nn.Embedding(10, 3), np.array([[1, 2], [0, 9], [4, 4]]),
                  np.array([[3, 1, 0, 9, 2], [5, 6, 7, 8, 0]]), [0, 1]),
    "ReLU": (nn.ReLU, floats(2, 4), floats(5, 4, seed=2), [0]),
    "Tanh": (nn.Tanh, floats(2, 4), floats(5, 4, seed=2), [0]),
    "Sigmoid": (nn.Sigmoid, floats(2, 4), floats(5, 4, seed=2), [0]),
    "GELU": (nn.GELU, floats(2, 4), floats(5, 4, seed=2), [0]),
    "GELU tanh": (lambda: nn.GELU("tanh"), floats(2, 4), floats(5, 4, seed=2), [0]),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.2), floats(2, 4), floats(5, 4, seed=2), [0]),
    "Softmax dim 1": (lambda: nn.Softmax(dim=1), floats(2, 4), floats(5, 4, seed=2), [0]),
    "Softmax dim 0": (lambda: nn.Softmax(dim=0), floats(2, 4), floats(5, 4, seed=2), [0]),
    "LogSoftmax": (lambda: nn.LogSoftmax(dim=-1), floats(2, 3, 4), floats(5, 3, 4, seed=2), [0]),
    "Softplus": (nn.Softplus, floats(2, 4, scale=12), floats(5, 4, seed=2, scale=12), [0]),
    "Softplus beta threshold": (lambda: nn.Softplus(beta=2.0, threshold=3.0), floats(2, 4), floats(5, 4, seed=2), [0]),
    "Dropout": (lambda: nn.Dropout(0.5), floats(2, 4), floats(5, 4, seed=2), [0]),
    "LayerNorm": (lambda: nn.LayerNorm(4), floats(3, 2, 4), floats(6, 5, 4, seed=2), [0, 1]),
    "LayerNorm 2-D shape": (lambda: nn.LayerNorm((3, 4)), floats(2, 3, 4), floats(5, 3, 4, seed=2), [0]),
    "LayerNorm no affine": (lambda: nn.LayerNorm(4, elementwise_affine=False), floats(2, 4), floats(5, 4, seed=2), [0]),
    "LayerNorm no bias": (lambda: nn.LayerNorm(4, bias=False, eps=1e-3), floats(2, 4), floats(5, 4, seed=2), [0]),
    "Flatten": (nn.Flatten, floats(2, 3, 4), floats(5, 3, 4, seed=2), [0]),
    "Flatten 0, 1": (lambda: nn.Flatten(0, 1), floats(2, 3, 4), floats(5, 3, 4, seed=2), [0]),
    "Flatten 1, -2": (lambda: nn.Flatten(1, -2), floats(2, 3, 4, 2), floats(5, 3, 4, 2, seed=2), [0]),
    "Identity": (nn.Identity, floats(2, 4), floats(5, 4, seed=2), [0]),
    "Sequential": (lambda: nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Dropout(0.1), nn.LayerNorm(8),
                                         nn.Sequential(nn.Linear(8, 6), nn.Tanh()), nn.Linear(6, 3),
                                         nn.LogSoftmax(dim=-1)),
                   floats(3, 2, 4), floats(7, 5, 4, seed=2), [0, 1]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_module_matches_rnnbp_on_other_sizes(case, run_onnx):
    factory, example, other, axes = CASES[case]
    model = randomized(factory())
    model.train()  # the export is in eval mode whatever the model's mode (Dropout: the identity)
    proto = rnnbp.onnx.export(model, (rnnbp.Tensor(example),), None, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": axes, "y": [0]})
    assert model.training  # restored
    model.eval()
    for x in (example, other):
        got = run_onnx(proto, {"x": x})["y"]
        want = model(rnnbp.Tensor(x)).numpy()
        assert got.shape == want.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("opset", [18, 20, 21])
def test_other_opsets(opset, run_onnx):
    """Opset 20 has a Gelu operator (17-19 write its formula); the rest is the same."""
    model = randomized(nn.Sequential(nn.Linear(4, 5), nn.GELU(), nn.LayerNorm(5), nn.GELU("tanh"), nn.Softplus()))
    x = floats(2, 4)
    proto = rnnbp.onnx.export(model, rnnbp.Tensor(x), opset_version=opset, input_names=["x"])
    assert proto.opset_import[0].version == opset
    assert ("Gelu" in {n.op_type for n in proto.graph.node}) == (opset >= 20)
    np.testing.assert_allclose(run_onnx(proto, {"x": x})["output"], model(rnnbp.Tensor(x)).numpy(), rtol=TOL,
                               atol=TOL)


# ----------------------------------------------------------------------- API
def test_f_is_a_path_or_a_binary_file(tmp_path):
    model = nn.Linear(3, 2)
    x = rnnbp.Tensor(floats(2, 3))
    proto = rnnbp.onnx.export(model, (x,), str(tmp_path / "a.onnx"))
    assert isinstance(proto, onnx.ModelProto)
    rnnbp.onnx.export(model, (x,), tmp_path / "b.onnx")
    buffer = io.BytesIO()
    rnnbp.onnx.export(model, (x,), buffer)
    with open(tmp_path / "c.onnx", "wb") as fh:
        rnnbp.onnx.export(model, (x,), fh)
    data = [Path(tmp_path / n).read_bytes() for n in ("a.onnx", "b.onnx", "c.onnx")] + [buffer.getvalue()]
    assert data[0] == proto.SerializeToString() and all(d == data[0] for d in data)
    onnx.checker.check_model(onnx.load(tmp_path / "a.onnx"))
    with pytest.raises(TypeError, match="f must be a path or a binary file object"):
        rnnbp.onnx.export(model, (x,), 42)


def test_default_names_come_from_the_forward_and_fixed_axes_stay_fixed(run_onnx):
    model = nn.Linear(3, 2)
    proto = rnnbp.onnx.export(model, rnnbp.Tensor(floats(2, 3)))
    assert [i.name for i in proto.graph.input] == ["x"] and [o.name for o in proto.graph.output] == ["output"]
    dims = [d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [2, 2]
    with pytest.raises(Exception, match="(?i)dimension"):  # no dynamic_axes: the example's batch only
        run_onnx(proto, {"x": floats(5, 3)})


def test_dynamic_axes_as_lists_or_named(run_onnx):
    model = nn.Linear(3, 2)
    proto = rnnbp.onnx.export(model, rnnbp.Tensor(floats(2, 4, 3)), input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "batch", 1: "time"}, "y": [0]})
    x_dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    y_dims = [d.dim_param or d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim]
    assert x_dims == ["batch", "time", 3]
    assert y_dims[1:] == ["time", 2] and y_dims[0] != 2  # inferred from x's axis names, then renamed
    assert run_onnx(proto, {"x": floats(5, 1, 3)})["y"].shape == (5, 1, 2)


def test_keyword_arguments_and_tuples_become_named_inputs(run_onnx):
    lstm = randomized(nn.LSTM(3, 4, batch_first=True))
    x, h0, c0 = floats(2, 5, 3), floats(1, 2, 4, seed=3), floats(1, 2, 4, seed=4)
    lengths = [5, 2]
    proto = rnnbp.onnx.export(lstm, (rnnbp.Tensor(x), (rnnbp.Tensor(h0), rnnbp.Tensor(c0)), {"lengths": lengths}))
    assert [i.name for i in proto.graph.input] == ["input", "hx_0", "hx_1", "lengths"]
    assert proto.graph.input[3].type.tensor_type.elem_type == onnx.TensorProto.INT64
    got = run_onnx(proto, {"input": x, "hx_0": h0, "hx_1": c0, "lengths": np.array(lengths)})
    out, (h_n, c_n) = lstm(rnnbp.Tensor(x), (rnnbp.Tensor(h0), rnnbp.Tensor(c0)), lengths=lengths)
    for name, want in zip(["output_0", "output_1", "output_2"], [out, h_n, c_n]):
        np.testing.assert_allclose(got[name], want.numpy(), rtol=TOL, atol=TOL)
    same = rnnbp.onnx.export(lstm, (rnnbp.Tensor(x), (rnnbp.Tensor(h0), rnnbp.Tensor(c0))), kwargs={"lengths": lengths})
    assert same.SerializeToString() == proto.SerializeToString()


class TwoLookups(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Embedding(7, 4), nn.Embedding(7, 4)

    def forward(self, i, j):
        return self.a(i) + self.b(j)

    def onnx_export(self, g, i, j):
        return g.op("Add", g.module(self.a, i), g.module(self.b, j))


def test_tied_weights_are_stored_once(run_onnx):
    model = TwoLookups()
    assert [i.name for i in rnnbp.onnx.export(model, (np.array([1]), np.array([2]))).graph.initializer] == \
        ["a.weight", "b.weight"]
    model.b.weight = model.a.weight
    proto = rnnbp.onnx.export(model, (np.array([1, 3]), np.array([2, 3])))
    assert [i.name for i in proto.graph.initializer] == ["a.weight"]
    got = run_onnx(proto, {"i": np.array([1, 3]), "j": np.array([2, 3])})["output"]
    np.testing.assert_allclose(got, model(np.array([1, 3]), np.array([2, 3])).numpy(), rtol=TOL, atol=TOL)


# ------------------------------------------------- modules describing themselves
class Residual(nn.Module):
    """y = x + tanh(fc(x)) * scale: a forward that is no chain of modules."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.Tanh()
        self.scale = 0.5

    def forward(self, x):
        return x + self.act(self.fc(x)) * self.scale

    def onnx_export(self, g, x):
        scaled = g.op("Mul", g.module(self.act, g.module(self.fc, x)), g.constant(np.float32(self.scale)))
        return g.op("Add", x, scaled)


def test_onnx_export_method_describes_a_custom_forward(run_onnx):
    model = nn.Sequential(randomized(Residual()), nn.Linear(4, 2))
    proto = rnnbp.onnx.export(model, rnnbp.Tensor(floats(2, 4)), input_names=["x"], dynamic_axes={"x": [0]})
    x = floats(6, 4, seed=5)
    np.testing.assert_allclose(run_onnx(proto, {"x": x})["output"], model(rnnbp.Tensor(x)).numpy(),
                               rtol=TOL, atol=TOL)
    assert "0.fc.weight.T" in {i.name for i in proto.graph.initializer}  # named by the path in the model


class Doubler(nn.Module):
    def forward(self, x):
        return x * 2


def test_exporters_convert_classes_one_cannot_edit(run_onnx):
    model = nn.Sequential(nn.Linear(3, 3), Doubler())

    def doubler(module, g, x):
        return g.op("Mul", x, g.constant(np.float32(2)))

    proto = rnnbp.onnx.export(model, rnnbp.Tensor(floats(2, 3)), input_names=["x"], exporters={Doubler: doubler})
    x = floats(2, 3, seed=7)
    np.testing.assert_allclose(run_onnx(proto, {"x": x})["output"], model(rnnbp.Tensor(x)).numpy(), rtol=TOL,
                               atol=TOL)


# -------------------------------------------------------------------- errors
def test_an_unsupported_module_is_named_with_its_path():
    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.ReLU(), Doubler()))
    with pytest.raises(UnsupportedModuleError) as info:
        rnnbp.onnx.export(model, rnnbp.Tensor(floats(2, 3)))
    message = str(info.value)
    assert "no ONNX conversion for '1.1' (" in message and "Doubler)" in message
    assert "onnx_export(self, g, *inputs)" in message and "exporters={Doubler:" in message
    assert info.value.path == "1.1" and info.value.module is model[1][1]
    assert isinstance(info.value, ExportError)


def test_an_unsupported_rnnbp_module_and_the_model_itself():
    cell = nn.Sequential(nn.LSTMCell(3, 4))
    with pytest.raises(UnsupportedModuleError, match=r"for '0' \(rnnbp\.nn\.LSTMCell\)"):
        rnnbp.onnx.export(cell, rnnbp.Tensor(floats(2, 3)))
    with pytest.raises(UnsupportedModuleError, match=r"for the model itself \(.*Doubler\)"):
        rnnbp.onnx.export(Doubler(), rnnbp.Tensor(floats(2, 3)))


def test_a_subclass_that_overrides_forward_is_not_taken_for_its_base():
    class Shifted(nn.Linear):
        def forward(self, x):
            return super().forward(x) + 1

    with pytest.raises(UnsupportedModuleError, match="subclasses Linear but overrides forward"):
        rnnbp.onnx.export(Shifted(3, 2), rnnbp.Tensor(floats(2, 3)))

    class Plain(nn.Linear):
        pass

    assert rnnbp.onnx.export(Plain(3, 2), rnnbp.Tensor(floats(2, 3))).graph.node


@pytest.mark.parametrize("kwargs, error, match", [
    ({"opset_version": 16}, ExportError, "opset_version must be an int from 17"),
    ({"input_names": ["a", "b"]}, ExportError, "2 input_names for 1 inputs"),
    ({"output_names": ["a", "b"]}, ExportError, "2 output_names for 1 outputs"),
    ({"dynamic_axes": {"nope": [0]}}, ExportError, r"dynamic_axes names \['nope'\]"),
    ({"dynamic_axes": {"x": [2]}}, ExportError, "names axis 2, but the input 'x' has 2 axes"),
    ({"input_names": ["y"], "output_names": ["y"]}, ExportError, "named both an input and an output"),
    ({"export_params": False}, ExportError, "export_params=False"),
])
def test_bad_arguments_are_refused_by_name(kwargs, error, match):
    with pytest.raises(error, match=match):
        rnnbp.onnx.export(nn.Linear(3, 2), rnnbp.Tensor(floats(2, 3)), **kwargs)


def test_arguments_that_do_not_fit_the_forward():
    with pytest.raises(TypeError, match="do not fit Linear.forward"):
        rnnbp.onnx.export(nn.Linear(3, 2), (rnnbp.Tensor(floats(2, 3)), rnnbp.Tensor(floats(2, 3))))
    with pytest.raises(TypeError, match="got a list"):
        rnnbp.onnx.export(nn.Linear(3, 2), [rnnbp.Tensor(floats(2, 3))])
    with pytest.raises(ExportError, match="expects in_features 3 in the last axis"):
        rnnbp.onnx.export(nn.Linear(3, 2), rnnbp.Tensor(floats(2, 4)))


def test_output_names_may_be_any_names(run_onnx):
    """Names taken inside the graph move aside; one value given twice is copied."""
    model = randomized(nn.Sequential(nn.Linear(3, 3), nn.LayerNorm(3, elementwise_affine=False)))

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = model

        def forward(self, x):
            y = self.body(x)
            return y, y, x

        def onnx_export(self, g, x):
            y = g.module(self.body, x)
            return y, y, x

    x = floats(2, 3)
    proto = rnnbp.onnx.export(Twice(), rnnbp.Tensor(x), input_names=["x"], output_names=["body.1.ones", "body.0.weight.T", "copy"])
    got = run_onnx(proto, {"x": x})
    want = model(rnnbp.Tensor(x)).numpy()
    np.testing.assert_allclose(got["body.1.ones"], want, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(got["body.0.weight.T"], want, rtol=TOL, atol=TOL)
    np.testing.assert_array_equal(got["copy"], x)
