"""rnnbp.distributions without PyTorch: float64 gradchecks of log_prob, entropy, rsample and
kl_divergence; sampling statistics on seeded draws; dtypes; validation; errors; and a text sampler
run unchanged under ``python -m rnnbp.torch``."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import rnnbp
import rnnbp.distributions as D
from rnnbp import Tensor
from rnnbp.autograd import gradcheck

ROOT = Path(__file__).resolve().parents[2]

_rng = np.random.default_rng(0)


def _pos(*shape):
    return _rng.uniform(0.5, 2.0, shape)


def _noise():
    """The same draws at every call, so that rsample is a fixed function of its parameters."""
    return np.random.default_rng(7)


# name -> (parameter arrays, fn(*tensors) -> output). Shapes cover scalars, (2,), (3, 2) and broadcasting.
GRADCHECK_CASES = {
    "normal_log_prob": ([_rng.standard_normal(2), _pos(3, 1), _rng.standard_normal((3, 2))],
                        lambda m, s, x: D.Normal(m, s).log_prob(x)),
    "normal_log_prob_scalar": ([np.array(0.3), np.array(1.7)], lambda m, s: D.Normal(m, s).log_prob(Tensor(0.2))),
    "normal_entropy": ([_pos(3, 2)], lambda s: D.Normal(0.0, s).entropy()),
    "normal_rsample": ([_rng.standard_normal((1, 2)), _pos(3, 1)],
                       lambda m, s: D.Normal(m, s).rsample((4,), generator=_noise())),
    "normal_kl": ([_rng.standard_normal((3, 2)), _pos(3, 2), _rng.standard_normal(2), _pos(2)],
                  lambda a, b, c, d: D.kl_divergence(D.Normal(a, b), D.Normal(c, d))),
    "categorical_logits_log_prob": ([_rng.standard_normal((3, 4))],
                                    lambda lg: D.Categorical(logits=lg).log_prob(Tensor(np.array([[0, 3, 1],
                                                                                                  [2, 2, 0]])))),
    "categorical_probs_log_prob": ([_pos(2, 4)], lambda p: D.Categorical(probs=p).log_prob(Tensor(np.array([3, 0])))),
    "categorical_logits_entropy": ([_rng.standard_normal((2, 5)) * 3], lambda lg: D.Categorical(logits=lg).entropy()),
    "categorical_probs_entropy": ([_pos(4)], lambda p: D.Categorical(probs=p).entropy()),
    "categorical_kl": ([_rng.standard_normal((2, 3)), _pos(3)],
                       lambda a, b: D.kl_divergence(D.Categorical(logits=a), D.Categorical(probs=b))),
    "bernoulli_probs_log_prob": ([_rng.uniform(0.1, 0.9, (2, 3))],
                                 lambda p: D.Bernoulli(p).log_prob(Tensor(np.array([1.0, 0.0, 1.0])))),
    "bernoulli_logits_log_prob": ([np.array([-30.0, -2.0, 0.0, 1.5, 25.0])],
                                  lambda lg: D.Bernoulli(logits=lg).log_prob(Tensor(np.array([1.0, 0, 1, 0, 0])))),
    "bernoulli_probs_entropy": ([_rng.uniform(0.1, 0.9, 3)], lambda p: D.Bernoulli(p).entropy()),
    "bernoulli_logits_entropy": ([np.array([-3.0, 0.0, 2.0])], lambda lg: D.Bernoulli(logits=lg).entropy()),
    "bernoulli_kl": ([_rng.uniform(0.1, 0.9, 3), _rng.standard_normal((2, 3))],
                     lambda p, lg: D.kl_divergence(D.Bernoulli(p), D.Bernoulli(logits=lg))),
    "uniform_rsample": ([_rng.standard_normal(2), _pos(2)],
                        lambda lo, w: D.Uniform(lo, lo + w).rsample((3,), generator=_noise())),
    "uniform_log_prob_entropy": ([np.array([-1.0, 0.0]), np.array([1.0, 3.0])],
                                 lambda lo, hi: (D.Uniform(lo, hi).log_prob(Tensor(np.array([0.5, 1.0]))),
                                                 D.Uniform(lo, hi).entropy())),
    "uniform_kl": ([np.array([0.0, 1.0]), np.array([-1.0, 0.0])],
                   lambda a, b: D.kl_divergence(D.Uniform(a, a + 1.0), D.Uniform(b, b + 3.0))),
    "independent_normal": ([_rng.standard_normal((2, 3)), _pos(2, 3)],
                           lambda m, s: (D.Independent(D.Normal(m, s), 1).log_prob(Tensor(np.ones((2, 3)))),
                                         D.Independent(D.Normal(m, s), 2).entropy())),
    "one_hot_categorical": ([_rng.standard_normal((2, 3))],
                            lambda lg: (D.OneHotCategorical(logits=lg).log_prob(Tensor(np.eye(3)[[2, 0]])),
                                        D.OneHotCategorical(logits=lg).entropy())),
}


@pytest.mark.parametrize("name", list(GRADCHECK_CASES))
def test_gradients_match_central_differences(name):
    arrays, fn = GRADCHECK_CASES[name]
    inputs = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-7, rtol=1e-5)


def test_gradcheck_table_can_fail():
    """A wrong gradient is caught: a detached scale hides d/dscale from the analytic side."""
    fn = lambda m, s: D.Normal(m, s.detach()).log_prob(Tensor(np.array([0.5, -1.0])))  # noqa: E731
    inputs = [Tensor(np.zeros(2), requires_grad=True), Tensor(np.ones(2), requires_grad=True)]
    assert not gradcheck(fn, inputs, raise_exception=False)


def test_straight_through_rsample_is_the_draw_with_the_gradient_of_probs():
    """Not a derivative central differences can see (the draw is piecewise constant): the value is a
    one-hot draw and the gradient that of ``probs``, by the estimator's definition."""
    logits = Tensor(_rng.standard_normal((2, 3)), requires_grad=True)
    w = Tensor(_rng.standard_normal((2, 3)))
    y = D.OneHotCategoricalStraightThrough(logits=logits).rsample(generator=_noise())
    np.testing.assert_array_equal(y.numpy(), D.OneHotCategorical(logits=logits).sample(generator=_noise()).numpy())
    (y * w).sum().backward()
    expected = logits.grad.numpy().copy()
    logits.grad = None
    (rnnbp.softmax(logits, -1) * w).sum().backward()
    np.testing.assert_allclose(expected, logits.grad.numpy(), rtol=1e-12)


