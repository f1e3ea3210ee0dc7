"""CTC loss: brute force over all alignments, gradcheck, both backends, PyTorch parity, errors."""
import itertools

import numpy as np
import pytest

from rnnbp import Tensor
from rnnbp.autograd.gradcheck import gradcheck
from rnnbp.nn.ctc import CTCLoss, ctc_loss
from rnnbp.nn.ctc import recursions

BACKENDS = ["numpy", "numba"]
REDUCTIONS = ["none", "mean", "sum"]


def _log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _collapse(path, blank):
    out, prev = [], None
    for k in path:
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return tuple(out)


def _brute_force_nll(lp, target, blank):
    """-log of the summed probability of every path (all C^T of them) that reads as ``target``."""
    t_len, n_classes = lp.shape
    total = -np.inf
    for path in itertools.product(range(n_classes), repeat=t_len):
        if _collapse(path, blank) == tuple(target):
            total = np.logaddexp(total, lp[np.arange(t_len), path].sum())
    return -total


def _batch(rng, t_max=6, n=4, c=4, s=3, blank=0, dtype=np.float64, repeat=True):
    """Normalised log-probs (T, N, C), padded targets (N, S) without blanks, and feasible lengths."""
    lp = _log_softmax(rng.standard_normal((t_max, n, c))).astype(dtype)
    labels = [k for k in range(c) if k != blank]
    targets = rng.choice(labels, size=(n, s))
    if repeat:
        targets[0, 1] = targets[0, 0]  # a repeated label needs a blank between
    target_lengths = np.array([s, s - 1, 0, 1] * n)[:n]
    input_lengths = np.array([t_max, t_max - 1, t_max - 2, 2] * n)[:n]
    return lp, targets, input_lengths, target_lengths


