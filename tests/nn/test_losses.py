"""Losses: gradchecks over every option, fused against composed, errors, dtypes, PyTorch parity."""
import itertools

import numpy as np
import pytest

from rnnbp import Tensor
from rnnbp.autograd import gradcheck
from rnnbp.autograd import ops
from rnnbp.autograd.ops.loss import (
    binary_cross_entropy_with_logits, cross_entropy, l1_loss, mse_loss, nll_loss,
)
from rnnbp.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss

# Input layouts: (N, C), (C,), (N, C, d1, d2), (N, C, d1).
SHAPES = [(4, 3), (3,), (2, 3, 2, 2), (2, 4, 3)]
REDUCTIONS = ["none", "mean", "sum"]


def _classes(shape):
    return shape[0] if len(shape) == 1 else shape[1]


def _index_shape(shape):
    return () if len(shape) == 1 else (shape[0],) + shape[2:]


def _targets(rng, shape, ignore_index=None):
    """Class indices for an input of ``shape``; every third one is ``ignore_index`` if given."""
    t = rng.integers(0, _classes(shape), _index_shape(shape))
    if ignore_index is not None:
        t[t == ignore_index] = (ignore_index + 1) % _classes(shape)  # ignore exactly every third
        if t.ndim:  # a lone target () stays unignored, so its 'mean' is not NaN
            t.reshape(-1)[::3] = ignore_index
    return t


def _x(rng, shape, dtype=np.float64):
    return Tensor(rng.standard_normal(shape).astype(dtype), requires_grad=True)


def _ce_cases():
    """(shape, probabilities, reduction, weighted, label_smoothing, ignore_index)."""
    for shape, probs, red, weighted, ls in itertools.product(
        SHAPES, [False, True], REDUCTIONS, [False, True], [0.0, 0.2]
    ):
        for ii in ([-100] if probs else [-100, 1]):
            yield shape, probs, red, weighted, ls, ii


CE_CASES = list(_ce_cases())


def _ce_id(case):
    shape, probs, red, weighted, ls, ii = case
    return f"{shape}-{'probs' if probs else 'index'}-{red}-w{int(weighted)}-ls{ls}-ii{ii}"


