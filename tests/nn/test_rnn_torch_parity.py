"""RNN, LSTM, GRU and their cells against PyTorch in float64: same weights loaded by name.

Each test builds an rnnbp layer, loads its state dict into the PyTorch class of
the same configuration with strict loading, runs both on the same input, and
compares the outputs, the final states and, after backpropagating one random
projection of every output, the gradients of the input, the initial states and
every parameter by name, all to 1e-10.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.autograd import Tensor
from rnnbp.nn.utils import rnn as rnn_utils

torch = pytest.importorskip("torch")

TOL = 1e-10
I, H, P = 3, 4, 2  # input size, hidden size, LSTM projection size

# kind -> (rnnbp class, torch class, extra constructor kwargs)
KINDS = {
    "rnn_tanh": (nn.RNN, "RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNN, "RNN", {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, "LSTM", {}),
    "lstm_proj": (nn.LSTM, "LSTM", {"proj_size": P}),
    "gru": (nn.GRU, "GRU", {}),
}


def _pair(kind, seed, **cfg):
    """(rnnbp layer, torch layer) of one configuration, torch loaded from rnnbp's state dict (strict)."""
    ours_cls, torch_name, extra = KINDS[kind]
    fused = cfg.pop("fused", True)
    ours = ours_cls(I, H, **extra, **cfg, fused=fused, generator=np.random.default_rng(seed)).double()
    theirs = getattr(torch.nn, torch_name)(I, H, **extra, **cfg).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}, strict=True)
    return ours, theirs


def _states(kind, num_layers, directions, batch, rng):
    """Initial states as NumPy arrays: (h0,) or (h0, c0)."""
    h_out = P if kind == "lstm_proj" else H
    lead = (num_layers * directions,) + ((batch,) if batch is not None else ())
    states = [rng.standard_normal(lead + (h_out,))]
    if kind.startswith("lstm"):
        states.append(rng.standard_normal(lead + (H,)))
    return states


def _as_hx(kind, tensors):
    if tensors is None:
        return None
    return tuple(tensors) if kind.startswith("lstm") else tensors[0]


def _flatten(out):
    """(output, h_n) or (output, (h_n, c_n)) -> [output, h_n(, c_n)]."""
    output, state = out
    return [output] + (list(state) if isinstance(state, tuple) else [state])


def _close(ours, theirs, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    ours = ours.numpy() if isinstance(ours, Tensor) else np.asarray(ours)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} vs torch {theirs.shape}"
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL, err_msg=what)


def _backward_both(ours_outs, torch_outs, rng):
    """Backpropagate the same random projection of every output through both libraries."""
    directions = [rng.standard_normal(o.shape) for o in ours_outs]
    loss = sum(((o * Tensor(v)).sum() for o, v in zip(ours_outs, directions)), Tensor(np.float64(0.0)))
    loss.backward()
    torch_loss = sum((o * torch.from_numpy(v)).sum() for o, v in zip(torch_outs, directions))
    torch_loss.backward()


def _compare_param_grads(ours, theirs):
    torch_params = dict(theirs.named_parameters())
    ours_params = dict(ours.named_parameters())
    assert list(ours_params) == list(torch_params)
    for name, p in ours_params.items():
        assert p.grad is not None, f"no gradient for {name}"
        _close(p.grad.numpy(), torch_params[name].grad.numpy(), f"grad of {name}")


def _leaf_pair(array):
    return Tensor(array.copy(), requires_grad=True), torch.from_numpy(array.copy()).requires_grad_(True)


# ------------------------------------------------------------------ full grid
GRID = list(itertools.product(sorted(KINDS), [1, 2], [True, False], [False, True], [False, True], [False, True]))


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
@pytest.mark.parametrize("kind,num_layers,bias,bidirectional,batch_first,with_state", GRID,
                         ids=[f"{k}-L{n}-{'b' if b else 'nob'}-{'bi' if d else 'uni'}-{'bf' if f else 'tm'}"
                              f"-{'h0' if s else 'noh0'}" for k, n, b, d, f, s in GRID])
