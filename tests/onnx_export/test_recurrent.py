"""nn.RNN / nn.LSTM / nn.GRU exported as ONNX's RNN / LSTM / GRU operators give ONNX Runtime rnnbp's
outputs and final states (float32, 1e-5): 1-2 layers, one or two directions, batch_first, initial states,
ragged lengths (including rows of length 0), on a batch size and sequence length other than the export's."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the ONNX export needs the onnx package: pip install rnnbp[onnx]")
pytest.importorskip("onnxruntime", reason="the exported files are checked with onnxruntime: pip install rnnbp[onnx]")

import rnnbp  # noqa: E402
import rnnbp.onnx  # noqa: E402
from rnnbp import nn  # noqa: E402
from rnnbp.onnx import ExportError  # noqa: E402

TOL = 1e-5
IN, H = 3, 4
LAYERS = {"LSTM": nn.LSTM, "GRU": nn.GRU, "RNN": nn.RNN}


def make(kind: str, layers: int = 1, bidirectional: bool = False, **kw):
    if kind == "RNN relu":
        kind, kw = "RNN", {**kw, "nonlinearity": "relu"}
    rnnbp.manual_seed(0)
    return LAYERS[kind](IN, H, num_layers=layers, bidirectional=bidirectional, **kw)


def floats(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def state_names(m) -> list[str]:
    return ["h0", "c0"] if isinstance(m, nn.LSTM) else ["h0"]


def export(m, batch_first=False, states=False, lengths=False, T=5, N=3):
    """Export on (T, N) examples; every axis that is a batch or time axis is dynamic."""
    x = floats(N, T, IN) if batch_first else floats(T, N, IN)
    S = m.num_layers * m.num_directions
    hx = None
    names = ["x"]
    axes = {"x": [0, 1]}
    if states:
        hs = [rnnbp.Tensor(floats(S, N, H, seed=i + 1)) for i in range(len(state_names(m)))]
        hx = tuple(hs) if isinstance(m, nn.LSTM) else hs[0]
        names += state_names(m)
        axes.update({n: [1] for n in state_names(m)})
    args = (rnnbp.Tensor(x), hx, np.full(N, T)) if lengths else (rnnbp.Tensor(x), hx)
    if lengths:
        names.append("lengths")
        axes["lengths"] = [0]
    outs = ["y", "h_n", "c_n"] if isinstance(m, nn.LSTM) else ["y", "h_n"]
    axes.update({"y": [0, 1], "h_n": [1], "c_n": [1]})
    return rnnbp.onnx.export(m, args, None, input_names=names, output_names=outs,
                             dynamic_axes={k: v for k, v in axes.items() if k in names + outs})


def check(m, proto, run_onnx, batch_first=False, states=False, lengths=None, T=7, N=4, seed=10):
    """ONNX Runtime against rnnbp on a (T, N) batch other than the export's."""
    x = floats(N, T, IN, seed=seed) if batch_first else floats(T, N, IN, seed=seed)
    S = m.num_layers * m.num_directions
    feed = {"x": x}
    hx = None
    if states:
        hs = [floats(S, N, H, seed=seed + 1 + i) for i in range(len(state_names(m)))]
        feed.update(zip(state_names(m), hs))
        hx = tuple(rnnbp.Tensor(h) for h in hs) if isinstance(m, nn.LSTM) else rnnbp.Tensor(hs[0])
    if lengths is not None:
        feed["lengths"] = np.asarray(lengths, dtype=np.int64)
    got = run_onnx(proto, feed)
    m.eval()
    out, state = m(rnnbp.Tensor(x), hx, lengths=lengths)
    want = {"y": out, "h_n": state[0] if isinstance(state, tuple) else state}
    if isinstance(state, tuple):
        want["c_n"] = state[1]
    for name, value in want.items():
        assert got[name].shape == value.shape, name
        np.testing.assert_allclose(got[name], value.numpy(), rtol=TOL, atol=TOL, err_msg=name)
    return got


KINDS = ["LSTM", "GRU", "RNN", "RNN relu"]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("kind", KINDS)
def test_ragged_lengths_and_initial_states(kind, layers, bidirectional, run_onnx):
    """Outputs zero past each row's length, final states at each row's own end (reverse: at step 0)."""
    m = make(kind, layers, bidirectional)
    proto = export(m, states=True, lengths=True)
    got = check(m, proto, run_onnx, states=True, lengths=[7, 2, 5, 1])
    assert np.all(got["y"][2:, 1] == 0) and np.all(got["y"][1:, 3] == 0)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("kind", KINDS)
