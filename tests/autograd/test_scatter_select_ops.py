"""scatter, index_fill, select, nan_to_num, clamp_min/max, squeeze_/unsqueeze_, byte, argwhere,
searchsorted, bucketize: hand-computed values, gradchecks, and parity with PyTorch."""
import numpy as np
import pytest

import rnnbp
from rnnbp.autograd.gradcheck import gradcheck


def f64(shape, seed=0, grad=True):
    return rnnbp.tensor(np.random.default_rng(seed).normal(size=shape), dtype=rnnbp.float64, requires_grad=grad)


IDX = np.array([[0, 1, 2, 0], [2, 0, 0, 1]])  # scatter with a scalar: repeats are harmless


# ------------------------------------------------------------------ torch-free
def test_scatter_values_and_forms():
    out = rnnbp.zeros(3, 4).scatter(0, rnnbp.tensor([[0, 1, 2, 0]]), 1.0)
    assert out.tolist() == [[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0]]
    src = rnnbp.tensor([[5.0, 6.0]])
    assert rnnbp.zeros(2, 2).scatter(1, rnnbp.tensor([[1, 0]]), src).tolist() == [[6, 5], [0, 0]]
    assert rnnbp.zeros(3).scatter(0, rnnbp.tensor([1]), value=2.0).tolist() == [0, 2, 0]
    x = rnnbp.zeros(3)
    assert x.scatter_(0, rnnbp.tensor([2]), 7.0) is x and x.tolist() == [0, 0, 7]
    one_hot = rnnbp.zeros(2, 3).scatter_(1, rnnbp.tensor([[2], [0]]), 1)  # the tutorials' one-hot idiom
    assert one_hot.tolist() == [[0, 0, 1], [1, 0, 0]]


@pytest.mark.parametrize("call, error", [
    (lambda: rnnbp.zeros(3).scatter(0, rnnbp.tensor([3]), 1.0), IndexError),
    (lambda: rnnbp.zeros(3).scatter(0, rnnbp.tensor([-1]), 1.0), IndexError),
    (lambda: rnnbp.zeros(3).scatter(0, rnnbp.tensor([0.0]), 1.0), TypeError),
    (lambda: rnnbp.zeros(3).scatter(0, rnnbp.tensor([0]), rnnbp.ones(1, dtype=rnnbp.float64)), TypeError),
    (lambda: rnnbp.zeros(3).scatter(0, rnnbp.tensor([0]), 1.0, reduce="add"), NotImplementedError),
    (lambda: rnnbp.zeros(3).scatter(1, rnnbp.tensor([0]), 1.0), IndexError),
    (lambda: rnnbp.zeros(3).index_fill(0, rnnbp.tensor([3]), 1.0), IndexError),
    (lambda: rnnbp.zeros(3).index_fill(0, rnnbp.tensor([[0]]), 1.0), ValueError),
    (lambda: rnnbp.zeros(3).index_fill(0, rnnbp.tensor([0]), rnnbp.ones(1)), ValueError),
    (lambda: rnnbp.zeros(2, 3).select(1, 3), IndexError),
    (lambda: rnnbp.zeros(2, 3).select(2, 0), IndexError),
    (lambda: rnnbp.bucketize(rnnbp.tensor([1]), rnnbp.tensor([[1]])), ValueError),
    (lambda: rnnbp.searchsorted(rnnbp.tensor([1, 3]), rnnbp.tensor([1]), side="left", right=True), ValueError),
])
def test_bad_inputs_raise_naming_the_op(call, error):
    with pytest.raises(error, match="scatter|index_fill|select|bucketize|searchsorted"):
        call()


