"""TBPTT(k1, k2): against a hand-written reference loop, streams, ragged ends, clipping, NaN, diagnostics."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import rnnbp
from rnnbp import nn, optim
from rnnbp.bptt import TBPTT, Carry, NonFiniteError, sequence_mse

F64 = "float64"


class Model(nn.Module):
    """A recurrent layer and a linear head, called as the engine calls models."""

    def __init__(self, kind="lstm", fused=True, num_layers=1, bidirectional=False, seed=0):
        super().__init__()
        gen = np.random.default_rng(seed)
        if kind == "cell":  # any cell through the driver, on the tape
            self.rnn = nn.Recurrent(lambda i, h: nn.LSTMCell(i, h, dtype=F64, generator=gen), 3, 4,
                                    num_layers=num_layers, bidirectional=bidirectional)
        else:
            layer = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]
            self.rnn = layer(3, 4, num_layers=num_layers, bidirectional=bidirectional, fused=fused, dtype=F64,
                             generator=gen)
        self.head = nn.Linear(4 * (2 if bidirectional else 1), 2, dtype=F64)

    def forward(self, x, hx=None, lengths=None):
        out, hx = self.rnn(x, hx, lengths=lengths)
        return self.head(out), hx


def _stream(L=11, N=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((L, N, 3)), rng.standard_normal((L, N, 2))


def _grads(model):
    return {n: p.grad.numpy().copy() for n, p in model.named_parameters()}


def _engine_grads(model, x, y, k1, k2, **run):
    got = []
    engine = TBPTT(model, sequence_mse, None, k1, k2, on_update=lambda e, u: got.append((u.steps, _grads(model))))
    result = engine.run(x, y, **run)
    return got, result


def _reference_grads(model, x, y, k1, k2):
    """The textbook loop: every k1 steps, detach at the window start, forward, loss on the newest steps, backward."""
    L, N = x.shape[:2]
    states, out_grads = {0: None}, []
    for c0 in range(0, L, k1):
        c1 = min(c0 + k1, L)
        w0 = max(0, c0 - (k2 - k1))
        model.zero_grad()
        s = states[w0]
        s = None if s is None else tuple(t.detach() for t in s) if isinstance(s, tuple) else s.detach()
        outs = []
        for t in range(w0, c1):  # one step at a time: no shared code with the engine's windows
            o, s = model(rnnbp.tensor(x[t:t + 1]), s)
            outs.append(o)
            states[t + 1] = s
        out = rnnbp.cat(outs[c0 - w0:], dim=0)
        loss = ((out - rnnbp.tensor(y[c0:c1])) ** 2).sum() / ((c1 - c0) * N)
        loss.backward()
        out_grads.append(((c0, c1), _grads(model)))
    return out_grads


def _assert_same(got, ref, rtol=1e-10):
    assert [s for s, _ in got] == [s for s, _ in ref]
    for (_, a), (_, b) in zip(got, ref):
        for name in b:
            np.testing.assert_allclose(a[name], b[name], rtol=rtol, atol=1e-13, err_msg=name)


@pytest.mark.parametrize("kind,fused", [("lstm", True), ("lstm", False), ("gru", True), ("rnn", True),
                                        ("cell", False)], ids=["lstm-fused", "lstm-unrolled", "gru-fused",
                                                               "rnn-fused", "any-cell"])
@pytest.mark.parametrize("k1,k2", [(3, 3), (3, 5), (2, 7), (4, 4)])
def test_tbptt_equals_reference_loop(kind, fused, k1, k2):
    model = Model(kind, fused)
    x, y = _stream()
    got, _ = _engine_grads(model, x, y, k1, k2)
    _assert_same(got, _reference_grads(model, x, y, k1, k2))


def test_one_chunk_equals_full_bptt():
    model = Model("lstm")
    x, y = _stream(L=9)
    got_full, full = _engine_grads(model, x, y, None, None)
    got_one, one = _engine_grads(model, x, y, 9, 9)
    model.zero_grad()
    out, _ = model(rnnbp.tensor(x))
    (((out - rnnbp.tensor(y)) ** 2).sum() / (9 * 3)).backward()
    _assert_same(got_full, [((0, 9), _grads(model))])
    _assert_same(got_one, got_full)
    assert full.loss == pytest.approx(one.loss, rel=1e-12)


@pytest.mark.parametrize("k1,k2", [(3, 3), (3, 5)])
def test_stream_in_segments_equals_one_run(k1, k2):
    """A stream run segment by segment (with the carry) makes the same updates as one run."""
    x, y = _stream(L=12)
    model = Model("lstm")
    whole, res = _engine_grads(model, x, y, k1, k2)
    parts, carry = [], None
    for a, b in ((0, 6), (6, 12)):
        got, r = _engine_grads(model, x[a:b], y[a:b], k1, k2, carry=carry)
        parts += [((s0 + a, s1 + a), g) for (s0, s1), g in got]
        carry = r.carry
    _assert_same(parts, whole)
    assert len(res.carry.history) == k2 - k1 if k2 > k1 else res.carry.history is None


def test_carry_round_trips_through_a_checkpoint(tmp_path):
    model = Model("lstm")
    x, y = _stream(L=8)
    r = TBPTT(model, sequence_mse, None, 3, 5).run(x, y)
    rnnbp.save({"carry": r.carry.state_dict()}, tmp_path / "c.npz")
    back = Carry.from_state_dict(rnnbp.load(tmp_path / "c.npz")["carry"])
    for a, b in zip(back.state, r.carry.state):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(back.history, r.carry.history)


@pytest.mark.parametrize("kind,fused", [("lstm", True), ("gru", False), ("cell", False)])
@pytest.mark.parametrize("k1,k2", [(3, 3), (2, 4)])
def test_ragged_ends_equal_rows_alone(kind, fused, k1, k2):
    """Rows ending mid-chunk (and chunks where some rows have no steps left) give, in every update, the
    count-weighted sum of the gradients those rows give alone; ended rows keep their final state."""
    x, y = _stream(L=10, N=4, seed=1)
    lengths = np.array([10, 4, 0, 7])
    model = Model(kind, fused, num_layers=2, bidirectional=False)
    got, res = _engine_grads(model, x, y, k1, k2, lengths=lengths)
    total = {}
    for row, n in enumerate(lengths):
        if n == 0:
            continue
        alone, _ = _engine_grads(model, x[:, row:row + 1], y[:, row:row + 1], k1, k2, lengths=lengths[row:row + 1])
        for (s0, s1), g in alone:  # a row alone stops at its length: chunks line up by their start
            count = min(s1, n) - s0
            acc = total.setdefault(s0, [0.0, {}])
            acc[0] += count
            for name, v in g.items():
                acc[1][name] = acc[1].get(name, 0) + count * v
    expected = [(s0, {k: v / c for k, v in acc.items()}) for s0, (c, acc) in sorted(total.items())]
    _assert_same([(s0, g) for (s0, _), g in got], expected)
    # Each row's carried state is the state after its own last step; the empty row keeps zeros.
    first = lambda state: state[0] if isinstance(state, tuple) else state  # noqa: E731  (h of (h, c), or h)
    h_final = first(res.carry.state).numpy()
    _, alone = model(rnnbp.tensor(x[:7, 3:4]))
    np.testing.assert_allclose(h_final[:, 3], first(alone).numpy()[:, 0], rtol=1e-12)
    assert np.all(h_final[:, 2] == 0)


def test_ragged_stream_trains():
    x, y = _stream(L=20, N=4, seed=2)
    model = Model("lstm")
    model.to("float32")
    opt = optim.Adam(model.parameters(), lr=1e-2)
    engine = TBPTT(model, sequence_mse, opt, k1=4, k2=6, clip_norm=1.0)
    lengths = np.array([20, 3, 13, 0])
    losses = [engine.run(x.astype(np.float32), y.astype(np.float32), lengths=lengths).loss for _ in range(30)]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


@pytest.mark.parametrize("limit", [1e-3, 0.05, 1e3])
def test_clip_norm_reports_the_true_pre_clip_norm(limit):
    x, y = _stream()
    model = Model("lstm")
    raw, _ = _engine_grads(model, x, y, 4, 4)
    seen = []
    engine = TBPTT(model, sequence_mse, None, 4, 4, clip_norm=limit,
                   on_update=lambda e, u: seen.append((u, _grads(model))))
    engine.run(x, y)
    for (update, clipped), (_, g) in zip(seen, raw):
        true = np.sqrt(sum(np.sum(v ** 2) for v in g.values()))
        assert update.grad_norm == pytest.approx(true, rel=1e-12)
        after = np.sqrt(sum(np.sum(v ** 2) for v in clipped.values()))
        assert after <= limit * (1 + 1e-9)
        assert update.clipped == (true > limit)
        if true <= limit:
            assert after == pytest.approx(true, rel=1e-12)


def test_clip_value_clamps_and_reports_the_pre_clip_norm():
    x, y = _stream()
    model = Model("gru")
    raw, _ = _engine_grads(model, x, y, 4, 4)
    seen = []
    engine = TBPTT(model, sequence_mse, None, 4, 4, clip_value=0.01,
                   on_update=lambda e, u: seen.append((u, _grads(model))))
    engine.run(x, y)
    for (update, clipped), (_, g) in zip(seen, raw):
        assert update.grad_norm == pytest.approx(np.sqrt(sum(np.sum(v ** 2) for v in g.values())), rel=1e-12)
        for name, v in clipped.items():
            np.testing.assert_array_equal(v, np.clip(g[name], -0.01, 0.01))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("scalar_loss", [False, True])
def test_nan_at_a_known_step_is_named_and_parameters_are_unchanged(fused, scalar_loss):
    x, y = _stream(L=12)
    x[7, 1, 0] = np.nan
    model = Model("lstm", fused)
    twin = copy.deepcopy(model)
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    loss_fn = (lambda o, t: ((o - t) ** 2).mean()) if scalar_loss else sequence_mse
    engine = TBPTT(model, loss_fn, optim.SGD(model.parameters(), lr=0.1), k1=3, k2=5)
    with pytest.raises(NonFiniteError, match=r"step 7 \(row 1\) in chunk 2 \(steps 6-8\)") as err:
        engine.run(x, y)
    assert (err.value.step, err.value.chunk, err.value.tensor) == (7, 2, "output")
    # chunks 0 and 1 updated the parameters; chunk 2 stopped before its optimizer step
    TBPTT(twin, loss_fn, optim.SGD(twin.parameters(), lr=0.1), k1=3, k2=5).run(x[:6], y[:6])
    twin_params = dict(twin.named_parameters())
    for n, p in model.named_parameters():
        np.testing.assert_array_equal(p.numpy(), twin_params[n].numpy())
    assert any(not np.array_equal(before[n], p.numpy()) for n, p in model.named_parameters())


@pytest.mark.filterwarnings("ignore:divide by zero", "ignore:invalid value")
def test_nonfinite_gradient_names_the_parameter():
    x, y = _stream(L=6)
    model = Model("lstm")

    # A loss whose gradient (but not value) is infinite: sqrt at 0.
    loss_fn = lambda o, t: (((o - t) ** 2).sum(dim=2) * 0).sqrt()  # noqa: E731
    engine = TBPTT(model, loss_fn, optim.SGD(model.parameters(), lr=0.1), k1=3)
    with pytest.raises(NonFiniteError, match="non-finite gradient of") as err:
        engine.run(x, y)
    assert err.value.chunk == 0 and err.value.tensor in dict(model.named_parameters())


def test_diagnostics_state_gradient_norms_fused_equal_tape():
    x, y = _stream(L=10)
    norms, weights = {}, None
    for fused in (True, False):
        model = Model("lstm", fused, num_layers=2)
        weights = weights or model.state_dict()
        model.load_state_dict(weights)
        seen = []
        TBPTT(model, sequence_mse, None, 3, 5, diagnostics=True, on_update=lambda e, u: seen.append(u)).run(x, y)
        norms[fused] = seen
    for a, b in zip(norms[True], norms[False]):
        assert a.window == b.window
        assert set(a.state_grad_norms) == {("rnn", 0, 0), ("rnn", 1, 0)}
        for key in a.state_grad_norms:
            assert len(a.state_grad_norms[key]) == a.window[1] - a.window[0]
            np.testing.assert_allclose(a.state_grad_norms[key], b.state_grad_norms[key], rtol=1e-10)
        for name, value in a.param_grad_norms.items():
            assert value == pytest.approx(b.param_grad_norms[name], rel=1e-10)


def test_diagnostics_show_the_gradient_reaching_back_from_the_last_step():
    """With the loss on the last step only, ||dL/dh_t|| is the norm of dL/dh_t computed by hand."""
    x, y = _stream(L=8, N=2)
    mask = np.zeros((8, 2))
    mask[-1] = 1
    model = Model("rnn")
    seen = []
    TBPTT(model, sequence_mse, None, None, diagnostics=True, on_update=lambda e, u: seen.append(u)).run(
        x, y, loss_mask=mask)
    norms = seen[0].state_grad_norms[("rnn", 0, 0)]
    # by hand, step by step on the tape: dL/dh_t reaches h_t through the next step (t < 7) or the head (t = 7)
    s, states = None, []
    for t in range(8):
        out, s = model.rnn(rnnbp.tensor(x[t:t + 1]), s)
        out.retain_grad()
        s.retain_grad()
        states.append(s)
    loss = ((model.head(out) - rnnbp.tensor(y[7:8])) ** 2).sum() / 2
    loss.backward()
    by_hand = [np.linalg.norm(st.grad.numpy()) for st in states[:7]] + [np.linalg.norm(out.grad.numpy())]
    np.testing.assert_allclose(norms, by_hand, rtol=1e-10)
    assert norms[0] < norms[-1]


def test_evaluate_equals_the_losses_without_updates():
    x, y = _stream(L=10)
    model = Model("lstm")
    engine = TBPTT(model, sequence_mse, None, 4, 4)
    trained = engine.run(x, y)
    evaluated = engine.evaluate(x, y)
    assert evaluated.loss == pytest.approx(trained.loss, rel=1e-12)
    assert evaluated.updates == [] and evaluated.count == trained.count


def test_evaluate_in_segments_continues_a_training_carry():
    """Evaluation carries the state alone; from a training carry with history it re-runs that history."""
    x, y = _stream(L=12)
    model = Model("lstm")
    engine = TBPTT(model, sequence_mse, None, 3, 5)
    carry = engine.run(x[:6], y[:6]).carry
    assert len(carry.history) == 2
    whole = engine.evaluate(x[4:], y[4:], state=carry.state)  # history = steps 4, 5 of the stream
    first = engine.evaluate(x[6:9], y[6:9], carry=carry)
    second = engine.evaluate(x[9:], y[9:], carry=first.carry)
    combined = (first.loss * first.count + second.loss * second.count) / (first.count + second.count)
    tail = TBPTT(model, sequence_mse, None, 3, 3).evaluate(x[4:], y[4:], state=carry.state, loss_mask=np.r_[
        np.zeros((2, 3)), np.ones((6, 3))])
    assert combined == pytest.approx(tail.loss, rel=1e-12)
    assert whole.count == 8 * 3


@pytest.mark.parametrize("kwargs,match", [
    (dict(k1=4, k2=2), "k2 must be >= k1"),
    (dict(k1=0), "k1 must be a positive integer"),
    (dict(k2=3), "give k1"),
    (dict(k1=2, clip_norm=-1.0), r"TBPTT: clip_norm must be in \(0, inf\), got -1.0"),
])
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TBPTT(Model("rnn"), sequence_mse, None, **kwargs)


def test_bad_run_inputs_name_the_shapes():
    x, y = _stream(L=6)
    engine = TBPTT(Model("rnn"), sequence_mse, None, 3)
    with pytest.raises(ValueError, match=r"targets must match the inputs' \(L, N\) = \(6, 3\)"):
        engine.run(x, y[:5])
    with pytest.raises(ValueError, match="lengths must be between 0 and L = 6"):
        engine.run(x, y, lengths=np.array([7, 1, 1]))
    with pytest.raises(ValueError, match=r"loss_mask must have shape \(L, N\) = \(6, 3\)"):
        engine.run(x, y, loss_mask=np.ones((6, 2)))
    with pytest.raises(ValueError, match=r"per-element losses of shape \(n, N\)"):
        TBPTT(Model("rnn"), lambda o, t: o, None, 3).run(x, y)
