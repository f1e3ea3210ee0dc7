"""cumsum, roll, bincount, one_hot, scatter_add, index_add: gradchecks, PyTorch parity, dtypes, errors.

One table (``GRAD_CASES``) drives the gradient tests, as in ``test_tensor_surface.py``: each row
is written once against a namespace ``m`` (rnnbp's functions, or torch's), so the same code gives
a float64 ``gradcheck`` in rnnbp and a forward and backward comparison with PyTorch.
"""
from types import SimpleNamespace

import numpy as np
import pytest

import rnnbp
from rnnbp import Tensor
from rnnbp.autograd import gradcheck
from rnnbp.autograd.ops.counting import bincount, cumsum, index_add, one_hot, roll, scatter_add

OURS = SimpleNamespace(
    cumsum=cumsum, roll=roll, scatter_add=scatter_add, index_add=index_add,
    tensor=rnnbp.tensor, float64=rnnbp.float64, float32=rnnbp.float32, int32=rnnbp.int32,
)


def _theirs():
    torch = pytest.importorskip("torch")
    return SimpleNamespace(
        cumsum=torch.cumsum, roll=torch.roll, scatter_add=torch.scatter_add, index_add=torch.index_add,
        tensor=torch.tensor, float64=torch.float64, float32=torch.float32, int32=torch.int32,
    )


IDX_2x4 = [[0, 1, 2, 0], [1, 1, 1, 1]]          # rows of a (3, 4) target, repeats included
IDX_3x2 = [[3, 3], [0, 1], [2, 3]]              # columns of a (3, 4) target along dim 1
IDX_3D = np.array([[[1, 0], [0, 0]], [[1, 1], [0, 1]]])  # (2, 2, 2) into dim 2 of size 3


def _sa(dim, index, dtype=None):
    def f(m, x, src):
        idx = m.tensor(index) if dtype is None else m.tensor(index, dtype=getattr(m, dtype))
        return m.scatter_add(x, dim, idx, src)
    return f


def _ia(dim, index, alpha=1, dtype=None):
    def f(m, x, src):
        idx = m.tensor(index) if dtype is None else m.tensor(index, dtype=getattr(m, dtype))
        return m.index_add(x, dim, idx, src, alpha=alpha)
    return f


