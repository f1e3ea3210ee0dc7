"""nn.Recurrent's replay (``nn.recurrent.traced``): a cell's step recorded once and replayed as one node.

The replay against the tape (``fused=False``, the cell unrolled op by op) in
float64: outputs, final states and every gradient (parameters, input, initial
states) to 1e-10, for the built-in cells, the layer-normalised LSTM and a cell a
user writes from rnnbp ops, through layers, directions, ragged lengths, packed
input, given initial states and dropout between layers; with both backends, the
elementwise ops compiled (``fuse``, numba) and replayed one by one with NumPy. Gradchecks of the
replay; dropout inside a cell drawing the tape's numbers; stop-gradients, weights
transformed inside the step, batch-sized constants and reshapes; and the fallback
to the tape, with its warning, for a step that is not a fixed sequence of ops.
"""
import copy
import warnings

import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.autograd import gradcheck
from rnnbp.nn import functional as F
from rnnbp.nn.recurrent import traced
from rnnbp.nn.recurrent.probes import record_state_grads
from rnnbp.nn.recurrent.trace import fuse
from rnnbp.nn.utils.rnn import pack_padded_sequence

TOL = dict(rtol=1e-10, atol=1e-10)
LENGTHS = np.array([4, 1, 5, 0])  # unsorted, with a sequence of length 0
FALLBACK = "runs step by step on the autograd tape"


class UserGRU(nn.Module):
    """A GRU-like cell as a user writes it: two Linear maps, sigmoid and tanh gates, elementwise ops."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.x2h = nn.Linear(input_size, 3 * hidden_size)
        self.h2h = nn.Linear(hidden_size, 3 * hidden_size)

    def forward(self, x, h):
        xr, xz, xn = self.x2h(x).chunk(3, dim=1)
        hr, hz, hn = self.h2h(h).chunk(3, dim=1)
        r = (xr + hr).sigmoid()
        z = (xz + hz).sigmoid()
        n = (xn + r * hn).tanh()
        return (1 - z) * n + z * h


class ReluRNNCell(nn.RNNCell):
    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size, nonlinearity="relu")


class TracedLayerNormLSTMCell(nn.LayerNormLSTMCell):
    """The library's layer-norm LSTM cell under another class: ``nn.Recurrent`` runs the library class
    itself through its fused kernel (``layernorm_layers.fused_kernel_for``), a subclass through the trace."""


CELLS = {"lstm": nn.LSTMCell, "gru": nn.GRUCell, "rnn": nn.RNNCell, "rnn_relu": ReluRNNCell,
         "layernorm_lstm": TracedLayerNormLSTMCell, "user_gru": UserGRU}


@pytest.fixture(params=["numba", "numpy"])
def mode(request):
    """The replay's backend: elementwise runs compiled (numba), or op by op with NumPy."""
    if request.param == "numba" and not fuse.available():
        pytest.skip("numba is not installed")
    return request.param


def _pair(factory, input_size=3, hidden=4, seed=0, dtype=np.float64, backend="auto", **opts):
    """(replayed nn.Recurrent, the same module on the tape) with equal weights."""
    rnnbp.manual_seed(seed)
    rec = nn.Recurrent(factory, input_size, hidden, backend=backend, **opts).to(dtype)
    tape = copy.deepcopy(rec)
    tape.fused = False
    return rec, tape


def _inputs(rec, T=5, B=4, seed=1, with_state=False, dtype=np.float64):
    rng = np.random.default_rng(seed)
    shape = (B, T, rec.input_size) if rec.batch_first else (T, B, rec.input_size)
    x = rnnbp.tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)
    states = []
    if with_state:
        states = [rnnbp.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True)
                  for s in rec._state_shapes(B)]
    return x, states


def _hx(states):
    return None if not states else states[0] if len(states) == 1 else tuple(states)


def _flat(result):
    output, states = result
    if hasattr(output, "batch_sizes"):  # PackedSequence
        output = output.data
    return (output,) + (states if isinstance(states, tuple) else (states,))


def _run(layer, run, leaves, seed=7):
    """Outputs and every gradient of sum <output_k, d_k> for random directions d_k."""
    layer.zero_grad()
    for t in leaves:
        t.grad = None
    outs = _flat(run())
    rng = np.random.default_rng(seed)
    loss = sum((o * rnnbp.tensor(rng.standard_normal(o.shape).astype(o.dtype))).sum() for o in outs)
    loss.backward()
    grads = {n: p.grad.numpy().copy() for n, p in layer.named_parameters() if p.grad is not None}
    grads.update({f"leaf{i}": t.grad.numpy().copy() for i, t in enumerate(leaves)})
    return [o.numpy().copy() for o in outs], grads


