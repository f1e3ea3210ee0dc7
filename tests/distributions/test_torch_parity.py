"""rnnbp.distributions against torch.distributions in float64: log_prob, entropy, moments and KL
values with every parameter gradient to 1e-10, sample shapes and dtypes, and the same validation
errors in the same cases."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

import rnnbp
import rnnbp.distributions as RD
from rnnbp import Tensor

torch = pytest.importorskip("torch")
TD = torch.distributions

_rng = np.random.default_rng(0)


def _uniform(low, high, shape):
    return _rng.uniform(low, high, shape)


@dataclass
class Case:
    """One distribution: its float parameters, how to build it from them, and a value to score."""

    name: str
    params: dict
    build: object  # (D, params) -> Distribution, D being rnnbp.distributions or torch.distributions
    value: np.ndarray | None = None
    numbers: dict = field(default_factory=dict)


CASES = [
    Case("normal", {"loc": _rng.standard_normal((3, 2)), "scale": _uniform(0.5, 2, (3, 2))},
         lambda D, p: D.Normal(p["loc"], p["scale"]), _rng.standard_normal((4, 3, 2))),
    Case("normal_broadcast", {"loc": _rng.standard_normal(2), "scale": _uniform(0.5, 2, (3, 1))},
         lambda D, p: D.Normal(p["loc"], p["scale"]), _rng.standard_normal((3, 2))),
    Case("normal_number_scale", {"loc": _rng.standard_normal(3)},
         lambda D, p: D.Normal(p["loc"], 2.0), _rng.standard_normal(3)),
    Case("categorical_logits", {"logits": _rng.standard_normal((2, 4))},
         lambda D, p: D.Categorical(logits=p["logits"]), _rng.integers(0, 4, (5, 2))),
    Case("categorical_probs", {"probs": _uniform(0.1, 2, (2, 4))},
         lambda D, p: D.Categorical(probs=p["probs"]), _rng.integers(0, 4, (2,))),
    Case("categorical_1d", {"logits": _rng.standard_normal(5) * 3},
         lambda D, p: D.Categorical(logits=p["logits"]), _rng.integers(0, 5, (3, 2))),
    Case("bernoulli_probs", {"probs": _uniform(0.05, 0.95, (3,))},
         lambda D, p: D.Bernoulli(probs=p["probs"]), _rng.integers(0, 2, (2, 3)).astype(float)),
    Case("bernoulli_logits", {"logits": np.array([[-25.0, -3.0, 0.0], [0.5, 4.0, 15.0]])},
         lambda D, p: D.Bernoulli(logits=p["logits"]), np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])),
    Case("uniform", {"low": _rng.standard_normal(3), "width": _uniform(0.5, 2, (3,))},
         lambda D, p: D.Uniform(p["low"], p["low"] + p["width"]), None),
    Case("independent_normal", {"loc": _rng.standard_normal((4, 3)), "scale": _uniform(0.5, 2, (4, 3))},
         lambda D, p: D.Independent(D.Normal(p["loc"], p["scale"]), 1), _rng.standard_normal((2, 4, 3))),
    Case("one_hot_categorical", {"logits": _rng.standard_normal((2, 3))},
         lambda D, p: D.OneHotCategorical(logits=p["logits"]), np.eye(3)[[[0, 2], [1, 1]]]),
]
# A value inside the uniform's interval for every batch entry.
CASES[8].value = CASES[8].params["low"] + 0.3 * CASES[8].params["width"]

QUANTITIES = {
    "log_prob": lambda d, v: d.log_prob(v),
    "entropy": lambda d, v: d.entropy(),
    "mean": lambda d, v: d.mean,
    "variance": lambda d, v: d.variance,
    "stddev": lambda d, v: d.stddev,
    "mode": lambda d, v: d.mode,
    "perplexity": lambda d, v: d.perplexity(),
}


def _make(lib: str, case: Case):
    """The case's distribution in ``lib`` from fresh leaf tensors, the value, and the leaves."""
    if lib == "torch":
        leaves = {k: torch.tensor(a, requires_grad=True) for k, a in case.params.items()}
        value = None if case.value is None else torch.from_numpy(np.array(case.value))
        return case.build(TD, leaves), value, leaves
    leaves = {k: Tensor(np.array(a), requires_grad=True) for k, a in case.params.items()}
    value = None if case.value is None else Tensor(np.array(case.value))
    return case.build(RD, leaves), value, leaves