def test_other_values():
    assert rnnbp.zeros(3).index_fill(0, rnnbp.tensor([-1, 0]), 5).tolist() == [5, 0, 5]
    assert rnnbp.zeros(3, dtype=rnnbp.int64).index_fill(0, rnnbp.tensor([0]), 1.7).tolist() == [1, 0, 0]
    y = rnnbp.arange(6.0).reshape(2, 3)
    assert y.select(1, -1).tolist() == [2, 5] and y.select(0, 1).tolist() == [3, 4, 5]
    nan = float("nan")
    out = rnnbp.tensor([nan, np.inf, -np.inf, 1.0]).nan_to_num(nan=2.0)
    assert out.tolist() == [2.0, float(np.finfo(np.float32).max), float(np.finfo(np.float32).min), 1.0]
    x = rnnbp.tensor([nan, 1.0])
    assert x.nan_to_num_(posinf=1.0) is x and x.tolist() == [0.0, 1.0]
    assert rnnbp.tensor([1, 4]).clamp_min(2).tolist() == [2, 4] and rnnbp.clamp_max(rnnbp.tensor([1, 4]), 2).tolist() == [1, 2]
    c = rnnbp.tensor([1.0, 4.0])
    assert c.clamp_min_(2.0) is c and c.clamp_max_(3.0).tolist() == [2.0, 3.0]
    z = rnnbp.zeros(3)
    assert z.unsqueeze_(0) is z and z.shape == (1, 3) and z.squeeze_().shape == (3,) and z.squeeze_(0).shape == (3,)
    assert rnnbp.tensor([True, False]).byte().dtype == rnnbp.uint8
    assert rnnbp.argwhere(rnnbp.tensor([[0, 1], [2, 0]])).tolist() == [[0, 1], [1, 0]]
    assert rnnbp.argwhere(rnnbp.tensor(1)).shape == (1, 0) and rnnbp.argwhere(rnnbp.tensor(0)).shape == (0, 0)
    assert rnnbp.searchsorted(rnnbp.tensor([1, 3, 5]), rnnbp.tensor([3, 6]), right=True).tolist() == [2, 3]
    assert rnnbp.searchsorted(rnnbp.tensor([[1, 3], [2, 4]]), rnnbp.tensor([[3], [3]])).tolist() == [[1], [1]]
    assert rnnbp.searchsorted(rnnbp.tensor([1.0, 3.0]), 2.0, out_int32=True).dtype == rnnbp.int32
    assert rnnbp.bucketize(rnnbp.tensor([1, 3, 6]), rnnbp.tensor([1, 3, 5])).tolist() == [0, 1, 3]


def test_unsqueeze_inplace_stays_in_graph():
    w = f64((3,))
    h = w * 2
    h.unsqueeze_(1)
    assert h.shape == (3, 1)
    (h * rnnbp.tensor([[1.0], [2.0], [3.0]], dtype=rnnbp.float64)).sum().backward()
    assert w.grad.tolist() == [2.0, 4.0, 6.0]
    with pytest.raises(RuntimeError, match="unsqueeze_"):
        f64((2,)).unsqueeze_(0)  # a leaf that requires grad, as in PyTorch


GRADCHECKS = {
    "scatter_src": (lambda x, s: x.scatter(1, rnnbp.tensor([[0, 1, 2], [2, 0, 3]]), s), [(2, 4), (2, 3)]),
    "scatter_value": (lambda x: x.scatter(0, rnnbp.tensor(IDX), 1.5), [(3, 4)]),
    "scatter_0d": (lambda x, s: x.scatter(0, rnnbp.tensor(0), s), [(), ()]),
    "index_fill": (lambda x: x.index_fill(1, rnnbp.tensor([0, 2]), -1.0), [(2, 3)]),
    "index_fill_tensor_value": (lambda x, v: x.index_fill(0, rnnbp.tensor([1]), v), [(3, 2), ()]),
    "select": (lambda x: x.select(1, -1), [(2, 3)]),
    "nan_to_num": (lambda x: x.nan_to_num(), [(1, 2)]),
    "clamp_min": (lambda x: x.clamp_min(0.1), [(3, 2)]),
    "clamp_max": (lambda x: rnnbp.clamp_max(x, 0.1), [(2,)]),
    "scatter_inplace": (lambda x, s: (x * 1).scatter_(0, rnnbp.tensor([[1, 0]]), s), [(2, 2), (1, 2)]),
}


