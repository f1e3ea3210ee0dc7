"""Basic indexing gives views, as in PyTorch (x[i, j] a 0-d one), and one-element tensors convert to Python numbers.

A new user's confusion matrix (``conf[t, p] += 1``) and ``x[0].zero_()`` failed: NumPy's x[i] is a
scalar copy, so the in-place op had nothing to write into.
"""
import math
import weakref

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


def test_views_share_the_version_of_what_they_were_indexed_from():
    # A graph that saved a view must refuse backward after its base changed (it gave w.grad 5).
    x = rnnbp.tensor([[1.0, 2.0], [3.0, 4.0]])
    w = rnnbp.tensor(3.0, requires_grad=True)
    y = x[0, 0] * w
    x[0, 0] = 5.0
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()
    z = (x[1:] * w).sum()
    x[1].zero_()
    with pytest.raises(RuntimeError, match="modified in place"):
        z.backward()
    d = rnnbp.ones(2)
    loss = (d.detach() * w).sum()
    d[0] = 7.0  # the other way round from detach's: the base changes after the detached tensor was saved
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_an_in_place_change_of_a_view_of_a_constant_is_written_into_it_in_the_graph():
    w = rnnbp.tensor(2.0, dtype=rnnbp.float64, requires_grad=True)
    c = rnnbp.zeros(4, 3, dtype=rnnbp.float64)
    c[1] += w
    c[2, 1:] += w * 3
    row = c[3]
    row[2:].add_(w * w)  # a view of a view
    np.testing.assert_array_equal(c.detach().numpy(), [[0, 0, 0], [2, 2, 2], [0, 6, 6], [0, 0, 4]])
    assert c.requires_grad
    c.sum().backward()
    assert w.grad.item() == 3 * 1.0 + 2 * 3.0 + 2 * 2.0


def test_an_in_place_change_of_a_view_of_a_graph_tensor_is_written_back_in_the_graph():
    x = rnnbp.tensor([1.0, 2.0, 3.0], dtype=rnnbp.float64, requires_grad=True)
    y = x * 2
    y[0] += 1  # a view's in-place change, then the assignment Python adds
    v = y[1:]
    v.mul_(3)
    y[2].zero_()
    np.testing.assert_array_equal(y.detach().numpy(), [3.0, 12.0, 0.0])
    np.testing.assert_array_equal(v.detach().numpy(), [12.0, 0.0])  # v shows y, as in PyTorch
    (y * rnnbp.tensor([1.0, 10.0, 100.0], dtype=rnnbp.float64)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 60.0, 0.0])


def test_in_place_changes_of_views_of_leaves_that_require_grad_are_refused():
    x = rnnbp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Tensor that requires grad"):
        x[0].zero_()
    with rnnbp.no_grad():
        x[0].zero_()  # as an optimizer would: written into the leaf
    assert x.detach().numpy()[0] == 0.0


def test_views_like_pytorch():
    torch = pytest.importorskip("torch")
    results = []
    for lib in (rnnbp, torch):
        x = lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64, requires_grad=True)
        w = lib.tensor(2.0, dtype=lib.float64, requires_grad=True)
        y = x * 2
        y[1:3] *= w
        y[0].add_(y[3])
        c = lib.zeros(2, 4, dtype=lib.float64)
        c[0] += y
        c[1, ::2] -= w * y[::2]
        (c * c).sum().backward()
        results.append([c.detach().numpy(), x.grad.numpy(), w.grad.numpy()])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


# Views stay views of their base's current value (as PyTorch's share its storage): a change of the base
# recorded in the graph re-points them, a write through a view of a view reaches the root, and a second
# change of the same view keeps the first in the graph. Each function below is gradchecked in float64.
def _base_changed_after_the_view(x, w):
    y = x * 2
    v = y[1:3]
    y.mul_(w)  # v shows the product, and its gradient flows through it
    return (v * v).sum()


def _sibling_views(x, w):
    y = x * 2
    a, b = y[0:2], y[1:3]
    a.mul_(w)
    return (b * b).sum()