# name -> (fn(m, *inputs), input shapes)
GRAD_CASES = {
    "cumsum-dim0": (lambda m, x: m.cumsum(x, 0), [(3, 4)]),
    "cumsum-dim1": (lambda m, x: m.cumsum(x, 1), [(3, 4)]),
    "cumsum-dim-neg": (lambda m, x: m.cumsum(x, -2), [(2, 3, 4)]),
    "cumsum-1d": (lambda m, x: m.cumsum(x, 0), [(5,)]),
    "cumsum-0d": (lambda m, x: m.cumsum(x, -1) * x, [()]),
    "cumsum-twice": (lambda m, x: m.cumsum(m.cumsum(x, 1) * x, 0), [(3, 4)]),
    "cumsum-dtype-same": (lambda m, x: m.cumsum(x, 1, dtype=m.float64), [(3, 4)]),
    "roll-flat": (lambda m, x: m.roll(x, 2), [(3, 4)]),
    "roll-flat-neg": (lambda m, x: m.roll(x, -5), [(3, 4)]),
    "roll-flat-tuple": (lambda m, x: m.roll(x, (7,)), [(3, 4)]),
    "roll-dim": (lambda m, x: m.roll(x, 1, 1), [(3, 4)]),
    "roll-dim-neg": (lambda m, x: m.roll(x, -1, -2), [(3, 4)]),
    "roll-tuple": (lambda m, x: m.roll(x, (1, -3), (0, 1)), [(3, 4)]),
    "roll-list": (lambda m, x: m.roll(x, [2, 1], [2, 0]), [(2, 3, 4)]),
    "roll-repeated-dim": (lambda m, x: m.roll(x, (1, 2), (1, 1)), [(3, 4)]),
    "roll-large-shift": (lambda m, x: m.roll(x, 11, dims=0), [(3, 4)]),
    "roll-0d": (lambda m, x: m.roll(x, 3) * x, [()]),
    "roll-chain": (lambda m, x: m.roll(x, 1, 0) * x, [(3, 4)]),
    "scatter_add-dim0": (_sa(0, IDX_2x4), [(3, 4), (2, 4)]),
    "scatter_add-dim1": (_sa(1, IDX_3x2), [(3, 4), (3, 2)]),
    "scatter_add-dim-neg": (_sa(-1, IDX_3x2), [(3, 4), (3, 2)]),
    "scatter_add-int32-index": (_sa(0, IDX_2x4, "int32"), [(3, 4), (2, 4)]),
    "scatter_add-3d": (_sa(2, IDX_3D), [(2, 2, 3), (2, 2, 2)]),
    "scatter_add-narrow-index": (_sa(1, [[0], [3], [3]]), [(3, 4), (3, 1)]),
    "scatter_add-self-twice": (lambda m, x, s: m.scatter_add(x * x, 0, m.tensor(IDX_2x4), s * x[:2]),
                               [(3, 4), (2, 4)]),
    "index_add-dim0": (_ia(0, [0, 2, 0]), [(3, 4), (3, 4)]),
    "index_add-dim1": (_ia(1, [3, 0]), [(3, 4), (3, 2)]),
    "index_add-dim-neg": (_ia(-1, [1, 1, 1]), [(2, 3), (2, 3)]),
    "index_add-alpha": (_ia(0, [2, 1], alpha=2.5), [(3, 4), (2, 4)]),
    "index_add-alpha-neg": (_ia(1, [0, 0, 2], alpha=-1), [(2, 3), (2, 3)]),
    "index_add-int32-index": (_ia(0, [1, 1], dtype="int32"), [(3, 4), (2, 4)]),
    "index_add-0d-index": (_ia(0, 1), [(3, 4), (1, 4)]),
    "index_add-3d": (_ia(1, [0, 2, 2, 1]), [(2, 3, 2), (2, 4, 2)]),
    "index_add-0d-self": (_ia(0, [0], alpha=3.0), [(), ()]),
}

# torch's ScatterAddBackward0 returns a gradient of index's shape for src, which it then
# refuses when src is larger than index; rnnbp pads it with zeros (gradchecked here).
TORCH_BACKWARD_FAILS = {"scatter_add-narrow-index"}


def _arrays(name):
    rng = np.random.default_rng(sum(map(ord, name)))
    return [np.asarray(rng.standard_normal(shape)) for shape in GRAD_CASES[name][1]]


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradcheck(name):
    fn = GRAD_CASES[name][0]
    inputs = [Tensor(a, requires_grad=True) for a in _arrays(name)]
    assert gradcheck(lambda *xs: fn(OURS, *xs), inputs)


def _run(m, name, backward=True):
    fn = GRAD_CASES[name][0]
    xs = [m.tensor(a, dtype=m.float64, requires_grad=True) for a in _arrays(name)]
    out = fn(m, *xs)
    values = np.array(out.detach().numpy() if hasattr(out, "detach") else out._data)
    if not backward:
        return values, None
    direction = np.random.default_rng(1).standard_normal(values.shape)
    (out * m.tensor(direction, dtype=m.float64)).sum().backward()
    return values, [np.array(x.grad.numpy() if hasattr(x.grad, "numpy") else x.grad._data) for x in xs]


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_forward_and_backward_match_torch(name):
    theirs = _theirs()
    backward = name not in TORCH_BACKWARD_FAILS
    ours_out, ours_grads = _run(OURS, name, backward)
    torch_out, torch_grads = _run(theirs, name, backward)
    assert ours_out.shape == torch_out.shape
    np.testing.assert_allclose(ours_out, torch_out, rtol=1e-12, atol=1e-12)
    if backward:
        for a, b in zip(ours_grads, torch_grads):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_scatter_add_backward_with_src_larger_than_index():
    """src (3, 4), index (3, 1): only src[:, :1] is added, so only it gets a gradient."""
    x = Tensor(np.zeros((3, 4)), requires_grad=True)
    src = Tensor(np.ones((3, 4)), requires_grad=True)
    out = scatter_add(x, 1, rnnbp.tensor([[0], [3], [3]]), src)
    weights = np.arange(12.0).reshape(3, 4)
    (out * Tensor(weights)).sum().backward()
    expected = np.zeros((3, 4))
    expected[:, 0] = [weights[0, 0], weights[1, 3], weights[2, 3]]
    np.testing.assert_array_equal(src.grad._data, expected)
    np.testing.assert_array_equal(x.grad._data, weights)