# --------------------------------------------------------------- gradchecks
@pytest.mark.parametrize("case", CE_CASES, ids=_ce_id)
def test_cross_entropy_gradcheck(case):
    shape, probs, red, weighted, ls, ii = case
    rng = np.random.default_rng(1)
    C = _classes(shape)
    w = rng.random(C) + 0.5 if weighted else None
    x = _x(rng, shape)
    if probs:
        t = Tensor(rng.random(shape), requires_grad=True)  # gradient flows into soft targets too
        inputs = (x, t)
    else:
        inputs = (x, _targets(rng, shape, ii if ii >= 0 else None))
    fn = lambda x, t: cross_entropy(x, t, weight=w, ignore_index=ii, reduction=red, label_smoothing=ls)  # noqa: E731
    assert gradcheck(fn, inputs, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_nll_loss_gradcheck(shape, reduction, weighted, ignore_index):
    rng = np.random.default_rng(2)
    w = rng.random(_classes(shape)) + 0.5 if weighted else None
    x = _x(rng, shape)
    t = _targets(rng, shape, ignore_index if ignore_index >= 0 else None)
    fn = lambda x: nll_loss(x, t, weight=w, ignore_index=ignore_index, reduction=reduction)  # noqa: E731
    assert gradcheck(fn, (x,), atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("loss", [mse_loss, l1_loss])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses_gradcheck(loss, shape, reduction):
    rng = np.random.default_rng(3)
    x, t = _x(rng, shape), _x(rng, shape)
    assert gradcheck(lambda x, t: loss(x, t, reduction=reduction), (x, t), atol=1e-7, rtol=1e-5)


BCE_WEIGHTS = {"none": None, "per-class": (3,), "per-row": (4, 1), "full": (4, 3)}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", sorted(BCE_WEIGHTS))
@pytest.mark.parametrize("pos_weight", [False, True])
def test_bce_with_logits_gradcheck(reduction, weight, pos_weight):
    rng = np.random.default_rng(4)
    x = Tensor(3 * rng.standard_normal((4, 3)), requires_grad=True)
    t = Tensor(rng.random((4, 3)), requires_grad=True)
    w = None if BCE_WEIGHTS[weight] is None else rng.random(BCE_WEIGHTS[weight]) + 0.5
    pw = rng.random(3) * 3 if pos_weight else None
    fn = lambda x, t: binary_cross_entropy_with_logits(x, t, weight=w, reduction=reduction, pos_weight=pw)  # noqa: E731
    assert gradcheck(fn, (x, t), atol=1e-7, rtol=1e-5)


# ------------------------------------------------------ fused vs composed
def _composed_cross_entropy(x, target, weight, ignore_index, reduction, ls):
    """Cross-entropy built from primitive rnnbp ops, the reference for the fused op."""
    shape = x.shape
    C = _classes(shape)
    logp = ops.log_softmax(x, dim=0 if x.ndim == 1 else 1)
    if x.ndim == 1:
        rows = ops.reshape(logp, 1, C)
    elif x.ndim == 2:
        rows = logp
    else:
        rows = ops.reshape(ops.permute(logp, 0, *range(2, x.ndim), 1), -1, C)  # (M, C)
    M = rows.shape[0]
    w = np.ones(C) if weight is None else weight
    if isinstance(target, Tensor):  # probabilities
        t_rows = target if x.ndim == 2 else ops.reshape(
            target if x.ndim == 1 else ops.permute(target, 0, *range(2, x.ndim), 1), -1, C)
        q = (t_rows * (1 - ls) + ls / C) * Tensor(w)
        loss = -ops.sum(q * rows, dim=1)
        norm = M
        out_shape = shape[:1] + shape[2:] if x.ndim > 1 else ()
    else:
        t = target.reshape(-1)
        valid = t != ignore_index
        safe = np.where(valid, t, 0)
        w_y = w[safe] * valid
        picked = rows[np.arange(M), safe]  # (M,)
        smooth = ops.sum(rows * Tensor(w), dim=1)
        loss = picked * Tensor(-(1 - ls) * w_y) + smooth * Tensor(-(ls / C) * valid)
        norm = w_y.sum()
        out_shape = target.shape
    if reduction == "none":
        return ops.reshape(loss, out_shape)
    if reduction == "sum":
        return ops.sum(loss)
    return ops.sum(loss) / norm


@pytest.mark.parametrize("case", CE_CASES, ids=_ce_id)
def test_cross_entropy_fused_equals_composed(case):
    shape, probs, red, weighted, ls, ii = case
    rng = np.random.default_rng(5)
    w = rng.random(_classes(shape)) + 0.5 if weighted else None
    x_data = rng.standard_normal(shape)
    if probs:
        t_data = rng.random(shape)
        make_t = lambda: Tensor(t_data.copy(), requires_grad=True)  # noqa: E731
    else:
        t_data = _targets(rng, shape, ii if ii >= 0 else None)
        make_t = lambda: t_data  # noqa: E731
    results = []
    for fn in (cross_entropy, _composed_cross_entropy):
        x, t = Tensor(x_data.copy(), requires_grad=True), make_t()
        out = fn(x, t, w, ii, red, ls) if fn is _composed_cross_entropy else fn(
            x, t, weight=w, ignore_index=ii, reduction=red, label_smoothing=ls)
        g = np.random.default_rng(6).standard_normal(out.shape)
        out.backward(g)
        results.append((out.numpy(), x.grad.numpy(), t.grad.numpy() if probs else None))
    (fused, composed) = results
    np.testing.assert_allclose(fused[0], composed[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused[1], composed[1], rtol=1e-12, atol=1e-12)
    if probs:
        np.testing.assert_allclose(fused[2], composed[2], rtol=1e-12, atol=1e-12)


def test_cross_entropy_is_one_node():
    x = _x(np.random.default_rng(0), (4, 3))
    out = cross_entropy(x, np.array([0, 1, 2, 0]))
    assert out.grad_fn.name == "CrossEntropy"
    assert all(p is None or p is x for p in out.grad_fn.parents)


def test_nll_of_log_softmax_equals_cross_entropy():
    rng = np.random.default_rng(7)
    x_data, t = rng.standard_normal((2, 4, 3)), rng.integers(0, 4, (2, 3))
    w = rng.random(4)
    a, b = Tensor(x_data.copy(), requires_grad=True), Tensor(x_data.copy(), requires_grad=True)
    la = cross_entropy(a, t, weight=w)
    lb = nll_loss(ops.log_softmax(b, dim=1), t, weight=w)
    la.backward()
    lb.backward()
    np.testing.assert_allclose(la.numpy(), lb.numpy(), rtol=1e-13)
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-14)


# -------------------------------------------------------------- semantics
def test_cross_entropy_mean_divides_by_target_weights():
    # Two rows of class 0 (weight 1) and one of class 1 (weight 3): PyTorch's mean is the
    # weighted sum over 1 + 1 + 3, not over the row count 3.
    x = Tensor(np.zeros((3, 2)))
    w = np.array([1.0, 3.0])
    loss = cross_entropy(x, np.array([0, 0, 1]), weight=w)
    assert loss.item() == pytest.approx(np.log(2) * 5 / 5)
    per_row = cross_entropy(x, np.array([0, 0, 1]), weight=w, reduction="none").data
    np.testing.assert_allclose(per_row, np.log(2) * np.array([1, 1, 3]))


def test_ignored_targets_add_nothing():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 3))
    t = np.array([0, 2, -100, 1, -100])
    full = cross_entropy(Tensor(x), t, label_smoothing=0.1).item()
    kept = cross_entropy(Tensor(x[[0, 1, 3]]), t[[0, 1, 3]], label_smoothing=0.1).item()
    assert full == pytest.approx(kept, rel=1e-14)
    xt = Tensor(x, requires_grad=True)
    cross_entropy(xt, t, reduction="sum").backward()
    assert np.all(xt.grad.numpy()[[2, 4]] == 0) and np.all(xt.grad.numpy()[[0, 1, 3]] != 0)