def _weighted_finite(lib: str, out, weights):
    """sum_i w_i out_i over the finite entries of ``out`` (an inf KL or -inf log-density has no gradient)."""
    finite = np.asarray(np.isfinite(out.detach().numpy()))
    picked = out[torch.from_numpy(finite) if lib == "torch" else Tensor(finite)]
    w = weights(int(finite.sum()))
    return (picked * (torch.from_numpy(w) if lib == "torch" else Tensor(w))).sum()


def _evaluate(lib: str, case: Case, quantity: str):
    dist, value, leaves = _make(lib, case)
    try:
        out = QUANTITIES[quantity](dist, value)
    except NotImplementedError:
        return None, None
    grads = {}
    if out.requires_grad:
        _weighted_finite(lib, out, lambda n: np.cos(np.arange(n))).backward()
        for k, leaf in leaves.items():
            grads[k] = None if leaf.grad is None else np.array(leaf.grad.numpy())
    return np.array(out.detach().numpy()), grads


@pytest.mark.parametrize("quantity", list(QUANTITIES))
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_values_and_gradients_match_torch(case, quantity):
    ref, ref_grads = _evaluate("torch", case, quantity)
    out, grads = _evaluate("rnnbp", case, quantity)
    if ref is None:
        assert out is None, f"{case.name}.{quantity}: torch does not implement it, rnnbp does"
        return
    assert out is not None, f"{case.name}.{quantity}: torch implements it, rnnbp raised NotImplementedError"
    assert out.shape == ref.shape and out.dtype == ref.dtype, (out.shape, ref.shape, out.dtype, ref.dtype)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10, equal_nan=True)
    assert set(grads) == set(ref_grads)
    for k, ref_grad in ref_grads.items():
        grad = grads[k]
        if ref_grad is None or not np.any(ref_grad):
            assert grad is None or not np.any(grad), f"{case.name}.{quantity}: d/d{k} should be zero"
            continue
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-10, err_msg=f"{case.name}.{quantity} d/d{k}")


def test_bernoulli_log_prob_and_entropy_exact_for_large_logits():
    """Past softplus's linear cut-off (|x| > 20) the log-density stays PyTorch's to 1e-12, as do the gradients."""
    logits, value = np.array([-40.0, -25.0, 21.0, 25.0, 40.0]), np.array([1.0, 0.0, 0.0, 1.0, 0.0])
    for quantity in ("log_prob", "entropy"):
        case = Case("bernoulli_large", {"logits": logits}, lambda D, p: D.Bernoulli(logits=p["logits"]), value)
        (ref, ref_grads), (out, grads) = _evaluate("torch", case, quantity), _evaluate("rnnbp", case, quantity)
        np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12, err_msg=quantity)
        np.testing.assert_allclose(grads["logits"], ref_grads["logits"], rtol=1e-12, atol=1e-12, err_msg=quantity)


KL_PAIRS = [
    ("normal", {"a": _rng.standard_normal((3, 2)), "b": _uniform(0.5, 2, (3, 2)), "c": _rng.standard_normal(2),
                "d": _uniform(0.5, 2, (2,))},
     lambda D, p: (D.Normal(p["a"], p["b"]), D.Normal(p["c"], p["d"]))),
    ("categorical", {"a": _rng.standard_normal((3, 4)), "b": _uniform(0.1, 1, (4,))},
     lambda D, p: (D.Categorical(logits=p["a"]), D.Categorical(probs=p["b"]))),
    ("categorical_probs", {"a": _uniform(0.1, 1, (2, 4)), "b": _rng.standard_normal((2, 4))},
     lambda D, p: (D.Categorical(probs=p["a"]), D.Categorical(logits=p["b"]))),
    ("bernoulli", {"a": _uniform(0.05, 0.95, (2, 3)), "b": _rng.standard_normal((2, 3))},  # torch's needs equal shapes
     lambda D, p: (D.Bernoulli(probs=p["a"]), D.Bernoulli(logits=p["b"]))),
    ("uniform", {"a": np.array([0.0, 0.0]), "b": np.array([1.0, 2.0]), "c": np.array([-1.0, 0.5])},
     lambda D, p: (D.Uniform(p["a"], p["b"]), D.Uniform(p["c"], p["b"] + 1.0))),  # second entry: inf
    ("independent", {"a": _rng.standard_normal((2, 3)), "b": _uniform(0.5, 2, (2, 3)), "c": _rng.standard_normal(3)},
     lambda D, p: (D.Independent(D.Normal(p["a"], p["b"]), 1), D.Independent(D.Normal(p["c"], 1.5), 1))),
    ("one_hot", {"a": _rng.standard_normal((2, 3)), "b": _rng.standard_normal((2, 3))},
     lambda D, p: (D.OneHotCategorical(logits=p["a"]), D.OneHotCategorical(logits=p["b"]))),
]


