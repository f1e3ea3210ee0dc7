"""Type promotion follows PyTorch's category rule (bool < integer < float), not ``np.result_type``.

A float meeting an integer or bool gives the float's dtype; within one category the wider dtype
wins, but a 0-d tensor does not upcast a dimensioned tensor of its category. Integer tensors with
Python floats, true division and the float-only unary ops give float32 (``DEFAULT_DTYPE``).
"""
from __future__ import annotations

import numpy as np
import pytest

from rnnbp.autograd import Tensor, ops
from rnnbp.nn import functional as F

DTYPES = [np.bool_, np.uint8, np.int8, np.int32, np.int64, np.float16, np.float32, np.float64]


def const(dtype, shape=(3,)) -> Tensor:
    """Ones: safe for every op below (division, powers) in every dtype."""
    return Tensor(np.ones(shape, dtype=dtype))


# (a dtype, a shape, b dtype, b shape, expected dtype of a * b)
TENSOR_ROWS = [
    (np.float32, (3,), np.int64, (3,), np.float32),
    (np.int64, (3,), np.float32, (3,), np.float32),
    (np.float32, (3,), np.bool_, (3,), np.float32),
    (np.bool_, (3,), np.float64, (3,), np.float64),
    (np.float64, (3,), np.int32, (3,), np.float64),
    (np.float16, (3,), np.int64, (3,), np.float16),
    (np.float32, (3,), np.float64, (3,), np.float64),
    (np.float32, (3,), np.float64, (), np.float32),  # a 0-d tensor does not upcast within its category
    (np.float64, (), np.float32, (3,), np.float32),
    (np.int32, (3,), np.int64, (), np.int32),
    (np.int64, (3,), np.float64, (), np.float64),  # ... but a higher category wins
    (np.bool_, (3,), np.int32, (), np.int32),
    (np.int32, (3,), np.int64, (3,), np.int64),
    (np.uint8, (3,), np.int8, (3,), np.int16),
    (np.bool_, (3,), np.bool_, (3,), np.bool_),
    (np.int64, (3,), np.bool_, (3,), np.int64),
    (np.float32, (), np.int64, (), np.float32),
    (np.float64, (), np.float32, (), np.float64),
]


@pytest.mark.parametrize("da, sa, db, sb, expected", TENSOR_ROWS,
                         ids=[f"{np.dtype(r[0])}{r[1]}*{np.dtype(r[2])}{r[3]}" for r in TENSOR_ROWS])
def test_tensor_tensor_promotion(da, sa, db, sb, expected):
    a, b = const(da, sa), const(db, sb)
    for out in (a * b, b * a, a + b, ops.maximum(a, b), ops.where(np.ones((3,), bool), a, b)):
        assert out.dtype == expected, (out.dtype, expected)
    if sa and sb:
        assert ops.cat([a, b]).dtype == expected and ops.stack([a, b]).dtype == expected


# (tensor dtype, scalar, expected dtype of t * scalar)
SCALAR_ROWS = [
    (np.int64, 0.5, np.float32),
    (np.int32, 0.5, np.float32),
    (np.bool_, 0.5, np.float32),
    (np.int64, np.float64(0.5), np.float32),
    (np.int32, 2, np.int32),
    (np.int8, 2, np.int8),
    (np.bool_, 2, np.int64),
    (np.bool_, True, np.bool_),
    (np.int32, True, np.int32),
    (np.float16, 2.5, np.float16),
    (np.float64, 2, np.float64),
    (np.float32, np.float64(2.0), np.float32),
]


@pytest.mark.parametrize("dtype, scalar, expected", SCALAR_ROWS,
                         ids=[f"{np.dtype(r[0])}*{type(r[1]).__name__}" for r in SCALAR_ROWS])
def test_tensor_scalar_promotion(dtype, scalar, expected):
    t = const(dtype)
    for out in (t * scalar, scalar * t, t + scalar, ops.maximum(t, scalar), ops.where(t > 0, t, scalar)):
        assert out.dtype == expected, (out.dtype, expected)