# ------------------------------------------------------------------- cumsum dtypes
@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8", "bool"])
def test_cumsum_integer_and_bool_give_int64_like_torch(dtype):
    torch = pytest.importorskip("torch")
    data = np.array([[1, 0, 1], [1, 1, 0]]).astype(dtype) * (1 if dtype == "bool" else 100)
    data = data.astype(dtype)
    ours = cumsum(Tensor(data), 1)
    theirs = torch.cumsum(torch.from_numpy(data), 1)
    assert ours.dtype == np.int64 and theirs.dtype == torch.int64
    np.testing.assert_array_equal(ours._data, theirs.numpy())
    assert not ours.requires_grad


@pytest.mark.parametrize("src, dst", [("float32", "float64"), ("int64", "float32"), ("float64", "int64"),
                                      ("float32", "float32"), ("bool", "int32")])
def test_cumsum_dtype_argument_matches_torch(src, dst):
    torch = pytest.importorskip("torch")
    data = np.array([1.5, -2.25, 3.0, 0.5]).astype(src)
    ours = cumsum(Tensor(data), 0, dtype=dst)
    theirs = torch.cumsum(torch.from_numpy(data), 0, dtype=getattr(torch, dst))
    assert ours.dtype == np.dtype(dst)
    np.testing.assert_array_equal(ours._data, theirs.numpy())


def test_cumsum_dtype_float64_sends_a_float32_gradient_back():
    x = Tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32), requires_grad=True)
    y = cumsum(x, 0, dtype=rnnbp.float64)
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad._data, [3.0, 2.0, 1.0])


def test_cumsum_float32_keeps_dtype_and_empty_input():
    x = Tensor(np.ones((0, 3), dtype=np.float32), requires_grad=True)
    y = cumsum(x, 0)
    assert y.shape == (0, 3) and y.dtype == np.float32
    y.sum().backward()
    assert x.grad.shape == (0, 3)


def test_roll_int_tensor_and_empty_like_torch():
    torch = pytest.importorskip("torch")
    data = np.arange(12).reshape(3, 4)
    for args in [(1,), (-2, 1), ((1, 2), (0, 1)), (5,)]:
        np.testing.assert_array_equal(roll(Tensor(data), *args)._data,
                                      torch.roll(torch.from_numpy(data), *args).numpy())
    assert roll(Tensor(np.zeros((0, 3))), 1).shape == (0, 3)
    assert roll(Tensor(np.zeros((0, 3))), 1, 0).shape == (0, 3)


# ---------------------------------------------------------------------- bincount
BINCOUNT_CASES = [
    ([1, 1, 3], None, 0),
    ([1, 1, 3], None, 6),
    ([1, 1, 3], None, 2),
    ([0], None, 0),
    ([], None, 0),
    ([], None, 3),
    ([4, 0, 4, 2], [0.5, 0.25, 1.5, -1.0], 0),
    ([4, 0, 4, 2], [0.5, 0.25, 1.5, -1.0], 7),
]


