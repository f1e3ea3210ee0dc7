"""rnnbp.bptt.unroll: user-written cells over time on the tape, full BPTT.

Cells written here from primitive ops (and independently of rnnbp's own cells)
are checked against the fused layers where they compute the same function,
against each row run alone, and by gradcheck where nothing fused exists.
"""
import numpy as np
import pytest

import rnnbp
import rnnbp.nn.functional as F
from rnnbp import nn
from rnnbp.autograd import gradcheck
from rnnbp.bptt import unroll

TOL = dict(rtol=1e-10, atol=1e-12)


class UserGRUCell(nn.Module):
    """PyTorch's GRU step (r, z, n; r multiplies W_hn h + b_hn), written the textbook way."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.state_size = hidden_size
        self.weight_ih = nn.Parameter(np.zeros((3 * hidden_size, input_size)))
        self.weight_hh = nn.Parameter(np.zeros((3 * hidden_size, hidden_size)))
        self.bias_ih = nn.Parameter(np.zeros(3 * hidden_size))
        self.bias_hh = nn.Parameter(np.zeros(3 * hidden_size))

    def forward(self, x, h):
        xr, xz, xn = F.linear(x, self.weight_ih, self.bias_ih).chunk(3, dim=1)
        hr, hz, hn = F.linear(h, self.weight_hh, self.bias_hh).chunk(3, dim=1)
        r = F.sigmoid(xr + hr)
        z = F.sigmoid(xz + hz)
        n = F.tanh(xn + r * hn)
        return (1 - z) * n + z * h


class UserLSTMCell(nn.Module):
    """PyTorch's LSTM step (i, f, g, o) with a two-tensor state."""

    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.input_size = input_size
        self.state_size = (hidden_size, hidden_size)
        self.weight_ih = nn.Parameter(np.zeros((4 * hidden_size, input_size)))
        self.weight_hh = nn.Parameter(np.zeros((4 * hidden_size, hidden_size)))
        self.bias_ih = nn.Parameter(np.zeros(4 * hidden_size))
        self.bias_hh = nn.Parameter(np.zeros(4 * hidden_size))

    def forward(self, x, state):
        h, c = state
        i, f, g, o = (F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)).chunk(
            4, dim=1)
        c = F.sigmoid(f) * c + F.sigmoid(i) * F.tanh(g)
        return F.sigmoid(o) * F.tanh(c), c


