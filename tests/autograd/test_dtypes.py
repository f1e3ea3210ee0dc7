"""dtype contract over the whole op table: float32 stays float32 (outputs and every gradient),
float64 stays float64, and Python or NumPy float64 scalars never promote float32."""
from __future__ import annotations

import numpy as np
import pytest

import rnnbp
from rnnbp.autograd import Function, Tensor, ops

try:  # imported as tests.autograd.* when the repo root is on sys.path (python -m pytest), else by folder
    from tests.autograd.autograd_op_cases import case_params
except ImportError:
    from autograd_op_cases import case_params


class _Probe(Function):
    """Identity that records the dtype of the gradient the op under test sends back to it."""

    seen: list = []

    @staticmethod
    def forward(ctx, x):
        return x

    @staticmethod
    def backward(ctx, grad):
        _Probe.seen.append(grad.dtype)
        return grad


def _outputs(out) -> tuple:
    return tuple(out) if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("case", case_params())
def test_dtype_is_kept(case, dtype):
    leaves = case.inputs(dtype)
    _Probe.seen = []
    probed = [_Probe.apply(x) for x in leaves]  # the op sees non-leaves, so no engine cast hides its grads
    outs = _outputs(case.fn(*probed))
    rng = np.random.default_rng(0)
    loss = None
    for o in outs:
        if o.dtype.kind != "f":
            assert not o.requires_grad, f"{case.name}: a {o.dtype} output must not require grad"
            continue
        assert o.dtype == dtype, f"{case.name}: {np.dtype(dtype)} inputs gave a {o.dtype} output"
        if o.requires_grad:
            term = (o * Tensor(rng.standard_normal(o.shape).astype(dtype))).sum()
            assert term.dtype == dtype
            loss = term if loss is None else loss + term
    assert loss is not None, f"{case.name}: no output requires grad"
    loss.backward()
    assert _Probe.seen and all(d == dtype for d in _Probe.seen), (case.name, _Probe.seen)
    for i, x in enumerate(leaves):
        assert x.grad is not None and x.grad.numpy().dtype == dtype, f"{case.name}: grad of input {i}"
        assert x.grad.numpy().shape == x.shape


@pytest.mark.parametrize("scalar", [2.0, 2, np.float64(2.0), np.float32(2.0), np.int64(2)],
                         ids=["float", "int", "np.float64", "np.float32", "np.int64"])
def test_scalars_do_not_promote_float32(scalar):
    x = Tensor(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    results = [x + scalar, scalar + x, x - scalar, scalar - x, x * scalar, scalar * x, x / scalar,
               scalar / x, x ** scalar, scalar ** x, ops.maximum(x, scalar), ops.minimum(scalar, x),
               ops.where(np.eye(2, dtype=bool), x, scalar), ops.clamp(x, -scalar, scalar),
               ops.leaky_relu(x, scalar), ops.softplus(x, beta=scalar), x @ np.full((2, 2), scalar)]
    for r in results:
        assert r.dtype == np.float32
    sum(r.sum() for r in results).backward()
    assert x.grad.numpy().dtype == np.float32


def test_cast_gradients_take_each_leaf_dtype():
    x32 = Tensor(np.arange(3, dtype=np.float32) + 1, requires_grad=True)
    _Probe.seen = []
    y = _Probe.apply(x32).double() * np.float64(3.0)
    assert y.dtype == np.float64
    y.to(np.float32).sum().backward()
    assert _Probe.seen == [np.float32]  # Cast's backward casts back, not only the engine at the leaf
    assert x32.grad.numpy().dtype == np.float32
    np.testing.assert_array_equal(x32.grad.numpy(), [3, 3, 3])
    x64 = Tensor(np.arange(3.0), requires_grad=True)
    z = x64.float()
    assert z.dtype == np.float32 and z.requires_grad
    (z * z).sum().backward()
    assert x64.grad.numpy().dtype == np.float64
    assert x64.to(np.float64) is x64  # same dtype: no new node


def test_default_dtype_is_float32():
    assert Tensor(1.5).dtype == np.float32
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert rnnbp.tensor([[1.0]]).dtype == np.float32
    assert rnnbp.zeros(2, 3).dtype == np.float32 and rnnbp.ones((2,)).dtype == np.float32
    assert rnnbp.randn(2, generator=np.random.default_rng(0)).dtype == np.float32
    assert rnnbp.arange(0, 1, 0.25).dtype == np.float32
    assert Tensor(np.zeros(2)).dtype == np.float64  # an ndarray keeps its dtype
    assert rnnbp.zeros(2, dtype=np.float64).dtype == np.float64
    assert rnnbp.zeros_like(Tensor(np.zeros(2, np.float32)), dtype=np.dtype(np.float64)).dtype == np.float64


def test_float32_tensor_with_float64_array_constant_stays_float32():
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    y = ops.cat([x, np.zeros((1, 3))]) * np.linspace(0, 1, 3)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.numpy().dtype == np.float32


@pytest.mark.parametrize("make", [
    lambda: Tensor(np.arange(3), requires_grad=True),
    lambda: Tensor([1, 2], requires_grad=True),
    lambda: rnnbp.tensor([1, 2], requires_grad=True),
    lambda: rnnbp.zeros(2, dtype=np.int32, requires_grad=True),
    lambda: Tensor(np.array([True, False]), requires_grad=True),
    lambda: Tensor(np.arange(3)).requires_grad_(),
    lambda: Tensor(np.ones(3, np.float32), requires_grad=True).long().requires_grad_(True),
], ids=["int64-array", "int-list", "tensor()", "zeros-int32", "bool", "requires_grad_", "long"])
def test_integer_tensors_cannot_require_grad(make):
    with pytest.raises(TypeError, match="floating"):
        make()


def test_integer_tensor_setter_also_refuses():
    t = Tensor(np.arange(3))
    with pytest.raises(TypeError):
        t.requires_grad = True
    assert not t.requires_grad