def _stale_view_written_after_its_base_changed(x, w):
    y = x * 2
    v = y[0:2]
    y[3] = w
    v.add_(1)  # must not undo y[3] = w
    return (y * y).sum()


def _view_of_a_temporary_view(x, w):
    y = x * 2
    y[1:][1:].mul_(w)
    return (y * y).sum()


def _two_changes_of_one_view(x, w):
    y = x * 2
    v = y[1:3]
    v.mul_(w)
    v.add_(w)
    return (y * y).sum()


def _cell_states_accumulated(x, w):
    c = x.new_zeros(3, 2)
    h = x[:2] * w
    for t in range(3):
        c[t] += h * (t + 1)
        c[1][0] += h[1]
    return (c * c).sum()


VIEW_PROGRAMS = [_base_changed_after_the_view, _sibling_views, _stale_view_written_after_its_base_changed,
                 _view_of_a_temporary_view, _two_changes_of_one_view, _cell_states_accumulated]


def test_a_view_shows_its_base_after_each_kind_of_change():
    x = rnnbp.tensor([1.0, 2.0, 3.0, 4.0], dtype=rnnbp.float64, requires_grad=True)
    y = x * 2
    v = y[1:3]
    y.mul_(3)  # recorded in the graph
    np.testing.assert_array_equal(v.detach().numpy(), [12.0, 18.0])
    with rnnbp.no_grad():
        y.add_(1)  # outside it
    np.testing.assert_array_equal(v.detach().numpy(), [13.0, 19.0])
    with rnnbp.no_grad():
        v.add_(10)  # and through the view
    np.testing.assert_array_equal(y.detach().numpy(), [7.0, 23.0, 29.0, 25.0])


def test_c_t_plus_equals_records_one_write():
    c = rnnbp.zeros(2, 3, dtype=rnnbp.float64)
    h = rnnbp.ones(3, dtype=rnnbp.float64, requires_grad=True)
    c[0] += h
    node = c.grad_fn
    # one SetItem, whose base is the old c (zeros, needing no gradient); recorded twice, its base
    # would be the first SetItem's result
    assert type(node).__name__ == "SetItem" and node.parents[0] is None
    c[1] = c[0]  # a different place: copied
    np.testing.assert_array_equal(c.detach().numpy(), np.ones((2, 3)))


def test_views_of_views_of_leaves_and_no_grad_views_are_refused_in_the_graph():
    x = rnnbp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = rnnbp.tensor(2.0, requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Tensor that requires grad"):
        x[0:2][1:].add_(1)
    with rnnbp.no_grad():
        v = x[1:]
    with pytest.raises(RuntimeError, match="A view was created in no_grad mode"):
        v.add_(w)
    assert x.is_leaf and x.grad_fn is None
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 2.0, 3.0])  # left as it was found


def _assert_like_pytorch(program, x_values, w_value):
    """``program(x, w)``'s loss and the gradients of x and w, rnnbp against PyTorch, in float64."""
    torch = pytest.importorskip("torch")
    results = []
    for lib in (rnnbp, torch):
        x = lib.tensor(x_values, dtype=lib.float64, requires_grad=True)
        w = lib.tensor(w_value, dtype=lib.float64, requires_grad=True)
        loss = program(x, w)
        loss.backward()
        results.append([loss.item(), x.grad.numpy(), w.grad.numpy()])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, err_msg=program.__name__)


def test_view_programs_like_pytorch():
    for program in VIEW_PROGRAMS:
        _assert_like_pytorch(program, [1.0, 2.0, 3.0, 4.0], 3.0)


# From a review of the above: changes outside the graph keep the views' gradients, a base may change
# shape in place or be replaced, view chains may be deep, and PyTorch's no_grad-view rules hold.
def test_a_write_outside_the_graph_keeps_the_views_in_it():
    x = rnnbp.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=rnnbp.float64, requires_grad=True)
    y = x * 2
    v = y[0]
    with rnnbp.no_grad():
        y[1] = 5.0
    (v * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[6.0, 6.0], [0.0, 0.0]])
    np.testing.assert_array_equal(y.detach().numpy(), [[2.0, 4.0], [5.0, 5.0]])