def test_no_states_no_lengths(kind, bidirectional, run_onnx):
    m = make(kind, 2, bidirectional)
    check(m, export(m), run_onnx, T=9, N=1)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_batch_first(kind, run_onnx):
    m = make(kind, 2, True, batch_first=True)
    proto = export(m, batch_first=True, states=True, lengths=True)
    check(m, proto, run_onnx, batch_first=True, states=True, lengths=[3, 7, 7, 4])
    proto = export(m, batch_first=True)
    check(m, proto, run_onnx, batch_first=True, N=2)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_a_row_of_length_zero_keeps_its_initial_state(kind, run_onnx):
    """rnnbp keeps the initial state of an empty row; ONNX Runtime alone would return zeros."""
    m = make(kind, 2, True)
    got = check(m, export(m, states=True, lengths=True), run_onnx, states=True, lengths=[7, 0, 3, 0])
    assert np.all(got["y"][:, 1] == 0) and np.any(got["h_n"][:, 1] != 0)
    check(m, export(m, lengths=True), run_onnx, lengths=[0, 7, 1, 2])  # zero initial states: zeros


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_without_bias(kind, run_onnx):
    m = make(kind, 2, True, bias=False)
    check(m, export(m, lengths=True), run_onnx, lengths=[2, 7, 1, 6])


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_unbatched_input(kind, run_onnx):
    m = make(kind, 2, True)
    x = floats(5, IN)
    proto = rnnbp.onnx.export(m, rnnbp.Tensor(x), input_names=["x"], output_names=["y", "h_n", "c_n"][:3 if kind ==
                              "LSTM" else 2], dynamic_axes={"x": [0], "y": [0]})
    x2 = floats(8, IN, seed=3)
    got = run_onnx(proto, {"x": x2})
    out, state = m(rnnbp.Tensor(x2))
    h_n = state[0] if isinstance(state, tuple) else state
    np.testing.assert_allclose(got["y"], out.numpy(), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(got["h_n"], h_n.numpy(), rtol=TOL, atol=TOL)


def test_the_graph_uses_onnx_recurrent_operators():
    m = make("GRU", 2, True)
    ops = [n.op_type for n in export(m, lengths=True).graph.node]
    assert ops.count("GRU") == 2 and "Loop" not in ops and "Scan" not in ops
    gru = next(n for n in export(m).graph.node if n.op_type == "GRU")
    attrs = {a.name: a for a in gru.attribute}
    assert attrs["linear_before_reset"].i == 1 and attrs["direction"].s == b"bidirectional"


def test_proj_size_is_refused():
    m = nn.Sequential(nn.LSTM(IN, H, proj_size=2))
    with pytest.raises(ExportError, match="LSTM at '0' has proj_size=2"):
        rnnbp.onnx.export(m, rnnbp.Tensor(floats(5, 2, IN)))


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
def test_zoneout_is_refused_and_dropout_rates_export(cls):
    """Zoneout's eval output mixes each step's state with the previous one (no ONNX operator does);
    input, recurrent and weight dropout are identities in eval and export as the plain layer."""
    m = nn.Sequential(cls(IN, H, zoneout=0.25)).eval()
    with pytest.raises(ExportError, match="at '0' has zoneout=0.25"):
        rnnbp.onnx.export(m, rnnbp.Tensor(floats(5, 2, IN)))
    m = cls(IN, H, input_dropout=0.3, recurrent_dropout=0.3, weight_dropout=0.3).eval()
    assert any(n.op_type in ("LSTM", "GRU", "RNN") for n in export(m).graph.node)


def test_a_packed_sequence_is_refused():
    from rnnbp.nn.utils.rnn import pack_padded_sequence

    packed = pack_padded_sequence(rnnbp.Tensor(floats(5, 2, IN)), [5, 3])
    with pytest.raises(ExportError, match="PackedSequence cannot be a graph input.*lengths"):
        rnnbp.onnx.export(nn.GRU(IN, H), (packed,))


def test_a_wrong_input_size_is_named():
    with pytest.raises(ExportError, match=r"GRU \(the model itself\) has input_size 3"):
        rnnbp.onnx.export(nn.GRU(IN, H), rnnbp.Tensor(floats(5, 2, IN + 1)))


def test_float64_layers_export_with_a_warning(run_onnx):
    m = nn.GRU(IN, H, dtype=np.float64)
    with pytest.warns(UserWarning, match="ONNX Runtime runs GRU in float32 only"):
        proto = rnnbp.onnx.export(m, rnnbp.Tensor(floats(5, 2, IN).astype(np.float64)))
    assert proto.graph.input[0].type.tensor_type.elem_type == 11  # DOUBLE
