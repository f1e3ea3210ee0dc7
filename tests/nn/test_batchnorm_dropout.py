"""BatchNorm1d against its formula and PyTorch; Dropout1d/Dropout2d drop whole channels."""
import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.autograd import gradcheck
from rnnbp.nn.dropout import dropout1d, dropout2d
from rnnbp.nn.normalization import batch_norm


def _t(shape, seed, requires_grad=False, dtype=np.float64):
    return rnnbp.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=requires_grad)


def _stats_axes(x: np.ndarray):
    return (0,) + tuple(range(2, x.ndim))


def _bn_formula(x, mean, var, w, b, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * w.reshape(shape) + b.reshape(shape)


def _bn64(C, **kwargs):
    bn = nn.BatchNorm1d(C, dtype=np.float64, **kwargs)
    rng = np.random.default_rng(C)
    if bn.affine:
        bn.weight._data[...] = rng.uniform(0.5, 1.5, C)
        bn.bias._data[...] = rng.standard_normal(C)
    return bn


# ----------------------------------------------------------------------------- BatchNorm1d: the formula
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
def test_batchnorm_train_and_eval_follow_the_formula(shape):
    bn = _bn64(3, momentum=0.2, eps=1e-3)
    w, b = bn.weight.numpy().copy(), bn.bias.numpy().copy()
    run_mean, run_var = np.zeros(3), np.ones(3)
    for step in range(3):
        x = _t(shape, step).numpy() * (step + 1) + step  # batches with different statistics
        axes = _stats_axes(x)
        n = x.size // 3
        y = bn(rnnbp.Tensor(x))
        mean, var = x.mean(axis=axes), x.var(axis=axes)  # biased variance normalises
        np.testing.assert_allclose(y.numpy(), _bn_formula(x, mean, var, w, b, 1e-3), rtol=1e-12, atol=1e-12)
        run_mean = 0.8 * run_mean + 0.2 * mean
        run_var = 0.8 * run_var + 0.2 * var * n / (n - 1)  # unbiased variance enters the running one
    np.testing.assert_allclose(bn.running_mean.numpy(), run_mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), run_var, rtol=1e-12)
    assert bn.num_batches_tracked.item() == 3 and bn.num_batches_tracked.dtype == np.int64
    bn.eval()
    x = _t(shape, 10).numpy()
    np.testing.assert_allclose(bn(rnnbp.Tensor(x)).numpy(), _bn_formula(x, run_mean, run_var, w, b, 1e-3),
                               rtol=1e-12, atol=1e-12)
    assert bn.num_batches_tracked.item() == 3  # eval leaves the statistics alone
    np.testing.assert_allclose(bn.running_mean.numpy(), run_mean, rtol=1e-12)


def test_batchnorm_momentum_none_is_the_cumulative_average():
    bn = nn.BatchNorm1d(2, momentum=None, dtype=np.float64)
    xs = [_t((5, 2, 3), s).numpy() * (s + 1) - s for s in range(4)]
    for x in xs:
        bn(rnnbp.Tensor(x))
    means = [x.mean(axis=(0, 2)) for x in xs]
    unbiased = [x.var(axis=(0, 2), ddof=1) for x in xs]
    # running_k = running_{k-1} + (stat_k - running_{k-1}) / k, starting from 0 / 1: the mean of all
    # batches' statistics, with the initial value weighted out at the first step.
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean(means, axis=0), rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), np.mean(unbiased, axis=0), rtol=1e-12)


def test_batchnorm_without_running_stats_or_affine():
    bn = nn.BatchNorm1d(3, affine=False, track_running_stats=False, dtype=np.float64)
    assert bn.running_mean is None and bn.num_batches_tracked is None and list(bn.parameters()) == []
    assert list(bn.state_dict()) == []
    x = _t((8, 3), 1).numpy()
    bn.eval()  # no running statistics: eval normalises with the batch's, as in PyTorch
    np.testing.assert_allclose(bn(rnnbp.Tensor(x)).numpy(), (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-12)
    no_bias = nn.BatchNorm1d(3, bias=False)
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]