def test_a_base_changing_shape_in_place_keeps_its_views():
    x = rnnbp.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=rnnbp.float64, requires_grad=True)
    y = x * 1
    v = y[0]
    y.unsqueeze_(0)
    y.mul_(2)
    assert v.shape == (2,)
    np.testing.assert_array_equal(v.detach().numpy(), [2.0, 4.0])
    (v * rnnbp.tensor([1.0, 10.0], dtype=rnnbp.float64)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 20.0], [0.0, 0.0]])
    x.grad = None
    y = x * 1
    v = y[1]
    v.unsqueeze_(0)  # the view itself changes shape, then in place
    v.mul_(2)
    np.testing.assert_array_equal(y.detach().numpy(), [[1.0, 2.0], [6.0, 8.0]])
    (y * y).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 4.0], [24.0, 32.0]])


def test_replacing_data_leaves_the_views_with_the_old_memory():
    y = rnnbp.tensor([1.0, 2.0, 3.0], dtype=rnnbp.float64, requires_grad=True) * 1
    v = y[1:]
    y.data = rnnbp.tensor([7.0, 8.0, 9.0], dtype=rnnbp.float64)
    y.mul_(2)
    np.testing.assert_array_equal(v.detach().numpy(), [2.0, 3.0])
    np.testing.assert_array_equal(y.detach().numpy(), [14.0, 16.0, 18.0])


def test_views_made_under_no_grad_follow_pytorch_rules():
    x = rnnbp.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=rnnbp.float64, requires_grad=True)
    y = x * 2
    with rnnbp.no_grad():
        target = y[0]
    y.mul_(3)
    np.testing.assert_array_equal(target.numpy(), [6.0, 12.0])  # it shows the base
    with pytest.raises(RuntimeError, match="A view was created in no_grad mode and its base"):
        (y[0] - target).sum()
    w = rnnbp.tensor([1.0, 2.0], requires_grad=True)
    with rnnbp.no_grad():
        v = w[:1]
    with pytest.raises(RuntimeError, match="A view was created in no_grad mode and is being modified inplace"):
        v.add_(1)
    np.testing.assert_array_equal(w.detach().numpy(), [1.0, 2.0])


def test_deep_chains_of_views():
    w = rnnbp.tensor([float(i) for i in range(1500)], dtype=rnnbp.float64, requires_grad=True)
    buf = w * 2
    total = 0
    while buf.shape[0] > 1:  # a buffer consumed from the front: a chain of 1499 views
        total = total + buf[0]
        buf = buf[1:]
    buf.add_(1)
    (total + buf.sum()).backward()
    assert total.item() == sum(2.0 * i for i in range(1499))
    np.testing.assert_array_equal(w.grad.numpy(), np.full(1500, 2.0))
    x = rnnbp.zeros(10, dtype=rnnbp.float64)
    v = x
    for _ in range(3000):
        v = v[:]
    v.add_(1)
    assert x.sum().item() == 10.0


def test_a_zero_dim_integer_tensor_indexes_as_an_integer():
    c = rnnbp.zeros(3, 2)
    c[rnnbp.tensor(1)].add_(1)
    c[rnnbp.tensor(2), rnnbp.tensor(0)] += 5
    np.testing.assert_array_equal(c.numpy(), [[0.0, 0.0], [1.0, 1.0], [5.0, 0.0]])


def test_many_live_views_keep_indexing_cheap():
    x = rnnbp.zeros(100, 4)
    kept = [x[i] for i in range(40)]
    for i in range(5000):
        x[i % 100]
    assert len(x._views) < 2 * len(kept) + 20  # the dead ones are dropped as the list grows


def _fill_and_reuse(x, w):
    """out[t] = h in a loop (written into out's own array), with a view of out alive midway (the
    writes after it must copy out and re-point the view, which then shows the last write)."""
    out = x.new_zeros(3, 4)
    h = x * 0
    for t in range(3):
        h = (x * w + h).tanh()
        out[t] = h
        if t == 1:
            first = out[0]
    out[0, 1:3] = w * 2
    return (out * out).sum() + (first * first * first).sum()