def test_all_targets_ignored_gives_nan_mean_and_zero_grads():
    x = Tensor(np.random.default_rng(9).standard_normal((3, 4)), requires_grad=True)
    loss = cross_entropy(x, np.full(3, -100), label_smoothing=0.2, weight=np.ones(4))
    loss.backward()
    assert np.isnan(loss.item())
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((3, 4)))


def test_one_dimensional_input_gives_scalar_for_every_reduction():
    x = Tensor(np.array([1.0, 2.0, 0.5]))
    for red in REDUCTIONS:
        out = cross_entropy(x, np.array(1), reduction=red)
        assert out.shape == ()
        assert out.item() == pytest.approx(-(2.0 - np.log(np.exp([1.0, 2.0, 0.5]).sum())))


def test_bce_with_logits_is_stable_for_huge_logits():
    x = Tensor(np.array([-1000.0, 1000.0, -80.0, 80.0], dtype=np.float32), requires_grad=True)
    t = np.array([1.0, 0.0, 0.0, 1.0], dtype=np.float32)
    loss = binary_cross_entropy_with_logits(x, t, reduction="none")
    loss.sum().backward()
    np.testing.assert_allclose(loss.numpy(), [1000.0, 1000.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), [-1.0, 1.0, 0.0, 0.0], atol=1e-6)