class MinimalRNNCell(nn.Module):
    """MinimalRNN (Chen 2017): z = tanh(x W_x^T), u = sigmoid(h U_h^T + z U_z^T + b), h' = u h + (1 - u) z.

    No state_size: ``hidden_size`` tells unroll the state is one (N, H) tensor.
    """

    def __init__(self, input_size, hidden_size, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.w_x = nn.Parameter(rng.standard_normal((hidden_size, input_size)))
        self.u_h = nn.Parameter(rng.standard_normal((hidden_size, hidden_size)))
        self.u_z = nn.Parameter(rng.standard_normal((hidden_size, hidden_size)))
        self.b = nn.Parameter(rng.standard_normal(hidden_size))

    def forward(self, x, h):
        z = F.tanh(F.linear(x, self.w_x))
        u = F.sigmoid(F.linear(h, self.u_h) + F.linear(z, self.u_z, self.b))
        return u * h + (1 - u) * z


def _from_fused(cell, layer):
    """Copy layer 0 of a fused layer into a user cell with the same parameter names."""
    cell.load_state_dict({k.removesuffix("_l0"): v for k, v in layer.state_dict().items()})
    return cell


def _randn(rng, *shape):
    return rnnbp.tensor(rng.standard_normal(shape), requires_grad=True)


def _backward_and_grads(outs, directions, module, leaves):
    loss = sum((o * rnnbp.tensor(d)).sum() for o, d in zip(outs, directions))
    loss.backward()
    grads = {n: p.grad.numpy().copy() for n, p in module.named_parameters()}
    grads.update({f"leaf{i}": t.grad.numpy().copy() for i, t in enumerate(leaves)})
    for t in list(module.parameters()) + leaves:
        t.grad = None
    return [o.numpy().copy() for o in outs], grads


def _assert_same(got, want):
    for i, (a, b) in enumerate(zip(got[0], want[0])):
        np.testing.assert_allclose(a, b, err_msg=f"output {i}", **TOL)
    assert got[1].keys() == want[1].keys()
    for name in want[1]:
        assert np.any(want[1][name] != 0), f"{name}: all-zero gradient proves nothing"
        np.testing.assert_allclose(got[1][name], want[1][name], err_msg=name, **TOL)


# --------------------------------------------------------------------------- against the fused layers
@pytest.mark.parametrize("lengths", [None, np.array([4, 1, 6, 0, 3])], ids=["full", "ragged"])
def test_user_gru_cell_full_bptt_equals_fused_gru(lengths):
    rnnbp.manual_seed(0)
    gru = nn.GRU(3, 4).double()
    cell = _from_fused(UserGRUCell(3, 4), gru)
    rng = np.random.default_rng(0)
    x, h0 = _randn(rng, 6, 5, 3), _randn(rng, 5, 4)
    directions = [rng.standard_normal((6, 5, 4)), rng.standard_normal((5, 4))]
    got = _backward_and_grads(unroll(cell, x, h0, lengths=lengths), directions, cell, [x, h0])
    out, h_n = gru(x, h0.unsqueeze(0), lengths=lengths)
    want = _backward_and_grads((out, h_n.squeeze(0)), directions, gru, [x, h0])
    want = (want[0], {k.removesuffix("_l0"): v for k, v in want[1].items()})
    _assert_same(got, want)


def test_user_lstm_cell_with_tuple_state_equals_fused_lstm():
    rnnbp.manual_seed(1)
    lstm = nn.LSTM(3, 4, batch_first=True).double()
    cell = _from_fused(UserLSTMCell(3, 4), lstm)
    rng = np.random.default_rng(1)
    x, h0, c0 = _randn(rng, 5, 6, 3), _randn(rng, 5, 4), _randn(rng, 5, 4)
    lengths = np.array([2, 6, 0, 5, 1])
    directions = [rng.standard_normal((5, 6, 4)), rng.standard_normal((5, 4)), rng.standard_normal((5, 4))]
    out, (h_n, c_n) = unroll(cell, x, (h0, c0), lengths=lengths, batch_first=True)
    got = _backward_and_grads((out, h_n, c_n), directions, cell, [x, h0, c0])
    out, (h_n, c_n) = lstm(x, (h0.unsqueeze(0), c0.unsqueeze(0)), lengths=lengths)
    want = _backward_and_grads((out, h_n.squeeze(0), c_n.squeeze(0)), directions, lstm, [x, h0, c0])
    want = (want[0], {k.removesuffix("_l0"): v for k, v in want[1].items()})
    _assert_same(got, want)


# --------------------------------------------------------------------------- lengths, layout, states
def test_unroll_with_unsorted_lengths_equals_each_row_alone():
    cell = MinimalRNNCell(3, 4)
    rng = np.random.default_rng(2)
    T, lengths = 6, np.array([3, 6, 0, 1, 4])
    B = len(lengths)
    xs, hs = rng.standard_normal((T, B, 3)), rng.standard_normal((B, 4))
    d_out, d_h = rng.standard_normal((T, B, 4)), rng.standard_normal((B, 4))
    x, h0 = rnnbp.tensor(xs, requires_grad=True), rnnbp.tensor(hs, requires_grad=True)
    out, h_n = unroll(cell, x, h0, lengths=lengths)
    assert out.shape == (T, B, 4) and h_n.shape == (B, 4)
    assert np.all(out.numpy()[np.arange(T)[:, None] >= lengths[None, :]] == 0)
    ((out * rnnbp.tensor(d_out)).sum() + (h_n * rnnbp.tensor(d_h)).sum()).backward()
    batch_grads = {n: p.grad.numpy().copy() for n, p in cell.named_parameters()}
    total = {n: np.zeros_like(g) for n, g in batch_grads.items()}
    # the length-0 row keeps its initial state, and its gradient passes straight through
    np.testing.assert_array_equal(h_n.numpy()[2], hs[2])
    np.testing.assert_array_equal(h0.grad.numpy()[2], d_h[2])
    assert np.all(x.grad.numpy()[:, 2] == 0)
    for b in np.flatnonzero(lengths):
        cell.zero_grad()
        L = lengths[b]
        xb, hb = rnnbp.tensor(xs[:L, b:b + 1], requires_grad=True), rnnbp.tensor(hs[b:b + 1], requires_grad=True)
        out_b, h_b = unroll(cell, xb, hb)
        np.testing.assert_allclose(out_b.numpy()[:, 0], out.numpy()[:L, b], **TOL)
        np.testing.assert_allclose(h_b.numpy()[0], h_n.numpy()[b], **TOL)
        ((out_b * rnnbp.tensor(d_out[:L, b:b + 1])).sum() + (h_b * rnnbp.tensor(d_h[b:b + 1])).sum()).backward()
        np.testing.assert_allclose(xb.grad.numpy()[:, 0], x.grad.numpy()[:L, b], **TOL)
        np.testing.assert_allclose(hb.grad.numpy()[0], h0.grad.numpy()[b], **TOL)
        for n, p in cell.named_parameters():
            total[n] += p.grad.numpy()
    for n in batch_grads:
        np.testing.assert_allclose(batch_grads[n], total[n], err_msg=n, **TOL)


def test_unroll_batch_first_equals_time_major():
    cell = MinimalRNNCell(3, 4)
    rng = np.random.default_rng(3)
    xs, lengths = rng.standard_normal((5, 4, 3)), np.array([2, 5, 3, 1])
    d = rng.standard_normal((5, 4, 4))
    results = []
    for batch_first in (False, True):
        x = rnnbp.tensor(xs.transpose(1, 0, 2) if batch_first else xs, requires_grad=True)
        out, h_n = unroll(cell, x, lengths=lengths, batch_first=batch_first)
        out_tm = out.transpose(0, 1) if batch_first else out
        assert out.shape == x.shape[:2] + (4,)
        (out_tm * rnnbp.tensor(d)).sum().backward()
        grad_x = x.grad.numpy().transpose(1, 0, 2) if batch_first else x.grad.numpy()
        results.append((out_tm.numpy(), h_n.numpy(), grad_x, cell.u_h.grad.numpy().copy()))
        cell.zero_grad()
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, **TOL)