def test_filling_a_tensor_in_a_loop_writes_into_it_and_stays_exact():
    from rnnbp.autograd import gradcheck

    x = rnnbp.tensor([0.1, 0.2, 0.3, 0.4], dtype=rnnbp.float64, requires_grad=True)
    w = rnnbp.tensor(0.7, dtype=rnnbp.float64, requires_grad=True)
    assert gradcheck(_fill_and_reuse, [x, w])
    out = rnnbp.zeros(50, 4, dtype=rnnbp.float64)
    h = x * 1
    for t in range(50):
        h = h * w
        out[t] = h  # the first write copies the constant zeros (a constant's values may be read later)
        if t == 0:
            array = weakref.ref(out._data)  # weak: holding the array would make every write copy it
    assert out._data is array()  # nothing held out's array: every later step wrote into it
    row = out[0]  # a view holds the array now
    out[0] = w
    assert out._data is not array()  # so this write went to a copy, and the view was re-pointed at it
    np.testing.assert_array_equal(row.detach().numpy(), np.full(4, 0.7))


def test_filling_a_tensor_like_pytorch():
    _assert_like_pytorch(_fill_and_reuse, [0.1, 0.2, 0.3, 0.4], 0.7)


def test_a_tracer_holding_frame_locals_never_lets_a_write_reach_a_saved_array():
    import sys

    def tracer(frame, event, arg):
        frame.f_locals  # as debuggers and argument-logging profilers do: snapshots hold references
        return tracer

    def program():
        x = rnnbp.tensor([0.5, 1.0, -0.3], dtype=rnnbp.float64, requires_grad=True)
        y = rnnbp.softmax(x, 0)  # Softmax keeps y's array for its backward
        y[0] = rnnbp.tensor(3.0, dtype=rnnbp.float64, requires_grad=True)
        (y * rnnbp.tensor([1.0, 2.0, 3.0], dtype=rnnbp.float64)).sum().backward()
        return x.grad.numpy()

    expected = program()
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        traced = program()
    finally:
        sys.settrace(previous)
    p = np.exp([0.5, 1.0, -0.3]) / np.exp([0.5, 1.0, -0.3]).sum()
    g = np.array([0.0, 2.0, 3.0])  # y[0] was overwritten: only y[1], y[2] reach x
    np.testing.assert_allclose(expected, p * (g - (g * p).sum()), rtol=1e-12)
    np.testing.assert_allclose(traced, expected, rtol=1e-12)


def test_accumulating_into_rows_and_reading_the_previous_row_write_in_place():
    x = rnnbp.tensor([0.1, 0.2, 0.3], dtype=rnnbp.float64, requires_grad=True)
    out = rnnbp.zeros(40, 3, dtype=rnnbp.float64)
    for t in range(40):
        out[t] += x * t          # a view changed in place: written back into out's array
        if t:
            out[t] = (out[t - 1] + out[t]) * 0.5  # reads a row (Add keeps no values), writes another
        else:
            array = weakref.ref(out._data)  # after the first write: out is in the graph
    assert out._data is array()  # no later step copied out
    for t in range(0, 40, 2):
        out[t].zero_()  # so does clearing rows
    assert out._data is array()
    out.sum().backward()
    expected, row = np.zeros(3), 0.0
    for t in range(40):  # d out[t] / dx by hand: row_t = (row_{t-1} + t) / 2 for t > 0; even rows cleared
        row = t if t == 0 else (row + t) * 0.5
        expected += row if t % 2 else 0.0
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)


