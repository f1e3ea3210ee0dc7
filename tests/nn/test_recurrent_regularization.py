"""Regularisation inside the fused RNN, LSTM and GRU (``nn.recurrent.regularization``): input and
recurrent (variational) dropout, zoneout and DropConnect on W_hh.

Each variant: float64 gradcheck; the fused kernels equal the same computation composed from
primitive ops on the tape (``fused=False``, the same masks given with ``set_masks``) to 1e-10;
rate 0 is the plain layer exactly; one dropout mask for every step; eval deterministic and the
expected value; numba equals NumPy; masks follow the caller's rows through lengths and packing
and stay fixed across the chunks of a carried sequence (TBPTT).
"""
import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.autograd import gradcheck
from rnnbp.nn.recurrent.kernels import numba_steps
from rnnbp.nn.recurrent.regularization import LayerMasks
from rnnbp.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

CLASSES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
VARIANTS = {"input_dropout": dict(input_dropout=0.4), "recurrent_dropout": dict(recurrent_dropout=0.4),
            "zoneout": dict(zoneout=0.4), "weight_dropout": dict(weight_dropout=0.4),
            "all": dict(input_dropout=0.3, recurrent_dropout=0.3, zoneout=0.3, weight_dropout=0.3)}
BACKENDS = ["numpy"] + (["numba"] if numba_steps.available() else [])
LENGTHS = [5, 2, 6, 0]


def _layer(kind, seed=0, **kw):
    rnnbp.manual_seed(seed)
    return CLASSES[kind](3, 4, dtype=np.float64, **kw)


def _x(T=6, B=4, I=3, seed=1):
    rng = np.random.default_rng(seed)
    return rnnbp.tensor(rng.standard_normal((T, B, I)), requires_grad=True)


def _flat(result):
    out, state = result
    return (out,) + (tuple(state) if isinstance(state, tuple) else (state,))


def _run_grads(m, x, **kw):
    """(outputs and final states, dx, parameter grads) of sum(out^2) + sum(h_n)."""
    x.grad = None
    m.zero_grad()
    out = _flat(m(x, **kw))
    loss = (out[0] * out[0]).sum() + out[1].sum()
    loss.backward()
    return [o.numpy().copy() for o in out], x.grad.numpy().copy(), [p.grad.numpy().copy() for p in m.parameters()]


def _assert_close(a, b, tol):
    for u, v in zip(a, b):
        if isinstance(u, list):
            _assert_close(u, v, tol)
        else:
            np.testing.assert_allclose(u, v, atol=tol, rtol=0)


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_equals_composed(kind, variant, backend):
    """Two layers, both directions, ragged lengths: fused kernels == cells on the tape with the same masks."""
    opts = dict(num_layers=2, bidirectional=True, **VARIANTS[variant])
    fused = _layer(kind, backend=backend, **opts)
    composed = _layer(kind, fused=False, **opts)
    composed.load_state_dict(fused.state_dict())
    x = _x()
    a = _run_grads(fused, x, lengths=LENGTHS)
    composed.set_masks(fused.last_masks)
    b = _run_grads(composed, x, lengths=LENGTHS)
    _assert_close(a, b, 1e-10)