@pytest.mark.parametrize("name,params,build", KL_PAIRS, ids=[k[0] for k in KL_PAIRS])
def test_kl_divergence_and_gradients_match_torch(name, params, build):
    case = Case(name, params, lambda D, p: D.kl_divergence(*build(D, p)))
    results = {}
    for lib in ("torch", "rnnbp"):
        out, _, leaves = _make(lib, case)
        _weighted_finite(lib, out, lambda n: 1.0 + np.arange(n)).backward()
        results[lib] = np.array(out.detach().numpy()), {k: np.array(v.grad.numpy()) for k, v in leaves.items()}
    (ref, ref_grads), (out, grads) = results["torch"], results["rnnbp"]
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    for k in ref_grads:
        np.testing.assert_allclose(grads[k], ref_grads[k], rtol=1e-10, atol=1e-10, err_msg=f"d/d{k}")


def test_categorical_kl_is_inf_where_q_has_no_mass_and_zero_terms_where_p_has_none():
    p, q = [0.5, 0.5, 0.0], [0.5, 0.0, 0.5]
    for a, b in ((p, q), (q, p), (p, p)):
        ours = RD.kl_divergence(RD.Categorical(rnnbp.tensor(a, dtype=rnnbp.float64)),
                                RD.Categorical(rnnbp.tensor(b, dtype=rnnbp.float64)))
        ref = TD.kl_divergence(TD.Categorical(torch.tensor(a, dtype=torch.float64)),
                               TD.Categorical(torch.tensor(b, dtype=torch.float64)))
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-12)


# (sample_shape, a builder over (D, T)) with T making float64 tensors: draws must have torch's shapes.
SHAPE_CASES = [
    lambda D, T: D.Normal(T(np.zeros((2, 3))), T(np.ones(3))),
    lambda D, T: D.Normal(0.0, 1.0),
    lambda D, T: D.Uniform(T(np.zeros(3)), 2.0),
    lambda D, T: D.Categorical(logits=T(np.zeros((2, 3, 4)))),
    lambda D, T: D.Categorical(probs=T(np.ones(5))),
    lambda D, T: D.Bernoulli(T(np.full((4,), 0.3))),
    lambda D, T: D.Bernoulli(logits=0.2),
    lambda D, T: D.OneHotCategorical(probs=T(np.ones((2, 3)))),
    lambda D, T: D.Independent(D.Normal(T(np.zeros((2, 3))), 1.0), 1),
    lambda D, T: D.Independent(D.Bernoulli(T(np.full((2, 3), 0.5))), 2),
]


@pytest.mark.parametrize("sample_shape", [(), (5,), (2, 3)])
@pytest.mark.parametrize("index", range(len(SHAPE_CASES)))
def test_sample_shapes_and_dtypes_match_torch(index, sample_shape):
    ours = SHAPE_CASES[index](RD, lambda a: Tensor(np.asarray(a, dtype=np.float64)))
    ref = SHAPE_CASES[index](TD, lambda a: torch.tensor(a, dtype=torch.float64))
    assert ours.batch_shape == tuple(ref.batch_shape) and ours.event_shape == tuple(ref.event_shape)
    assert ours.has_rsample == ref.has_rsample
    pairs = [(ours.sample(sample_shape), ref.sample(sample_shape))]
    if ref.has_rsample:
        pairs.append((ours.rsample(sample_shape), ref.rsample(sample_shape)))
    for x, y in pairs:
        assert x.shape == tuple(y.shape) and str(x.dtype) == str(y.dtype).replace("torch.", "")
        assert not x.requires_grad
    ours_e, ref_e = ours.expand((3,) + tuple(ours.batch_shape)), ref.expand((3,) + tuple(ref.batch_shape))
    assert ours_e.batch_shape == tuple(ref_e.batch_shape) and ours_e.event_shape == tuple(ref_e.event_shape)
    assert ours_e.sample(sample_shape).shape == tuple(ref_e.sample(sample_shape).shape)
    if ref.has_enumerate_support:
        for expand in (True, False):
            np.testing.assert_array_equal(ours.enumerate_support(expand).numpy(), ref.enumerate_support(expand).numpy())