def test_writes_outside_the_graph_go_into_an_array_nothing_else_holds():
    x = rnnbp.ones(300, 4, dtype=rnnbp.float64, requires_grad=True)
    y = x * 2  # nothing keeps y's array (Mul by a constant saves no values)
    array = weakref.ref(y._data)
    with rnnbp.no_grad():
        for t in range(300):  # masking rows of a graph tensor
            y[t, 1] = 0.5
    assert y._data is array()  # written in place: no copy per row
    np.testing.assert_array_equal(y.detach().numpy()[:, 1], 0.5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.full((300, 4), 2.0))  # the graph is as it was
    x.grad = None
    z = x.tanh()  # Tanh keeps z's array for its backward: a write must go to a copy
    with rnnbp.no_grad():
        z[0, 0] = 5.0
    assert z.detach().numpy()[0, 0] == 5.0
    z.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((300, 4), 1 - np.tanh(1.0) ** 2), rtol=1e-12)


def _hand_written_rnn(lib, clone: bool):
    """out[t] = tanh(x[t] W + out[t-1] U) written into rows of a buffer; (dW, dU) of a weighted sum."""
    rng = np.random.default_rng(0)
    T, B, I, H = 5, 3, 4, 6
    x = lib.tensor(rng.standard_normal((T, B, I)), dtype=lib.float64)
    w = lib.tensor(rng.standard_normal((I, H)), dtype=lib.float64, requires_grad=True)
    u = lib.tensor(rng.standard_normal((H, H)), dtype=lib.float64, requires_grad=True)
    out = lib.zeros(T, B, H, dtype=lib.float64)
    out[0] = lib.tanh(x[0] @ w)
    for t in range(1, T):
        previous = out[t - 1].clone() if clone else out[t - 1]
        out[t] = lib.tanh(x[t] @ w + previous @ u)
    (out * lib.tensor(np.arange(T * B * H).reshape(T, B, H) / 10.0, dtype=lib.float64)).sum().backward()
    return w.grad.numpy(), u.grad.numpy()