def test_unroll_default_state_is_zeros_of_state_size():
    rng = np.random.default_rng(4)
    x = rnnbp.tensor(rng.standard_normal((3, 2, 3)))
    gru = UserGRUCell(3, 4)
    gru.load_state_dict({k: rng.standard_normal(v.shape) for k, v in gru.state_dict().items()})
    out, h = unroll(gru, x)
    out0, h0 = unroll(gru, x, rnnbp.zeros(2, 4, dtype=np.float64))
    np.testing.assert_array_equal(out.numpy(), out0.numpy())
    np.testing.assert_array_equal(h.numpy(), h0.numpy())
    lstm = UserLSTMCell(3, 4)
    _, state = unroll(lstm, x)
    assert isinstance(state, tuple) and [s.shape for s in state] == [(2, 4), (2, 4)]


def test_unroll_takes_a_tuple_or_a_list_state_for_a_tuple_cell_and_a_tensor_for_a_tensor_cell():
    rng = np.random.default_rng(5)
    x = rnnbp.tensor(rng.standard_normal((3, 2, 3)))
    lstm = UserLSTMCell(3, 4)
    lstm.load_state_dict({k: rng.standard_normal(v.shape) for k, v in lstm.state_dict().items()})
    h0, c0 = rnnbp.tensor(rng.standard_normal((2, 4))), rnnbp.tensor(rng.standard_normal((2, 4)))
    out_t, (h_t, c_t) = unroll(lstm, x, (h0, c0))
    out_l, (h_l, c_l) = unroll(lstm, x, [h0, c0])
    np.testing.assert_array_equal(out_t.numpy(), out_l.numpy())
    np.testing.assert_array_equal(c_t.numpy(), c_l.numpy())
    assert not np.allclose(out_t.numpy(), unroll(lstm, x)[0].numpy())  # the given state is used
    with pytest.raises(TypeError, match=r"unroll: UserLSTMCell carries a tuple of 2 tensors \(state_size \(4, 4\)\), got Tensor"):
        unroll(lstm, x, h0)
    gru = MinimalRNNCell(3, 4)
    out, h = unroll(gru, x, h0)
    assert isinstance(h, rnnbp.Tensor) and h.shape == (2, 4)
    with pytest.raises(TypeError, match=r"unroll: MinimalRNNCell carries one tensor \(state_size 4\), got tuple of 1"):
        unroll(gru, x, (h0,))