def test_layer_matches_torch(kind, num_layers, bias, bidirectional, batch_first, with_state, fused):
    seed = 17 * num_layers + 3 * bias + 5 * bidirectional + 7 * batch_first + 11 * with_state
    rng = np.random.default_rng(seed)
    ours, theirs = _pair(kind, seed, num_layers=num_layers, bias=bias, bidirectional=bidirectional,
                         batch_first=batch_first, dropout=0.0, fused=fused)
    T, B = 5, 3
    x, tx = _leaf_pair(rng.standard_normal((B, T, I) if batch_first else (T, B, I)))
    states = _states(kind, num_layers, 2 if bidirectional else 1, B, rng) if with_state else None
    pairs = [_leaf_pair(s) for s in states] if with_state else []
    out = ours(x, _as_hx(kind, [p[0] for p in pairs]) if with_state else None)
    tout = theirs(tx, _as_hx(kind, [p[1] for p in pairs]) if with_state else None)
    outs, touts = _flatten(out), _flatten(tout)
    for name, o, t in zip(["output", "h_n", "c_n"], outs, touts):
        _close(o, t, name)

    _backward_both(outs, touts, rng)
    _close(x.grad.numpy(), tx.grad.numpy(), "grad of input")
    for name, (s, ts) in zip(["h_0", "c_0"], pairs):
        _close(s.grad.numpy(), ts.grad.numpy(), f"grad of {name}")
    _compare_param_grads(ours, theirs)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("with_state", [False, True])
def test_unbatched_layer_matches_torch(kind, with_state):
    rng = np.random.default_rng(4)
    ours, theirs = _pair(kind, 4, num_layers=2, bidirectional=True)
    x, tx = _leaf_pair(rng.standard_normal((6, I)))
    pairs = [_leaf_pair(s) for s in _states(kind, 2, 2, None, rng)] if with_state else []
    outs = _flatten(ours(x, _as_hx(kind, [p[0] for p in pairs]) if with_state else None))
    touts = _flatten(theirs(tx, _as_hx(kind, [p[1] for p in pairs]) if with_state else None))
    for name, o, t in zip(["output", "h_n", "c_n"], outs, touts):
        _close(o, t, name)
    _backward_both(outs, touts, rng)
    _close(x.grad.numpy(), tx.grad.numpy(), "grad of input")
    for name, (s, ts) in zip(["h_0", "c_0"], pairs):
        _close(s.grad.numpy(), ts.grad.numpy(), f"grad of {name}")
    _compare_param_grads(ours, theirs)


# ---------------------------------------------------------- variable lengths
PACKED_LENGTHS = [5, 2, 7, 3]  # ragged, unsorted, no ties (so the packed row order is unambiguous)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_packed_sequence_matches_torch(kind, with_state, bidirectional, fused):
    rng = np.random.default_rng(8)
    ours, theirs = _pair(kind, 8, num_layers=2, bidirectional=bidirectional, fused=fused)
    lengths = np.array(PACKED_LENGTHS)
    T, B = int(lengths.max()), len(lengths)
    x, tx = _leaf_pair(rng.standard_normal((T, B, I)))
    packed = rnn_utils.pack_padded_sequence(x, lengths, enforce_sorted=False)
    tpacked = torch.nn.utils.rnn.pack_padded_sequence(tx, torch.from_numpy(lengths), enforce_sorted=False)
    np.testing.assert_array_equal(packed.batch_sizes, tpacked.batch_sizes.numpy())
    np.testing.assert_array_equal(packed.sorted_indices, tpacked.sorted_indices.numpy())
    np.testing.assert_array_equal(packed.unsorted_indices, tpacked.unsorted_indices.numpy())
    _close(packed.data, tpacked.data.detach().numpy(), "packed input")

    pairs = [_leaf_pair(s) for s in _states(kind, 2, 2 if bidirectional else 1, B, rng)] if with_state else []
    out, state = ours(packed, _as_hx(kind, [p[0] for p in pairs]) if with_state else None)
    tout, tstate = theirs(tpacked, _as_hx(kind, [p[1] for p in pairs]) if with_state else None)
    assert isinstance(out, rnn_utils.PackedSequence)
    np.testing.assert_array_equal(out.batch_sizes, tout.batch_sizes.numpy())
    np.testing.assert_array_equal(out.sorted_indices, tout.sorted_indices.numpy())
    _close(out.data, tout.data.detach().numpy(), "packed output")
    padded, out_lengths = rnn_utils.pad_packed_sequence(out)
    tpadded, tlengths = torch.nn.utils.rnn.pad_packed_sequence(tout)
    np.testing.assert_array_equal(out_lengths, tlengths.numpy())
    outs = [padded] + _flatten((None, state))[1:]
    touts = [tpadded] + _flatten((None, tstate))[1:]
    for name, o, t in zip(["padded output", "h_n", "c_n"], outs, touts):
        _close(o, t, name)

    _backward_both(outs, touts, rng)
    _close(x.grad.numpy(), tx.grad.numpy(), "grad of input")
    for name, (s, ts) in zip(["h_0", "c_0"], pairs):
        _close(s.grad.numpy(), ts.grad.numpy(), f"grad of {name}")
    _compare_param_grads(ours, theirs)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "composed"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths", [[5, 2, 6, 3], [4, 7, 4, 1]], ids=["max-below-T", "ties"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_lengths_argument_matches_torch_packed(kind, lengths, batch_first, fused):
    """``lengths=`` on a padded batch equals PyTorch's packed path; outputs are zero past each length."""
    rng = np.random.default_rng(9)
    ours, theirs = _pair(kind, 9, num_layers=2, bidirectional=True, batch_first=batch_first, fused=fused)
    lengths = np.array(lengths)
    T, B = 7, len(lengths)
    x, tx = _leaf_pair(rng.standard_normal((B, T, I) if batch_first else (T, B, I)))
    pairs = [_leaf_pair(s) for s in _states(kind, 2, 2, B, rng)]
    out = ours(x, _as_hx(kind, [p[0] for p in pairs]), lengths=lengths)
    tpacked = torch.nn.utils.rnn.pack_padded_sequence(tx, torch.from_numpy(lengths), batch_first=batch_first,
                                                      enforce_sorted=False)
    tout, tstate = theirs(tpacked, _as_hx(kind, [p[1] for p in pairs]))
    tpadded, _ = torch.nn.utils.rnn.pad_packed_sequence(tout, batch_first=batch_first, total_length=T)
    outs, touts = _flatten(out), [tpadded] + _flatten((None, tstate))[1:]
    for name, o, t in zip(["output", "h_n", "c_n"], outs, touts):
        _close(o, t, name)
    time_major = outs[0].numpy() if not batch_first else outs[0].numpy().transpose(1, 0, 2)
    for b, n in enumerate(lengths):
        assert np.all(time_major[n:, b] == 0.0), f"output of sequence {b} not zero past its length {n}"
        if kind != "rnn_relu":  # a relu row can be exactly zero by chance
            assert np.all(np.abs(time_major[:n, b]).max(axis=-1) > 0), f"sequence {b} zero inside its length"

    _backward_both(outs, touts, rng)
    _close(x.grad.numpy(), tx.grad.numpy(), "grad of input")
    for name, (s, ts) in zip(["h_0", "c_0"], pairs):
        _close(s.grad.numpy(), ts.grad.numpy(), f"grad of {name}")
    _compare_param_grads(ours, theirs)