def test_a_hand_written_rnn_filling_rows_of_a_buffer_gets_the_gradients_of_its_clone_version():
    # The product keeps a view of out[t-1] and the next write goes to another row: rnnbp's rows are
    # their own, so the gradients are those of the program with out[t - 1].clone(). PyTorch 2.13
    # refuses the version without clone ("modified by an inplace operation").
    for a, b in zip(_hand_written_rnn(rnnbp, False), _hand_written_rnn(rnnbp, True)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_a_hand_written_rnn_filling_rows_of_a_buffer_matches_pytorchs_clone_version():
    torch = pytest.importorskip("torch")
    for a, b in zip(_hand_written_rnn(rnnbp, False), _hand_written_rnn(torch, True)):
        np.testing.assert_allclose(a, b, rtol=1e-10)


# Reshaping and permuting give views too (reshape, view, flatten, squeeze, unsqueeze; permute, transpose,
# t, T), as in PyTorch: an in-place change of one reaches its base and the base's reaches it. Each
# program is gradchecked in float64 and compared with PyTorch.
def _reshaped_view_changed(x, w):
    y = x * 2
    y.view(2, 2).mul_(w)
    return (y * y).sum()


def _base_changed_after_a_reshape(x, w):
    y = x * 2
    v = y.view(2, 2)
    y.add_(w)
    return (v * v * x.view(2, 2)).sum()


def _row_of_a_transposed_view_changed(x, w):
    y = (x * 2).reshape(2, 2)
    y.t()[0].mul_(w)  # an index view of a permuted view of a reshaped view
    return (y * y * x.view(2, 2)).sum()


def _unsqueezed_and_squeezed(x, w):
    y = x * 2
    v = y.unsqueeze(0).squeeze(0)
    v[1:].mul_(w)
    return (y * y).sum()


def _permuted_three_dims(x, w):
    y = (x * 2).view(1, 2, 2)
    p = y.permute(2, 0, 1)
    p.add_(w)
    y.permute(2, 1, 0).mul_(w)
    return (y * y).sum() + (p * x.view(2, 1, 2)).sum()


def _flatten_of_a_transpose_is_a_copy(x, w):
    y = (x * 2).view(2, 2)
    f = y.t().flatten()  # not contiguous: a copy, in PyTorch too, so y does not change
    f.mul_(w)
    return (y * y).sum() + (f * x).sum()


ARRANGED_PROGRAMS = [_reshaped_view_changed, _base_changed_after_a_reshape, _row_of_a_transposed_view_changed,
                     _unsqueezed_and_squeezed, _permuted_three_dims, _flatten_of_a_transpose_is_a_copy]


@pytest.mark.parametrize("program", VIEW_PROGRAMS + ARRANGED_PROGRAMS, ids=lambda f: f.__name__.strip("_"))
def test_in_place_programs_on_views_gradcheck(program):
    from rnnbp.autograd import gradcheck

    x = rnnbp.tensor([1.0, 2.0, 3.0, 4.0], dtype=rnnbp.float64, requires_grad=True)
    w = rnnbp.tensor(3.0, dtype=rnnbp.float64, requires_grad=True)
    assert gradcheck(program, [x, w])


def test_reshaped_and_permuted_view_programs_like_pytorch():
    for program in ARRANGED_PROGRAMS:
        _assert_like_pytorch(program, [1.0, 2.0, 3.0, 4.0], 3.0)


def test_a_reshaped_view_and_its_base_see_each_others_changes():
    x = rnnbp.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=rnnbp.float64, requires_grad=True)
    y = x * 1
    flat, cols = y.view(6), y.t()
    flat.add_(1)  # in the graph
    np.testing.assert_array_equal(y.detach().numpy(), [[2.0, 3.0, 4.0], [5.0, 6.0, 7.0]])
    np.testing.assert_array_equal(cols.detach().numpy(), [[2.0, 5.0], [3.0, 6.0], [4.0, 7.0]])
    with rnnbp.no_grad():
        cols[0].fill_(0.0)  # outside it, through a view of a view
    np.testing.assert_array_equal(flat.detach().numpy(), [0.0, 3.0, 4.0, 0.0, 6.0, 7.0])
    (y * y).sum().backward()  # the product reads y as written; y = x + 1 in the graph
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, 6.0, 8.0], [0.0, 12.0, 14.0]])
    with pytest.raises(RuntimeError, match="a view of a leaf Tensor that requires grad"):
        x.view(6).add_(1)
    with pytest.raises(RuntimeError, match="a view of a leaf Tensor that requires grad"):
        x.t().mul_(2)
    np.testing.assert_array_equal(x.detach().numpy(), [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # left as found


def test_a_reshaped_view_whose_base_takes_another_layout_keeps_its_values():
    x = rnnbp.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=rnnbp.float64, requires_grad=True)
    y = x * 1
    flat = y.view(4)
    y.t().mul_(10)  # y's new value comes through the transpose; y stays C-ordered, flat stays its view
    np.testing.assert_array_equal(flat.detach().numpy(), [10.0, 20.0, 30.0, 40.0])
    with rnnbp.no_grad():
        flat[0] = -1.0
    assert y.detach().numpy()[0, 0] == -1.0


def _pieces_changed(x, w, pieces):
    y = (x * 2).view(2, 2)
    first, second = pieces(y)
    second.mul_(w)
    first[0].add_(w)
    y.add_(1)  # and back into the pieces
    return (y * y).sum() + (first * second).sum()


def test_chunk_and_split_give_views_as_slicing_does():
    # PyTorch refuses in-place changes of split's pieces in the graph; rnnbp's are views, as x[:, a:b] and
    # unbind's are, and the program computes what it does with slices.
    from rnnbp.autograd import gradcheck

    ways = [lambda y: y.chunk(2, 1), lambda y: y.split([1, 1], dim=-1), lambda y: (y[:, :1], y[:, 1:])]
    results = []
    for pieces in ways:
        x = rnnbp.tensor([1.0, 2.0, 3.0, 4.0], dtype=rnnbp.float64, requires_grad=True)
        w = rnnbp.tensor(3.0, dtype=rnnbp.float64, requires_grad=True)
        assert gradcheck(lambda x, w: _pieces_changed(x, w, pieces), [x, w])
        loss = _pieces_changed(x, w, pieces)
        loss.backward()
        results.append([loss.item(), x.grad.numpy(), w.grad.numpy()])
    for result in results[:2]:  # chunk, split: as slices
        for ours, expected in zip(result, results[2]):
            np.testing.assert_allclose(ours, expected, rtol=1e-12)


# From a review of the reshaped and permuted views: each program's values and gradients against PyTorch's.
def _outputs_like_pytorch(program):
    torch = pytest.importorskip("torch")
    results = []
    for lib in (rnnbp, torch):
        results.append([np.asarray(t.detach().numpy()) if hasattr(t, "detach") else t for t in program(lib)])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, err_msg=program.__name__)