# ----------------------------------------------------------------- errors
def test_float_target_of_wrong_shape_says_what_was_expected():
    x = Tensor(np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(ValueError) as exc:
        cross_entropy(x, np.zeros(4, dtype=np.float32))
    assert (
        "cross_entropy: expected target of integer dtype (class indices) or floating dtype with the "
        "input's shape (class probabilities), got float32 of shape (4,)"
    ) in str(exc.value)
    assert "(4, 3)" in str(exc.value)


@pytest.mark.parametrize("fn", [cross_entropy, nll_loss])
def test_index_target_of_wrong_shape_names_both_shapes(fn):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: .*\(2, 5\).*input of shape \(2, 3, 5\).*got \(2,\)"):
        fn(Tensor(np.zeros((2, 3, 5))), np.zeros(2, dtype=np.int64))


@pytest.mark.parametrize("fn", [cross_entropy, nll_loss])
@pytest.mark.parametrize("bad", [3, 7, -1])
def test_class_index_out_of_range_names_the_value(fn, bad):
    with pytest.raises(IndexError, match=rf"{fn.__name__}: target class index {bad} is out of range for 3 classes"):
        fn(Tensor(np.zeros((4, 3))), np.array([0, bad, 1, -100]))


def test_nll_loss_refuses_float_targets():
    with pytest.raises(ValueError, match=r"nll_loss: expected target of integer dtype \(class indices\), got float64"):
        nll_loss(Tensor(np.zeros((2, 3))), np.array([0.0, 1.0]))


@pytest.mark.parametrize("fn", [cross_entropy, nll_loss])
def test_weight_must_have_one_value_per_class(fn):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: weight must have shape \(3,\).*got \(4,\)"):
        fn(Tensor(np.zeros((2, 3))), np.array([0, 1]), weight=np.ones(4))


def test_bad_options_are_refused():
    x, t = Tensor(np.zeros((2, 3))), np.array([0, 1])
    with pytest.raises(ValueError, match="cross_entropy: reduction must be 'none', 'mean' or 'sum', got 'avg'"):
        cross_entropy(x, t, reduction="avg")
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        cross_entropy(x, t, label_smoothing=1.5)
    with pytest.raises(ValueError, match="ignore_index=0 is not supported for class-probability targets"):
        cross_entropy(x, np.full((2, 3), 1 / 3), ignore_index=0)
    with pytest.raises(ValueError, match="cross_entropy: expected an input of shape"):
        cross_entropy(Tensor(np.array(1.0)), np.array(0))
    with pytest.raises(TypeError, match="cross_entropy: expected a floating-point input .*got int64"):
        cross_entropy(np.zeros((2, 3), dtype=np.int64), t)


@pytest.mark.parametrize("fn", [mse_loss, l1_loss, binary_cross_entropy_with_logits])
def test_elementwise_losses_name_both_shapes(fn):
    with pytest.raises(ValueError, match=rf"{fn.__name__}: target shape \(3,\) differs from input shape \(2, 3\)"):
        fn(Tensor(np.zeros((2, 3))), np.zeros(3))


def test_bce_pos_weight_must_broadcast():
    with pytest.raises(ValueError, match=r"pos_weight of shape \(4,\) does not broadcast to input shape \(2, 3\)"):
        binary_cross_entropy_with_logits(Tensor(np.zeros((2, 3))), np.zeros((2, 3)), pos_weight=np.ones(4))


# ------------------------------------------------------------------ dtypes
FLOAT32_CASES = {
    "ce-index": lambda x, t: cross_entropy(x, np.array([0, 2, -100, 1]), weight=np.ones(3), label_smoothing=0.1),
    "ce-probs": lambda x, t: cross_entropy(x, t, weight=np.array([1.0, 2.0, 3.0]), label_smoothing=0.1),
    "ce-4d": lambda x, t: cross_entropy(ops.reshape(x, 1, 3, 2, 2), np.array([[[0, 1], [2, -100]]]), reduction="none"),
    "nll": lambda x, t: nll_loss(x, np.array([0, 2, 1, 1]), weight=np.ones(3), reduction="sum"),
    "mse": lambda x, t: mse_loss(x, t),
    "l1": lambda x, t: l1_loss(x, t, reduction="none"),
    "bce": lambda x, t: binary_cross_entropy_with_logits(x, t, weight=np.ones(3), pos_weight=np.full(3, 2.0)),
}


@pytest.mark.parametrize("name", sorted(FLOAT32_CASES))
def test_float32_in_gives_float32_out_and_grads(name):
    rng = np.random.default_rng(10)
    x = Tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    t_target = rng.random((4, 3))  # float64 targets and weights must not promote
    out = FLOAT32_CASES[name](x, t_target)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, dtype=np.float32))
    assert x.grad.numpy().dtype == np.float32


