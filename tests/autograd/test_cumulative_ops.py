"""cumprod, cummax, cummin, logcumsumexp: gradchecks (zeros of cumprod, ties of cummax), PyTorch
parity, dtypes, errors.

As in ``test_counting_ops.py``, one table (``GRAD_CASES``) is written once against a namespace ``m``
(rnnbp's functions or torch's), giving both a float64 ``gradcheck`` and a forward and backward
comparison with PyTorch. An input spec is a shape (standard normal values) or an array (given values:
zeros for cumprod).
"""
from types import SimpleNamespace

import numpy as np
import pytest

import rnnbp
from rnnbp import Tensor
from rnnbp.autograd import gradcheck
from rnnbp.autograd.ops.cumulative import cummax, cummin, cumprod, logcumsumexp

OURS = SimpleNamespace(cumprod=cumprod, cummax=cummax, cummin=cummin, logcumsumexp=logcumsumexp, cat=rnnbp.cat,
                       float64=rnnbp.float64, tensor=rnnbp.tensor)


def _theirs():
    torch = pytest.importorskip("torch")
    return SimpleNamespace(cumprod=torch.cumprod, cummax=torch.cummax, cummin=torch.cummin,
                           logcumsumexp=torch.logcumsumexp, cat=torch.cat, float64=torch.float64,
                           tensor=torch.tensor)


Z1 = np.array([[1.5, -0.7, 0.0, 2.0, -1.3], [0.8, 1.1, -0.9, 1.7, 0.6], [0.0, 1.2, 0.9, -1.1, 1.4]])
Z2 = np.array([[1.5, 0.0, -0.7, 0.0, 2.0, -1.3], [0.0, 0.0, 1.2, 0.9, 0.0, 1.4]])   # two and three zeros a lane
Z_LAST = np.array([[1.2, -0.8, 1.6, 0.0], [0.0, 0.0, 0.0, 0.0]])                    # a last zero; all zeros
Z_COLS = np.array([[0.0, 1.3], [1.1, 0.0], [-0.6, 0.7], [0.0, 1.9]])                # zeros along dim 0

# name -> (fn(m, *inputs), input specs)
GRAD_CASES = {
    "cumprod-dim0": (lambda m, x: m.cumprod(x, 0), [(3, 4)]),
    "cumprod-dim1": (lambda m, x: m.cumprod(x, 1), [(3, 4)]),
    "cumprod-dim-neg": (lambda m, x: m.cumprod(x, -2), [(2, 3, 4)]),
    "cumprod-1d": (lambda m, x: m.cumprod(x, 0), [(5,)]),
    "cumprod-0d": (lambda m, x: m.cumprod(x, -1) * x, [()]),
    "cumprod-length1": (lambda m, x: m.cumprod(x, 1) * x, [(3, 1)]),
    "cumprod-dtype-same": (lambda m, x: m.cumprod(x, 1, dtype=m.float64), [(3, 4)]),
    "cumprod-twice": (lambda m, x: m.cumprod(m.cumprod(x, 1) * x, 0), [(3, 4)]),
    "cumprod-one-zero": (lambda m, x: m.cumprod(x, 1), [Z1]),
    "cumprod-several-zeros": (lambda m, x: m.cumprod(x, 1), [Z2]),
    "cumprod-last-and-all-zeros": (lambda m, x: m.cumprod(x, -1), [Z_LAST]),
    "cumprod-zeros-dim0": (lambda m, x: m.cumprod(x, 0), [Z_COLS]),
    "cumprod-zeros-in-graph": (lambda m, x: m.cumprod(x * x, 1) * x, [Z2]),
    "cummax-dim0": (lambda m, x: m.cummax(x, 0).values, [(4, 3)]),
    "cummax-dim1": (lambda m, x: m.cummax(x, 1).values, [(3, 5)]),
    "cummax-3d": (lambda m, x: m.cummax(x, -2).values, [(2, 4, 3)]),
    "cummax-0d": (lambda m, x: m.cummax(x, 0).values * x, [()]),
    # Ties: the scanned lane holds every entry twice (the same leaf), so each running maximum past the
    # middle ties with an earlier one, and the gradient is the same whichever of the two is credited.
    "cummax-ties": (lambda m, x: m.cummax(m.cat([x, x], 1), 1).values, [(3, 4)]),
    "cummin-dim0": (lambda m, x: m.cummin(x, 0).values, [(4, 3)]),
    "cummin-dim1": (lambda m, x: m.cummin(x, 1).values, [(3, 5)]),
    "cummin-ties": (lambda m, x: m.cummin(m.cat([x, x], 0), 0).values * 2.0, [(3, 2)]),
    "logcumsumexp-dim0": (lambda m, x: m.logcumsumexp(x, 0), [(4, 3)]),
    "logcumsumexp-dim1": (lambda m, x: m.logcumsumexp(x, 1), [(3, 5)]),
    "logcumsumexp-3d": (lambda m, x: m.logcumsumexp(x, -1), [(2, 3, 4)]),
    "logcumsumexp-0d": (lambda m, x: m.logcumsumexp(x, 0) * x, [()]),
    "logcumsumexp-large": (lambda m, x: m.logcumsumexp(x * 300.0, 1), [(3, 5)]),
    "logcumsumexp-chain": (lambda m, x: m.logcumsumexp(m.cumprod(x, 1), 0), [(3, 4)]),
}