def _assert_same(a, b, tol=TOL, nonzero=True):
    outs_a, grads_a = a
    outs_b, grads_b = b
    assert len(outs_a) == len(outs_b)
    for i, (u, v) in enumerate(zip(outs_a, outs_b)):
        np.testing.assert_allclose(u, v, err_msg=f"output {i}", **tol)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        if nonzero:
            assert np.any(grads_a[name] != 0), f"{name}: gradient is all zero, the comparison proves nothing"
        np.testing.assert_allclose(grads_a[name], grads_b[name], err_msg=name, **tol)


def _replayed(rec):
    """Whether every cell of ``rec`` ran through a recorded plan (and none fell back to the tape)."""
    cells = [m for name, m in rec.named_children() if name.startswith("cell_l")]
    return all(traced._caches.get(c) is not None and traced._caches[c].plans and not traced._caches[c].failures
               for c in cells)


def _compare(rec, tape, x, states, **call):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to the tape would warn
        got = _run(rec, lambda: rec(x, _hx(states), **call), [x] + states)
    assert _replayed(rec)
    want = _run(tape, lambda: tape(x, _hx(states), **call), [x] + states)
    _assert_same(got, want)


# --------------------------------------------------------------------------- traced == tape
CONFIGS = [
    dict(),
    dict(num_layers=2, bidirectional=True, ragged=True, with_state=True),
    dict(num_layers=2, dropout=0.4, batch_first=True, ragged=True),  # dropout between layers, in eval
    dict(bidirectional=True, with_state=True),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()) or "plain")
@pytest.mark.parametrize("kind", list(CELLS))
def test_traced_equals_tape(kind, config, mode):
    opts = {k: v for k, v in config.items() if k not in ("ragged", "with_state")}
    rec, tape = _pair(CELLS[kind], **opts, backend=mode)
    if opts.get("dropout"):
        rec.eval()
        tape.eval()
    x, states = _inputs(rec, with_state=config.get("with_state", False))
    _compare(rec, tape, x, states, lengths=LENGTHS if config.get("ragged") else None)