def _bincount_params():
    for values, weights, minlength in BINCOUNT_CASES:
        for index_dtype in ("int64", "int32", "uint8"):
            for weight_dtype in (("float32", "float64", "float16", "int64", "int32", "bool") if weights else (None,)):
                yield values, weights, minlength, index_dtype, weight_dtype


@pytest.mark.parametrize("values, weights, minlength, index_dtype, weight_dtype", list(_bincount_params()))
def test_bincount_matches_torch(values, weights, minlength, index_dtype, weight_dtype):
    torch = pytest.importorskip("torch")
    data = np.array(values, dtype=index_dtype)
    w = None if weights is None else np.array(weights).astype(weight_dtype)
    ours = bincount(Tensor(data), None if w is None else Tensor(w), minlength=minlength)
    theirs = torch.bincount(torch.from_numpy(data), None if w is None else torch.from_numpy(w), minlength=minlength)
    assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_allclose(ours._data, theirs.numpy(), rtol=1e-6)


def test_bincount_empty_input_with_weights_is_int64_like_torch():
    out = bincount(Tensor(np.array([], dtype=np.int64)), Tensor(np.array([], dtype=np.float32)), minlength=2)
    assert out.dtype == np.int64 and out._data.tolist() == [0, 0]


def test_bincount_result_is_a_constant():
    w = Tensor(np.array([0.5, 1.0]), requires_grad=True)
    out = bincount(Tensor(np.array([0, 2])), w)
    assert not out.requires_grad


@pytest.mark.parametrize("data, kwargs, error, match", [
    (np.array([1, -1, 3]), {}, ValueError, r"bincount: only supports 1-d non-negative integral inputs, got the value -1"),
    (np.array([[1, 2]]), {}, ValueError, r"bincount: .*got a tensor of shape \(1, 2\)"),
    (np.array(3), {}, ValueError, r"bincount: .*got a tensor of shape \(\)"),
    (np.array([1.0]), {}, TypeError, r"bincount: input must be an integer tensor, got dtype float64"),
    (np.array([True]), {}, TypeError, r"bincount: input must be an integer tensor, got dtype bool"),
    (np.array([1, 2]), {"minlength": -1}, ValueError, r"bincount: minlength must be >= 0, got -1"),
    (np.array([1, 2]), {"minlength": 1.5}, TypeError, r"bincount: minlength must be an int"),
    (np.array([1, 2]), {"weights": np.ones(3)}, ValueError,
     r"bincount: weights should be 1-d and have the same length as the input: got weights of shape \(3,\) "
     r"for an input of shape \(2,\)"),
    (np.array([1, 2]), {"weights": np.ones((1, 2))}, ValueError, r"weights of shape \(1, 2\)"),
])
def test_bincount_errors(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        bincount(Tensor(data), **kwargs)


# ---------------------------------------------------------------------- one_hot
@pytest.mark.parametrize("values, num_classes", [
    ([0, 2, 1], -1), ([0, 2, 1], 5), ([0, 2, 1], 3), (2, -1), (0, 4), ([[0, 1], [2, 0]], -1),
    ([[3], [1]], 6), (np.zeros((0,), dtype=np.int64), 3), (np.zeros((2, 0), dtype=np.int64), 1),
])
def test_one_hot_matches_torch(values, num_classes):
    torch = pytest.importorskip("torch")
    data = np.array(values, dtype=np.int64)
    ours = one_hot(Tensor(data), num_classes)
    theirs = torch.nn.functional.one_hot(torch.from_numpy(data), num_classes)
    assert ours.dtype == np.int64 and ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours._data, theirs.numpy())
    assert not ours.requires_grad