def test_batchnorm_float32_stays_float32_and_state_dict():
    bn = nn.BatchNorm1d(4)
    x = rnnbp.randn(6, 4, 3, requires_grad=True)
    bn(x).sum().backward()
    assert bn(x).dtype == np.float32 and x.grad.dtype == np.float32 and bn.weight.grad.dtype == np.float32
    assert bn.running_mean.dtype == np.float32 and bn.running_var.dtype == np.float32
    sd = bn.state_dict()
    assert list(sd) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert sd["num_batches_tracked"] == 2 and sd["running_mean"].shape == (4,)
    other = nn.BatchNorm1d(4)
    other.load_state_dict(sd)
    np.testing.assert_array_equal(other.running_var.numpy(), bn.running_var.numpy())
    bn.reset_running_stats()
    assert bn.num_batches_tracked.item() == 0 and np.all(bn.running_var.numpy() == 1)
    assert repr(nn.BatchNorm1d(4)) == ("BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=True, bias=True, "
                                       "track_running_stats=True)")


# ----------------------------------------------------------------------------- BatchNorm1d: gradients
@pytest.mark.parametrize("shape", [(5, 3), (3, 3, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(shape, training):
    x = _t(shape, 0, requires_grad=True)
    w = rnnbp.Tensor(np.random.default_rng(1).uniform(0.5, 1.5, 3), requires_grad=True)
    b = _t((3,), 2, requires_grad=True)
    running_mean, running_var = np.array([0.1, -0.2, 0.3]), np.array([0.5, 1.5, 2.0])
    assert gradcheck(lambda x, w, b: batch_norm(x, None if training else running_mean,
                                                None if training else running_var, w, b, training=training),
                     [x, w, b])


def test_batchnorm_module_gradcheck_in_training():
    bn = _bn64(3)
    x = _t((4, 3, 2), 3, requires_grad=True)
    assert gradcheck(lambda x, w, b: bn(x), [x, bn.weight, bn.bias])


# ----------------------------------------------------------------------------- BatchNorm1d: PyTorch
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_matches_torch(shape, momentum):
    torch = pytest.importorskip("torch")
    ours = _bn64(3, momentum=momentum)
    theirs = torch.nn.BatchNorm1d(3, momentum=momentum, dtype=torch.float64)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})

    def compare(seed):
        x_np = _t(shape, seed).numpy() * 2 + 1
        x = rnnbp.Tensor(x_np, requires_grad=True)
        xt = torch.tensor(x_np, requires_grad=True)
        g = np.random.default_rng(seed + 100).standard_normal(shape)
        y, yt = ours(x), theirs(xt)
        (y * rnnbp.Tensor(g)).sum().backward()
        (yt * torch.from_numpy(g)).sum().backward()
        np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
        for name in ("weight", "bias"):
            np.testing.assert_allclose(getattr(ours, name).grad.numpy(), getattr(theirs, name).grad.numpy(),
                                       rtol=1e-10, atol=1e-12)
            getattr(ours, name).grad = None
            getattr(theirs, name).grad = None
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(getattr(ours, name).numpy(), getattr(theirs, name).numpy(),
                                       rtol=1e-12, atol=1e-14)
        assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item()

    for seed in range(3):
        compare(seed)
    ours.eval(), theirs.eval()
    compare(3)


# ----------------------------------------------------------------------------- BatchNorm1d: bad input
def test_batchnorm_bad_input_names_both_shapes():
    bn = nn.BatchNorm1d(4)
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected input of shape \(N, 4\) or \(N, 4, L\).*"
                                         r"got shape \(2, 4, 3, 5\)"):
        bn(rnnbp.zeros(2, 4, 3, 5))
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected input of shape \(N, 4\).*got shape \(2, 3\)"):
        bn(rnnbp.zeros(2, 3))
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 4\)"):
        bn(rnnbp.zeros(1, 4))
    assert bn.num_batches_tracked.item() == 0  # rejected input does not count
    with pytest.raises(ValueError, match="BatchNorm1d: num_features must be a positive integer, got 0"):
        nn.BatchNorm1d(0)
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match=r"batch_norm: weight of shape \(2,\).*\(2, 3\)"):
        batch_norm(rnnbp.zeros(2, 3), None, None, rnnbp.ones(2), training=True)


# ----------------------------------------------------------------------------- Dropout1d / Dropout2d
def _channel_values(y: np.ndarray, lead: int) -> np.ndarray:
    """Each channel's values flattened: (channels, values in the channel)."""
    return y.reshape(int(np.prod(y.shape[:lead])), -1)