@pytest.mark.parametrize("variant", ["recurrent_dropout", "zoneout", "all"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_lstm_projection_fused_equals_composed(variant, backend):
    fused = _layer("lstm", proj_size=2, backend=backend, **VARIANTS[variant])
    composed = _layer("lstm", proj_size=2, fused=False, **VARIANTS[variant])
    composed.load_state_dict(fused.state_dict())
    x = _x()
    a = _run_grads(fused, x, lengths=LENGTHS)
    composed.set_masks(fused.last_masks)
    _assert_close(a, _run_grads(composed, x, lengths=LENGTHS), 1e-10)


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_gradcheck(kind, variant):
    """float64 gradcheck through the fused layer (input, initial state, every parameter), masks fixed."""
    extra = dict(zoneout_cell=0.2) if kind == "lstm" and variant == "zoneout" else {}
    m = _layer(kind, num_layers=2, **extra, **VARIANTS[variant])
    x = _x(T=4, B=3)
    m(x)  # draws masks
    m.set_masks(m.last_masks)
    rng = np.random.default_rng(2)
    states = [rnnbp.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
              for _ in range(2 if kind == "lstm" else 1)]

    def fn(x, *rest):
        given = rest[:len(states)]
        return _flat(m(x, tuple(given) if kind == "lstm" else given[0], lengths=[4, 2, 3]))

    assert gradcheck(fn, [x] + states + list(m.parameters()), atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_rate_zero_is_the_plain_layer_exactly(kind):
    plain = _layer(kind, num_layers=2, bidirectional=True)
    zero = _layer(kind, num_layers=2, bidirectional=True, input_dropout=0.0, recurrent_dropout=0.0, zoneout=0.0,
                  weight_dropout=0.0)
    x = _x()
    a, b = _run_grads(plain, x, lengths=LENGTHS), _run_grads(zero, x, lengths=LENGTHS)
    for u, v in zip(a[0] + [a[1]] + a[2], b[0] + [b[1]] + b[2]):
        assert np.array_equal(u, v)
    assert zero.last_masks is None


@pytest.mark.parametrize("kind", list(CLASSES))
def test_input_mask_is_the_same_at_every_step(kind):
    """Input dropout == the plain layer on x * mask, one (N, H_in) mask broadcast over all steps."""
    m = _layer(kind, input_dropout=0.5)
    x = _x()
    out, _ = m(x)
    mask = m.last_masks[(0, 0)].input
    assert mask.shape == (4, 3) and set(np.unique(mask)) <= {0.0, 2.0}
    plain = _layer(kind)
    expected, _ = plain(rnnbp.tensor(x.numpy() * mask))
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=1e-12)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_recurrent_mask_is_the_same_at_every_step(kind):
    """Recurrent dropout: step by step with the cells, h_{t-1} * one (N, H) mask at each step."""
    from rnnbp.nn.recurrent.cells import lstm_cell, rnn_cell
    m = _layer(kind, recurrent_dropout=0.5)
    x = _x()
    out, _ = m(x)
    mask = rnnbp.tensor(m.last_masks[(0, 0)].recurrent)
    assert mask.shape == (4, 4)
    p = [getattr(m, n) for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
    h = rnnbp.zeros(4, 4, dtype=np.float64)
    c = rnnbp.zeros(4, 4, dtype=np.float64)
    for t in range(x.shape[0]):
        if kind == "lstm":
            h, c = lstm_cell(x[t], (h * mask, c), *p)
        elif kind == "rnn":
            h = rnn_cell(x[t], h * mask, *p)
        else:  # the direct path z h_{t-1} is not masked
            xr, xz, xn = (x[t] @ p[0].T + p[2]).chunk(3, dim=1)
            hr, hz, hn = ((h * mask) @ p[1].T + p[3]).chunk(3, dim=1)
            r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
            n = (xn + r * hn).tanh()
            h = n + z * (h - n)
        np.testing.assert_allclose(out.numpy()[t], h.numpy(), atol=1e-12)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_weight_dropout_masks_w_hh(kind):
    """DropConnect == the plain layer with W_hh * mask; the gradient reaches W_hh through the mask."""
    m = _layer(kind, weight_dropout=0.5)
    x = _x()
    _, _, grads = _run_grads(m, x)
    mask = m.last_masks[(0, 0)].weight
    plain = _layer(kind)
    plain.weight_hh_l0._data *= mask
    out_plain, _, grads_plain = _run_grads(plain, x)
    names = [n for n, _ in m.named_parameters()]
    i = names.index("weight_hh_l0")
    np.testing.assert_allclose(grads[i], grads_plain[i] * mask, atol=1e-12)
    m.set_masks(m.last_masks)
    np.testing.assert_allclose(m(x)[0].numpy(), out_plain[0], atol=1e-12)


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_eval_is_deterministic_and_the_expectation(kind, variant):
    opts = VARIANTS[variant]
    m = _layer(kind, num_layers=2, **opts).eval()
    x = _x()
    a, _ = m(x, lengths=LENGTHS)
    b, _ = m(x, lengths=LENGTHS)
    assert np.array_equal(a.numpy(), b.numpy())
    plain = _layer(kind, num_layers=2).eval()
    p, _ = plain(x, lengths=LENGTHS)
    if not opts.get("zoneout"):  # the dropouts are identities in eval
        assert np.array_equal(a.numpy(), p.numpy())
        return
    # zoneout's eval: h_t = p h_{t-1} + (1 - p) h_new, composed from the cells with d_t = p
    composed = _layer(kind, num_layers=2, fused=False, zoneout=opts["zoneout"]).eval()
    c, _ = composed(x, lengths=LENGTHS)
    np.testing.assert_allclose(a.numpy(), c.numpy(), atol=1e-12)
    assert not np.allclose(a.numpy(), p.numpy())
    # and that is the expectation: one unrolled step by hand for the first layer of an RNN
    if kind == "rnn" and variant == "zoneout":
        one = _layer(kind, zoneout=0.4).eval()
        out, _ = one(x)
        w_ih, w_hh, b_ih, b_hh = (getattr(one, n).numpy() for n in
                                  ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))
        h = np.zeros((4, 4))
        for t in range(x.shape[0]):
            new = np.tanh(x.numpy()[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
            h = 0.4 * h + 0.6 * new
            np.testing.assert_allclose(out.numpy()[t], h, atol=1e-12)


def test_zoneout_training_keeps_units():
    """In training a zoned-out unit keeps its previous value exactly."""
    m = _layer("gru", zoneout=0.5)
    x = _x()
    out, _ = m(x)
    z = m.last_masks[(0, 0)].zone_h
    o = out.numpy()
    assert 0 < z.mean() < 1
    prev = np.concatenate([np.zeros((1, 4, 4)), o[:-1]])
    np.testing.assert_array_equal(o[z == 1], prev[z == 1])


@pytest.mark.skipif(len(BACKENDS) < 2, reason="numba is not installed")
@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_equals_numpy(kind, dtype):
    opts = dict(num_layers=2, bidirectional=True, **VARIANTS["all"])
    if kind == "lstm":
        opts["proj_size"] = 3
    results, masks = [], None
    for backend in BACKENDS:
        rnnbp.manual_seed(0)
        m = CLASSES[kind](3, 5, dtype=dtype, backend=backend, **opts)
        if masks is not None:
            m.set_masks(masks)
        x = rnnbp.tensor(np.random.default_rng(1).standard_normal((6, 4, 3)).astype(dtype), requires_grad=True)
        results.append(_run_grads(m, x, lengths=LENGTHS))
        masks = m.last_masks
    _assert_close(results[0], results[1], 1e-10 if dtype == np.float64 else 2e-4)


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_masks_follow_the_callers_rows(kind, backend):
    """With unsorted lengths (and packed), each row's output is that sequence run alone with its own masks."""
    opts = dict(bidirectional=True, input_dropout=0.3, recurrent_dropout=0.3, zoneout=0.3, weight_dropout=0.3)
    m = _layer(kind, backend=backend, **opts)
    x = _x()
    out, _ = m(x, lengths=LENGTHS)
    masks = m.last_masks
    nonzero = [5, 2, 6, 1]  # packing refuses length 0
    m.set_masks(masks)
    out_lengths, _ = m(x, lengths=nonzero)
    out_packed, _ = m(pack_padded_sequence(x, nonzero, enforce_sorted=False))
    padded, _ = pad_packed_sequence(out_packed, total_length=6)
    np.testing.assert_allclose(padded.numpy(), out_lengths.numpy(), atol=1e-12)
    for row, n in enumerate(LENGTHS):
        if n == 0:
            continue
        alone = {k: LayerMasks(None if v.input is None else v.input[row:row + 1],
                               None if v.recurrent is None else v.recurrent[row:row + 1], v.weight,
                               None if v.zone_h is None else v.zone_h[:n, row:row + 1],
                               None if v.zone_c is None else v.zone_c[:n, row:row + 1]) for k, v in masks.items()}
        m.set_masks(alone)
        o, _ = m(x[:n, row:row + 1])
        np.testing.assert_allclose(o.numpy()[:, 0], out.numpy()[:n, row], atol=1e-12)
    m.reset_masks()


@pytest.mark.parametrize("kind", list(CLASSES))
def test_masks_stay_fixed_across_tbptt_chunks(kind):
    """A sequence run in chunks, carrying hx, sees the masks of its first chunk: the output equals
    the whole sequence's with those masks; hx=None and reset_masks() start new masks."""
    m = _layer(kind, num_layers=2, input_dropout=0.4, recurrent_dropout=0.4)
    x = _x(T=8)
    first, hx = m(x[:3])
    masks = m.last_masks
    second, hx = m(x[3:6], hx)
    third, _ = m(x[6:], hx)
    assert all(np.array_equal(masks[k].recurrent, m.last_masks[k].recurrent) for k in masks)
    m.set_masks(masks)
    whole, _ = m(x)
    np.testing.assert_allclose(np.concatenate([first.numpy(), second.numpy(), third.numpy()]), whole.numpy(),
                               atol=1e-12)
    m.reset_masks()
    m(x[:3])
    assert not np.array_equal(masks[(0, 0)].recurrent, m.last_masks[(0, 0)].recurrent)


@pytest.mark.parametrize("kind", list(CLASSES))
def test_a_state_made_anew_each_batch_draws_new_masks(kind):
    """PyTorch programs pass h0 = zeros(...) with every batch: those are new sequences, so new masks;
    the state the layer returned, detached or as a view, carries the masks on."""
    m = _layer(kind, recurrent_dropout=0.5, input_dropout=0.5)
    x = _x(T=4)
    shape = (1, x.shape[1], m.hidden_size)

    def fresh():
        zeros = rnnbp.zeros(shape, dtype=x.dtype)
        return (zeros, rnnbp.zeros(shape, dtype=x.dtype)) if kind == "lstm" else zeros

    drawn = []
    for _ in range(3):
        m(x, fresh())
        drawn.append(m.last_masks[(0, 0)].recurrent.copy())
    assert not np.array_equal(drawn[0], drawn[1]) and not np.array_equal(drawn[1], drawn[2])
    _, hx = m(x, fresh())
    kept = m.last_masks[(0, 0)].recurrent.copy()
    detached = tuple(h.detach() for h in hx) if kind == "lstm" else hx.detach()
    _, hx = m(x, detached)
    assert np.array_equal(kept, m.last_masks[(0, 0)].recurrent)
    copied = tuple(h.detach().clone() for h in hx) if kind == "lstm" else hx.detach().clone()
    m(x, copied)  # equal values, but not the layer's own state: a new sequence
    assert not np.array_equal(kept, m.last_masks[(0, 0)].recurrent)


def test_tbptt_engine_keeps_masks():
    """bptt.TBPTT carries the state between windows: the layer keeps its masks across them."""
    from rnnbp.bptt import TBPTT

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = _layer("lstm", recurrent_dropout=0.5)
            self.drawn = []

        def forward(self, x, hx=None):
            out, hx = self.rnn(x, hx)
            self.drawn.append(self.rnn.last_masks[(0, 0)].recurrent.copy())
            return out, hx

    model = Model()
    xs = np.random.default_rng(0).standard_normal((12, 2, 3))
    ys = np.random.default_rng(1).standard_normal((12, 2, 4))
    engine = TBPTT(model, lambda out, y: ((out - y) ** 2).mean(), rnnbp.optim.SGD(model.parameters(), lr=0.0), k1=4)
    engine.run(xs, ys)
    assert len(model.drawn) == 3
    assert all(np.array_equal(model.drawn[0], d) for d in model.drawn[1:])


def test_seeded_by_the_default_generator():
    m = _layer("lstm", recurrent_dropout=0.5, zoneout=0.2)
    x = _x()
    rnnbp.manual_seed(5)
    a, _ = m(x)
    rnnbp.manual_seed(5)
    b, _ = m(x)
    assert np.array_equal(a.numpy(), b.numpy())
    g = _layer("lstm", recurrent_dropout=0.5, generator=np.random.default_rng(3))
    g2 = _layer("lstm", recurrent_dropout=0.5, generator=np.random.default_rng(3))
    assert np.array_equal(g(x)[0].numpy(), g2(x)[0].numpy())


def test_arguments_checked():
    with pytest.raises(ValueError, match="recurrent_dropout"):
        nn.LSTM(3, 4, recurrent_dropout=1.0)
    with pytest.raises(ValueError, match="zoneout_cell"):
        nn.GRU(3, 4, zoneout_cell=0.1)
    with pytest.raises(ValueError, match="zoneout"):
        nn.RNN(3, 4, zoneout=1.5)
    assert "recurrent_dropout=0.25" in repr(nn.LSTM(3, 4, recurrent_dropout=0.25))
    m = nn.GRU(3, 4, recurrent_dropout=0.2)
    with pytest.raises(ValueError, match="set_masks"):
        m.set_masks({(0, 0): LayerMasks(recurrent=np.ones((2, 4)))})
        m(rnnbp.randn(5, 3, 3))


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradient_probe_path_equals(kind, backend):
    """With a gradient probe the kernels' backward runs step by step: the same gradients, and a norm per step."""
    from rnnbp.nn.recurrent.probes import record_state_grads
    m = _layer(kind, backend=backend, **VARIANTS["all"])
    x = _x()
    a = _run_grads(m, x, lengths=LENGTHS)
    m.set_masks(m.last_masks)
    with record_state_grads(m) as probe:
        b = _run_grads(m, x, lengths=LENGTHS)
    _assert_close(a, b, 1e-12)
    assert all(np.isfinite(v).any() for v in probe.norms.values())


@pytest.mark.parametrize("kind", list(CLASSES))
def test_eval_zoneout_streamed_equals_whole(kind):
    """eval with zoneout (no inference fast path): stepping one call per time step == the whole sequence."""
    m = _layer(kind, zoneout=0.3).eval()
    x = _x()
    whole, _ = m(x)
    hx, steps = None, []
    with rnnbp.no_grad():
        for t in range(x.shape[0]):
            out, hx = m(x[t:t + 1], hx)
            steps.append(out.numpy())
    np.testing.assert_allclose(np.concatenate(steps), whole.numpy(), atol=1e-12)


class _Bytes:
    """A generator stand-in handing out given bytes, in order."""

    def __init__(self, data):
        self.data = bytes(data)

    def bytes(self, n):
        out, self.data = self.data[:n], self.data[n:]
        return out


def test_bernoulli_compares_digit_by_digit():
    """U < p decided on the first base-256 digit, and on the next ones only where the digits tie."""
    from rnnbp.nn.recurrent.regularization import bernoulli
    p = (64 + 1 / 256) / 256  # digits 64, 1
    first = [63, 65, 64, 64, 0, 255, 64]
    second = [0, 1, 2]  # for the three 64s, in order: 0 < 1 keeps, 1 and 2 do not
    keep = bernoulli(_Bytes(first + second), (7,), p)
    assert keep.dtype == bool
    assert keep.tolist() == [True, False, True, False, True, False, False]
    assert bernoulli(_Bytes([64, 63]), (2,), 0.25).tolist() == [False, True]  # p's digits end: a tie is U >= p


@pytest.mark.parametrize("p", [0.3, 0.25, 1e-3, 0.999, 0.5 + 2 ** -20, 1.0])
def test_bernoulli_rate(p):
    from rnnbp.nn.recurrent.regularization import bernoulli
    keep = bernoulli(np.random.default_rng(0), (500, 1000), p)
    assert keep.shape == (500, 1000) and keep.dtype == bool
    assert abs(keep.mean() - p) <= 5 * np.sqrt(p * (1 - p) / keep.size) + 1e-12
    again = bernoulli(np.random.default_rng(0), (500, 1000), p)
    assert np.array_equal(keep, again)


@pytest.mark.parametrize("kind", list(CLASSES))
@pytest.mark.parametrize("backend", BACKENDS)
def test_zoneout_masks_bool_or_float(kind, backend):
    """Training draws bool zoneout masks; float masks given with set_masks run too: 0/1 floats as the
    bool ones, fractional ones (the eval path's arithmetic, here with gradients) as the composed layer."""
    opts = dict(num_layers=2, bidirectional=True, zoneout=0.4, recurrent_dropout=0.3)
    fused = _layer(kind, backend=backend, **opts)
    x = _x()
    a = _run_grads(fused, x, lengths=LENGTHS)
    drawn = fused.last_masks
    assert all(m.zone_h.dtype == bool for m in drawn.values())

    def zone_as(fn):
        return {k: m._replace(zone_h=fn(m.zone_h), zone_c=None if m.zone_c is None else fn(m.zone_c))
                for k, m in drawn.items()}

    fused.set_masks(zone_as(lambda z: z.astype(np.float64)))
    _assert_close(a, _run_grads(fused, x, lengths=LENGTHS), 1e-12)
    rng = np.random.default_rng(4)
    fractional = zone_as(lambda z: rng.random(z.shape))
    fused.set_masks(fractional)
    composed = _layer(kind, fused=False, **opts)
    composed.load_state_dict(fused.state_dict())
    composed.set_masks(fractional)
    _assert_close(_run_grads(fused, x, lengths=LENGTHS), _run_grads(composed, x, lengths=LENGTHS), 1e-10)