def _within(freq, p, n, k=5.0):
    """Observed frequencies within k standard errors of the probabilities, entry by entry."""
    se = np.sqrt(p * (1 - p) / n)
    return np.all(np.abs(freq - p) <= k * se + 1e-12)


def test_categorical_frequencies_match_probabilities():
    probs = np.array([[0.0, 0.25, 0.0, 0.5, 0.25, 0.0, 0.0], [0.1, 0.05, 0.2, 0.05, 0.3, 0.2, 0.1]])
    rnnbp.manual_seed(0)
    n = 20_000
    draws = D.Categorical(probs=Tensor(probs * 3.0)).sample((n,))  # unnormalised weights
    assert draws.shape == (n, 2) and draws.dtype == np.int64
    for row in range(2):
        freq = np.bincount(draws.numpy()[:, row], minlength=7) / n
        assert _within(freq, probs[row], n), (row, freq)
        assert np.all(freq[probs[row] == 0] == 0)  # zero-probability classes are never drawn
    logits = np.log(probs[1])
    freq = np.bincount(D.Categorical(logits=Tensor(logits)).sample((n,)).numpy(), minlength=7) / n
    assert _within(freq, probs[1], n)
    assert not _within(freq, probs[1][::-1], n)  # the check itself can fail


def test_one_hot_categorical_frequencies_match_probabilities():
    probs = np.array([0.2, 0.5, 0.3])
    rnnbp.manual_seed(1)
    n = 20_000
    draws = D.OneHotCategorical(probs=Tensor(probs)).sample((n,)).numpy()
    assert draws.dtype == np.float64 and np.all(draws.sum(-1) == 1)
    assert _within(draws.mean(0), probs, n)


def test_normal_bernoulli_uniform_moments_match():
    rnnbp.manual_seed(2)
    n = 20_000
    x = D.Normal(Tensor(np.array([2.0, -1.0])), Tensor(np.array([3.0, 0.5]))).sample((n,)).numpy()
    for j, (m, s) in enumerate([(2.0, 3.0), (-1.0, 0.5)]):
        assert abs(x[:, j].mean() - m) < 5 * s / np.sqrt(n)
        assert abs(x[:, j].std() - s) < 5 * s / np.sqrt(2 * n)
    b = D.Bernoulli(Tensor(np.array([0.1, 0.5, 0.9]))).sample((n,)).numpy()
    assert set(np.unique(b)) <= {0.0, 1.0}
    assert _within(b.mean(0), np.array([0.1, 0.5, 0.9]), n)
    u = D.Uniform(Tensor(np.array([-1.0, 2.0])), Tensor(np.array([1.0, 2.5]))).sample((n,)).numpy()
    assert np.all(u >= [-1.0, 2.0]) and np.all(u < [1.0, 2.5])
    assert np.all(np.abs(u.mean(0) - [0.0, 2.25]) < 5 * np.array([2.0, 0.5]) / np.sqrt(12 * n))


