"""Gaps a PyTorch port met: torch.normal, get/set_rng_state and fork_rng, finfo as Python floats,
softmax/log_softmax with dtype=, F.gumbel_softmax. Gradchecks in float64, PyTorch parity where
PyTorch is installed (random ops: shapes, dtypes, statistics and determinism, not its stream)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import rnnbp
import rnnbp.nn.functional as F
from rnnbp import Tensor
from rnnbp.autograd import gradcheck, random as R


def _t64(shape, seed=0, requires_grad=True):
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=requires_grad)


# ----------------------------------------------------------------- torch.normal
@pytest.mark.parametrize("mean_shape, std_shape, expected", [
    ((3, 1), (1, 4), (3, 4)), ((2, 3), (2, 3), (2, 3)), ((), (5,), (5,)), ((4,), None, (4,)), (None, (2, 2), (2, 2)),
])
def test_normal_tensor_overloads_shapes_dtypes_and_zero_gradients_as_torch(mean_shape, std_shape, expected):
    torch = pytest.importorskip("torch")
    mean = 0.5 if mean_shape is None else Tensor(np.zeros(mean_shape), requires_grad=True)
    std = 2.0 if std_shape is None else Tensor(np.ones(std_shape), requires_grad=True)
    tmean = 0.5 if mean_shape is None else torch.zeros(mean_shape, dtype=torch.float64, requires_grad=True)
    tstd = 2.0 if std_shape is None else torch.ones(std_shape, dtype=torch.float64, requires_grad=True)
    ours, theirs = rnnbp.normal(mean, std), torch.normal(tmean, tstd)
    assert ours.shape == tuple(theirs.shape) == expected
    assert ours.dtype == np.float64 and ours.requires_grad == theirs.requires_grad
    ours.sum().backward()
    theirs.sum().backward()
    for a, b in ((mean, tmean), (std, tstd)):
        if isinstance(a, Tensor):  # PyTorch's normal samples, it does not reparameterise: zero gradients
            np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())
            assert not a.grad.numpy().any()


def test_normal_float_overload_size_dtype_requires_grad_as_torch():
    torch = pytest.importorskip("torch")
    for kwargs in ({}, {"dtype": rnnbp.float64}, {"requires_grad": True}):
        tkwargs = {k: (torch.float64 if k == "dtype" else v) for k, v in kwargs.items()}
        ours, theirs = rnnbp.normal(1.0, 2.0, (2, 3), **kwargs), torch.normal(1.0, 2.0, (2, 3), **tkwargs)
        assert ours.shape == tuple(theirs.shape)
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        assert ours.requires_grad == theirs.requires_grad and ours.is_leaf
    assert rnnbp.normal(0.0, 1.0, size=(4,)).shape == (4,)
    # float32 mean with float64 std gives mean's dtype, as PyTorch
    assert rnnbp.normal(rnnbp.zeros(3), rnnbp.ones(3, dtype=rnnbp.float64)).dtype == np.float32
    assert torch.normal(torch.zeros(3), torch.ones(3, dtype=torch.float64)).dtype == torch.float32


def test_normal_statistics_match_mean_and_std():
    rnnbp.manual_seed(1)
    mean = Tensor(np.array([-3.0, 0.0, 5.0]))
    std = Tensor(np.array([0.5, 1.0, 2.0]))
    draws = rnnbp.normal(mean.expand(40000, 3), std)
    np.testing.assert_allclose(draws.numpy().mean(0), mean.numpy(), atol=0.05)
    np.testing.assert_allclose(draws.numpy().std(0), std.numpy(), rtol=0.03)
    assert rnnbp.normal(Tensor(np.array(2.0)), 0.0).item() == 2.0  # std 0 is allowed: the mean itself


def test_normal_is_deterministic_under_manual_seed_and_generator():
    rnnbp.manual_seed(7)
    a = rnnbp.normal(rnnbp.zeros(5), 1.0)
    rnnbp.manual_seed(7)
    b = rnnbp.normal(rnnbp.zeros(5), 1.0)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    g1, g2 = rnnbp.Generator().manual_seed(3), rnnbp.Generator().manual_seed(3)
    np.testing.assert_array_equal(rnnbp.normal(0.0, rnnbp.ones(4), generator=g1).numpy(),
                                  rnnbp.normal(0.0, rnnbp.ones(4), generator=g2).numpy())
    # normal(mean, std) is mean + std * randn from the same stream
    rnnbp.manual_seed(9)
    z = rnnbp.randn(4, dtype=rnnbp.float64)
    rnnbp.manual_seed(9)
    np.testing.assert_allclose(rnnbp.normal(Tensor(np.full(4, 1.0)), 3.0).numpy(), 1.0 + 3.0 * z.numpy())


@pytest.mark.parametrize("args, error, words", [
    ((0.0, -1.0, (2,)), ValueError, "std >= 0.0, but found std -1"),
    ((Tensor(np.zeros(2)), -1.0), ValueError, "std >= 0.0"),
    ((0.0, Tensor(np.array([1.0, -1.0]))), ValueError, "all elements of std >= 0.0"),
    ((Tensor(np.zeros(3)), Tensor(np.ones(4))), ValueError, "shapes of mean (3,) and std (4,) do not broadcast"),
    ((Tensor(np.zeros(3, dtype=np.int64)), 1.0), TypeError, "mean must be a floating-point Tensor, got dtype int64"),
    ((0.0, 1.0), TypeError, "give the size"),
])
def test_normal_refuses_bad_input_naming_it(args, error, words):
    with pytest.raises(error, match="normal: ") as info:
        rnnbp.normal(*args)
    assert words in str(info.value)


# ----------------------------------------------------------------- rng state and fork_rng
def test_get_set_rng_state_replays_the_stream():
    rnnbp.manual_seed(123)
    state = rnnbp.get_rng_state()
    assert isinstance(state, Tensor) and state.dtype == np.uint8 and state.shape == (R.RNG_STATE_BYTES,)
    first = (rnnbp.randn(3).numpy(), rnnbp.rand(2).numpy(), rnnbp.randint(0, 10, (3,)).numpy())
    R.default_generator().integers(0, 5, size=1, dtype=np.int32)  # leaves a buffered 32-bit half-word
    middle = rnnbp.get_rng_state()
    after_middle = rnnbp.rand(3).numpy()
    rnnbp.set_rng_state(state)
    again = (rnnbp.randn(3).numpy(), rnnbp.rand(2).numpy(), rnnbp.randint(0, 10, (3,)).numpy())
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x, y)
    rnnbp.set_rng_state(middle)
    np.testing.assert_array_equal(rnnbp.rand(3).numpy(), after_middle)
    before = rnnbp.get_rng_state()
    before.numpy()[:] = 0  # the returned tensor is a copy: changing it changes the generator not
    assert rnnbp.get_rng_state().numpy().any()


def test_rng_state_round_trips_through_save_and_load(tmp_path):
    rnnbp.manual_seed(5)
    rnnbp.save({"rng": rnnbp.get_rng_state()}, tmp_path / "ckpt.pt")
    expected = rnnbp.randn(4).numpy()
    rnnbp.randn(10)
    rnnbp.set_rng_state(rnnbp.load(tmp_path / "ckpt.pt")["rng"])
    np.testing.assert_array_equal(rnnbp.randn(4).numpy(), expected)


def test_set_rng_state_refuses_other_states():
    with pytest.raises(TypeError, match=r"set_rng_state: expected the uint8 Tensor of shape \(37,\).*float32"):
        rnnbp.set_rng_state(rnnbp.zeros(37))
    with pytest.raises(TypeError, match="saved by PyTorch"):
        rnnbp.set_rng_state(Tensor(np.zeros(5056, dtype=np.uint8)))
    with pytest.raises(TypeError, match="got dict"):
        rnnbp.set_rng_state({"state": 1})
    with pytest.raises(ValueError, match="increment must be odd"):
        rnnbp.set_rng_state(Tensor(np.zeros(37, dtype=np.uint8)))


def test_rng_state_is_a_uint8_tensor_as_in_torch():
    torch = pytest.importorskip("torch")
    assert torch.get_rng_state().dtype == torch.uint8 and rnnbp.get_rng_state().dtype == rnnbp.uint8


def test_fork_rng_restores_the_state_on_exit_and_on_error():
    rnnbp.manual_seed(0)
    expected = rnnbp.randn(3).numpy()
    rnnbp.manual_seed(0)
    with rnnbp.autograd.random.fork_rng():
        rnnbp.randn(100)
        rnnbp.manual_seed(99)  # reseeding inside reseeds only the block
        rnnbp.rand(4)
    np.testing.assert_array_equal(rnnbp.randn(3).numpy(), expected)
    rnnbp.manual_seed(0)
    with pytest.raises(KeyError):
        with R.fork_rng(devices=[]):
            rnnbp.randn(7)
            raise KeyError("inside")
    np.testing.assert_array_equal(rnnbp.randn(3).numpy(), expected)
    rnnbp.manual_seed(0)
    with R.fork_rng(enabled=False):
        rnnbp.randn(3)
    assert not np.array_equal(rnnbp.randn(3).numpy(), expected)
    with pytest.raises(rnnbp.DeviceError, match="fork_rng: rnnbp runs on the CPU.*devices=None"):
        with R.fork_rng(devices=[0]):
            pass


def test_torch_random_names_under_the_stand_in():
    import rnnbp.torch as stand_in

    stand_in.install()
    try:
        import torch

        torch.manual_seed(4)
        state = torch.random.get_rng_state()
        with torch.random.fork_rng():
            a = torch.randn(2)
        torch.random.set_rng_state(state)
        np.testing.assert_array_equal(torch.randn(2).numpy(), a.numpy())
        torch.random.manual_seed(4)
        np.testing.assert_array_equal(torch.randn(2).numpy(), a.numpy())
        assert torch.normal is rnnbp.normal and torch.get_rng_state is rnnbp.get_rng_state
    finally:
        stand_in.uninstall()


# ----------------------------------------------------------------- finfo
@pytest.mark.parametrize("name", ["float16", "float32", "float64"])
def test_finfo_values_are_python_floats_equal_to_torch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = rnnbp.finfo(getattr(rnnbp, name)), torch.finfo(getattr(torch, name))
    for field in ("eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        value = getattr(ours, field)
        assert type(value) is float, field
        assert value == getattr(theirs, field), field
    assert ours.bits == theirs.bits and ours.dtype == theirs.dtype == name
    assert repr(ours) == repr(theirs)


def test_finfo_default_equality_and_errors():
    assert rnnbp.finfo() == rnnbp.finfo(rnnbp.float32) != rnnbp.finfo(rnnbp.float64)
    assert rnnbp.finfo("float64").eps == 2.0 ** -52
    assert rnnbp.finfo(rnnbp.float32).resolution == 1e-06  # NumPy's is float32(1e-06) = 9.99999997e-07
    with pytest.raises(TypeError, match="finfo: requires a floating point dtype, got int64; use iinfo"):
        rnnbp.finfo(rnnbp.int64)


# ----------------------------------------------------------------- softmax / log_softmax with dtype
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_dtype_casts_first_as_torch(fn):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32) * 30
    ours_x, their_x = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours = getattr(F, fn)(ours_x, 1, dtype=rnnbp.float64)
    theirs = getattr(torch.nn.functional, fn)(their_x, 1, dtype=torch.float64)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    w = np.random.default_rng(1).standard_normal((3, 4))
    (ours * Tensor(w)).sum().backward()
    (theirs * torch.tensor(w)).sum().backward()
    assert ours_x.grad.dtype == np.float32  # the gradient comes back in the input's dtype
    np.testing.assert_allclose(ours_x.grad.numpy(), their_x.grad.numpy(), rtol=1e-5, atol=1e-6)
    # the same on rnnbp.softmax / rnnbp.log_softmax (torch.softmax(input, dim, dtype))
    top = getattr(rnnbp, fn)(Tensor(x), 1, rnnbp.float64)
    np.testing.assert_allclose(top.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    method = getattr(Tensor(x), fn)(1, dtype=rnnbp.float64)  # and x.softmax(dim, dtype=...)
    assert method.dtype == np.float64
    np.testing.assert_allclose(method.numpy(), getattr(their_x, fn)(1, dtype=torch.float64).detach().numpy(),
                               rtol=1e-12, atol=1e-14)
    ints = getattr(F, fn)(rnnbp.arange(4), 0, dtype=rnnbp.float32)
    np.testing.assert_allclose(ints.numpy(), getattr(torch, fn)(torch.arange(4), 0, dtype=torch.float32).numpy(),
                               rtol=1e-6)


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax])
def test_softmax_dtype_gradcheck_and_errors(fn):
    x = Tensor(np.random.default_rng(0).standard_normal((2, 3)).astype(np.float16).astype(np.float64),
               requires_grad=True)
    assert gradcheck(lambda t: fn(t, 1, dtype=rnnbp.float64), [x])
    with pytest.raises(TypeError, match="softmax: dtype must be a floating dtype, got int64"):
        fn(x, 1, dtype=rnnbp.int64)


def test_softmax_without_dim_chooses_as_torch_with_its_warning():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        ours = F.softmax(Tensor(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.nn.functional.softmax(torch.tensor(x))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


# ----------------------------------------------------------------- gumbel_softmax
def _gumbels(seed, shape):
    return -np.log(np.random.default_rng(seed).standard_exponential(shape))


@pytest.mark.parametrize("shape, dim, tau", [((5,), -1, 1.0), ((3, 4), 1, 0.5), ((3, 4), 0, 2.0), ((2, 3, 4), 1, 1.0)])
def test_gumbel_softmax_soft_gradcheck(shape, dim, tau):
    logits = _t64(shape)
    assert gradcheck(lambda x: F.gumbel_softmax(x, tau=tau, dim=dim, generator=np.random.default_rng(3)), [logits])


@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax_values_and_gradients_equal_torchs_formula(hard):
    """Given the same Gumbel noise, PyTorch's computation (softmax((logits + g) / tau), and
    y_hard - y_soft.detach() + y_soft when hard) gives our values and gradients."""
    torch = pytest.importorskip("torch")
    shape, tau = (4, 6), 0.7
    logits = _t64(shape)
    ours = F.gumbel_softmax(logits, tau=tau, hard=hard, dim=1, generator=np.random.default_rng(11))
    their_logits = torch.tensor(logits.numpy(), requires_grad=True)
    y_soft = ((their_logits + torch.tensor(_gumbels(11, shape))) / tau).softmax(1)
    if hard:
        y_hard = torch.zeros_like(y_soft).scatter_(1, y_soft.argmax(1, keepdim=True), 1.0)
        theirs = y_hard - y_soft.detach() + y_soft
        assert set(np.unique(ours.numpy())) == {0.0, 1.0}  # exactly one-hot
    else:
        theirs = y_soft
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-15)
    w = np.random.default_rng(2).standard_normal(shape)
    (ours * Tensor(w)).sum().backward()
    (theirs * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(logits.grad.numpy(), their_logits.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_gumbel_softmax_hard_samples_follow_the_softmax_like_torchs():
    """The Gumbel-max trick: argmax frequencies are softmax(logits), for ours and PyTorch's."""
    torch = pytest.importorskip("torch")
    logits = np.log(np.array([0.1, 0.2, 0.3, 0.4]))
    rows = np.tile(logits, (20000, 1))
    rnnbp.manual_seed(0)
    ours = F.gumbel_softmax(Tensor(rows), tau=0.3, hard=True).numpy().mean(0)
    torch.manual_seed(0)
    theirs = torch.nn.functional.gumbel_softmax(torch.tensor(rows), tau=0.3, hard=True).numpy().mean(0)
    np.testing.assert_allclose(ours, [0.1, 0.2, 0.3, 0.4], atol=0.015)
    np.testing.assert_allclose(theirs, [0.1, 0.2, 0.3, 0.4], atol=0.015)


def test_gumbel_softmax_dtype_determinism_and_errors():
    x32 = rnnbp.randn(3, 5)
    y = F.gumbel_softmax(x32)
    assert y.dtype == np.float32 and y.shape == (3, 5)
    np.testing.assert_allclose(y.numpy().sum(1), 1.0, rtol=1e-6)
    rnnbp.manual_seed(8)
    a = F.gumbel_softmax(x32, hard=True)
    rnnbp.manual_seed(8)
    np.testing.assert_array_equal(a.numpy(), F.gumbel_softmax(x32, hard=True).numpy())
    with pytest.raises(ValueError, match="gumbel_softmax: tau must be > 0, got 0"):
        F.gumbel_softmax(x32, tau=0)
    with pytest.raises(IndexError, match=r"gumbel_softmax: dim 2 is out of range for a tensor of shape \(3, 5\)"):
        F.gumbel_softmax(x32, dim=2)
    with pytest.raises(TypeError, match="gumbel_softmax: logits must be floating point, got dtype int64"):
        F.gumbel_softmax(rnnbp.arange(3))