def test_unroll_of_a_user_cell_gradcheck_with_ragged_lengths():
    cell = MinimalRNNCell(2, 3, seed=6)
    rng = np.random.default_rng(6)
    x, h0 = _randn(rng, 4, 3, 2), _randn(rng, 3, 3)
    lengths = np.array([1, 4, 0])
    assert gradcheck(lambda x, h0, *p: unroll(cell, x, h0, lengths=lengths), [x, h0] + list(cell.parameters()))


def test_unroll_runs_the_builtin_layernorm_lstm_cell():
    """A built-in composed cell, 2 rows vs the same rows stepped by hand."""
    rnnbp.manual_seed(0)
    cell = nn.LayerNormLSTMCell(3, 4).double()
    rng = np.random.default_rng(7)
    x = rnnbp.tensor(rng.standard_normal((4, 2, 3)))
    out, (h, c) = unroll(cell, x, lengths=np.array([4, 2]))
    state = None
    for t in range(4):
        state = cell(x[t], state)
        np.testing.assert_allclose(out.numpy()[t, 0], state[0].numpy()[0], **TOL)
        if t == 1:
            np.testing.assert_allclose(h.numpy()[1], state[0].numpy()[1], **TOL)
            np.testing.assert_allclose(c.numpy()[1], state[1].numpy()[1], **TOL)
    np.testing.assert_allclose(c.numpy()[0], state[1].numpy()[0], **TOL)


# --------------------------------------------------------------------------- errors
def test_unroll_error_messages():
    cell = MinimalRNNCell(3, 4)
    x = rnnbp.tensor(np.zeros((5, 2, 3)))
    with pytest.raises(TypeError, match=r"unroll: cell must be an nn.Module called as cell\(x_t, hx\), got function"):
        unroll(lambda x, h: h, x)
    with pytest.raises(ValueError, match=r"unroll: expected inputs of shape \(L, N, H_in\).*got \(5, 3\)"):
        unroll(cell, x[:, 0])

    class NoSize(nn.Module):
        def forward(self, x, h):
            return h

    with pytest.raises(TypeError, match="unroll: NoSize has neither state_size nor hidden_size"):
        unroll(NoSize(), x)
    with pytest.raises(ValueError, match=r"unroll: inputs of shape \(5, 2, 5\) have 5 features, but MinimalRNNCell has input_size=3"):
        unroll(cell, rnnbp.tensor(np.zeros((5, 2, 5))))
    with pytest.raises(ValueError, match=r"lengths must be between 0 and the sequence length 5, got min 1 and max 6"):
        unroll(cell, x, lengths=np.array([6, 1]))
    with pytest.raises(ValueError, match=r"lengths has 3 entries but the batch has 2"):
        unroll(cell, x, lengths=np.array([5, 1, 2]))
    # (the leading (1, ...) is the one-layer driver's; a message in the caller's shapes passes too)
    with pytest.raises(ValueError, match=r"unroll: expected hx of shape \(2, 4\), got \(3, 4\)"):
        unroll(cell, x, rnnbp.tensor(np.zeros((3, 4))))


def test_unroll_takes_a_numpy_state():
    cell = MinimalRNNCell(3, 4)
    x = rnnbp.tensor(np.random.default_rng(8).standard_normal((5, 2, 3)))
    h0 = np.full((2, 4), 0.5)
    out_np, h_np = unroll(cell, x, h0)
    out_t, h_t = unroll(cell, x, rnnbp.tensor(h0))
    np.testing.assert_array_equal(out_np.numpy(), out_t.numpy())
    assert not np.allclose(out_np.numpy(), unroll(cell, x)[0].numpy())
