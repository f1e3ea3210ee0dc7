"""Gaps a PyTorch port met in torch.nn: init.trunc_normal_, PackedSequence.to, unpad_sequence and
unpack_sequence, KLDivLoss / F.kl_div, RMSNorm / F.rms_norm. Gradchecks in float64, PyTorch parity
where PyTorch is installed."""
from __future__ import annotations

import numpy as np
import pytest

import rnnbp
import rnnbp.nn.functional as F
from rnnbp import Tensor, nn
from rnnbp.autograd import gradcheck
from rnnbp.nn.utils.rnn import (PackedSequence, pack_padded_sequence, pack_sequence, pad_sequence, unpack_sequence,
                                unpad_sequence)


def _t64(shape, seed=0, requires_grad=True):
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=requires_grad)


# ----------------------------------------------------------------- init.trunc_normal_
@pytest.mark.filterwarnings("ignore:mean is more than 2 std")  # the far-tail case: PyTorch warns too
@pytest.mark.parametrize("mean, std, a, b", [(0.0, 1.0, -2.0, 2.0), (1.0, 2.0, -1.0, 2.0), (0.0, 0.02, -0.04, 0.04),
                                             (0.0, 1.0, 2.5, 4.0)])
def test_trunc_normal_moments_and_bounds_match_torch(mean, std, a, b):
    torch = pytest.importorskip("torch")
    ours = nn.init.trunc_normal_(rnnbp.empty(200000, dtype=rnnbp.float64), mean, std, a, b,
                                 generator=np.random.default_rng(0)).numpy()
    torch.manual_seed(0)
    theirs = torch.nn.init.trunc_normal_(torch.empty(200000, dtype=torch.float64), mean, std, a, b).numpy()
    assert a <= ours.min() and ours.max() <= b
    assert abs(ours.mean() - theirs.mean()) < 0.02 * std + 0.01 * (b - a)
    assert abs(ours.std() - theirs.std()) < 0.02 * theirs.std()
    # a truncated normal's mean, from scipy
    from scipy.stats import truncnorm

    exact = truncnorm.mean((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    assert abs(ours.mean() - exact) < 0.01 * std


def test_trunc_normal_keeps_dtype_returns_tensor_and_is_reproducible():
    w = rnnbp.empty(3, 4)
    rnnbp.manual_seed(2)
    out = nn.init.trunc_normal_(w, std=0.02)
    assert out is w and w.dtype == np.float32 and np.all(np.abs(w.numpy()) <= 2.0)
    first = w.numpy().copy()
    rnnbp.manual_seed(2)
    np.testing.assert_array_equal(nn.init.trunc_normal_(w, std=0.02).numpy(), first)


def test_trunc_normal_errors_and_warning():
    with pytest.raises(ValueError, match="trunc_normal_: expected a < b, got a=1.0, b=-1.0"):
        nn.init.trunc_normal_(rnnbp.empty(3), a=1.0, b=-1.0)
    with pytest.raises(ValueError, match="trunc_normal_: std must be > 0, got 0"):
        nn.init.trunc_normal_(rnnbp.empty(3), std=0)
    with pytest.warns(UserWarning, match="mean is more than 2 std from"):
        nn.init.trunc_normal_(rnnbp.empty(3), mean=10.0)


# ----------------------------------------------------------------- PackedSequence.to
def _packed(dtype=np.float32):
    seqs = [Tensor(np.random.default_rng(i).standard_normal((n, 2)).astype(dtype)) for i, n in enumerate((2, 4, 3))]
    return pack_sequence(seqs, enforce_sorted=False)


def test_packed_sequence_to_returns_self_when_nothing_changes():
    packed = _packed()
    for args, kwargs in (((rnnbp.float32,), {}), (("cpu",), {}), ((), {"device": "cpu"}), ((rnnbp.zeros(1),), {})):
        assert packed.to(*args, **kwargs) is packed
    assert packed.cpu() is packed and packed.float() is packed and not packed.is_cuda and not packed.is_pinned()


def test_packed_sequence_to_casts_data_and_keeps_the_indices_as_torch():
    torch = pytest.importorskip("torch")
    packed = _packed()
    ours = packed.to(rnnbp.float64)
    theirs = torch.nn.utils.rnn.pack_sequence(
        [torch.tensor(np.random.default_rng(i).standard_normal((n, 2)).astype(np.float32)) for i, n in
         enumerate((2, 4, 3))], enforce_sorted=False).to(torch.float64)
    assert isinstance(ours, PackedSequence) and ours is not packed
    assert ours.data.dtype == np.float64 and theirs.data.dtype == torch.float64
    np.testing.assert_array_equal(ours.data.numpy(), theirs.data.numpy())
    for field in ("batch_sizes", "sorted_indices", "unsorted_indices"):
        assert getattr(ours, field).dtype == np.int64
        np.testing.assert_array_equal(getattr(ours, field).numpy(), getattr(theirs, field).numpy())
    assert packed.to("cpu", rnnbp.float64).data.dtype == np.float64
    assert packed.double().data.dtype == np.float64 and packed.to(dtype=rnnbp.float16).data.dtype == np.float16


def test_packed_sequence_to_is_differentiable_and_refuses_cuda():
    x = Tensor(np.random.default_rng(0).standard_normal((3, 2, 1)).astype(np.float32), requires_grad=True)
    packed = pack_padded_sequence(x, [3, 2])
    (packed.to(rnnbp.float64).data * 2).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy()[:, 0], 2.0)
    np.testing.assert_array_equal(x.grad.numpy()[:, 1], [[2.0], [2.0], [0.0]])
    with pytest.raises(rnnbp.DeviceError, match="cuda"):
        packed.to("cuda")


# ----------------------------------------------------------------- unpad_sequence / unpack_sequence
@pytest.mark.parametrize("batch_first", [False, True])
def test_unpad_sequence_matches_torch(batch_first):
    torch = pytest.importorskip("torch")
    lengths = [3, 1, 4, 0]
    padded = np.random.default_rng(0).standard_normal((4, 4, 2))  # (T, B, 2)
    if batch_first:
        padded = padded.transpose(1, 0, 2).copy()
    ours_x, their_x = Tensor(padded, requires_grad=True), torch.tensor(padded, requires_grad=True)
    ours = unpad_sequence(ours_x, Tensor(np.array(lengths)), batch_first=batch_first)
    # PyTorch transposes its input in place when batch_first is False: give it a clone
    theirs = torch.nn.utils.rnn.unpad_sequence(their_x.clone(), torch.tensor(lengths), batch_first=batch_first)
    assert len(ours) == len(theirs) == 4
    w = np.random.default_rng(1)
    total_ours, total_theirs = 0, 0
    for a, b in zip(ours, theirs):
        assert a.shape == tuple(b.shape)
        np.testing.assert_array_equal(a.numpy(), b.detach().numpy())
        v = w.standard_normal(a.shape)
        total_ours = total_ours + (a * Tensor(v)).sum()
        total_theirs = total_theirs + (b * torch.tensor(v)).sum()
    total_ours.backward()
    total_theirs.backward()
    np.testing.assert_array_equal(ours_x.grad.numpy(), their_x.grad.numpy())
    assert ours_x.shape == padded.shape  # not transposed in place


@pytest.mark.parametrize("batch_first", [False, True])
def test_unpad_sequence_gradcheck(batch_first):
    x = _t64((3, 4, 2) if batch_first else (4, 3, 2))  # B = 3 sequences, T = 4 steps
    lengths = [4, 2, 3]
    assert gradcheck(lambda t: rnnbp.cat(unpad_sequence(t, lengths, batch_first=batch_first), 0), [x])


def test_unpad_sequence_pieces_are_copies():
    x = Tensor(np.zeros((3, 2)))
    pieces = unpad_sequence(x, [3, 2])
    pieces[0][0] = 5.0
    assert not x.numpy().any()


def test_unpack_sequence_inverts_pack_sequence_and_matches_torch():
    torch = pytest.importorskip("torch")
    arrays = [np.random.default_rng(i).standard_normal((n, 3)) for i, n in enumerate((2, 5, 1, 3))]
    seqs = [Tensor(a, requires_grad=True) for a in arrays]
    ours = unpack_sequence(pack_sequence(seqs, enforce_sorted=False))
    their_seqs = [torch.tensor(a, requires_grad=True) for a in arrays]
    theirs = torch.nn.utils.rnn.unpack_sequence(torch.nn.utils.rnn.pack_sequence(their_seqs, enforce_sorted=False))
    for a, b, original in zip(ours, theirs, arrays):
        np.testing.assert_array_equal(a.numpy(), original)
        np.testing.assert_array_equal(a.numpy(), b.detach().numpy())
    rnnbp.stack([s.sum() * (i + 1) for i, s in enumerate(ours)]).sum().backward()
    torch.stack([s.sum() * (i + 1) for i, s in enumerate(theirs)]).sum().backward()
    for a, b in zip(seqs, their_seqs):
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


def test_unpack_sequence_gradcheck():
    seqs = [_t64((n, 2), seed=n) for n in (3, 1, 2)]
    assert gradcheck(lambda *s: rnnbp.cat(unpack_sequence(pack_sequence(list(s), enforce_sorted=False)), 0), seqs)


def test_unpad_and_unpack_errors_name_the_op():
    with pytest.raises(ValueError, match="unpad_sequence: lengths has 2 entries but the batch has 3 sequences"):
        unpad_sequence(rnnbp.zeros(4, 3, 2), [1, 2])
    with pytest.raises(ValueError, match="unpad_sequence: lengths must be between 0 and the sequence length 4"):
        unpad_sequence(rnnbp.zeros(4, 2), [5, 1])
    with pytest.raises(ValueError, match=r"unpad_sequence: padded_sequences must be .* got shape \(4,\)"):
        unpad_sequence(rnnbp.zeros(4), [1])
    with pytest.raises(TypeError, match="unpack_sequence: expected a PackedSequence .* got list"):
        unpack_sequence([rnnbp.zeros(2)])


# ----------------------------------------------------------------- KLDivLoss / kl_div
@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_values_and_gradients_match_torch(reduction, log_target):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    logq = rng.standard_normal((4, 5))
    logq = logq - np.log(np.exp(logq).sum(1, keepdims=True))
    target = rng.dirichlet(np.ones(5), size=4)
    target[0, 1] = 0.0  # a zero target contributes 0 (and no NaN) unless the target is in log space
    if log_target:
        target = np.log(rng.dirichlet(np.ones(5), size=4))
    ours_in, ours_t = Tensor(logq, requires_grad=True), Tensor(target, requires_grad=True)
    their_in, their_t = torch.tensor(logq, requires_grad=True), torch.tensor(target, requires_grad=True)
    ours = nn.KLDivLoss(reduction=reduction, log_target=log_target)(ours_in, ours_t)
    with pytest.warns(UserWarning) if reduction == "mean" else _no_warning():
        theirs = torch.nn.KLDivLoss(reduction=reduction, log_target=log_target)(their_in, their_t)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-15)
    w = rng.standard_normal(ours.shape)
    (ours * Tensor(w)).sum().backward()
    (theirs * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(ours_in.grad.numpy(), their_in.grad.numpy(), rtol=1e-12, atol=1e-15)
    ours_gt, their_gt = ours_t.grad.numpy(), their_t.grad.numpy()
    if not log_target:  # d/dt of t log t at t = 0: PyTorch gives NaN, rnnbp the finite -input (the t log t part is 0)
        assert np.isnan(their_gt[0, 1]) and np.isfinite(ours_gt).all()
        their_gt[0, 1] = ours_gt[0, 1]
        if reduction == "none":
            assert ours_gt[0, 1] == pytest.approx(-logq[0, 1] * w[0, 1])
    np.testing.assert_allclose(ours_gt, their_gt, rtol=1e-12, atol=1e-15)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("reduction", ["none", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_gradcheck(reduction, log_target):
    logq = _t64((3, 4))
    target = Tensor(np.random.default_rng(5).uniform(0.1, 1.0, (3, 4)), requires_grad=True)
    if log_target:
        target = _t64((3, 4), seed=6)
    assert gradcheck(lambda x, t: F.kl_div(x, t, reduction=reduction, log_target=log_target), [logq, target])
    # target broadcast over the batch: (4,) against (3, 4)
    row = Tensor(np.random.default_rng(7).uniform(0.1, 1.0, 4), requires_grad=True)
    assert gradcheck(lambda x, t: F.kl_div(x, t, reduction=reduction), [logq, row])


def test_kl_div_loss_module_options_and_errors():
    assert repr(nn.KLDivLoss()) == "KLDivLoss()"
    assert repr(nn.KLDivLoss(reduction="batchmean", log_target=True)) == \
        "KLDivLoss(reduction='batchmean', log_target=True)"
    with pytest.warns(DeprecationWarning, match="size_average and reduce are deprecated"):
        assert nn.KLDivLoss(size_average=False).reduction == "sum"
    with pytest.raises(ValueError, match="KLDivLoss: reduction must be 'none', 'sum', 'mean' or 'batchmean'"):
        nn.KLDivLoss(reduction="avg")
    with pytest.raises(ValueError, match=r"kl_div: input of shape \(3, 4\) and target of shape \(2, 4\) do not "):
        F.kl_div(rnnbp.zeros(3, 4), rnnbp.zeros(2, 4))
    assert nn.KLDivLoss(reduction="batchmean")(rnnbp.zeros(3, 4), rnnbp.zeros(3, 4)).dtype == np.float32
    assert not nn.KLDivLoss().state_dict()


# ----------------------------------------------------------------- RMSNorm / rms_norm
@pytest.mark.parametrize("shape, normalized_shape, eps, affine", [
    ((2, 3, 4), 4, None, True), ((2, 3, 4), (3, 4), 1e-6, True), ((5, 4), [4], 0.1, False), ((4,), (4,), None, True),
])
def test_rms_norm_matches_torch(shape, normalized_shape, eps, affine):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal(shape) * 3
    ours = nn.RMSNorm(normalized_shape, eps=eps, elementwise_affine=affine).double()
    theirs = torch.nn.RMSNorm(normalized_shape, eps=eps, elementwise_affine=affine).double()
    assert list(ours.state_dict()) == list(theirs.state_dict()) and repr(ours) == repr(theirs)
    if affine:
        w = np.random.default_rng(1).standard_normal(ours.weight.shape)
        ours.load_state_dict({"weight": w})
        theirs.load_state_dict({"weight": torch.tensor(w)})
    ours_x, their_x = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    a, b = ours(ours_x), theirs(their_x)
    np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = np.random.default_rng(2).standard_normal(shape)
    (a * Tensor(g)).sum().backward()
    (b * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(ours_x.grad.numpy(), their_x.grad.numpy(), rtol=1e-10, atol=1e-12)
    if affine:
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    # float32: default eps is float32's, as in PyTorch
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(nn.RMSNorm(normalized_shape, eps=eps, elementwise_affine=affine)(Tensor(x32)).numpy(),
                               torch.nn.RMSNorm(normalized_shape, eps=eps, elementwise_affine=affine)(
                                   torch.tensor(x32)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_rms_norm_gradcheck():
    x, w = _t64((3, 2, 4)), _t64((2, 4), seed=1)
    assert gradcheck(lambda a, b: F.rms_norm(a, (2, 4), b, eps=1e-3), [x, w])
    assert gradcheck(lambda a: F.rms_norm(a, 4), [x])


def test_rms_norm_dtype_and_errors():
    m = nn.RMSNorm(4)
    y = m(rnnbp.randn(2, 4))
    assert y.dtype == np.float32 and m.weight.dtype == np.float32
    y.sum().backward()
    assert m.weight.grad.dtype == np.float32
    assert nn.RMSNorm(4, dtype=rnnbp.float64).weight.dtype == np.float64
    assert nn.RMSNorm(4, elementwise_affine=False).weight is None
    with pytest.raises(ValueError, match=r"rms_norm: input of shape \(2, 5\) does not end in normalized_shape \(4,\)"):
        m(rnnbp.randn(2, 5))
    with pytest.raises(ValueError, match=r"rms_norm: weight of shape \(3,\) does not match normalized_shape \(4,\)"):
        F.rms_norm(rnnbp.randn(2, 4), 4, rnnbp.ones(3))
    with pytest.raises(TypeError, match="rms_norm: input must be floating point, got dtype int64"):
        F.rms_norm(rnnbp.arange(4), 4)
    with pytest.raises(ValueError, match="RMSNorm: eps must be >= 0 or None, got -1"):
        nn.RMSNorm(4, eps=-1)
    with pytest.raises(rnnbp.DeviceError):
        nn.RMSNorm(4, device="cuda")