def test_expanded_distribution_scores_as_torch():
    logits, value = _rng.standard_normal(4), np.array([[0, 3, 1], [2, 2, 0]])
    ours = RD.Categorical(logits=Tensor(logits)).expand((2, 3)).log_prob(Tensor(value))
    ref = TD.Categorical(logits=torch.tensor(logits)).expand((2, 3)).log_prob(torch.from_numpy(value))
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-12)
    ours = RD.Normal(Tensor(np.array([0.5])), 2.0).expand((2, 3)).log_prob(Tensor(np.ones((2, 3))))
    ref = TD.Normal(torch.tensor([0.5], dtype=torch.float64), 2.0).expand((2, 3)).log_prob(torch.ones(2, 3).double())
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-12)


nan, inf = math.nan, math.inf
# Each: what to do with (D, T), T making float64 tensors from lists. rnnbp must raise ValueError exactly
# where torch does (torch raises ValueError in all of these).
VALIDATION_CASES = [
    lambda D, T: D.Normal(T([0.0, 1.0]), T([1.0, 0.0])),
    lambda D, T: D.Normal(T([nan]), T([1.0])),
    lambda D, T: D.Normal(T([0.0]), T([1.0])).log_prob(T([nan])),
    lambda D, T: D.Normal(T([0.0]), T([1.0])).log_prob(T([inf])),
    lambda D, T: D.Normal(0.0, 1.0).log_prob(0.5),
    lambda D, T: D.Normal(T([0.0] * 3), 1.0).log_prob(T([0.0] * 2)),
    lambda D, T: D.Normal(T([0.0]), T([-1.0]), validate_args=False),
    lambda D, T: D.Categorical(T([0.5, -0.1, 0.6])),
    lambda D, T: D.Categorical(T([0.0, 0.0])),
    lambda D, T: D.Categorical(T([1.0, 2.0])),
    lambda D, T: D.Categorical(T([1.0, nan])),
    lambda D, T: D.Categorical(logits=T([0.0, inf])),
    lambda D, T: D.Categorical(logits=T([0.0, -inf])),
    lambda D, T: D.Categorical(T(0.5)),
    lambda D, T: D.Categorical(),
    lambda D, T: D.Categorical(T([0.5, 0.5]), T([0.0, 0.0])),
    lambda D, T: D.Categorical(T([1.0, 1.0])).log_prob(T([2.0]).long()),
    lambda D, T: D.Categorical(T([1.0, 1.0])).log_prob(T([-1.0]).long()),
    lambda D, T: D.Categorical(T([1.0, 1.0])).log_prob(T([0.5])),
    lambda D, T: D.Categorical(T([1.0, 1.0])).log_prob(T([[0.0], [1.0]]).long()),
    lambda D, T: D.Categorical(T([[1.0, 1.0]] * 3)).log_prob(T([0.0, 1.0]).long()),
    lambda D, T: D.Bernoulli(T([1.5])),
    lambda D, T: D.Bernoulli(T([1.0, 0.0])),
    lambda D, T: D.Bernoulli(logits=T([inf])),
    lambda D, T: D.Bernoulli(logits=T([nan])),
    lambda D, T: D.Bernoulli(probs=0.3).log_prob(T(0.5)),
    lambda D, T: D.Bernoulli(probs=0.3).log_prob(T([1.0, 0.0])),
    lambda D, T: D.Bernoulli(),
    lambda D, T: D.Uniform(T([1.0]), T([0.0])),
    lambda D, T: D.Uniform(T([1.0]), T([1.0])),
    lambda D, T: D.Uniform(0.0, 1.0).log_prob(T(1.5)),
    lambda D, T: D.Uniform(0.0, 1.0).log_prob(T(1.0)),
    lambda D, T: D.Independent(D.Normal(T([0.0] * 3), 1.0), 2),
    lambda D, T: D.Independent(D.Normal(T([0.0] * 3), 1.0), 1).log_prob(T([0.0] * 2)),
    lambda D, T: D.OneHotCategorical(logits=T([0.0, 0.0])).log_prob(T([1.0, 1.0])),
    lambda D, T: D.OneHotCategorical(logits=T([0.0, 0.0])).log_prob(T([0.0, 1.0])),
]


@pytest.mark.parametrize("index", range(len(VALIDATION_CASES)))
def test_validation_errors_raised_where_torch_raises_them(index):
    def outcome(D, T):
        try:
            VALIDATION_CASES[index](D, T)
        except ValueError as exc:
            return "ValueError", str(exc).split(" ")[:2]
        return "ok", None

    ref = outcome(TD, lambda v: torch.tensor(v, dtype=torch.float64))
    ours = outcome(RD, lambda v: rnnbp.tensor(v, dtype=rnnbp.float64))
    assert ours[0] == ref[0], f"torch: {ref}, rnnbp: {ours}"
    assert ours[1] == ref[1]  # the message opens with the same words ("Expected parameter", "Either `probs`", ...)