@pytest.mark.parametrize("data, num_classes, error, match", [
    (np.array([0, 2, 1]), 2, ValueError, r"one_hot: class values must be smaller than num_classes=2, got 2"),
    (np.array([0, 2, 1]), 0, ValueError, r"smaller than num_classes=0"),
    (np.array([0, 2, 1]), -2, ValueError, r"smaller than num_classes=-2"),
    (np.array([0, -1]), -1, ValueError, r"one_hot: class values must be non-negative, got -1 \(tensor of shape \(2,\)\)"),
    (np.array([0, -1]), 3, ValueError, r"non-negative"),
    (np.array([], dtype=np.int64), -1, ValueError, r"one_hot: cannot infer the number of classes from an empty tensor"),
    (np.array([], dtype=np.int64), 0, ValueError, r"cannot infer"),
    (np.array([0, 1], dtype=np.int32), -1, TypeError, r"one_hot: only applicable to index tensors of dtype int64"),
    (np.array([0.0, 1.0]), -1, TypeError, r"got float64"),
    (np.array([True]), -1, TypeError, r"got bool"),
    (np.array([0, 1]), 3.0, TypeError, r"one_hot: num_classes must be an int, got 3.0"),
])
def test_one_hot_errors(data, num_classes, error, match):
    with pytest.raises(error, match=match):
        one_hot(Tensor(data), num_classes)


# ------------------------------------------------------------ scatter_add / index_add
def test_scatter_add_and_index_add_on_integers_match_torch():
    torch = pytest.importorskip("torch")
    x = np.arange(12).reshape(3, 4)
    idx = np.array(IDX_2x4)
    src = np.arange(8).reshape(2, 4) * 10
    np.testing.assert_array_equal(
        scatter_add(Tensor(x), 0, Tensor(idx), Tensor(src))._data,
        torch.scatter_add(torch.from_numpy(x), 0, torch.from_numpy(idx), torch.from_numpy(src)).numpy())
    for alpha in (1, 3, 1.5):  # torch truncates a float alpha for integer tensors
        ours = index_add(Tensor(x), 1, Tensor(np.array([1, 1])), Tensor(src.T[:3, :2].copy()), alpha=alpha)
        theirs = torch.index_add(torch.from_numpy(x), 1, torch.tensor([1, 1]),
                                 torch.from_numpy(src.T[:3, :2].copy()), alpha=alpha)
        assert ours.dtype == np.int64
        np.testing.assert_array_equal(ours._data, theirs.numpy())


def test_scatter_add_edge_shapes_match_torch():
    torch = pytest.importorskip("torch")
    cases = [  # (self, dim, index, src)
        (np.zeros((3, 4)), 1, np.zeros((2, 5), dtype=np.int64), np.ones((2, 5))),  # index wider than self on dim
        (np.zeros((2, 4)), 0, np.zeros((3, 4), dtype=np.int64), np.ones((3, 4))),
        (np.zeros((3, 4)), 0, np.zeros((0, 4), dtype=np.int64), np.ones((2, 4))),
        (np.zeros((3, 4)), 0, np.zeros((0,), dtype=np.int64), np.ones((2, 4))),
        (np.array(1.0), 0, np.array(0), np.array(2.0)),
        (np.array(1.0), 0, np.array([0, 0]), np.array([2.0, 3.0])),
    ]
    for x, dim, idx, src in cases:
        ours = scatter_add(Tensor(x), dim, Tensor(idx), Tensor(src))
        theirs = torch.scatter_add(torch.from_numpy(x), dim, torch.from_numpy(idx), torch.from_numpy(src))
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_array_equal(ours._data, theirs.numpy())


def test_index_add_edge_shapes_match_torch():
    torch = pytest.importorskip("torch")
    cases = [  # (self, dim, index, source)
        (np.zeros((3, 4)), 0, np.zeros((0,), dtype=np.int64), np.ones((0, 4))),
        (np.array(1.0), 0, np.array([0]), np.array(2.0)),
        (np.array(1.0), 0, np.array(0), np.array(2.0)),
        (np.zeros((3, 4)), 0, np.array(1), np.ones((1, 4))),
    ]
    for x, dim, idx, src in cases:
        ours = index_add(Tensor(x), dim, Tensor(idx), Tensor(src))
        theirs = torch.index_add(torch.from_numpy(x), dim, torch.from_numpy(idx), torch.from_numpy(src))
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_array_equal(ours._data, theirs.numpy())


