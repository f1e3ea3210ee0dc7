"""x[i] with an integer per dim is a 0-d view, as in PyTorch, and one-element tensors convert to Python numbers.

A new user's confusion matrix (``conf[t, p] += 1``) and ``x[0].zero_()`` failed: NumPy's x[i] is a
scalar copy, so the in-place op had nothing to write into.
"""
import math

import numpy as np
import pytest

import rnnbp


def test_in_place_ops_on_one_element_write_into_the_tensor():
    conf = rnnbp.zeros(3, 3, dtype=rnnbp.int64)
    for t, p in [(1, 2), (1, 2), (0, 0)]:
        conf[t, p] += 1
    np.testing.assert_array_equal(conf.numpy(), [[1, 0, 0], [0, 0, 2], [0, 0, 0]])
    x = rnnbp.tensor([1.0, 2.0, 3.0, 4.0])
    x[0] *= 2
    x[1].fill_(5)
    x[2].add_(1)
    x[3].zero_()
    np.testing.assert_array_equal(x.numpy(), [2.0, 5.0, 4.0, 0.0])


def test_an_element_is_a_view_that_sees_later_writes():
    x = rnnbp.arange(4.0)
    v = x[1]
    x[1] = 10.0
    assert v.item() == 10.0 and v.shape == () and isinstance(v.numpy(), np.ndarray)
    g = rnnbp.zeros(2, 2)
    g[0][1].add_(3.0)  # a row, then an element: both views
    assert g.numpy()[0, 1] == 3.0


def test_an_element_of_a_graph_tensor_still_backpropagates():
    w = rnnbp.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=rnnbp.float64, requires_grad=True)
    (w[1, 0] * w[0, 1]).backward()
    np.testing.assert_array_equal(w.grad.numpy(), [[0.0, 3.0], [2.0, 0.0]])


def test_one_element_tensors_convert_to_python_numbers():
    assert float(rnnbp.tensor([2.5])) == 2.5 and int(rnnbp.tensor([[3]])) == 3
    assert math.exp(rnnbp.tensor([1.0])) == pytest.approx(math.e)
    assert "%.3f" % rnnbp.tensor([2.5]) == "2.500"
    with pytest.raises(ValueError, match=r"float\(\): only one element tensors.*\(2,\)"):
        float(rnnbp.tensor([1.0, 2.0]))


def test_like_pytorch():
    torch = pytest.importorskip("torch")
    ours, theirs = rnnbp.zeros(2, 3, dtype=rnnbp.int64), torch.zeros(2, 3, dtype=torch.int64)
    for t, p in [(0, 1), (1, 2), (0, 1)]:
        ours[t, p] += 1
        theirs[t, p] += 1
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert float(rnnbp.tensor([[7.0]])) == float(torch.tensor([[7.0]]))