def test_draws_are_reproducible_under_manual_seed_and_generator():
    dists = [D.Categorical(logits=rnnbp.zeros(3, 5)), D.Normal(rnnbp.zeros(3), 1.0), D.Bernoulli(rnnbp.full((3,), 0.5)),
             D.Uniform(0.0, 1.0)]
    for d in dists:
        rnnbp.manual_seed(11)
        a = d.sample((4,)).numpy()
        rnnbp.manual_seed(11)
        b = d.sample((4,)).numpy()
        c = d.sample((4,)).numpy()
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(b, c)
        g1, g2 = rnnbp.Generator().manual_seed(5), np.random.default_rng(5)
        np.testing.assert_array_equal(d.sample((4,), generator=g1).numpy(), d.sample((4,), generator=g2).numpy())


def test_float32_parameters_give_float32_results_and_gradients():
    loc, scale = rnnbp.zeros(3, requires_grad=True), rnnbp.ones(3, requires_grad=True)
    n = D.Normal(loc, scale)
    outs = [n.log_prob(rnnbp.ones(3)), n.entropy(), n.rsample((2,)), n.sample(), n.mean, n.variance,
            D.kl_divergence(n, D.Normal(0.0, 2.0))]
    assert all(o.dtype == np.float32 for o in outs), [o.dtype for o in outs]
    sum(o.sum() for o in outs if o.requires_grad).backward()
    assert loc.grad.dtype == np.float32 and scale.grad.dtype == np.float32
    logits = rnnbp.zeros(2, 4, requires_grad=True)
    c = D.Categorical(logits=logits)
    assert c.log_prob(Tensor(np.array([0, 1]))).dtype == np.float32 and c.entropy().dtype == np.float32
    assert c.probs.dtype == np.float32 and c.sample().dtype == np.int64
    b = D.Bernoulli(logits=rnnbp.zeros(2))
    assert b.sample().dtype == np.float32 and b.log_prob(rnnbp.ones(2)).dtype == np.float32
    assert D.Uniform(rnnbp.zeros(2), 1.0).rsample().dtype == np.float32


def test_sample_is_outside_the_graph_and_rsample_inside_it():
    loc = rnnbp.zeros(2, requires_grad=True)
    logits = rnnbp.zeros(2, requires_grad=True)
    assert not D.Normal(loc, 1.0).sample().requires_grad and D.Normal(loc, 1.0).rsample().requires_grad
    assert not D.Categorical(logits=logits).sample().requires_grad
    assert not D.Bernoulli(logits=logits).sample().requires_grad
    with pytest.raises(NotImplementedError, match="rsample"):
        D.Categorical(logits=logits).rsample()


def test_shapes_follow_sample_batch_event():
    d = D.Independent(D.Normal(rnnbp.zeros(4, 1, 3), rnnbp.ones(2, 3)), 1)
    assert d.batch_shape == (4, 2) and d.event_shape == (3,)
    assert d.sample((5, 6)).shape == (5, 6, 4, 2, 3) and d.log_prob(rnnbp.zeros(4, 2, 3)).shape == (4, 2)
    assert d.sample(rnnbp.Size([0])).shape == (0, 4, 2, 3)
    c = D.Categorical(logits=rnnbp.zeros(2, 3, 7))
    assert c.sample((0,)).shape == (0, 2, 3)  # PyTorch's multinomial refuses zero draws; rnnbp returns none
    assert c.expand((5, 2, 3)).sample((4,)).shape == (4, 5, 2, 3)
    assert c.log_prob(Tensor(np.zeros((9, 1, 1), dtype=np.int64))).shape == (9, 2, 3)
    with pytest.raises(TypeError, match="sample_shape must be a tuple of ints"):
        c.sample(5)


def test_validation_can_be_switched_off_by_default_and_per_instance():
    bad = Tensor(np.array([-1.0]))
    with pytest.raises(ValueError, match="Expected parameter scale"):
        D.Normal(0.0, bad)
    assert D.Normal(0.0, bad, validate_args=False).batch_shape == (1,)
    D.Distribution.set_default_validate_args(False)
    try:
        d = D.Normal(0.0, bad)
        assert np.isnan(d.log_prob(Tensor(np.array([0.0]))).numpy()).all()
        assert D.Normal(0.0, 1.0, validate_args=True)._validate_args
    finally:
        D.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError, match="Expected parameter scale"):
        D.Normal(0.0, bad)
    with pytest.raises(ValueError, match="expected True or False"):
        D.Distribution.set_default_validate_args("yes")


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="must all be instances of Number or Tensor, got ndarray"):
        D.Normal(np.zeros(2), 1.0)
    with pytest.raises(ValueError, match=r"shapes \(2,\), \(3,\) do not broadcast"):
        D.Normal(rnnbp.zeros(2), rnnbp.ones(3))
    with pytest.raises(TypeError, match="`probs` must be a Tensor, got list"):
        D.Categorical([0.5, 0.5])
    with pytest.raises(ValueError, match="inf, nan or element < 0"):
        D.Categorical(probs=Tensor(np.array([0.5, -0.5])), validate_args=False).sample()
    with pytest.raises(NotImplementedError, match="Normal.cdf"):
        D.Normal(0.0, 1.0).cdf(rnnbp.zeros(1))
    with pytest.raises(NotImplementedError, match="p type Normal and q type Categorical"):
        D.kl_divergence(D.Normal(0.0, 1.0), D.Categorical(logits=rnnbp.zeros(2)))
    with pytest.raises(TypeError, match="Distribution subclass"):
        D.register_kl(D.Normal, int)