@pytest.mark.parametrize("kind", ["layernorm_lstm", "user_gru", "lstm"])
def test_traced_equals_tape_on_packed_input(kind, mode):
    rec, tape = _pair(CELLS[kind], num_layers=2, bidirectional=True, backend=mode)
    x, states = _inputs(rec, with_state=True)
    lengths = np.array([2, 5, 3, 5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _run(rec, lambda: rec(pack_padded_sequence(x, lengths, enforce_sorted=False), _hx(states)),
                   [x] + states)
    want = _run(tape, lambda: tape(pack_padded_sequence(x, lengths, enforce_sorted=False), _hx(states)),
                [x] + states)
    _assert_same(got, want)


def test_traced_equals_tape_without_input_gradient_and_in_no_grad(mode):
    """Layer 0's input needs no gradient (only the weights do); under no_grad nothing is recorded."""
    rec, tape = _pair(TracedLayerNormLSTMCell, num_layers=2, backend=mode)
    x = rnnbp.tensor(np.random.default_rng(3).standard_normal((6, 3, 3)))
    got = _run(rec, lambda: rec(x), [])
    want = _run(tape, lambda: tape(x), [])
    _assert_same(got, want)
    with rnnbp.no_grad():
        out, (h, c) = rec(x, lengths=np.array([6, 2, 4]))
        ref, (h2, c2) = tape(x, lengths=np.array([6, 2, 4]))
    assert out.grad_fn is None and not out.requires_grad
    for u, v in ((out, ref), (h, h2), (c, c2)):
        np.testing.assert_allclose(u.numpy(), v.numpy(), **TOL)


def test_replay_is_one_graph_node_per_layer_and_direction(mode):
    rec, _ = _pair(UserGRU, backend=mode)
    x, _ = _inputs(rec)
    out, h = rec(x)
    assert out.grad_fn.name == "TracedRecurrence"
    assert h.grad_fn.name == "Stack"
    plan = next(iter(traced._caches[rec.cell_l0].plans.values()))
    # x W^T + b for all steps is hoisted out of the loop; h W^T + b is a per-step product
    assert plan.graph.nodes[plan.hoisted[0]].name == "Linear"
    assert [plan.graph.nodes[n].name for n in plan.linear] == ["Linear"]


def test_float32_traced_close_to_tape(mode):
    rec, tape = _pair(TracedLayerNormLSTMCell, dtype=np.float32, num_layers=2, bidirectional=True, backend=mode)
    x, states = _inputs(rec, with_state=True, dtype=np.float32)
    got = _run(rec, lambda: rec(x, _hx(states), lengths=LENGTHS), [x] + states)
    want = _run(tape, lambda: tape(x, _hx(states), lengths=LENGTHS), [x] + states)
    # float32 through two layer norms and two layers: a gradient entry near 2e-3 that sums terms of
    # order 1 may differ by a few 1e-5 between two summation orders, so atol is 1e-4 (the float64
    # gradchecks below are the exact proof).
    _assert_same(got, want, tol=dict(rtol=1e-4, atol=1e-4))
    assert got[0][0].dtype == np.float32 and all(g.dtype == np.float32 for g in got[1].values())


def test_state_grad_probes_agree_with_the_tape(mode):
    rec, tape = _pair(UserGRU, num_layers=2, bidirectional=True, backend=mode)
    x, states = _inputs(rec, with_state=True)
    d = np.random.default_rng(5).standard_normal((5, 4, 8))
    norms = []
    for layer in (rec, tape):
        with record_state_grads(nn.Sequential(layer)) as probe:
            out, _ = layer(x, _hx(states), lengths=LENGTHS)
            (out * rnnbp.tensor(d)).sum().backward()
        norms.append(probe.trimmed())
    assert sorted(norms[0]) == sorted(norms[1]) == [("0", k, j) for k in range(2) for j in range(2)]
    for key in norms[0]:
        np.testing.assert_allclose(norms[0][key], norms[1][key], err_msg=str(key), **TOL)


# --------------------------------------------------------------------------- gradchecks
@pytest.mark.parametrize("kind,layers", [("layernorm_lstm", 1), ("user_gru", 2)])
def test_traced_gradcheck(kind, layers, mode):
    """Input, initial states and every parameter; both directions, unsorted lengths with a 0.
    (tests/nn/test_recurrent.py gradchecks the two-layer layer-norm LSTM, also through the replay.)"""
    rnnbp.manual_seed(0)
    rec = nn.Recurrent(CELLS[kind], 2, 2, num_layers=layers, bidirectional=True, backend=mode).double()
    rng = np.random.default_rng(0)
    x = rnnbp.tensor(rng.standard_normal((3, 3, 2)), requires_grad=True)
    states = [rnnbp.tensor(rng.standard_normal(s), requires_grad=True) for s in rec._state_shapes(3)]
    lengths = np.array([2, 0, 3])
    params = list(rec.parameters())

    def fn(x, *rest):
        return _flat(rec(x, _hx(list(rest[:len(states)])), lengths=lengths))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gradcheck(fn, [x, *states, *params], eps=1e-6, atol=1e-6, rtol=1e-4)
    assert _replayed(rec)


# --------------------------------------------------------------------------- cells with more in them
class DropoutGRU(UserGRU):
    """Dropout on h inside the step: a new mask every step in training, the tape's draws."""

    def forward(self, x, h):
        return super().forward(x, F.dropout(h, 0.3, self.training))


class DetachedGateLSTM(nn.LSTMCell):
    """The forget gate sees a detached copy of h (a stop-gradient inside the step)."""

    def forward(self, x, hx):
        h, c = hx
        gates = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        i, f, g, o = gates.chunk(4, dim=1)
        f = f + (h.detach() * 0.5)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return o.sigmoid() * c.tanh(), c


class WeightNormRNN(nn.Module):
    """The recurrent weight normalised inside the step (a parameter-only computation, done once)."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.inp = nn.Linear(input_size, hidden_size)
        self.v = nn.Parameter(rnnbp.randn(hidden_size, hidden_size).double()._data)
        self.g = nn.Parameter(np.ones(hidden_size))

    def forward(self, x, h):
        w = self.v * (self.g / (self.v * self.v).sum(dim=1).sqrt()).unsqueeze(1)
        return (self.inp(x) + F.linear(h, w)).tanh()


class BatchShapedCell(nn.Module):
    """Shapes that follow the batch: zeros_like(h), a reshape by h.shape[0], and a pass-through state."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.state_size = (hidden_size, hidden_size)
        self.lin = nn.Linear(input_size + hidden_size, 2 * hidden_size)

    def forward(self, x, hx):
        h, c = hx
        b = h.shape[0]
        both = self.lin(rnnbp.cat([x, h], dim=1)).reshape(b, 2, -1)
        a, g = both[:, 0], both[:, 1]
        h_new = (a + rnnbp.zeros_like(h)).tanh() * g.sigmoid() + c * 0.5
        return h_new, c


class InPlaceCell(nn.Module):
    """In-place changes of constants and of views inside the step (a constant's values are recorded:
    a write into its array after the op read it would change the recording's constant)."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.lin = nn.Linear(input_size, hidden_size)

    def forward(self, x, h):
        z = rnnbp.ones_like(h)
        g = self.lin(x).sigmoid()
        z *= g
        z[:, 1:] = g[:, 1:] * h[:, :-1]
        z[:, 0] += h[:, 0]
        return (z + h).tanh()


@pytest.mark.parametrize("cell", [DetachedGateLSTM, WeightNormRNN, BatchShapedCell, InPlaceCell])
def test_traced_equals_tape_for_cells_with_more_in_them(cell, mode):
    rec, tape = _pair(cell, num_layers=2, bidirectional=True, backend=mode)
    x, states = _inputs(rec, with_state=True)
    _compare(rec, tape, x, states, lengths=LENGTHS)


def test_dropout_inside_the_cell_draws_the_tapes_numbers(mode):
    rec, tape = _pair(DropoutGRU, num_layers=2, bidirectional=True, backend=mode)
    x, states = _inputs(rec, with_state=True)
    rnnbp.manual_seed(11)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = _run(rec, lambda: rec(x, _hx(states), lengths=LENGTHS), [x] + states)
    rnnbp.manual_seed(11)
    want = _run(tape, lambda: tape(x, _hx(states), lengths=LENGTHS), [x] + states)
    _assert_same(got, want)
    rec.eval()
    tape.eval()
    _compare(rec, tape, x, states, lengths=LENGTHS)


def test_a_replaced_parameter_is_used(mode):
    rec, tape = _pair(UserGRU, backend=mode)
    x, _ = _inputs(rec)
    rec(x)
    for m in (rec, tape):
        m.cell_l0.h2h.weight = nn.Parameter(np.full((12, 4), 0.1))
    _compare(rec, tape, x, [])


# --------------------------------------------------------------------------- falling back to the tape
class BranchyCell(UserGRU):
    """Python control flow on the data: cannot be recorded."""

    def forward(self, x, h):
        if x.sum() > 0:
            h = h * 0.5
        return super().forward(x, h)


class MaskCell(UserGRU):
    """A mask computed outside the autograd ops (a comparison) and fed back into one."""

    def forward(self, x, h):
        h = rnnbp.where(h > 0, h, h * 0.1)
        return super().forward(x, h)


class NoisyCell(UserGRU):
    """A random constant made every call (not through an op whose draws a replay can repeat)."""

    def forward(self, x, h):
        return super().forward(x, h + 0.0 * rnnbp.randn_like(h))


@pytest.mark.parametrize("cell,reason", [(BranchyCell, "Python bool"), (MaskCell, "computed outside the autograd"),
                                         (NoisyCell, "constant that differs")])
def test_untraceable_cells_fall_back_to_the_tape_with_one_warning(cell, reason):
    rec, tape = _pair(cell, num_layers=2)
    x, states = _inputs(rec, with_state=True)
    with pytest.warns(UserWarning, match=f"{cell.__name__} {FALLBACK}.*{reason}"):
        rnnbp.manual_seed(3)
        got = _run(rec, lambda: rec(x, _hx(states), lengths=LENGTHS), [x] + states)
    rnnbp.manual_seed(3)
    want = _run(tape, lambda: tape(x, _hx(states), lengths=LENGTHS), [x] + states)
    _assert_same(got, want)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per cell class and reason
        rec(x, _hx(states))
        tape(x, _hx(states))  # fused=False never warns
    assert not _replayed(rec)


def test_a_failed_compile_falls_back_to_numpy_replay(monkeypatch):
    if not fuse.available():
        pytest.skip("numba is not installed")
    monkeypatch.setattr(fuse, "_failed", None)

    def broken(source, name, dtype):
        raise RuntimeError("no compiler today")

    monkeypatch.setattr(fuse, "compile_source", broken)
    rec, tape = _pair(UserGRU, hidden=5)  # backend 'auto'
    x, states = _inputs(rec, with_state=True)
    with pytest.warns(RuntimeWarning, match="no compiler today"):
        got = _run(rec, lambda: rec(x, _hx(states)), [x] + states)
    assert fuse._failed is not None and not fuse.enabled("auto", np.float64) and _replayed(rec)
    numba = copy.deepcopy(rec)
    numba.backend = "numba"  # asked for by name, the error shows
    with pytest.raises(fuse.FuseError, match="no compiler today"):
        numba(x)
    _assert_same(got, _run(tape, lambda: tape(x, _hx(states)), [x] + states))


def test_backward_twice_with_retain_graph_and_autograd_grad(mode):
    rec, tape = _pair(TracedLayerNormLSTMCell, num_layers=2, bidirectional=True, backend=mode)
    x, states = _inputs(rec, with_state=True)
    results = []
    for layer in (rec, tape):
        layer.zero_grad()
        x.grad = None
        out, (h, c) = layer(x, _hx(states), lengths=LENGTHS)
        loss = (out * out).sum() + (c * h).sum()
        (dx,) = rnnbp.autograd.grad(loss, [x], retain_graph=True)
        loss.backward(retain_graph=True)
        loss.backward()
        results.append([x.grad.numpy().copy(), dx] + [p.grad.numpy().copy() for p in layer.parameters()])
    for u, v in zip(*results):
        np.testing.assert_allclose(u, v, **TOL)


class SometimesBrokenCell(UserGRU):
    broken = True

    def forward(self, x, h):
        if self.broken:
            raise ValueError("SometimesBrokenCell: broken on purpose")
        return super().forward(x, h)


def test_an_error_in_the_cell_is_the_cells_own_and_is_not_remembered(mode):
    rec, tape = _pair(SometimesBrokenCell, backend=mode)
    x, _ = _inputs(rec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="broken on purpose"):
            rec(x)
        rec.cell_l0.broken = tape.cell_l0.broken = False
    _compare(rec, tape, x, [])


def test_fused_and_backend_in_repr_and_checked():
    assert "fused=False, backend=numpy" in repr(nn.Recurrent(nn.GRUCell, 3, 4, fused=False, backend="numpy"))
    assert "fused" not in repr(nn.Recurrent(nn.GRUCell, 3, 4)) and "backend" not in repr(nn.Recurrent(nn.GRUCell, 3, 4))
    with pytest.raises(ValueError, match="backend must be one of"):
        nn.Recurrent(nn.GRUCell, 3, 4, backend="cuda")


# --------------------------------------------------------------------------- per-step vectors, buffers
class BatchCentredCell(nn.Module):
    """Subtracts the batch mean of its input projection: a (1, H) value that changes at every step,
    which a compiled run must not read once per sequence."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.hidden_size = hidden_size
        self.lx = nn.Linear(input_size, hidden_size)
        self.lh = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, x, h):
        a = self.lx(x)
        a = a - a.mean(dim=0, keepdim=True)
        return (a + self.lh(h)).tanh()


def test_a_vector_that_changes_every_step_is_read_every_step(mode):
    rec, tape = _pair(BatchCentredCell, backend=mode)
    x, states = _inputs(rec, with_state=True)
    _compare(rec, tape, x, states)


class NormedCell(UserGRU):
    """A cell with BatchNorm1d: in training it updates running statistics, which a replay would not."""

    def __init__(self, input_size, hidden_size):
        super().__init__(input_size, hidden_size)
        self.bn = nn.BatchNorm1d(hidden_size)

    def forward(self, x, h):
        return self.bn(super().forward(x, h))


def test_a_step_that_updates_buffers_runs_on_the_tape_and_its_buffers_see_only_the_data(mode, monkeypatch):
    """Recording runs the step on stand-ins: the buffers it changed are put back, and the layer
    falls back to the tape (with the warning), so running statistics come from the data alone."""
    monkeypatch.setattr(traced, "_warned", set())  # warned once per process otherwise
    rec, tape = _pair(NormedCell, backend=mode)
    x, states = _inputs(rec, with_state=True)
    with pytest.warns(UserWarning, match=f"NormedCell {FALLBACK}.*updates its module buffers"):
        for _ in range(3):
            rec(x, _hx(states))
    for _ in range(3):
        tape(x, _hx(states))
    for (name, a), (_, b) in zip(rec.named_buffers(), tape.named_buffers()):
        np.testing.assert_array_equal(a.numpy() if hasattr(a, "numpy") else a, b.numpy() if hasattr(b, "numpy") else b,
                                      err_msg=name)
    rec.eval()
    tape.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # in eval nothing is updated: replayed, no fallback
        got = _run(rec, lambda: rec(x, _hx(states)), [x] + states)
    assert len(traced._caches[rec.cell_l0].plans) == 1
    _assert_same(got, _run(tape, lambda: tape(x, _hx(states)), [x] + states))