def _leaves(lib):
    x = lib.tensor(np.arange(1.0, 13.0).reshape(3, 4), dtype=lib.float64, requires_grad=True)
    return x, lib.tensor(2.0, dtype=lib.float64, requires_grad=True)


def _view_of_an_index_view_follows_its_change(lib):
    x, w = _leaves(lib)
    row = (x * 1)[0]
    wide = row.unsqueeze(0)
    row.mul_(w)  # wide must follow row's new value in the graph, not only show it
    loss = (wide * lib.tensor([[1.0, 10.0, 100.0, 1000.0]], dtype=lib.float64)).sum()
    loss.backward()
    return [wide, loss, x.grad, w.grad]


def _base_with_a_transposed_layout_changed(lib):
    x, w = _leaves(lib)
    root = x.t() * 1  # column-major in NumPy and in PyTorch
    flat = root.t().view(12)
    root.add_(lib.tensor(np.arange(12.0).reshape(4, 3), dtype=lib.float64))  # a C-ordered operand
    root[1, 1] = w
    flat.mul_(w)  # still a view of root
    with lib.no_grad():
        root[0, 0] = 100.0
    loss = (root * root).sum() + flat.sum()
    loss.backward()
    return [root, flat, loss, x.grad, w.grad]


def _broadcast_copy_then_a_reshaped_slice(lib):
    x, w = _leaves(lib)
    y = x * 1
    y.copy_(w * 1)
    piece = y[:, :2].reshape(6)  # not contiguous: a copy, so y keeps its values
    piece.add_(5)
    clone = x.t().clone()
    clone.flatten().mul_(10)  # a clone keeps the transposed layout: flatten copies, clone keeps its values
    loss = (y * y).sum() + (clone * piece.sum()).sum()
    loss.backward()
    return [y, piece, clone, loss, x.grad, w.grad]


@pytest.mark.parametrize("program", [_view_of_an_index_view_follows_its_change, _base_with_a_transposed_layout_changed,
                                     _broadcast_copy_then_a_reshaped_slice], ids=lambda f: f.__name__.strip("_"))
def test_reviewed_view_programs_like_pytorch(program):
    _outputs_like_pytorch(program)


def test_a_chain_of_reshapes_or_transposes_stays_one_link_deep():
    for step in (lambda y: y.view(64).view(8, 8), lambda y: y.t()):
        x = rnnbp.randn(8, 8, dtype=rnnbp.float64, requires_grad=True)
        root = y = x * 1
        for _ in range(300):  # each write goes back one link, not up a chain of 300
            y = step(y)
            y.mul_(0.5)
        assert y._view[0] is root
        (y * rnnbp.arange(64.0, dtype=rnnbp.float64).view(8, 8)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), np.arange(64.0).reshape(8, 8) * 0.5 ** 300, rtol=1e-12)


def test_a_view_of_a_view_made_under_no_grad_may_not_change_in_the_graph():
    # PyTorch: "... is a view of a view which was created in no grad mode ..."; rnnbp wrote into x silently
    for make in (lambda y: y[1:], lambda y: y.permute(1, 0)):
        x = rnnbp.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=rnnbp.float64, requires_grad=True)
        y = x * 1
        with rnnbp.no_grad():
            v = make(y)
        with pytest.raises(RuntimeError, match="A view was created in no_grad mode"):
            v[0].add_(3.0)
        np.testing.assert_array_equal(y.detach().numpy(), [[1.0, 2.0], [3.0, 4.0]])  # left as found
