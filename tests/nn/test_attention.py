"""Attention: scaled_dot_product_attention, MultiheadAttention and the Transformer layers.

Gradients: float64 gradcheck of the functional form (masks, causal, broadcasting, a fully
masked row) and of MultiheadAttention (inputs and every parameter).
Parity: each module is built in rnnbp and in PyTorch, given the same random weights by
state-dict name (strict, so the names and shapes must match), run on the same float64 input,
and the outputs, the weights and the gradients of the inputs and of every parameter (by name)
are compared to 1e-10. A word language model's Transformer variant, written once, runs under
both and its SGD loss trajectory agrees to 1e-9.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import rnnbp
import rnnbp.nn.functional as F
from rnnbp import nn
from rnnbp.autograd import Tensor, gradcheck

TOL = 1e-10


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _t(array, grad=True):
    return rnnbp.tensor(np.array(array, dtype=np.float64), requires_grad=grad)


def _randn(rng, *shape, grad=True):
    return _t(rng.standard_normal(shape), grad)


# ------------------------------------------------------- scaled_dot_product_attention
def _sdpa_case(name, rng):
    """(q, k, v, kwargs, mask-or-None) for one configuration; all float64."""
    q, k, v = _randn(rng, 2, 3, 4), _randn(rng, 2, 5, 4), _randn(rng, 2, 5, 3)
    if name == "plain":
        return q, k, v, {}
    if name == "bool_mask_with_dead_row":
        keep = rng.random((3, 5)) > 0.4
        keep[:, 0] = True
        keep[1] = False  # query 1 sees no key: zeros, not NaN
        return q, k, v, {"attn_mask": rnnbp.tensor(keep)}
    if name == "float_mask_with_grad":
        return q, k, v, {"attn_mask": _randn(rng, 2, 3, 5)}
    if name == "causal_rectangular":
        return q, k, v, {"is_causal": True}
    if name == "broadcast_batch_and_scale":
        return _randn(rng, 3, 2, 3, 4), k, v, {"scale": 0.3}
    if name == "gqa":
        return _randn(rng, 4, 3, 4), k, v, {"enable_gqa": True}
    raise KeyError(name)


SDPA_CASES = ["plain", "bool_mask_with_dead_row", "float_mask_with_grad", "causal_rectangular",
              "broadcast_batch_and_scale", "gqa"]


@pytest.mark.parametrize("case", SDPA_CASES)
def test_sdpa_gradcheck(case):
    q, k, v, kw = _sdpa_case(case, np.random.default_rng(0))
    mask = kw.pop("attn_mask", None)
    inputs = [q, k, v] + ([mask] if mask is not None else [])

    def fn(q, k, v, *m):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m[0] if m else None, **kw)

    assert gradcheck(fn, inputs)


@pytest.mark.parametrize("case", SDPA_CASES)
def test_sdpa_matches_torch(torch, case):
    q, k, v, kw = _sdpa_case(case, np.random.default_rng(1))
    tkw = {name: torch.from_numpy(a._data.copy()).requires_grad_(a.requires_grad) if isinstance(a, Tensor) else a
           for name, a in kw.items()}
    tq, tk, tv = (torch.from_numpy(a._data.copy()).requires_grad_() for a in (q, k, v))
    ours = F.scaled_dot_product_attention(q, k, v, **kw)
    theirs = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, **tkw)
    np.testing.assert_allclose(ours._data, theirs.detach().numpy(), rtol=0, atol=TOL)
    g = np.random.default_rng(2).standard_normal(ours.shape)
    (ours * Tensor(g)).sum().backward()
    (theirs * torch.from_numpy(g)).sum().backward()
    for a, b in zip((q, k, v), (tq, tk, tv)):
        np.testing.assert_allclose(a.grad._data, b.grad.numpy(), rtol=0, atol=TOL)
    if case == "float_mask_with_grad":
        np.testing.assert_allclose(kw["attn_mask"].grad._data, tkw["attn_mask"].grad.numpy(), rtol=0, atol=TOL)


def test_sdpa_dead_row_is_zero_with_zero_gradient():
    q, k, v, kw = _sdpa_case("bool_mask_with_dead_row", np.random.default_rng(3))
    out = F.scaled_dot_product_attention(q, k, v, **kw)
    assert np.all(out._data[:, 1] == 0) and np.all(np.isfinite(out._data))
    out.sum().backward()
    assert np.all(q.grad._data[:, 1] == 0) and np.all(np.isfinite(k.grad._data))


def test_sdpa_keeps_float32_with_a_float64_mask():
    rng = np.random.default_rng(4)
    q = rnnbp.tensor(rng.standard_normal((2, 3, 4)).astype(np.float32), requires_grad=True)
    mask = rnnbp.tensor(rng.standard_normal((3, 3)))  # float64
    out = F.scaled_dot_product_attention(q, q, q, attn_mask=mask)
    out.sum().backward()
    assert out.dtype == np.float32 and q.grad.dtype == np.float32


def test_sdpa_dropout_is_applied_always_and_seeded():
    rng = np.random.default_rng(5)
    q = _randn(rng, 1, 6, 4, grad=False)
    rnnbp.manual_seed(0)
    a = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    rnnbp.manual_seed(0)
    b = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    plain = F.scaled_dot_product_attention(q, q, q)
    np.testing.assert_array_equal(a._data, b._data)
    assert not np.allclose(a._data, plain._data)


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"key": (2, 5, 3)}, ValueError, ["(2, 3, 4)", "(2, 5, 3)", "same size E"]),
    ({"value": (2, 4, 3)}, ValueError, ["(2, 5, 4)", "(2, 4, 3)", "length S"]),
    ({"attn_mask": np.ones((3, 4), bool)}, ValueError, ["(3, 4)", "(2, 3, 5)"]),
    ({"attn_mask": np.ones((3, 5), np.int64)}, TypeError, ["bool or floating", "int64"]),
    ({"attn_mask": np.ones((3, 5), bool), "is_causal": True}, ValueError, ["not both"]),
    ({"dropout_p": 1.5}, ValueError, ["dropout_p", "1.5"]),
])
def test_sdpa_bad_input_names_the_problem(kwargs, exc, words):
    rng = np.random.default_rng(6)
    shapes = {"query": (2, 3, 4), "key": (2, 5, 4), "value": (2, 5, 4)}
    shapes.update({n: kwargs.pop(n) for n in ("query", "key", "value") if n in kwargs})
    args = [_randn(rng, *shapes[n], grad=False) for n in ("query", "key", "value")]
    if "attn_mask" in kwargs:
        kwargs["attn_mask"] = rnnbp.tensor(kwargs["attn_mask"])
    with pytest.raises(exc) as info:
        F.scaled_dot_product_attention(*args, **kwargs)
    for w in words:
        assert w in str(info.value)


def test_sdpa_refuses_mixed_dtypes():
    q = rnnbp.randn(2, 3, 4)
    with pytest.raises(TypeError, match="float32, float64 and float32"):
        F.scaled_dot_product_attention(q, q.double(), q)


# ---------------------------------------------------------------- MultiheadAttention
E, HEADS, N, L, S = 4, 2, 2, 3, 5


def _mha_inputs(rng, batch_first, self_attn, unbatched=False, kdim=E, vdim=E):
    def shape(length, feat):
        if unbatched:
            return (length, feat)
        return (N, length, feat) if batch_first else (length, N, feat)
    q = _randn(rng, *shape(L, E))
    if self_attn:
        return q, q, q
    return q, _randn(rng, *shape(S, kdim)), _randn(rng, *shape(S, vdim))


@pytest.mark.parametrize("config", [
    dict(),
    dict(kdim=3, vdim=2, need_weights=False, batch_first=True, padding=True),
    dict(add_bias_kv=True, add_zero_attn=True, mask=True, average_attn_weights=False),
])
def test_mha_gradcheck(config):
    rng = np.random.default_rng(7)
    config = dict(config)
    call = {k: config.pop(k) for k in ("need_weights", "average_attn_weights") if k in config}
    padding, mask = config.pop("padding", False), config.pop("mask", False)
    rnnbp.manual_seed(0)
    mha = nn.MultiheadAttention(E, HEADS, dtype=np.float64, **config)
    bf = config.get("batch_first", False)
    self_attn = "kdim" not in config
    q, k, v = _mha_inputs(rng, bf, self_attn, kdim=config.get("kdim", E), vdim=config.get("vdim", E))
    src = q.shape[1 if bf else 0] if self_attn else S
    if padding:
        kpm = np.zeros((N, src), bool)
        kpm[1, -2:] = True
        call["key_padding_mask"] = rnnbp.tensor(kpm)
    if mask:
        call["attn_mask"] = rnnbp.tensor(np.triu(np.ones((L, src), bool), 1))
    inputs = ([q] if self_attn else [q, k, v]) + list(mha.parameters())

    def fn(*xs):
        a, b, c = (xs[0],) * 3 if self_attn else xs[:3]
        out, weights = mha(a, b, c, **call)
        return out if weights is None else (out, weights)

    assert gradcheck(fn, inputs)


def _mha_pair(torch, rng, **cfg):
    """(ours, theirs) with the same random weights, loaded by name (strict both ways)."""
    ours = nn.MultiheadAttention(E, HEADS, dtype=np.float64, **cfg)
    theirs = torch.nn.MultiheadAttention(E, HEADS, dtype=torch.float64, **cfg)
    _same_weights(torch, ours, theirs, rng)
    return ours, theirs


def _same_weights(torch, ours, theirs, rng):
    assert list(ours.state_dict()) == list(theirs.state_dict())
    state = {k: rng.standard_normal(v.shape) * 0.5 for k, v in ours.state_dict().items()}
    ours.load_state_dict(state)
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in state.items()})


def _to_torch(torch, x):
    if isinstance(x, Tensor):
        return torch.from_numpy(x._data.copy()).requires_grad_(x.requires_grad)
    return x


def _compare_run(torch, ours, theirs, args, kwargs, rng, nan_ok=False):
    """Run both, backpropagate one random projection of every output, compare everything."""
    ours.zero_grad(), theirs.zero_grad()
    for a in args:
        if isinstance(a, Tensor):
            a.grad = None
    converted = {}  # by identity, so `query is key is value` holds in the torch call too
    targs = [converted.setdefault(id(a), _to_torch(torch, a)) for a in args]
    tkw = {k: _to_torch(torch, v) for k, v in kwargs.items()}
    out, theirs_out = ours(*args, **kwargs), theirs(*targs, **tkw)
    outs = out if isinstance(out, tuple) else (out,)
    touts = theirs_out if isinstance(theirs_out, tuple) else (theirs_out,)
    total, ttotal = 0.0, 0.0
    for o, t in zip(outs, touts):
        assert (o is None) == (t is None)
        if o is None:
            continue
        assert o.shape == tuple(t.shape)
        np.testing.assert_allclose(o._data, t.detach().numpy(), rtol=0, atol=TOL, equal_nan=nan_ok)
        if not nan_ok:
            g = rng.standard_normal(o.shape)
            total = total + (o * Tensor(g)).sum()
            ttotal = ttotal + (t * torch.from_numpy(g)).sum()
    if nan_ok:
        return
    total.backward()
    ttotal.backward()
    tparams = dict(theirs.named_parameters())
    names = [n for n, _ in ours.named_parameters()]
    assert sorted(names) == sorted(tparams)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad._data, tparams[name].grad.numpy(), rtol=0, atol=TOL, err_msg=name)
    for a, t in zip(args, targs):
        if isinstance(a, Tensor) and a.requires_grad:
            np.testing.assert_allclose(a.grad._data, t.grad.numpy(), rtol=0, atol=TOL)


MHA_CASES = {
    "seq_first_weights_averaged": (dict(), dict(), dict()),
    "batch_first_weights_per_head": (dict(batch_first=True), dict(), dict(average_attn_weights=False)),
    "bool_padding": (dict(), dict(), dict(key_padding_mask="bool")),
    "float_padding_no_weights": (dict(batch_first=True), dict(), dict(key_padding_mask="float", need_weights=False)),
    "bool_attn_mask_2d": (dict(), dict(), dict(attn_mask="bool2d")),
    "float_attn_mask_3d": (dict(batch_first=True), dict(), dict(attn_mask="float3d", average_attn_weights=False)),
    "both_masks_no_weights": (dict(), dict(), dict(attn_mask="bool2d", key_padding_mask="bool", need_weights=False)),
    "causal_hint": (dict(batch_first=True), dict(), dict(attn_mask="causal", is_causal=True, need_weights=False)),
    "kdim_vdim_cross": (dict(kdim=3, vdim=6), dict(self_attn=False), dict(key_padding_mask="bool")),
    "cross_same_dims_batch_first": (dict(batch_first=True), dict(self_attn=False), dict(attn_mask="float2d")),
    "no_bias": (dict(bias=False), dict(self_attn=False), dict()),
    "bias_kv_zero_attn": (dict(add_bias_kv=True, add_zero_attn=True), dict(self_attn=False),
                          dict(attn_mask="bool2d", key_padding_mask="bool")),
    "unbatched": (dict(batch_first=True), dict(unbatched=True, self_attn=False),
                  dict(key_padding_mask="bool", attn_mask="float3d")),
    "eval_disables_dropout": (dict(dropout=0.5), dict(eval=True), dict()),
}


def _mha_masks(rng, spec, src, unbatched):
    kw = dict(spec)
    if kw.get("key_padding_mask") == "bool":
        m = np.zeros((N, src), bool)
        m[1, -2:] = True
        kw["key_padding_mask"] = rnnbp.tensor(m[1] if unbatched else m)
    elif kw.get("key_padding_mask") == "float":
        kw["key_padding_mask"] = _randn(rng, N, src, grad=False)
    mask = kw.get("attn_mask")
    if mask == "bool2d":
        m = rng.random((L, src)) < 0.3
        m[:, 0] = False
        kw["attn_mask"] = rnnbp.tensor(m)
    elif mask == "float2d":
        kw["attn_mask"] = _randn(rng, L, src, grad=False)
    elif mask == "float3d":
        kw["attn_mask"] = _randn(rng, HEADS * (1 if unbatched else N), L, src, grad=False)
    elif mask == "causal":
        kw["attn_mask"] = nn.Transformer.generate_square_subsequent_mask(L, dtype=np.float64)
    return kw


@pytest.mark.parametrize("case", list(MHA_CASES))
def test_mha_matches_torch(torch, case):
    cfg, inp, call = MHA_CASES[case]
    rng = np.random.default_rng(8)
    ours, theirs = _mha_pair(torch, rng, **cfg)
    if inp.get("eval"):
        ours.eval(), theirs.eval()
    unbatched = inp.get("unbatched", False)
    self_attn = inp.get("self_attn", True)
    args = _mha_inputs(rng, cfg.get("batch_first", False), self_attn, unbatched,
                       kdim=cfg.get("kdim", E), vdim=cfg.get("vdim", E))
    kwargs = _mha_masks(rng, call, L if self_attn else S, unbatched)
    _compare_run(torch, ours, theirs, args, kwargs, rng)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_fully_padded_batch_item_matches_torch(torch, need_weights):
    """A batch item whose keys are all padding: NaN with weights, zeros without, as in PyTorch."""
    rng = np.random.default_rng(9)
    ours, theirs = _mha_pair(torch, rng)
    ours.eval(), theirs.eval()
    kpm = np.zeros((N, L), bool)
    kpm[1] = True
    q = _randn(rng, L, N, E, grad=False)
    out, weights = ours(q, q, q, key_padding_mask=rnnbp.tensor(kpm), need_weights=need_weights)
    tq = torch.from_numpy(q._data.copy())
    tout, tweights = theirs(tq, tq, tq, key_padding_mask=torch.from_numpy(kpm), need_weights=need_weights)
    np.testing.assert_allclose(out._data, tout.detach().numpy(), rtol=0, atol=TOL, equal_nan=True)
    assert np.isnan(out._data[:, 1]).all() == need_weights
    if need_weights:
        np.testing.assert_allclose(weights._data, tweights.detach().numpy(), rtol=0, atol=TOL, equal_nan=True)


def test_mha_parameter_layouts_follow_torch():
    packed = nn.MultiheadAttention(6, 3)
    assert packed.in_proj_weight.shape == (18, 6) and packed.in_proj_bias.shape == (18,)
    assert isinstance(packed.out_proj, nn.Linear) and packed.head_dim == 2
    assert packed.q_proj_weight is None and packed.bias_k is None
    assert np.all(packed.in_proj_bias._data == 0) and np.all(packed.out_proj.bias._data == 0)
    split = nn.MultiheadAttention(6, 3, kdim=4, vdim=5, add_bias_kv=True, bias=False)
    assert split.in_proj_weight is None and split.in_proj_bias is None and split.out_proj.bias is None
    assert (split.q_proj_weight.shape, split.k_proj_weight.shape, split.v_proj_weight.shape) == ((6, 6), (6, 4), (6, 5))
    assert split.bias_k.shape == split.bias_v.shape == (1, 1, 6)
    assert packed.in_proj_weight.dtype == np.float32


def test_mha_float32_stays_float32():
    rnnbp.manual_seed(0)
    mha = nn.MultiheadAttention(E, HEADS, batch_first=True)
    x = rnnbp.randn(N, L, E, requires_grad=True)
    out, weights = mha(x, x, x, attn_mask=nn.Transformer.generate_square_subsequent_mask(L, dtype=np.float64))
    out.sum().backward()
    assert out.dtype == weights.dtype == x.grad.dtype == mha.in_proj_weight.grad.dtype == np.float32


def test_mha_embed_dim_must_divide_by_heads():
    with pytest.raises(ValueError, match=r"embed_dim \(6\) must be divisible by num_heads \(4\)"):
        nn.MultiheadAttention(6, 4)
    with pytest.raises(ValueError, match="num_heads must be a positive integer, got 0"):
        nn.MultiheadAttention(6, 0)
    with pytest.raises(ValueError, match="dropout must be a probability"):
        nn.MultiheadAttention(6, 2, dropout=2.0)


@pytest.mark.parametrize("kwargs, words", [
    ({"attn_mask": np.zeros((3, 4), bool)}, ["attn_mask of shape (3, 4)", "(L, S) = (3, 5)", "(4, 3, 5)"]),
    ({"attn_mask": np.zeros((2, 3, 5), bool)}, ["attn_mask of shape (2, 3, 5)", "(N * num_heads, L, S) = (4, 3, 5)"]),
    ({"key_padding_mask": np.zeros((5, 2), bool)}, ["key_padding_mask of shape (5, 2)", "expected (2, 5)"]),
    ({"key_padding_mask": np.zeros((2, 5), np.int64)}, ["bool or floating", "int64"]),
    ({"is_causal": True}, ["is_causal=True", "attn_mask"]),
])
def test_mha_bad_masks_name_the_shapes(kwargs, words):
    rng = np.random.default_rng(10)
    mha = nn.MultiheadAttention(E, HEADS, dtype=np.float64)
    q, k, v = _randn(rng, L, N, E), _randn(rng, S, N, E), _randn(rng, S, N, E)
    kwargs = {name: rnnbp.tensor(m) if isinstance(m, np.ndarray) else m for name, m in kwargs.items()}
    with pytest.raises((ValueError, TypeError)) as info:
        mha(q, k, v, **kwargs)
    for w in words:
        assert w in str(info.value)


def test_mha_bad_inputs_name_the_shapes():
    rng = np.random.default_rng(11)
    mha = nn.MultiheadAttention(E, HEADS, dtype=np.float64)
    with pytest.raises(ValueError, match=r"expected query to end in 4 features, got shape \(3, 2, 5\)"):
        mha(*(_randn(rng, L, N, 5),) * 3)
    with pytest.raises(ValueError, match="different batch sizes"):
        mha(_randn(rng, L, N, E), *(_randn(rng, S, 3, E),) * 2)
    with pytest.raises(ValueError, match=r"3-D \(batched\) or 2-D"):
        mha(*(_randn(rng, E),) * 3)


# ------------------------------------------------------------------- Transformer layers
D_MODEL, NHEAD, FF = 8, 2, 12


def _run_both(torch, ours, theirs, args, kwargs, seed):
    rng = np.random.default_rng(seed)
    _same_weights(torch, ours, theirs, rng)
    ours.eval(), theirs.eval()  # no dropout; grads enabled, so PyTorch takes its reference path
    _compare_run(torch, ours, theirs, args, kwargs, rng)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_function"])
def test_encoder_layer_matches_torch(torch, norm_first, activation):
    rng = np.random.default_rng(12)
    batch_first = activation == "gelu"
    ours_act = F.gelu if activation == "gelu_function" else activation
    theirs_act = torch.nn.functional.gelu if activation == "gelu_function" else activation
    cfg = dict(dim_feedforward=FF, dropout=0.3, norm_first=norm_first, batch_first=batch_first)
    ours = nn.TransformerEncoderLayer(D_MODEL, NHEAD, activation=ours_act, dtype=np.float64, **cfg)
    theirs = torch.nn.TransformerEncoderLayer(D_MODEL, NHEAD, activation=theirs_act, dtype=torch.float64, **cfg)
    x = _randn(rng, N, L, D_MODEL) if batch_first else _randn(rng, L, N, D_MODEL)
    kpm = np.zeros((N, L), bool)
    kpm[0, -1] = True
    kwargs = {"src_mask": nn.Transformer.generate_square_subsequent_mask(L, dtype=np.float64),
              "src_key_padding_mask": _randn(rng, N, L, grad=False) if norm_first else rnnbp.tensor(kpm)}
    if activation == "relu":
        kwargs = {}
    _run_both(torch, ours, theirs, (x,), kwargs, seed=13)


def test_encoder_with_causal_mask_matches_torch(torch):
    rng = np.random.default_rng(14)
    layer = nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, dropout=0.0, dtype=np.float64)
    ours = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(D_MODEL, dtype=np.float64))
    tlayer = torch.nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, dropout=0.0, dtype=torch.float64)
    theirs = torch.nn.TransformerEncoder(tlayer, 2, norm=torch.nn.LayerNorm(D_MODEL, dtype=torch.float64),
                                         enable_nested_tensor=False)
    assert "layers.1.self_attn.in_proj_weight" in ours.state_dict()
    x = _randn(rng, 4, N, D_MODEL)
    mask = nn.Transformer.generate_square_subsequent_mask(4, dtype=np.float64)
    _run_both(torch, ours, theirs, (x,), {"mask": mask}, seed=15)
    _run_both(torch, ours, theirs, (x,), {"mask": mask, "is_causal": True}, seed=16)


def test_encoder_layers_are_independent_copies():
    rnnbp.manual_seed(0)
    layer = nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF)
    enc = nn.TransformerEncoder(layer, 3)
    w = [enc.layers[i].self_attn.in_proj_weight for i in range(3)]
    np.testing.assert_array_equal(w[0]._data, w[2]._data)  # same start, as in PyTorch
    assert w[0] is not w[1] and w[0]._data is not layer.self_attn.in_proj_weight._data
    w[0]._data[...] = 0
    assert np.all(w[1]._data != 0) and np.all(layer.self_attn.in_proj_weight._data != 0)
    assert len(list(enc.parameters())) == 3 * len(list(layer.parameters()))


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(torch, norm_first):
    rng = np.random.default_rng(17)
    cfg = dict(dim_feedforward=FF, dropout=0.2, norm_first=norm_first, batch_first=norm_first)
    ours = nn.TransformerDecoderLayer(D_MODEL, NHEAD, dtype=np.float64, **cfg)
    theirs = torch.nn.TransformerDecoderLayer(D_MODEL, NHEAD, dtype=torch.float64, **cfg)
    shape = (lambda length: (N, length, D_MODEL)) if norm_first else (lambda length: (length, N, D_MODEL))
    tgt, memory = _randn(rng, *shape(L)), _randn(rng, *shape(S))
    mpm = np.zeros((N, S), bool)
    mpm[1, -2:] = True
    kwargs = {"tgt_mask": nn.Transformer.generate_square_subsequent_mask(L, dtype=np.float64),
              "memory_key_padding_mask": rnnbp.tensor(mpm), "tgt_is_causal": True}
    _run_both(torch, ours, theirs, (tgt, memory), kwargs, seed=18)


@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_matches_torch(torch, batch_first):
    rng = np.random.default_rng(19)
    cfg = dict(d_model=D_MODEL, nhead=NHEAD, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=FF,
               dropout=0.1, batch_first=batch_first)
    ours = nn.Transformer(dtype=np.float64, **cfg)
    theirs = torch.nn.Transformer(dtype=torch.float64, **cfg)
    shape = (lambda length: (N, length, D_MODEL)) if batch_first else (lambda length: (length, N, D_MODEL))
    src, tgt = _randn(rng, *shape(S)), _randn(rng, *shape(L))
    spm = np.zeros((N, S), bool)
    spm[0, -1] = True
    kwargs = {"tgt_mask": nn.Transformer.generate_square_subsequent_mask(L, dtype=np.float64),
              "src_key_padding_mask": rnnbp.tensor(spm), "memory_key_padding_mask": rnnbp.tensor(spm)}
    _run_both(torch, ours, theirs, (src, tgt), kwargs, seed=20)


def test_transformer_init_and_mask(torch):
    rnnbp.manual_seed(0)
    model = nn.Transformer(D_MODEL, NHEAD, 1, 1, FF)
    bound = math.sqrt(6 / (FF + D_MODEL))  # every matrix re-drawn Xavier-uniform, as in PyTorch
    w = model.encoder.layers[0].linear1.weight._data
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    for dtype, tdtype in ((None, None), (np.float64, torch.float64)):
        ours = nn.Transformer.generate_square_subsequent_mask(4, dtype=dtype)
        theirs = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=tdtype)
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_array_equal(ours._data, theirs.numpy())


def test_transformer_bad_input_is_named():
    with pytest.raises(ValueError, match="activation should be 'relu', 'gelu' or a callable, got 'swish'"):
        nn.TransformerEncoderLayer(D_MODEL, NHEAD, activation="swish")
    with pytest.raises(ValueError, match=r"embed_dim \(8\) must be divisible by num_heads \(3\)"):
        nn.TransformerEncoderLayer(D_MODEL, 3)
    model = nn.Transformer(D_MODEL, NHEAD, 1, 1, FF)
    with pytest.raises(ValueError, match=r"src of shape \(5, 2, 8\) and tgt of shape \(3, 4, 8\).*batch size"):
        model(rnnbp.randn(5, 2, D_MODEL), rnnbp.randn(3, 4, D_MODEL))
    with pytest.raises(ValueError, match="d_model = 8"):
        model(rnnbp.randn(5, 2, 6), rnnbp.randn(3, 2, 6))
    with pytest.raises(TypeError, match="expected a layer Module"):
        nn.TransformerEncoder("layer", 2)


def test_batch_equals_items_one_by_one():
    """The module contract: a batch (with padding) equals each item run unbatched without its padding."""
    rng = np.random.default_rng(22)
    rnnbp.manual_seed(0)
    lengths = [5, 3]
    for module in (nn.MultiheadAttention(D_MODEL, NHEAD, dtype=np.float64),
                   nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF, dtype=np.float64)):
        module.eval()
        x = _randn(rng, max(lengths), len(lengths), D_MODEL, grad=False)
        kpm = rnnbp.tensor(np.arange(max(lengths))[None, :] >= np.array(lengths)[:, None])
        if isinstance(module, nn.MultiheadAttention):
            batch = module(x, x, x, key_padding_mask=kpm)[0]
        else:
            batch = module(x, src_key_padding_mask=kpm)
        for i, n in enumerate(lengths):
            item = x[:n, i]
            one = module(item, item, item)[0] if isinstance(module, nn.MultiheadAttention) else module(item)
            np.testing.assert_allclose(batch._data[:n, i], one._data, rtol=0, atol=1e-12)


def test_state_dict_round_trips_into_a_fresh_transformer():
    rnnbp.manual_seed(0)
    a = nn.Transformer(D_MODEL, NHEAD, 1, 1, FF, dropout=0.0)
    rnnbp.manual_seed(1)
    b = nn.Transformer(D_MODEL, NHEAD, 1, 1, FF, dropout=0.0)
    b.load_state_dict({k: v.clone() for k, v in a.state_dict().items()})
    src, tgt = rnnbp.randn(4, 2, D_MODEL), rnnbp.randn(3, 2, D_MODEL)
    np.testing.assert_array_equal(a(src, tgt)._data, b(src, tgt)._data)


# ---------------------------------------------------- the word language model, both ways
WORD_LM = '''
class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=64):
        super(PositionalEncoding, self).__init__()
        self.dropout = nn.Dropout(p=dropout)
        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        pe = pe.unsqueeze(0).transpose(0, 1)
        self.register_buffer('pe', pe)

    def forward(self, x):
        x = x + self.pe[:x.size(0), :]
        return self.dropout(x)


class TransformerModel(nn.Transformer):
    def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
        super(TransformerModel, self).__init__(d_model=ninp, nhead=nhead, dim_feedforward=nhid,
                                               num_encoder_layers=nlayers, num_decoder_layers=1)
        self.src_mask = None
        self.pos_encoder = PositionalEncoding(ninp, dropout)
        self.input_emb = nn.Embedding(ntoken, ninp)
        self.ninp = ninp
        self.decoder = nn.Linear(ninp, ntoken)

    def _generate_square_subsequent_mask(self, sz):
        return torch.log(torch.tril(torch.ones(sz, sz)))

    def forward(self, src, has_mask=True):
        if has_mask:
            if self.src_mask is None or self.src_mask.size(0) != len(src):
                self.src_mask = self._generate_square_subsequent_mask(len(src)).to(src.device)
        else:
            self.src_mask = None
        src = self.input_emb(src) * math.sqrt(self.ninp)
        src = self.pos_encoder(src)
        output = self.encoder(src, mask=self.src_mask)
        output = self.decoder(output)
        return F.log_softmax(output, dim=-1)


def train(model, data, targets, lr, steps):
    criterion = nn.NLLLoss()
    losses = []
    model.eval()  # no dropout, so both libraries take the same path
    for _ in range(steps):
        model.zero_grad()
        output = model(data)
        loss = criterion(output.view(-1, output.size(-1)), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        losses.append(loss.item())
    return losses
'''


def _word_lm(torch_like):
    space = {"math": math, "torch": torch_like, "nn": torch_like.nn, "F": torch_like.nn.functional}
    exec(WORD_LM, space)
    return space


def test_word_language_model_transformer_matches_torch(torch):
    ntokens, bptt, batch = 11, 6, 3
    rng = np.random.default_rng(21)
    tokens = rng.integers(0, ntokens, size=(bptt + 1, batch))
    ours_ns, theirs_ns = _word_lm(rnnbp), _word_lm(torch)
    ours = ours_ns["TransformerModel"](ntokens, 8, 2, 16, 2, dropout=0.2).double()
    theirs = theirs_ns["TransformerModel"](ntokens, 8, 2, 16, 2, dropout=0.2).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    data, targets = tokens[:-1], tokens[1:].reshape(-1)
    ours_losses = ours_ns["train"](ours, rnnbp.tensor(data), rnnbp.tensor(targets), 0.5, 4)
    theirs_losses = theirs_ns["train"](theirs, torch.from_numpy(data), torch.from_numpy(targets), 0.5, 4)
    np.testing.assert_allclose(ours_losses, theirs_losses, rtol=0, atol=1e-9)
    assert ours_losses[-1] < ours_losses[0]