def test_float32_probability_target_gets_float32_grad():
    rng = np.random.default_rng(11)
    x = Tensor(rng.standard_normal((2, 3, 4)).astype(np.float32), requires_grad=True)
    t = Tensor(rng.random((2, 3, 4)).astype(np.float32), requires_grad=True)
    out = cross_entropy(x, t)
    out.backward()
    assert (out.dtype, x.grad.numpy().dtype, t.grad.numpy().dtype) == (np.float32,) * 3


# ----------------------------------------------------------------- modules
def test_modules_call_the_functional_losses():
    rng = np.random.default_rng(12)
    x = Tensor(rng.standard_normal((4, 3)))
    t_idx, t_float = np.array([0, 2, 1, 1]), rng.random((4, 3))
    w = rng.random(3)
    pairs = [
        (CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.1, reduction="sum")(x, t_idx),
         cross_entropy(x, t_idx, weight=w, ignore_index=1, label_smoothing=0.1, reduction="sum")),
        (NLLLoss(weight=w, reduction="none")(x, t_idx), nll_loss(x, t_idx, weight=w, reduction="none")),
        (MSELoss()(x, t_float), mse_loss(x, t_float)),
        (L1Loss(reduction="sum")(x, t_float), l1_loss(x, t_float, reduction="sum")),
        (BCEWithLogitsLoss(weight=w, pos_weight=w)(x, t_float),
         binary_cross_entropy_with_logits(x, t_float, weight=w, pos_weight=w)),
    ]
    for got, want in pairs:
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_loss_weights_are_buffers():
    w = np.array([1.0, 2.0, 3.0])
    ce = CrossEntropyLoss(weight=w)
    assert list(ce.state_dict()) == ["weight"]
    np.testing.assert_array_equal(ce.state_dict()["weight"], w)
    assert "weight" not in CrossEntropyLoss().state_dict()
    bce = BCEWithLogitsLoss(pos_weight=[2.0, 1.0])
    assert list(bce.state_dict()) == ["pos_weight"]
    assert bce.pos_weight.dtype == np.float32  # Python floats become float32, as for tensors
    assert list(ce.parameters()) == []


def test_loss_module_arguments_are_validated_at_construction():
    with pytest.raises(ValueError, match="reduction must be 'none', 'mean' or 'sum', got 'avg'"):
        MSELoss(reduction="avg")
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: label_smoothing must be in \[0, 1\], got -0.1"):
        CrossEntropyLoss(label_smoothing=-0.1)
    with pytest.raises(ValueError, match=r"NLLLoss: weight must be 1-D .*got shape \(2, 2\)"):
        NLLLoss(weight=np.ones((2, 2)))


def test_legacy_size_average_and_reduce_map_like_pytorch():
    with pytest.warns(DeprecationWarning):
        assert L1Loss(size_average=False).reduction == "sum"
    with pytest.warns(DeprecationWarning):
        assert MSELoss(reduce=False).reduction == "none"