# ---------------------------------------------------------------------- cells
CELLS = {
    "rnn_tanh": (lambda **kw: nn.RNNCell(I, H, nonlinearity="tanh", **kw),
                 lambda **kw: torch.nn.RNNCell(I, H, nonlinearity="tanh", **kw)),
    "rnn_relu": (lambda **kw: nn.RNNCell(I, H, nonlinearity="relu", **kw),
                 lambda **kw: torch.nn.RNNCell(I, H, nonlinearity="relu", **kw)),
    "lstm": (lambda **kw: nn.LSTMCell(I, H, **kw), lambda **kw: torch.nn.LSTMCell(I, H, **kw)),
    "gru": (lambda **kw: nn.GRUCell(I, H, **kw), lambda **kw: torch.nn.GRUCell(I, H, **kw)),
}


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("kind", sorted(CELLS))
def test_cell_matches_torch(kind, with_state, batched, bias):
    seed = 2 * with_state + 3 * batched + 5 * bias
    rng = np.random.default_rng(seed)
    make_ours, make_theirs = CELLS[kind]
    ours = make_ours(bias=bias, generator=np.random.default_rng(seed)).double()
    theirs = make_theirs(bias=bias).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}, strict=True)
    lead = (3,) if batched else ()
    x, tx = _leaf_pair(rng.standard_normal(lead + (I,)))
    n_states = 2 if kind == "lstm" else 1
    pairs = [_leaf_pair(rng.standard_normal(lead + (H,))) for _ in range(n_states)] if with_state else []
    hx = tx_h = None
    if with_state:
        hx = tuple(p[0] for p in pairs) if kind == "lstm" else pairs[0][0]
        tx_h = tuple(p[1] for p in pairs) if kind == "lstm" else pairs[0][1]
    out, tout = ours(x, hx), theirs(tx, tx_h)
    outs = list(out) if kind == "lstm" else [out]
    touts = list(tout) if kind == "lstm" else [tout]
    for name, o, t in zip(["h'", "c'"], outs, touts):
        _close(o, t, name)
    _backward_both(outs, touts, rng)
    _close(x.grad.numpy(), tx.grad.numpy(), "grad of input")
    for name, (s, ts) in zip(["h", "c"], pairs):
        _close(s.grad.numpy(), ts.grad.numpy(), f"grad of {name}")
    _compare_param_grads(ours, theirs)