@pytest.mark.parametrize("module, shape, lead", [
    (nn.Dropout1d, (40, 30, 5), 2),
    (nn.Dropout1d, (300, 4), 1),  # unbatched (C, L)
    (nn.Dropout2d, (20, 30, 3, 2), 2),
])
def test_channel_dropout_zeroes_whole_channels_and_scales_the_rest(module, shape, lead):
    rnnbp.manual_seed(0)
    p = 0.3
    drop = module(p)
    x = rnnbp.Tensor(np.random.default_rng(1).uniform(1, 2, shape).astype(np.float32), requires_grad=True)
    y = drop(x)
    assert y.dtype == np.float32 and y.shape == shape
    ratio = _channel_values(y.numpy() / x.numpy(), lead)
    dropped = np.all(ratio == 0, axis=1)
    kept = np.all(np.isclose(ratio, 1 / (1 - p), rtol=1e-6), axis=1)
    assert np.all(dropped | kept)  # every channel entirely dropped or entirely kept, scaled by 1/(1-p)
    assert abs(dropped.mean() - p) < 0.06
    g = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    (y * rnnbp.Tensor(g)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), g * (y.numpy() / x.numpy()), rtol=1e-6)  # through survivors only
    drop.eval()
    assert drop(x) is x


def test_channel_dropout_float64_gradcheck_and_reproducibility():
    x = _t((3, 4, 2), 0, requires_grad=True)
    assert gradcheck(lambda x: dropout1d(x, 0.5, generator=np.random.default_rng(5)), [x])
    rnnbp.manual_seed(9)
    a = nn.Dropout2d(0.5)(rnnbp.ones(4, 6, 2, 2)).numpy()
    rnnbp.manual_seed(9)
    np.testing.assert_array_equal(nn.Dropout2d(0.5)(rnnbp.ones(4, 6, 2, 2)).numpy(), a)
    assert np.all(nn.Dropout1d(1.0)(rnnbp.ones(2, 3, 4)).numpy() == 0)
    x = rnnbp.ones(2, 3, 4)
    assert nn.Dropout1d(0.0)(x) is x


def test_dropout2d_reads_3d_input_as_n_c_l_with_pytorchs_warning():
    rnnbp.manual_seed(0)
    with pytest.warns(UserWarning, match="interpreted as shape \\(N, C, L\\)"):
        y = nn.Dropout2d(0.5)(rnnbp.ones(50, 4, 6)).numpy()
    rows = y.reshape(200, 6)
    assert np.all((rows == 0).all(axis=1) | (rows == 2).all(axis=1)) and 0 < (rows == 0).mean() < 1


def test_dropout_signatures_and_repr_as_pytorch():
    assert repr(nn.Dropout1d(0.2)) == "Dropout1d(p=0.2, inplace=False)"
    assert repr(nn.Dropout(0.3, True)) == "Dropout(p=0.3, inplace=True)"  # (p, inplace) positionally, as torch
    assert nn.Dropout2d().p == 0.5


@pytest.mark.parametrize("make", [
    lambda p: nn.Dropout(p), lambda p: nn.Dropout1d(p), lambda p: nn.Dropout2d(p),
    lambda p: dropout1d(rnnbp.ones(2, 3), p), lambda p: dropout2d(rnnbp.ones(1, 2, 3, 3), p),
])
@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_probability_out_of_range(make, p):
    with pytest.raises(ValueError, match=f"probability has to be between 0 and 1, but got {p}"):
        make(p)


def test_channel_dropout_wrong_dims():
    with pytest.raises(ValueError, match=r"dropout1d: expected input of shape \(N, C, L\) or \(C, L\).*\(5,\)"):
        nn.Dropout1d(0.5)(rnnbp.ones(5))
    with pytest.raises(ValueError, match=r"dropout2d: expected input of shape \(N, C, H, W\).*\(2, 3\)"):
        nn.Dropout2d(0.5)(rnnbp.ones(2, 3))
    with pytest.raises(ValueError, match=r"dropout1d.*\(1, 2, 3, 4\)"):
        nn.Dropout1d(0.5)(rnnbp.ones(1, 2, 3, 4))