def test_integer_tensor_with_python_float_keeps_values():
    i = Tensor(np.arange(4))
    np.testing.assert_array_equal((i * 0.5).data, np.arange(4, dtype=np.float32) * 0.5)
    assert (i * 0.5).dtype == np.float32
    assert (0.5 - i).dtype == np.float32
    assert (i ** 0.5).dtype == np.float32 and (2.0 ** i).dtype == np.float32
    assert (i ** 2).dtype == np.int64 and (2 ** i).dtype == np.int64
    assert (i < 1.5).tolist() == [True, True, False, False]
    assert (i @ np.ones((4, 2))).dtype == np.float32
    assert ops.matmul(i.reshape(2, 2), Tensor(np.ones((2, 2), np.float32))).dtype == np.float32
    assert ops.clamp(i, 0.5).dtype == np.float32 and ops.clamp(i, 1, 2).dtype == np.int64


@pytest.mark.parametrize("da, db", [(np.int64, np.int64), (np.int32, np.int64), (np.bool_, np.bool_),
                                    (np.int64, np.bool_), (np.uint8, np.int8)])
def test_true_division_of_integers_gives_float32(da, db):
    a_np, b_np = np.array([1, 2, 3]).astype(da), np.array([2, 1, 4]).astype(db)
    out = Tensor(a_np) / Tensor(b_np)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), a_np.astype(np.float32) / b_np.astype(np.float32))
    a, b = Tensor(a_np), Tensor(b_np)
    assert (a / 2).dtype == np.float32 and (2 / b).dtype == np.float32
    assert (a / 2.0).dtype == np.float32
    assert (Tensor(np.ones(3, np.float64)) / a).dtype == np.float64


UNARY_FLOAT = {
    "exp": ops.exp, "log": ops.log, "sqrt": ops.sqrt, "tanh": ops.tanh, "sigmoid": ops.sigmoid,
    "softplus": ops.softplus, "gelu": ops.gelu, "gelu_tanh": lambda x: ops.gelu(x, approximate="tanh"),
    "softmax": lambda x: ops.softmax(x, -1), "log_softmax": lambda x: ops.log_softmax(x, -1),
    "logsumexp": lambda x: ops.logsumexp(x, -1), "F.softmax": lambda x: F.softmax(x, 0),
    "method_exp": lambda x: x.exp(), "method_sigmoid": lambda x: x.sigmoid(),
}


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", list(UNARY_FLOAT))
def test_float_unary_ops_on_integers_give_float32(name, dtype):
    fn = UNARY_FLOAT[name]
    data = np.array([[1, 2, 3], [1, 0, 1]]).astype(dtype)
    with np.errstate(divide="ignore"):  # log(0)
        out = fn(Tensor(data))
        want = fn(Tensor(data.astype(np.float32)))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), want.numpy())


@pytest.mark.parametrize("op", ["mean", "var"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_], ids=lambda d: np.dtype(d).name)
def test_mean_and_var_refuse_integers(op, dtype):
    t = Tensor(np.arange(4).astype(dtype))
    name = np.dtype(dtype).name
    with pytest.raises(TypeError, match=rf"{op}: expected a floating-point input, got {name}; cast with \.float\(\)"):
        getattr(t, op)()
    with pytest.raises(TypeError, match=op):
        getattr(ops, op)(t, dim=0)
    assert getattr(t.float(), op)().dtype == np.float32