def test_loss_module_repr_shows_non_defaults():
    assert repr(CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(CrossEntropyLoss(ignore_index=0, label_smoothing=0.1, reduction="sum")) == (
        "CrossEntropyLoss(reduction='sum', ignore_index=0, label_smoothing=0.1)"
    )


# ----------------------------------------------------------- PyTorch parity
def _torch_parity(fn_ours, fn_torch, inputs, torch, grads_for):
    """Run both on copies of ``inputs`` (numpy arrays); compare outputs and gradients."""
    ours = [Tensor(a.copy(), requires_grad=i in grads_for) if a.dtype.kind == "f" else a
            for i, a in enumerate(inputs)]
    theirs = [torch.tensor(a, requires_grad=i in grads_for) for i, a in enumerate(inputs)]
    out, out_t = fn_ours(*ours), fn_torch(*theirs)
    g = np.random.default_rng(13).standard_normal(out.shape)
    out.backward(g)
    out_t.backward(torch.tensor(g))
    np.testing.assert_allclose(out.numpy(), out_t.detach().numpy(), rtol=1e-10, atol=1e-10)
    for i in grads_for:
        np.testing.assert_allclose(ours[i].grad.numpy(), theirs[i].grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CE_CASES, ids=_ce_id)
def test_cross_entropy_matches_pytorch(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    shape, probs, red, weighted, ls, ii = case
    rng = np.random.default_rng(14)
    w = rng.random(_classes(shape)) + 0.5 if weighted else None
    x = rng.standard_normal(shape)
    t = rng.random(shape) if probs else _targets(rng, shape, ii if ii >= 0 else None)
    kw = dict(reduction=red, label_smoothing=ls, ignore_index=ii)
    _torch_parity(
        lambda x, t: cross_entropy(x, t, weight=w, **kw),
        lambda x, t: F.cross_entropy(x, t, weight=None if w is None else torch.tensor(w), **kw),
        [x, t], torch, grads_for=(0, 1) if probs else (0,),
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [-100, 0])
def test_nll_loss_matches_pytorch(shape, reduction, weighted, ignore_index):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(15)
    w = rng.random(_classes(shape)) + 0.5 if weighted else None
    x, t = rng.standard_normal(shape), _targets(rng, shape, ignore_index if ignore_index >= 0 else None)
    kw = dict(reduction=reduction, ignore_index=ignore_index)
    _torch_parity(
        lambda x, t: nll_loss(x, t, weight=w, **kw),
        lambda x, t: torch.nn.functional.nll_loss(x, t, weight=None if w is None else torch.tensor(w), **kw),
        [x, t], torch, grads_for=(0,),
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weight", sorted(BCE_WEIGHTS))
@pytest.mark.parametrize("pos_weight", [False, True])
def test_bce_with_logits_matches_pytorch(reduction, weight, pos_weight):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(16)
    x, t = 5 * rng.standard_normal((4, 3)), rng.random((4, 3))
    w = None if BCE_WEIGHTS[weight] is None else rng.random(BCE_WEIGHTS[weight]) + 0.5
    pw = rng.random(3) * 3 if pos_weight else None
    tt = lambda a: None if a is None else torch.tensor(a)  # noqa: E731
    _torch_parity(
        lambda x, t: binary_cross_entropy_with_logits(x, t, weight=w, reduction=reduction, pos_weight=pw),
        lambda x, t: torch.nn.functional.binary_cross_entropy_with_logits(
            x, t, weight=tt(w), reduction=reduction, pos_weight=tt(pw)),
        [x, t], torch, grads_for=(0, 1),
    )


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_regression_losses_match_pytorch(name, reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(17)
    x, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    t[0, 0] = x[0, 0]  # L1's kink: PyTorch's gradient there is sign(0) = 0
    ours = {"mse_loss": mse_loss, "l1_loss": l1_loss}[name]
    _torch_parity(
        lambda x, t: ours(x, t, reduction=reduction),
        lambda x, t: getattr(torch.nn.functional, name)(x, t, reduction=reduction),
        [x, t], torch, grads_for=(0, 1),
    )


def test_all_ignored_matches_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(18).standard_normal((3, 4))
    t = np.full(3, -100)
    for ls in (0.0, 0.3):
        ours = Tensor(x.copy(), requires_grad=True)
        theirs = torch.tensor(x, requires_grad=True)
        a = cross_entropy(ours, t, label_smoothing=ls)
        b = torch.nn.functional.cross_entropy(theirs, torch.tensor(t), label_smoothing=ls)
        a.backward()
        b.backward()
        assert np.isnan(a.item()) and np.isnan(b.item())
        np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape,target", [((5, 4), [0, 3, 1, 2, 2]), ((2, 4, 3), [[0, 1, 3], [2, 2, 0]]), ((4,), 2)],
                         ids=["NC", "NCd", "C"])
def test_cross_entropy_common_case_equals_the_general_path(shape, target, reduction):
    """Class indices with no weights or smoothing take a shorter path: the same loss and gradient
    as the general one (forced here by weights of one)."""
    x = np.random.default_rng(3).standard_normal(shape)
    results = []
    for weight in (None, np.ones(4)):
        xt = Tensor(x, requires_grad=True)
        loss = cross_entropy(xt, Tensor(np.array(target)), weight=weight, reduction=reduction)
        loss.sum().backward()
        results.append((loss.numpy(), xt.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-14, atol=1e-15)