# ------------------------------------------------------------------ exactness
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("t_len,n_classes,blank,target", [
    (4, 3, 0, (1, 2)), (5, 3, 0, (1, 1)), (5, 3, 2, (0, 1, 0)), (3, 3, 1, ()), (5, 2, 0, (1, 1, 1)),
    (4, 3, 1, (2, 2)), (1, 3, 0, (2,)),
])
def test_equals_brute_force_sum_over_alignments(backend, t_len, n_classes, blank, target):
    rng = np.random.default_rng(t_len * 10 + n_classes + blank)
    lp = _log_softmax(rng.standard_normal((t_len, 1, n_classes)))
    loss = ctc_loss(Tensor(lp), np.array([target], dtype=np.int64).reshape(1, -1), [t_len], [len(target)],
                    blank=blank, reduction="none", backend=backend)
    np.testing.assert_allclose(loss._data[0], _brute_force_nll(lp[:, 0], target, blank), rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_brute_force_on_a_padded_batch_with_shorter_inputs(backend):
    rng = np.random.default_rng(1)
    lp, targets, input_lengths, target_lengths = _batch(rng, t_max=5, n=4, c=3)
    loss = ctc_loss(Tensor(lp), targets, input_lengths, target_lengths, reduction="none", backend=backend)
    expected = [_brute_force_nll(lp[: input_lengths[n], n], targets[n, : target_lengths[n]], 0) for n in range(4)]
    np.testing.assert_allclose(loss._data, expected, rtol=1e-12)


def test_empty_target_on_empty_input_is_zero_and_unnormalised_inputs_are_not_normalised():
    lp = np.random.default_rng(2).standard_normal((3, 2, 3))  # not normalised: summed as given
    loss = ctc_loss(Tensor(lp), np.zeros((2, 1), dtype=np.int64), [0, 3], [0, 0], reduction="none")
    np.testing.assert_allclose(loss._data, [0.0, -lp[:, 1, 0].sum()], rtol=1e-12)


def test_backends_agree_on_values_and_gradients():
    rng = np.random.default_rng(3)
    lp, targets, input_lengths, target_lengths = _batch(rng, t_max=9, n=6, c=5, s=4)
    lp[2, 0, 3] = -np.inf  # an impossible class at one step
    results = []
    for backend in BACKENDS:
        x = Tensor(lp.copy(), requires_grad=True)
        ctc_loss(x, targets, input_lengths, target_lengths, reduction="sum", backend=backend).backward()
        results.append((ctc_loss(Tensor(lp), targets, input_lengths, target_lengths, reduction="none",
                                 backend=backend)._data, x.grad._data))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_through_log_softmax(reduction, backend):
    rng = np.random.default_rng(4)
    logits = Tensor(rng.standard_normal((5, 3, 4)), requires_grad=True)
    targets = np.array([[1, 1], [2, 3], [3, 0]])
    loss = lambda x: ctc_loss(x.log_softmax(-1), targets, [5, 4, 2], [2, 2, 1], blank=0,  # noqa: E731
                              reduction=reduction, backend=backend)
    assert gradcheck(loss, [logits])


def test_gradient_is_the_partial_derivative_plus_exp_log_probs():
    """On raw (unnormalised) inputs the gradient is PyTorch's: d(-log p)/d lp + exp(lp) on the used steps."""
    rng = np.random.default_rng(5)
    lp = rng.standard_normal((4, 2, 3))
    targets, input_lengths, target_lengths = np.array([[1, 2], [2, 0]]), [4, 3], [2, 1]
    x = Tensor(lp.copy(), requires_grad=True)
    ctc_loss(x, targets, input_lengths, target_lengths, reduction="sum").backward()
    numeric = np.zeros_like(lp)
    for idx in np.ndindex(lp.shape):
        plus, minus = lp.copy(), lp.copy()
        plus[idx] += 1e-6
        minus[idx] -= 1e-6
        up, down = (ctc_loss(Tensor(z), targets, input_lengths, target_lengths, reduction="sum").item()
                    for z in (plus, minus))
        numeric[idx] = (up - down) / 2e-6
    used = (np.arange(4)[:, None] < np.array(input_lengths)[None, :])[..., None]
    np.testing.assert_allclose(x.grad._data - np.exp(lp) * used, numeric, atol=1e-7)
    assert np.all(x.grad._data[3, 1] == 0)  # the padded step of element 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    lp, targets, input_lengths, target_lengths = _batch(np.random.default_rng(6), dtype=dtype)
    x = Tensor(lp, requires_grad=True)
    loss = ctc_loss(x, targets, input_lengths, target_lengths)
    loss.backward()
    assert loss.dtype == dtype and x.grad.dtype == dtype


def test_minus_infinity_log_probs_get_zero_gradient_and_infinite_losses_nan():
    lp, targets, input_lengths, target_lengths = _batch(np.random.default_rng(7), t_max=6, n=2, c=4)
    targets[1, :2] = [1, 2]
    lp[0, 0, 3] = -np.inf  # element 0: a class at one step made impossible, loss stays finite
    lp[:, 1, 2] = -np.inf  # element 1: its label 2 never possible, loss infinite
    for backend in BACKENDS:
        x = Tensor(lp.copy(), requires_grad=True)
        loss = ctc_loss(x, targets, input_lengths, target_lengths, reduction="none", backend=backend)
        assert np.isfinite(loss._data[0]) and loss._data[1] == np.inf
        loss.sum().backward()
        assert x.grad._data[0, 0, 3] == 0 and np.all(np.isfinite(x.grad._data[:, 0]))
        assert np.all(np.isnan(x.grad._data[: input_lengths[1], 1])) and np.all(x.grad._data[input_lengths[1]:, 1] == 0)
        z = Tensor(lp.copy(), requires_grad=True)
        zeroed = ctc_loss(z, targets, input_lengths, target_lengths, reduction="none", zero_infinity=True,
                          backend=backend)
        assert zeroed._data[1] == 0
        zeroed.sum().backward()
        assert np.all(z.grad._data[:, 1] == 0) and np.all(z.grad._data[:, 0] == x.grad._data[:, 0])


# ------------------------------------------------------------------ PyTorch parity
def _torch_run(torch, lp, targets, input_lengths, target_lengths, **kw):
    x = torch.tensor(lp, requires_grad=True)
    loss = torch.nn.functional.ctc_loss(x, torch.as_tensor(targets), torch.as_tensor(input_lengths),
                                        torch.as_tensor(target_lengths), **kw)
    (loss.sum() if loss.ndim else loss).backward()
    return loss.detach().numpy(), x.grad.numpy()


def _ours(lp, targets, input_lengths, target_lengths, backend="auto", **kw):
    x = Tensor(lp.copy(), requires_grad=True)
    loss = ctc_loss(x, targets, input_lengths, target_lengths, backend=backend, **kw)
    (loss.sum() if loss.ndim else loss).backward()
    return loss._data, x.grad._data


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("layout", ["padded", "concatenated"])
@pytest.mark.parametrize("blank", ["first", "middle", "last"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_pytorch(reduction, blank, layout, dtype):
    torch = pytest.importorskip("torch")
    c = 5
    blank = {"first": 0, "middle": 2, "last": c - 1}[blank]
    rng = np.random.default_rng(8)
    lp, targets, input_lengths, target_lengths = _batch(rng, t_max=10, n=5, c=c, s=4, blank=blank, dtype=dtype)
    if layout == "concatenated":
        targets = np.concatenate([targets[n, : target_lengths[n]] for n in range(len(targets))])
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    expected = _torch_run(torch, lp, targets, input_lengths, target_lengths, blank=blank, reduction=reduction)
    for backend in BACKENDS:
        got = _ours(lp, targets, input_lengths, target_lengths, backend=backend, blank=blank, reduction=reduction)
        assert got[0].dtype == dtype and got[1].dtype == dtype
        np.testing.assert_allclose(got[0], expected[0], **tol)
        np.testing.assert_allclose(got[1], expected[1], **tol)


def test_matches_pytorch_on_peaked_batch_first_outputs():
    """Log-probabilities down to about -1000 (far past exp's range), read through a (N, T, C) transpose."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(15)
    lp = _log_softmax(80 * rng.standard_normal((5, 30, 6))).transpose(1, 0, 2)  # (T, N, C), not contiguous
    targets, input_lengths = rng.integers(1, 6, (5, 8)), np.array([30, 28, 25, 30, 20])
    target_lengths = np.array([8, 7, 5, 3, 8])
    expected = _torch_run(torch, lp, targets, input_lengths, target_lengths, reduction="none")
    assert expected[0].min() > 100 and np.all(np.isfinite(expected[0]))
    for backend in BACKENDS:
        got = _ours(lp, targets, input_lengths, target_lengths, backend=backend, reduction="none")
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-12)
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_pytorch_zero_infinity_with_impossible_alignments(reduction):
    torch = pytest.importorskip("torch")
    lp, targets, _, target_lengths = _batch(np.random.default_rng(9), t_max=6, n=4, c=4, s=3)
    targets[1] = [2, 2, 2]
    # Element 0 needs 4 steps (a repeat), element 1 needs 5 for (2, 2): both get too few.
    input_lengths, target_lengths = np.array([3, 2, 6, 4]), np.array([3, 2, 0, 1])
    expected = _torch_run(torch, lp, targets, input_lengths, target_lengths, reduction=reduction, zero_infinity=True)
    for backend in BACKENDS:
        got = _ours(lp, targets, input_lengths, target_lengths, backend=backend, reduction=reduction,
                    zero_infinity=True)
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-10, atol=1e-12)
    if reduction == "none":
        assert got[0][0] == 0 and got[0][1] == 0 and np.all(got[1][:, :2] == 0)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_pytorch_unbatched_and_module(reduction):
    torch = pytest.importorskip("torch")
    lp = _log_softmax(np.random.default_rng(10).standard_normal((7, 4)))
    target = np.array([1, 3, 3])
    for lengths in [(np.array(7), np.array(3)), ([7], [3]), ((7,), (3,))]:
        expected = _torch_run(torch, lp, target, *lengths, reduction=reduction)
        got = _ours(lp, target, *lengths, reduction=reduction)
        assert got[0].shape == () and got[1].shape == (7, 4)
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-12)
        np.testing.assert_allclose(got[1], expected[1], rtol=1e-10, atol=1e-12)
    module = CTCLoss(blank=2, reduction=reduction)
    lp3, targets, input_lengths, target_lengths = _batch(np.random.default_rng(11), blank=2)
    want = torch.nn.CTCLoss(blank=2, reduction=reduction)(
        torch.tensor(lp3), torch.tensor(targets), torch.tensor(input_lengths), torch.tensor(target_lengths))
    np.testing.assert_allclose(module(Tensor(lp3), targets, input_lengths, target_lengths)._data, want.numpy(),
                               rtol=1e-12)


def test_module_repr_and_arguments():
    assert repr(CTCLoss()) == "CTCLoss()"
    assert repr(CTCLoss(blank=3, reduction="sum", zero_infinity=True)) == \
        "CTCLoss(blank=3, reduction='sum', zero_infinity=True)"
    with pytest.raises(ValueError, match="CTCLoss: blank must be an integer >= 0, got -1"):
        CTCLoss(blank=-1)
    with pytest.raises(ValueError, match="reduction"):
        CTCLoss(reduction="avg")
    with pytest.raises(TypeError, match="zero_infinity"):
        CTCLoss(zero_infinity="yes")
    with pytest.raises(ValueError, match="backend"):
        CTCLoss(backend="cuda")


# ------------------------------------------------------------------ errors
def _good():
    lp, targets, input_lengths, target_lengths = _batch(np.random.default_rng(12), t_max=6, n=4, c=4, s=3)
    return dict(log_probs=Tensor(lp), targets=targets, input_lengths=input_lengths, target_lengths=target_lengths)


@pytest.mark.parametrize("change,error,pattern", [
    (dict(input_lengths=[6, 5, 4]), ValueError, r"input_lengths must have one length per batch element, shape \(4,\)"),
    (dict(input_lengths=[7, 5, 4, 2]), ValueError, r"input_lengths must be at most 6 .*batch element 0 has \[7\]"),
    (dict(input_lengths=[6, -1, 4, 2]), ValueError, r"input_lengths must be >= 0; batch element 1"),
    (dict(input_lengths=[6.0, 5.0, 4.0, 2.0]), TypeError, "input_lengths must be integers"),
    (dict(target_lengths=[4, 2, 0, 1]), ValueError, r"target_lengths must be at most 3 \(the width S"),
    (dict(target_lengths=[3, -2, 0, 1]), ValueError, "target_lengths must be >= 0"),
    (dict(target_lengths=[3, 2]), ValueError, "target_lengths must have one length per batch element"),
    (dict(targets=np.array([1, 2, 3])), ValueError, r"sum\(target_lengths\) = 6, got 3"),
    (dict(targets=np.ones((3, 3), dtype=np.int64)), ValueError, r"N = 4 rows"),
    (dict(targets=np.ones((4, 3, 1), dtype=np.int64)), ValueError, "targets must have shape"),
    (dict(targets=np.ones((4, 3))), TypeError, "targets must be integer class indices, got dtype float64"),
    (dict(targets=np.array([[1, 0, 2], [1, 1, 1], [1, 1, 1], [1, 1, 1]])), ValueError,
     r"equal to the blank 0: batch element 0, e.g. element 0 position 1 is 0"),
    (dict(targets=np.array([[1, 2, 2], [1, 4, 1], [1, 1, 1], [1, 1, 1]])), ValueError,
     r"outside \[0, C\) = \[0, 4\): batch element 1"),
    (dict(log_probs=Tensor(np.zeros((6, 4))), input_lengths=[6], target_lengths=[3]), ValueError,
     r"unbatched targets must have shape \(S,\) or \(1, S\), got shape \(4, 3\)"),
    (dict(log_probs=Tensor(np.zeros((6, 4, 4, 1)))), ValueError, r"log_probs must have shape \(T, N, C\)"),
    (dict(log_probs=Tensor(np.zeros((0, 4, 4)))), ValueError, "log_probs must not be empty"),
    (dict(log_probs=Tensor(np.zeros((6, 4, 4), dtype=np.int64))), TypeError, "log_probs must be a floating-point"),
    (dict(log_probs=np.zeros((6, 4, 4), dtype=np.float16)), TypeError, "float32 or float64"),
    (dict(blank=4), ValueError, r"blank must be a class index in \[0, C\) = \[0, 4\)"),
    (dict(reduction="avg"), ValueError, "reduction must be"),
])
def test_errors(change, error, pattern):
    args = _good()
    args.update(change)
    with pytest.raises(error, match=pattern) as info:
        ctc_loss(**args)
    assert str(info.value).startswith("ctc_loss: ")


def test_targets_longer_than_the_inputs_allow_raise_unless_zero_infinity():
    args = _good()
    args["targets"] = np.array([[1, 1, 2], [3, 3, 3], [1, 2, 3], [2, 2, 1]])
    args["input_lengths"] = [3, 6, 4, 1]
    args["target_lengths"] = [3, 3, 3, 1]
    with pytest.raises(ValueError) as info:
        ctc_loss(**args)
    message = str(info.value)
    assert message.startswith("ctc_loss: batch element 0 cannot be aligned")
    assert "element 0: target length 3 with 1 repeated label(s) needs at least 4 steps, input length is 3" in message
    assert "element 1:" not in message  # (3, 3, 3) needs 5 steps and has 6
    assert "zero_infinity=True" in message
    args["input_lengths"] = [3, 4, 4, 1]
    with pytest.raises(ValueError, match="element 1: target length 3 with 2 repeated"):
        ctc_loss(**args)
    loss = ctc_loss(**args, zero_infinity=True, reduction="none")
    assert loss._data[0] == 0 and loss._data[1] == 0 and np.isfinite(loss._data[2]) and loss._data[2] > 0


def test_repeats_count_only_within_the_target_length():
    targets = np.array([[1, 1, 1], [2, 3, 3], [4, 4, 0]])
    assert recursions.repeats(targets, np.array([3, 2, 1])).tolist() == [2, 0, 0]


def test_auto_backend_falls_back_to_numpy(monkeypatch):
    lp, targets, input_lengths, target_lengths = _batch(np.random.default_rng(13))
    expected = ctc_loss(Tensor(lp), targets, input_lengths, target_lengths, backend="numpy")._data
    monkeypatch.setattr(recursions, "numba_available", lambda: False)
    assert not recursions._wants_numba("auto")
    with pytest.raises(ImportError, match="backend='numba' needs numba"):
        ctc_loss(Tensor(lp), targets, input_lengths, target_lengths, backend="numba")
    np.testing.assert_allclose(ctc_loss(Tensor(lp), targets, input_lengths, target_lengths)._data, expected)
    monkeypatch.undo()

    def broken():
        raise RuntimeError("no LLVM")

    monkeypatch.setattr(recursions, "compiled", broken)
    monkeypatch.setattr(recursions, "_auto_failed", False)
    x = Tensor(lp.copy(), requires_grad=True)
    with pytest.warns(RuntimeWarning, match="numba could not compile the CTC recursions .*no LLVM"):
        got = ctc_loss(x, targets, input_lengths, target_lengths)
    got.backward()
    np.testing.assert_allclose(got._data, expected, rtol=1e-12)
    assert recursions._auto_failed and np.all(np.isfinite(x.grad._data))
    with pytest.raises(RuntimeError, match="no LLVM"):  # asked for by name: the error surfaces
        ctc_loss(Tensor(lp), targets, input_lengths, target_lengths, backend="numba")
    with pytest.raises(ValueError, match="ctc_loss: backend must be one of"):
        ctc_loss(Tensor(lp), targets, input_lengths, target_lengths, backend="cuda")


def test_concatenated_targets_all_empty():
    lp = _log_softmax(np.random.default_rng(14).standard_normal((4, 2, 3)))
    loss = ctc_loss(Tensor(lp), np.zeros(0, dtype=np.int64), [4, 2], [0, 0], reduction="none")
    np.testing.assert_allclose(loss._data, [-lp[:, 0, 0].sum(), -lp[:2, 1, 0].sum()], rtol=1e-12)