def _arrays(name):
    rng = np.random.default_rng(sum(map(ord, name)))
    return [spec.copy() if isinstance(spec, np.ndarray) else np.asarray(rng.standard_normal(spec))
            for spec in GRAD_CASES[name][1]]


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradcheck(name):
    fn = GRAD_CASES[name][0]
    inputs = [Tensor(a, requires_grad=True) for a in _arrays(name)]
    assert gradcheck(lambda *xs: fn(OURS, *xs), inputs)


def _run(m, name):
    fn = GRAD_CASES[name][0]
    xs = [m.tensor(a, requires_grad=True) for a in _arrays(name)]
    out = fn(m, *xs)
    values = np.array(out.detach().numpy())
    direction = np.random.default_rng(1).standard_normal(values.shape)
    (out * m.tensor(direction)).sum().backward()
    return values, [np.array(x.grad.numpy()) for x in xs]


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_forward_and_backward_match_torch(name):
    theirs = _theirs()
    ours_out, ours_grads = _run(OURS, name)
    torch_out, torch_grads = _run(theirs, name)
    assert ours_out.shape == torch_out.shape
    np.testing.assert_allclose(ours_out, torch_out, rtol=1e-12, atol=1e-12)
    for a, b in zip(ours_grads, torch_grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------- cumprod with zeros
def _cumprod_grad_by_definition(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """dL/dx_k = sum_{i >= k} g_i prod_{j <= i, j != k} x_j along the last axis, term by term."""
    n = x.shape[-1]
    out = np.zeros_like(x)
    for k in range(n):
        others = x.copy()
        others[..., k] = 1.0
        out[..., k] = (g[..., k:] * np.cumprod(others, axis=-1)[..., k:]).sum(axis=-1)
    return out


def test_cumprod_gradient_with_many_zeros_equals_the_definition():
    """Random lanes with no, one, two and more zeros (a division by x would give NaN or inf here)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 7))
    x[rng.random(x.shape) < 0.3] = 0.0
    g = rng.standard_normal(x.shape)
    t = Tensor(x, requires_grad=True)
    cumprod(t, 1).backward(g)
    assert np.isfinite(t.grad.numpy()).all()
    assert {int(n) for n in (x == 0).sum(axis=1)} >= {0, 1, 2, 3}
    np.testing.assert_allclose(t.grad.numpy(), _cumprod_grad_by_definition(x, g), rtol=1e-12, atol=1e-12)
    # The same along dim 0 of the transposed input.
    t0 = Tensor(x.T.copy(), requires_grad=True)
    cumprod(t0, 0).backward(g.T.copy())
    np.testing.assert_allclose(t0.grad.numpy().T, t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_cumprod_zero_gradient_random_lanes_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((30, 6))
    x[rng.random(x.shape) < 0.35] = 0.0
    g = rng.standard_normal(x.shape)
    ours, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    cumprod(ours, 1).backward(g)
    torch.cumprod(theirs, 1).backward(torch.tensor(g))
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- dtypes
@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8", "bool"])
def test_cumprod_integer_and_bool_give_int64_like_torch(dtype):
    torch = pytest.importorskip("torch")
    data = np.array([[1, 2, 0, 3], [3, 1, 2, 2]]).astype(dtype)
    ours, theirs = cumprod(Tensor(data), 1), torch.cumprod(torch.from_numpy(data), 1)
    assert ours.dtype == np.int64 and theirs.dtype == torch.int64
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert not ours.requires_grad


@pytest.mark.parametrize("src, dst", [("float32", "float64"), ("int32", "float32"), ("float64", "int64"),
                                      ("bool", "int32"), ("int64", "float64")])
def test_cumprod_dtype_argument_matches_torch(src, dst):
    torch = pytest.importorskip("torch")
    data = np.array([1.5, -2.0, 3.0, 0.5]).astype(src)
    ours = cumprod(Tensor(data), 0, dtype=dst)
    theirs = torch.cumprod(torch.from_numpy(data), 0, dtype=getattr(torch, dst))
    assert ours.dtype == np.dtype(dst) and str(theirs.dtype) == f"torch.{dst}"
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_float32_scans_accumulate_like_torch():
    """PyTorch's CPU kernels multiply float32 in float64 and round each output once: a long product
    of 1.0001 ends 5e-6 away (relative) from float32 arithmetic step by step."""
    torch = pytest.importorskip("torch")
    x = np.full(30000, 1.0001, dtype=np.float32)
    ours = cumprod(Tensor(x), 0).numpy()
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, torch.cumprod(torch.from_numpy(x), 0).numpy())
    assert abs(ours[-1] - np.cumprod(x)[-1]) > 1e-5  # float32 step by step would differ
    h = np.zeros(3000, dtype=np.float16)
    np.testing.assert_array_equal(logcumsumexp(Tensor(h), 0).numpy(),
                                  torch.logcumsumexp(torch.from_numpy(h), 0).numpy())


def test_float32_keeps_dtype_in_values_and_gradients():
    for fn in (lambda x: cumprod(x, 1), lambda x: cummax(x, 1).values, lambda x: cummin(x, 0).values,
               lambda x: logcumsumexp(x, 1)):
        x = Tensor(np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32), requires_grad=True)
        y = fn(x)
        assert y.dtype == np.float32
        y.sum().backward()
        assert x.grad.dtype == np.float32


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8", "bool", "float16", "float32"])
def test_cummax_cummin_keep_the_dtype_and_give_int64_indices_like_torch(dtype):
    torch = pytest.importorskip("torch")
    data = np.array([[1, 3, 0, 3, 2], [2, 0, 0, 1, 2]]).astype(dtype)
    for name in ("cummax", "cummin"):
        ours = getattr(rnnbp, name)(Tensor(data), 1)
        theirs = getattr(torch, name)(torch.from_numpy(data), 1)
        assert ours.values.dtype == np.dtype(dtype) and ours.indices.dtype == np.int64
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
        assert not ours.values.requires_grad and not ours.indices.requires_grad


def test_logcumsumexp_refuses_integers_as_torch_does():
    torch = pytest.importorskip("torch")
    with pytest.raises(NotImplementedError):
        torch.logcumsumexp(torch.tensor([1, 2]), 0)
    with pytest.raises(TypeError, match=r"logcumsumexp: expected a floating-point tensor, got dtype int64"):
        logcumsumexp(Tensor(np.array([1, 2])), 0)


# ------------------------------------------------------------ ties, NaN, edge shapes
def test_cummax_ties_take_the_later_index_and_its_gradient_like_torch():
    torch = pytest.importorskip("torch")
    x = np.array([[1.0, 3.0, 3.0, 2.0, 3.0, 0.5], [2.0, 2.0, 1.0, 2.0, 2.0, 5.0]])
    g = np.arange(1.0, 13.0).reshape(2, 6)
    for name in ("cummax", "cummin"):
        ours, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        a, b = getattr(rnnbp, name)(ours, 1), getattr(torch, name)(theirs, 1)
        np.testing.assert_array_equal(a.indices.numpy(), b.indices.numpy())
        a.values.backward(g)
        b.values.backward(torch.tensor(g))
        np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())
    # Spelled out for cummax of the first row: each value credits the last tie so far.
    np.testing.assert_array_equal(cummax(Tensor(x), 1).indices.numpy()[0], [0, 1, 2, 2, 4, 4])


def test_cummax_nan_takes_over_like_torch():
    torch = pytest.importorskip("torch")
    x = np.array([1.0, 3.0, np.nan, 5.0, np.nan, 0.0, 7.0])
    for name in ("cummax", "cummin"):
        ours, theirs = getattr(rnnbp, name)(Tensor(x), 0), getattr(torch, name)(torch.tensor(x), 0)
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())  # NaN == NaN for this check
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    np.testing.assert_array_equal(cummax(Tensor(x), 0).indices.numpy(), [0, 1, 2, 2, 4, 4, 4])


def test_empty_and_0d_inputs():
    for shape, dim in [((0, 3), 0), ((0, 3), 1), ((2, 0), 1)]:
        x = Tensor(np.zeros(shape), requires_grad=True)
        outs = [cumprod(x, dim), cummax(x, dim).values, cummin(x, dim).values, logcumsumexp(x, dim)]
        assert all(o.shape == shape for o in outs)
        sum(o.sum() for o in outs).backward()
        assert x.grad.shape == shape
        assert cummax(x, dim).indices.shape == shape
    s = Tensor(np.array(2.5), requires_grad=True)
    values, indices = cummax(s, -1)
    assert values.shape == () and indices.shape == () and int(indices) == 0 and indices.dtype == np.int64
    values.backward()
    assert s.grad.item() == 1.0


def test_logcumsumexp_is_stable_and_handles_infinities_like_torch():
    torch = pytest.importorskip("torch")
    x = np.array([[-1e30, 0.0, 1000.0, -np.inf], [np.inf, 1.0, np.inf, 2.0], [-np.inf, -np.inf, 1.0, 800.0]])
    ours = logcumsumexp(Tensor(x), 1).numpy()
    np.testing.assert_array_equal(ours, torch.logcumsumexp(torch.tensor(x), 1).numpy())
    big = Tensor(np.array([1000.0, -1000.0, 2.0]), requires_grad=True)
    logcumsumexp(big, 0).backward(np.array([1.0, -2.0, 0.5]))
    np.testing.assert_allclose(big.grad.numpy(), [-0.5, 0.0, 0.0], atol=1e-15)


def test_logcumsumexp_gradient_after_leading_minus_inf_matches_torch():
    """Entries after a -inf prefix get their usual gradient; the prefix itself gets NaN, as in PyTorch."""
    torch = pytest.importorskip("torch")
    x = np.array([-np.inf, 0.0, 1.0])
    ours, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    logcumsumexp(ours, 0).sum().backward()
    torch.logcumsumexp(theirs, 0).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12, equal_nan=True)
    assert np.isnan(ours.grad.numpy()[0]) and np.isfinite(ours.grad.numpy()[1:]).all()


# ------------------------------------------------------------ methods, in place, names
def test_tensor_methods_and_torch_names():
    x = Tensor(np.array([[1.0, -2.0, 0.5], [3.0, 0.0, 2.0]]))
    np.testing.assert_array_equal(x.cumprod(1).numpy(), cumprod(x, 1).numpy())
    np.testing.assert_array_equal(x.cummax(0).indices.numpy(), cummax(x, 0).indices.numpy())
    np.testing.assert_array_equal(x.cummin(dim=1).values.numpy(), cummin(x, 1).values.numpy())
    np.testing.assert_array_equal(x.logcumsumexp(1).numpy(), logcumsumexp(x, 1).numpy())
    assert x.cumprod(1, dtype=rnnbp.float64).dtype == np.float64
    for name in ("cumprod", "cummax", "cummin", "logcumsumexp"):
        assert getattr(rnnbp, name) is getattr(rnnbp.autograd.ops, name)
    values, indices = cummax(x, 1)  # a named tuple, unpacked as in PyTorch
    assert cummax(x, 1)._fields == ("values", "indices") and values.shape == indices.shape == (2, 3)


def test_cumprod_in_place_matches_torch():
    torch = pytest.importorskip("torch")
    for dtype in ("float32", "float64", "int32", "int64"):
        data = np.array([[1, 2, 0, 3], [2, 2, 3, 1]]).astype(dtype)
        ours, theirs = Tensor(data.copy()), torch.from_numpy(data.copy())
        assert ours.cumprod_(1) is ours
        theirs.cumprod_(1)
        assert ours.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    # Inside a graph: differentiable, as out-of-place.
    leaf = Tensor(np.array([1.5, 0.0, 2.0]), requires_grad=True)
    y = leaf * 1.0
    y.cumprod_(0)
    y.sum().backward()
    np.testing.assert_array_equal(leaf.grad.numpy(), [1.0, 1.5 + 1.5 * 2.0, 0.0])


def test_cumprod_in_place_refusals():
    with pytest.raises(TypeError, match=r"cumprod_: dtype float64 differs from the tensor's float32"):
        Tensor(np.ones(3, dtype=np.float32)).cumprod_(0, dtype=rnnbp.float64)
    with pytest.raises(RuntimeError, match=r"cumprod_: a leaf Tensor that requires grad"):
        Tensor(np.ones(3), requires_grad=True).cumprod_(0)


X34 = np.zeros((3, 4))


@pytest.mark.parametrize("call, error, match", [
    (lambda: cumprod(Tensor(X34), 2), IndexError,
     r"cumprod: dim 2 is out of range for a tensor of shape \(3, 4\) \(expected -2 to 1\)"),
    (lambda: cumprod(Tensor(np.array(1.0)), 1), IndexError, r"cumprod: dim 1 is out of range .*\(expected -1 to 0\)"),
    (lambda: cumprod(Tensor(X34), 0.5), TypeError, r"cumprod: dim must be an int, got 0.5"),
    (lambda: cumprod(Tensor(X34), None), TypeError, r"cumprod: dim must be an int, got None"),
    (lambda: cummax(Tensor(X34), -3), IndexError, r"cummax: dim -3 is out of range for a tensor of shape \(3, 4\)"),
    (lambda: cummin(Tensor(X34), 2), IndexError, r"cummin: dim 2 is out of range"),
    (lambda: cummax(Tensor(X34), None), TypeError, r"cummax: dim must be an int, got None"),
    (lambda: logcumsumexp(Tensor(X34), 2), IndexError, r"logcumsumexp: dim 2 is out of range"),
    (lambda: logcumsumexp(Tensor(np.array([True, False])), 0), TypeError,
     r"logcumsumexp: expected a floating-point tensor, got dtype bool \(shape \(2,\)\)"),
])
def test_errors_name_the_op_and_the_shapes(call, error, match):
    with pytest.raises(error, match=match):
        call()