def test_gradients_come_back_in_each_leafs_dtype():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    y64 = Tensor(np.full(3, 2.0), requires_grad=True)
    s64 = Tensor(np.float64(3.0), requires_grad=True)
    i = Tensor(np.array([1, 2, 3]))
    out = (x * i).sum() + (x * s64).sum() + (x * y64).sum().float() + (x / i).sum()
    assert out.dtype == np.float32
    out.backward()
    assert x.grad.numpy().dtype == np.float32 and y64.grad.numpy().dtype == np.float64 and s64.grad.numpy().dtype == np.float64
    np.testing.assert_allclose(x.grad.numpy(), [1 + 3 + 2 + 1, 2 + 3 + 2 + 0.5, 3 + 3 + 2 + 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(y64.grad.numpy(), [1, 1, 1])
    assert s64.grad.numpy() == 3.0


def test_casts_are_on_the_tape_only_for_tensors_that_require_grad():
    x32 = Tensor(np.ones(3, np.float32), requires_grad=True)
    c32 = Tensor(np.ones(3, np.float32))  # a constant: its cast is not recorded
    y64 = Tensor(np.ones(3), requires_grad=True)
    i = Tensor(np.arange(3))
    a_parent, b_parent = (x32 * y64).grad_fn.parents
    assert a_parent.grad_fn.name == "Cast" and b_parent is y64
    assert (c32 * y64).grad_fn.parents == (None, y64)
    assert (x32 * i).grad_fn.parents == (x32, None)  # the integer tensor is cast as a constant
    assert (i * 0.5).grad_fn is None and not (i * 0.5).requires_grad
    assert (Tensor(np.ones(3, np.float32)) * Tensor(np.ones(3))).grad_fn is None


def test_cast_of_a_nondifferentiable_integer_keeps_its_name():
    x = Tensor(np.array([[1.0, 3.0], [2.0, 0.0]], np.float32), requires_grad=True)
    with pytest.raises(RuntimeError, match="argmax"):
        (ops.argmax(x, 1) * 0.5).sum().backward()


def test_promote_docstring_states_the_category_rule():
    from rnnbp.autograd.ops.promotion import promote as _promote

    doc = _promote.__doc__
    assert "np.result_type" not in doc.split("\n")[0]
    for word in ("bool", "integer", "float", "0-d"):
        assert word in doc


# ----------------------------------------------------------------- PyTorch parity
def _torch_pairs():
    shapes = [(3,), ()]
    return [(da, sa, db, sb) for da in DTYPES for sa in shapes for db in DTYPES for sb in shapes]


@pytest.mark.parametrize("op", ["add", "mul", "truediv", "maximum", "where"])
def test_tensor_promotion_matches_torch(op):
    torch = pytest.importorskip("torch")
    rn = {"add": lambda a, b: a + b, "mul": lambda a, b: a * b, "truediv": lambda a, b: a / b,
          "maximum": ops.maximum, "where": lambda a, b: ops.where(np.array([True, False, True]), a, b)}[op]
    th = {"add": torch.add, "mul": torch.mul, "truediv": torch.true_divide, "maximum": torch.maximum,
          "where": lambda a, b: torch.where(torch.tensor([True, False, True]), a, b)}[op]
    mismatches = []
    for da, sa, db, sb in _torch_pairs():
        a, b = np.ones(sa, dtype=da), np.ones(sb, dtype=db)
        want = np.dtype(str(th(torch.from_numpy(a), torch.from_numpy(b)).dtype).removeprefix("torch."))
        want = np.dtype(np.bool_) if want.name == "bool" else want
        got = rn(Tensor(a), Tensor(b)).dtype
        if got != want:
            mismatches.append(f"{np.dtype(da)}{sa} {op} {np.dtype(db)}{sb}: rnnbp {got}, torch {want}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("scalar", [2, 0.5, True], ids=["int", "float", "bool"])
def test_scalar_promotion_matches_torch(scalar):
    torch = pytest.importorskip("torch")
    mismatches = []
    for dtype in DTYPES:
        for shape in [(3,), ()]:
            a = np.ones(shape, dtype=dtype)
            for name, rn, th in [("mul", lambda x: x * scalar, lambda x: x * scalar),
                                 ("rmul", lambda x: scalar * x, lambda x: scalar * x),
                                 ("add", lambda x: x + scalar, lambda x: x + scalar),
                                 ("div", lambda x: x / scalar, lambda x: x / scalar)]:
                want = str(th(torch.from_numpy(a)).dtype).removeprefix("torch.")
                got = rn(Tensor(a)).dtype
                if got != np.dtype(want):
                    mismatches.append(f"{np.dtype(dtype)}{shape} {name} {scalar!r}: rnnbp {got}, torch {want}")
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_], ids=lambda d: np.dtype(d).name)
def test_unary_float_ops_match_torch_dtype_and_values(dtype):
    torch = pytest.importorskip("torch")
    data = np.array([0, 1, 2, 3]).astype(dtype)
    t = torch.from_numpy(data)
    with np.errstate(divide="ignore"):
        for name in ("exp", "log", "sqrt", "tanh", "sigmoid"):
            got, want = getattr(ops, name)(Tensor(data)), getattr(torch, name)(t)
            assert str(want.dtype) == "torch.float32" and got.dtype == np.float32, name
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, err_msg=name)
    got, want = ops.logsumexp(Tensor(data), 0), torch.logsumexp(t, 0)
    assert got.dtype == np.float32 and str(want.dtype) == "torch.float32"
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