def test_register_kl_dispatches_to_the_most_specific_pair():
    class Wide(D.Normal):
        pass

    calls = []
    original = D.kl._KL_REGISTRY[D.Normal, D.Normal]
    try:
        @D.register_kl(Wide, D.Normal)
        def _kl_wide(p, q):
            calls.append("wide")
            return original(p, q)

        D.kl_divergence(Wide(0.0, 1.0), D.Normal(0.0, 1.0))
        D.kl_divergence(D.Normal(0.0, 1.0), Wide(0.0, 1.0))
        assert calls == ["wide"]
    finally:
        del D.kl._KL_REGISTRY[Wide, D.Normal]
        D.kl._KL_MEMOIZE.clear()


def test_stand_in_maps_torch_distributions_and_its_files():
    import rnnbp.torch as standin

    standin.install()
    try:
        import torch

        assert torch.distributions.Normal is rnnbp.distributions.Normal  # the attribute, before any import of it
        import torch.distributions.kl
        from torch.distributions.bernoulli import Bernoulli
        from torch.distributions.constraints import positive
        from torch.distributions.distribution import Distribution
        from torch.distributions.one_hot_categorical import OneHotCategorical

        assert torch.distributions.kl.kl_divergence is D.kl_divergence and Bernoulli is D.Bernoulli
        assert positive is D.constraints.positive and Distribution is D.Distribution
        assert OneHotCategorical is D.OneHotCategorical and torch.distributions.normal.Normal is D.Normal
        with pytest.raises(standin.NotInRnnbpError, match="torch.distributions.MultivariateNormal"):
            torch.distributions.MultivariateNormal
    finally:
        standin.uninstall()


SAMPLER = '''
import torch
import torch.nn as nn
import torch.distributions as dist
from torch.distributions.categorical import Categorical

assert torch.distributions.Categorical is dist.Categorical is Categorical
text = "hello world"
vocab = sorted(set(text))
stoi = {ch: i for i, ch in enumerate(vocab)}


class CharModel(nn.Module):
    """A character model stepped one character at a time, as a sampler runs it."""

    def __init__(self, n):
        super().__init__()
        self.emb = nn.Embedding(n, 8)
        self.cell = nn.GRUCell(8, 16)
        self.out = nn.Linear(16, n)

    def forward(self, x, h=None):
        h = self.cell(self.emb(x), h)
        return self.out(h), h


def generate(model, n_chars, temperature=0.8):
    x, h, out = torch.tensor([stoi["h"]]), None, "h"
    with torch.no_grad():
        for _ in range(n_chars):
            logits, h = model(x, h)
            idx = Categorical(logits=logits / temperature).sample()
            assert idx.dtype == torch.int64 and tuple(idx.shape) == (1,)
            out += vocab[idx.item()]
            x = idx
    return out


torch.manual_seed(0)
model = CharModel(len(vocab))
data = torch.tensor([stoi[c] for c in text])
opt = torch.optim.Adam(model.parameters(), lr=0.05)
for _ in range(30):
    h, loss = None, 0.0
    for t in range(len(text) - 1):
        logits, h = model(data[t:t + 1], h)
        loss = loss - dist.Categorical(logits=logits).log_prob(data[t + 1:t + 2]).sum()
    loss = loss / (len(text) - 1)
    opt.zero_grad()
    loss.backward()
    opt.step()
torch.manual_seed(1)
a = generate(model, 20)
torch.manual_seed(1)
b = generate(model, 20)
assert a == b and len(a) == 21 and set(a) <= set(vocab), (a, b)
print(f"loss {loss.item():.3f} sample {a!r}")
'''


def test_text_sampler_runs_unchanged_under_the_stand_in(tmp_path):
    script = tmp_path / "sample_text.py"
    script.write_text(textwrap.dedent(SAMPLER))
    run = subprocess.run([sys.executable, "-m", "rnnbp.torch", str(script)], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stderr
    loss = float(run.stdout.split()[1])
    assert loss < 0.5, run.stdout  # 30 Adam steps on one short string fit it well
    assert run.stdout.split("sample ")[1].startswith("'h")