@pytest.mark.parametrize("name", GRADCHECKS)
def test_gradcheck(name):
    fn, shapes = GRADCHECKS[name]
    assert gradcheck(fn, [f64(s, seed=i) for i, s in enumerate(shapes)])


def test_scatter_gradients_by_hand():
    x, s = f64((3,)), f64((2,), seed=1)
    x.scatter(0, rnnbp.tensor([2, 0]), s).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 0.0] and s.grad.tolist() == [1.0, 1.0]
    v = f64((), seed=2)
    rnnbp.zeros(3, dtype=rnnbp.float64).index_fill(0, rnnbp.tensor([0, 2]), v).sum().backward()
    assert v.grad.item() == 2.0


# ------------------------------------------------------------------ parity with PyTorch
def _both(torch, fn):
    """Run ``fn`` on (rnnbp, torch); the same kind of failure, or the same values, dtype and gradient."""
    mine_in = rnnbp.tensor(np.random.default_rng(3).normal(size=(3, 4)), dtype=rnnbp.float64, requires_grad=True)
    ref_in = torch.tensor(mine_in.numpy(), requires_grad=True)
    try:
        ref = fn(torch, ref_in)
    except Exception as exc:  # noqa: BLE001
        with pytest.raises((type(exc), IndexError, ValueError, TypeError)):
            fn(rnnbp, mine_in)
        return
    mine = fn(rnnbp, mine_in)
    assert str(mine.dtype) == str(ref.dtype).replace("torch.", "") and tuple(mine.shape) == tuple(ref.shape)
    np.testing.assert_allclose(mine.numpy(), ref.detach().numpy())
    if ref.requires_grad:
        weights = np.random.default_rng(4).normal(size=tuple(ref.shape))
        (mine * rnnbp.tensor(weights)).sum().backward()
        (ref * torch.tensor(weights)).sum().backward()
        np.testing.assert_allclose(mine_in.grad.numpy(), ref_in.grad.numpy())


PARITY = {
    "scatter_src": lambda t, x: x.scatter(1, t.tensor([[3, 1], [0, 2], [1, 1]][:2] + [[2, 0]]), x[:, :2] * 2),
    "scatter_value": lambda t, x: x.scatter(0, t.tensor([[0, 1, 2, 0]]), 0.5),
    "scatter_oob": lambda t, x: x.scatter(0, t.tensor([[3, 1, 2, 0]]), 0.5),
    "index_fill": lambda t, x: x.index_fill(1, t.tensor([-1, 0]), 2.0),
    "index_fill_oob": lambda t, x: x.index_fill(1, t.tensor([4]), 2.0),
    "select": lambda t, x: x.select(0, -2),
    "select_oob": lambda t, x: x.select(1, 4),
    "nan_to_num": lambda t, x: (t.tensor([np.nan, np.inf, -np.inf, 1.0], dtype=t.float64) + x[0]).nan_to_num(nan=1.0, posinf=3.0, neginf=-3.0),
    "clamp_min": lambda t, x: x.clamp_min(0.2),
    "clamp_max": lambda t, x: t.clamp_max(x, 0.2),
    "argwhere": lambda t, x: t.argwhere(x > 0),
    "searchsorted": lambda t, x: t.searchsorted(t.sort(x, dim=1)[0].detach(), x[:, :2].detach().contiguous(), right=True),
    "bucketize": lambda t, x: t.bucketize(x.detach(), t.tensor([-1.0, 0.0, 1.0], dtype=t.float64)),
    "byte": lambda t, x: (x > 0).byte(),
}


@pytest.mark.parametrize("name", PARITY)
def test_matches_torch(name):
    torch = pytest.importorskip("torch")
    _both(torch, PARITY[name])