def test_numpy_src_takes_the_tensor_dtype():
    x = Tensor(np.zeros((2, 2), dtype=np.float32))
    out = scatter_add(x, 0, Tensor(np.array([[1, 0]])), np.array([[1.0, 2.0]]))
    assert out.dtype == np.float32 and out._data.tolist() == [[0.0, 2.0], [1.0, 0.0]]
    out = index_add(x, 1, Tensor(np.array([1])), np.array([[1.0], [2.0]]))
    assert out.dtype == np.float32 and out._data.tolist() == [[0.0, 1.0], [0.0, 2.0]]


@pytest.mark.parametrize("name", ["scatter_add_", "index_add_"])
def test_inplace_forms_through_tensor_inplace_match_torch(name):
    """What ``Tensor.scatter_add_`` / ``index_add_`` do (``self._inplace(...)``) on a non-leaf."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a0, s0 = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    idx = np.array(IDX_2x4) if name == "scatter_add_" else np.array([2, 2])

    a, s = Tensor(a0, requires_grad=True), Tensor(s0, requires_grad=True)
    y = a * 2
    fn = scatter_add if name == "scatter_add_" else index_add
    kwargs = {} if name == "scatter_add_" else {"alpha": 0.5}
    same = y._inplace(name, fn, 0, Tensor(idx), s, **kwargs)
    assert same is y
    (y * a).sum().backward()

    ta, ts = torch.tensor(a0, requires_grad=True), torch.tensor(s0, requires_grad=True)
    ty = ta * 2
    getattr(ty, name)(0, torch.from_numpy(idx), ts, **kwargs)
    (ty * ta).sum().backward()
    np.testing.assert_allclose(y._data, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(a.grad._data, ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(s.grad._data, ts.grad.numpy(), rtol=1e-12)


def test_inplace_on_leaf_that_requires_grad_is_refused():
    a = Tensor(np.zeros((3, 4)), requires_grad=True)
    with pytest.raises(RuntimeError, match="scatter_add_: a leaf Tensor that requires grad"):
        a._inplace("scatter_add_", scatter_add, 0, Tensor(np.array(IDX_2x4)), Tensor(np.ones((2, 4))))


X34 = np.zeros((3, 4))


@pytest.mark.parametrize("call, error, match", [
    (lambda: cumsum(Tensor(X34), 2), IndexError,
     r"cumsum: dim 2 is out of range for a tensor of shape \(3, 4\) \(expected -2 to 1\)"),
    (lambda: cumsum(Tensor(np.array(1.0)), 1), IndexError, r"cumsum: dim 1 is out of range .*\(expected -1 to 0\)"),
    (lambda: cumsum(Tensor(X34), 1.0), TypeError, r"cumsum: dim must be an int"),
    (lambda: roll(Tensor(X34), 1, 2), IndexError, r"roll: dim 2 is out of range for a tensor of shape \(3, 4\)"),
    (lambda: roll(Tensor(X34), (1, 2)), ValueError, r"roll: shifts \(1, 2\) and dims must align"),
    (lambda: roll(Tensor(X34), (1, 2), 0), ValueError,
     r"roll: shifts and dims must align: got 2 shift\(s\) \(1, 2\) and 1 dim\(s\) \(0,\)"),
    (lambda: roll(Tensor(X34), ()), ValueError, r"roll: shifts must not be empty"),
    (lambda: roll(Tensor(X34), 1.5), TypeError, r"roll: shifts must be an int, got 1.5"),
    (lambda: roll(Tensor(np.array(1.0)), 1, 0), IndexError, r"roll: dim 0 given but the tensor is 0-d"),
    (lambda: scatter_add(Tensor(X34), 2, Tensor(np.array(IDX_2x4)), Tensor(np.ones((2, 4)))), IndexError,
     r"scatter_add: dim 2 is out of range for a tensor of shape \(3, 4\)"),
    (lambda: scatter_add(Tensor(X34), 0, Tensor(np.array([[3]])), Tensor(np.ones((2, 4)))), IndexError,
     r"scatter_add: index 3 is out of bounds for dim 0 with size 3"),
    (lambda: scatter_add(Tensor(X34), 0, Tensor(np.array([[-1]])), Tensor(np.ones((2, 4)))), IndexError,
     r"scatter_add: index -1 is out of bounds for dim 0 with size 3"),
    (lambda: scatter_add(Tensor(X34), 0, Tensor(np.array([[0.0]])), Tensor(np.ones((2, 4)))), TypeError,
     r"scatter_add: index must be an int64 or int32 tensor, got dtype float64"),
    (lambda: scatter_add(Tensor(X34), 0, Tensor(np.array([0, 1])), Tensor(np.ones((2, 4)))), ValueError,
     r"scatter_add: index of shape \(2,\) must have as many dims as self of shape \(3, 4\)"),
    (lambda: scatter_add(Tensor(X34), 0, Tensor(np.zeros((3, 4), dtype=np.int64)), Tensor(np.ones((2, 4)))),
     ValueError, r"scatter_add: index of shape \(3, 4\) must be no larger than self of shape \(3, 4\) apart "
                 r"from dim 0, and no larger than src of shape \(2, 4\)"),
    (lambda: scatter_add(Tensor(X34), 0, Tensor(np.zeros((1, 4), dtype=np.int64)),
                         Tensor(np.ones((1, 4), dtype=np.float32))),
     TypeError, r"scatter_add: self \(float64\) and src \(float32\) must have the same dtype"),
    (lambda: index_add(Tensor(X34), 2, Tensor(np.array([0])), Tensor(np.ones((1, 4)))), IndexError,
     r"index_add: dim 2 is out of range for a tensor of shape \(3, 4\) \(expected -2 to 1\)"),
    (lambda: index_add(Tensor(X34), 0, Tensor(np.array([3])), Tensor(np.ones((1, 4)))), IndexError,
     r"index_add: index 3 is out of bounds for dim 0 with size 3"),
    (lambda: index_add(Tensor(X34), 0, Tensor(np.array([-1])), Tensor(np.ones((1, 4)))), IndexError,
     r"index_add: index -1 is out of bounds"),
    (lambda: index_add(Tensor(X34), 0, Tensor(np.array([[0]])), Tensor(np.ones((1, 4)))), IndexError,
     r"index_add: index must be a vector \(0-d or 1-D\), got shape \(1, 1\)"),
    (lambda: index_add(Tensor(X34), 0, Tensor(np.array([0], dtype=np.uint8)), Tensor(np.ones((1, 4)))),
     TypeError, r"index_add: index must be an int64 or int32 tensor, got dtype uint8"),
    (lambda: index_add(Tensor(X34), 0, Tensor(np.array([0])), Tensor(np.ones((2, 4)))), ValueError,
     r"index_add: the number of indices \(1\) must equal source.shape\[0\] \(2\)"),
    (lambda: index_add(Tensor(X34), 0, Tensor(np.array([0])), Tensor(np.ones((1, 5)))), ValueError,
     r"index_add: source of shape \(1, 5\) must match self of shape \(3, 4\) except on dim 0, "
     r"which must have len\(index\) = 1 entries: expected \(1, 4\)"),
    (lambda: index_add(Tensor(X34), 0, Tensor(np.array([0])), Tensor(np.ones((1, 4), dtype=np.float32))),
     TypeError, r"index_add: self \(float64\) and source \(float32\) must have the same dtype"),
    (lambda: index_add(Tensor(np.array(1.0)), 0, Tensor(np.array([0])), Tensor(np.array([2.0]))), ValueError,
     r"index_add: for a 0-d self, index must hold one value and source must be 0-d"),
])
def test_errors_name_the_op_and_the_shapes(call, error, match):
    with pytest.raises(error, match=match):
        call()