# ------------------------------------------------ initialisation, state dicts
INIT_CASES = {
    "RNN": (lambda g: nn.RNN(3, 16, num_layers=2, bidirectional=True, generator=g),
            lambda: torch.nn.RNN(3, 16, num_layers=2, bidirectional=True)),
    "LSTM-proj": (lambda g: nn.LSTM(3, 16, num_layers=2, bidirectional=True, proj_size=2, generator=g),
                  lambda: torch.nn.LSTM(3, 16, num_layers=2, bidirectional=True, proj_size=2)),
    "GRU": (lambda g: nn.GRU(3, 16, num_layers=2, generator=g), lambda: torch.nn.GRU(3, 16, num_layers=2)),
    "RNNCell": (lambda g: nn.RNNCell(3, 16, generator=g), lambda: torch.nn.RNNCell(3, 16)),
    "LSTMCell": (lambda g: nn.LSTMCell(3, 16, generator=g), lambda: torch.nn.LSTMCell(3, 16)),
    "GRUCell": (lambda g: nn.GRUCell(3, 16, generator=g), lambda: torch.nn.GRUCell(3, 16)),
}


@pytest.mark.parametrize("name", sorted(INIT_CASES))
def test_default_init_is_uniform_within_bound(name):
    """Every parameter ~ U(-1/sqrt(H), 1/sqrt(H)), as PyTorch's reset_parameters does (H = 16 here)."""
    make_ours, _ = INIT_CASES[name]
    ours = make_ours(np.random.default_rng(0))
    bound = 1.0 / math.sqrt(16)
    values = np.concatenate([p.numpy().ravel() for p in ours.parameters()])
    assert all(p.dtype == np.float32 for p in ours.parameters())
    assert np.all(np.abs(values) <= bound)
    # U(-b, b): mean 0, std b/sqrt(3), and the extremes reach close to +-b.
    assert abs(values.mean()) < 0.1 * bound
    assert abs(values.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert values.min() < -0.95 * bound and values.max() > 0.95 * bound
    for pname, p in ours.named_parameters():
        assert np.all(np.abs(p.numpy()) <= bound) and np.ptp(p.numpy()) > 0.5 * bound, pname


@pytest.mark.parametrize("name", sorted(INIT_CASES))
def test_init_follows_generator(name):
    make_ours, _ = INIT_CASES[name]
    a, b, c = (make_ours(np.random.default_rng(s)) for s in (1, 1, 2))
    for (k, va), vb, vc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        np.testing.assert_array_equal(va, vb, err_msg=k)
        assert not np.array_equal(va, vc), k
    rnnbp.manual_seed(3)
    d = make_ours(None)
    rnnbp.manual_seed(3)
    e = make_ours(None)
    for k, v in d.state_dict().items():
        np.testing.assert_array_equal(v, e.state_dict()[k], err_msg=k)


STATE_DICT_CASES = dict(INIT_CASES, **{
    "RNN-nobias": (lambda g: nn.RNN(3, 5, num_layers=2, bias=False, bidirectional=True, generator=g),
                   lambda: torch.nn.RNN(3, 5, num_layers=2, bias=False, bidirectional=True)),
    "GRU-nobias": (lambda g: nn.GRU(3, 5, num_layers=2, bias=False, generator=g),
                   lambda: torch.nn.GRU(3, 5, num_layers=2, bias=False)),
    "LSTM-proj-nobias": (lambda g: nn.LSTM(3, 5, num_layers=2, bias=False, bidirectional=True, proj_size=2,
                                           generator=g),
                         lambda: torch.nn.LSTM(3, 5, num_layers=2, bias=False, bidirectional=True, proj_size=2)),
    "GRUCell-nobias": (lambda g: nn.GRUCell(3, 5, bias=False, generator=g), lambda: torch.nn.GRUCell(3, 5, bias=False)),
})


@pytest.mark.parametrize("name", sorted(STATE_DICT_CASES))
def test_state_dict_keys_order_and_shapes_match_torch(name):
    make_ours, make_theirs = STATE_DICT_CASES[name]
    ours, theirs = make_ours(np.random.default_rng(0)), make_theirs()
    ours_sd, torch_sd = ours.state_dict(), theirs.state_dict()
    assert [(k, v.shape) for k, v in ours_sd.items()] == [(k, tuple(v.shape)) for k, v in torch_sd.items()]
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in theirs.named_parameters()]
    # Both directions load strictly, and the weights arrive unchanged.
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours_sd.items()}, strict=True)
    for k, v in theirs.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), ours_sd[k], err_msg=k)
    fresh = make_ours(np.random.default_rng(1))
    fresh.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()}, strict=True)
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(v, ours_sd[k], err_msg=k)
