"""Recursive cells and the level-by-level scheduler (backpropagation through structure).

* gradcheck of every cell over a batch of mixed trees (and a DAG), float64;
* the batch equals each tree run alone, and every node equals an independent NumPy
  reference evaluated node by node (Tai et al. 2015's equations written out);
* the fused Tree-LSTM levels equal the same cells composed from primitive ops;
* on a chain, the Child-Sum and 1-ary Tree-LSTMs are nn.LSTM, the recursive cell nn.RNN;
* one cell call per level, not per node; errors name the module and the shapes.
"""
import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.autograd import gradcheck
from rnnbp.structure import Tree, TreeBatch


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def mixed_trees(max_children=2):
    """Leaves, chains, full and lopsided trees, nodes with fewer than max_children children."""
    trees = [
        Tree.from_nested(("+", ("*", 3, 4), 7), labelled=True),
        Tree.from_nested(5, labelled=True),
        Tree.from_nested(("-", 1, ("+", 2, ("*", 3, ("-", 4, 5)))), labelled=True),
        Tree.from_nested(("neg", ("neg", 6)), labelled=True),   # one child per node
        Tree.from_parents([2, 2, -1], values=[1, 2, "+"]),
    ]
    if max_children is None or max_children >= 3:
        trees.append(Tree.from_nested(("f", 1, ("g", 2, 3, 4), 5), labelled=True))
    return trees


def node_inputs(batch, size, rng, dtype=np.float64):
    return rnnbp.tensor(rng.standard_normal((batch.num_nodes, size)).astype(dtype), requires_grad=True)


CELLS = {
    "rnn-sum": lambda: nn.RecursiveRNN(3, 4, dtype=np.float64),
    "rnn-sum-relu-nobias": lambda: nn.RecursiveRNN(3, 4, nonlinearity="relu", bias=False, dtype=np.float64),
    "rnn-2ary": lambda: nn.RecursiveRNN(3, 4, num_children=2, dtype=np.float64),
    "childsum-lstm": lambda: nn.TreeLSTM(3, 4, dtype=np.float64),
    "childsum-lstm-nobias": lambda: nn.TreeLSTM(3, 4, bias=False, dtype=np.float64),
    "2ary-lstm": lambda: nn.TreeLSTM(3, 4, num_children=2, dtype=np.float64),
    "3ary-lstm": lambda: nn.TreeLSTM(3, 4, num_children=3, dtype=np.float64),
    "childsum-lstm-composed": lambda: nn.TreeLSTM(3, 4, fused=False, dtype=np.float64),
    "2ary-lstm-composed": lambda: nn.TreeLSTM(3, 4, num_children=2, fused=False, dtype=np.float64),
    "3ary-lstm-composed": lambda: nn.TreeLSTM(3, 4, num_children=3, fused=False, dtype=np.float64),
}


def reference_node(cell, x, kids_h, kids_c):
    """One node by Tai et al.'s equations in plain NumPy (kids in order, possibly none)."""
    w_ih, w_hh = cell.weight_ih.numpy(), cell.weight_hh.numpy()
    b = cell.bias_ih.numpy() + cell.bias_hh.numpy() if cell.bias else np.zeros(w_ih.shape[0])
    hsz = cell.hidden_size
    n = cell.num_children
    if isinstance(cell, nn.RecursiveRNNCell):
        if n is None:
            s = np.sum(kids_h, axis=0) if kids_h else np.zeros(hsz)
        else:
            s = np.concatenate(kids_h + [np.zeros(hsz)] * (n - len(kids_h)))
        pre = w_ih @ x + b + w_hh @ s
        return (np.tanh(pre) if cell.nonlinearity == "tanh" else np.maximum(pre, 0)), None
    if isinstance(cell, nn.ChildSumTreeLSTMCell):
        wi, wf, wg, wo = np.split(w_ih, 4)
        ui, uf, ug, uo = np.split(w_hh, 4)
        bi, bf, bg, bo = np.split(b, 4)
        h_sum = np.sum(kids_h, axis=0) if kids_h else np.zeros(hsz)
        i = sigmoid(wi @ x + ui @ h_sum + bi)
        o = sigmoid(wo @ x + uo @ h_sum + bo)
        u = np.tanh(wg @ x + ug @ h_sum + bg)
        c = i * u + sum(sigmoid(wf @ x + uf @ hk + bf) * ck for hk, ck in zip(kids_h, kids_c))
        return o * np.tanh(c), c
    # N-ary: gates [i, f_1..f_N, g, o]
    s = np.concatenate(kids_h + [np.zeros(hsz)] * (n - len(kids_h)))
    gates = w_ih @ x + w_hh @ s + b
    i, f, g, o = np.split(gates, np.cumsum([hsz, n * hsz, hsz]))
    f = sigmoid(f.reshape(n, hsz))
    c = sigmoid(i) * np.tanh(g) + sum(f[k] * ck for k, ck in enumerate(kids_c))
    return sigmoid(o) * np.tanh(c), c


def reference_tree(cell, tree, x_rows):
    """h (and c) of every node of one tree, node by node in topological order."""
    h, c = {}, {}
    for node in tree.topological_order().tolist():
        kids = list(tree.children[node])
        h[node], c[node] = reference_node(cell, x_rows[node], [h[k] for k in kids], [c[k] for k in kids])
    return h, c


@pytest.mark.parametrize("name", sorted(CELLS))
def test_batch_matches_node_by_node_reference(name):
    rnnbp.manual_seed(0)
    model = CELLS[name]()
    with rnnbp.no_grad():
        for p in model.parameters():  # larger weights than the default init, to exercise saturation
            p.data *= 2.0
    rng = np.random.default_rng(1)
    trees = mixed_trees(model.cell.num_children)
    batch = TreeBatch(trees)
    x = node_inputs(batch, 3, rng)
    output, root = model(x, batch)
    root_h = root[0] if isinstance(root, tuple) else root
    assert output.shape == (batch.num_nodes, 4) and root_h.shape == (len(trees), 4)
    for i, tree in enumerate(trees):
        pos = batch.positions(i)
        h_ref, c_ref = reference_tree(model.cell, tree, x.numpy()[pos])
        for node in range(tree.num_nodes):
            np.testing.assert_allclose(output.numpy()[pos[node]], h_ref[node], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(root_h.numpy()[i], h_ref[tree.root], rtol=1e-12, atol=1e-12)
        if isinstance(root, tuple):
            np.testing.assert_allclose(root[1].numpy()[i], c_ref[tree.root], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_batch_equals_trees_one_by_one_values_and_gradients(name):
    rnnbp.manual_seed(0)
    model = CELLS[name]()
    rng = np.random.default_rng(2)
    trees = mixed_trees(model.cell.num_children)
    batch = TreeBatch(trees)
    x = node_inputs(batch, 3, rng)
    weights = rng.standard_normal((len(trees), 4))
    output, root = model(x, batch)
    root_h = root[0] if isinstance(root, tuple) else root
    (root_h * rnnbp.tensor(weights)).sum().backward()
    batch_grads = {k: p.grad.numpy().copy() for k, p in model.named_parameters()}
    batch_x_grad = x.grad.numpy().copy()
    model.zero_grad()
    summed = {k: 0.0 for k in batch_grads}
    for i, tree in enumerate(trees):
        pos = batch.positions(i)
        xi = rnnbp.tensor(x.numpy()[pos], requires_grad=True)   # the tree's rows, by node id
        out, r = model(xi, tree if i % 2 else TreeBatch([tree]))  # a Tree alone is a batch of one
        np.testing.assert_allclose(out.numpy(), output.numpy()[pos], rtol=1e-12, atol=1e-13)
        ri = r[0] if isinstance(r, tuple) else r
        np.testing.assert_allclose(ri.numpy()[0], root_h.numpy()[i], rtol=1e-12, atol=1e-13)
        (ri * rnnbp.tensor(weights[i:i + 1])).sum().backward()
        np.testing.assert_allclose(xi.grad.numpy(), batch_x_grad[pos], rtol=1e-10, atol=1e-13)
        for k, p in model.named_parameters():
            summed[k] = summed[k] + (0.0 if p.grad is None else p.grad.numpy())  # a lone leaf never uses weight_hh
        model.zero_grad()
    for k in batch_grads:
        np.testing.assert_allclose(batch_grads[k], summed[k], rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_gradcheck_over_a_batch_of_mixed_trees(name):
    rnnbp.manual_seed(0)
    model = CELLS[name]()
    rng = np.random.default_rng(3)
    batch = TreeBatch(mixed_trees(model.cell.num_children))
    x = node_inputs(batch, 3, rng)
    params = list(model.parameters())

    def fn(x, *p):
        output, root = model(x, batch)
        return (output,) + (root if isinstance(root, tuple) else (root,))

    assert gradcheck(fn, [x] + params, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("name", ["rnn-sum", "rnn-2ary", "childsum-lstm", "2ary-lstm"])
def test_gradcheck_on_a_dag_with_a_shared_subtree(name):
    """(a*b) feeds two parents, one of them twice: its gradient is the sum over every use."""
    rnnbp.manual_seed(0)
    model = CELLS[name]()
    dag = Tree([(), (), (0, 1), (2, 2), (3, 2)], values=["a", "b", "*", "+", "-"])
    batch = TreeBatch([dag, mixed_trees()[0]])
    x = node_inputs(batch, 3, np.random.default_rng(4))

    def fn(x, *p):
        output, _ = model(x, batch)
        return output

    assert gradcheck(fn, [x] + list(model.parameters()), atol=1e-6, rtol=1e-4)
    h_ref, _ = reference_tree(model.cell, dag, x.numpy()[batch.positions(0)])
    np.testing.assert_allclose(model(x, batch)[0].data[batch.roots[0]], h_ref[dag.root], rtol=1e-12)


def chain(length):
    """x_0 at the deepest leaf ... x_{T-1} at the root: node t's child is node t-1."""
    return Tree([()] + [(t - 1,) for t in range(1, length)])


@pytest.mark.parametrize("kind", ["childsum", "1ary"])
def test_tree_lstm_on_a_chain_is_nn_lstm(kind):
    rnnbp.manual_seed(0)
    T, B, I, H = 5, 3, 3, 4
    lstm = nn.LSTM(I, H, dtype=np.float64)
    tree_lstm = nn.TreeLSTM(I, H, num_children=None if kind == "childsum" else 1, dtype=np.float64)
    tree_lstm.cell.load_state_dict({k[:-3]: v for k, v in lstm.state_dict().items()})
    rng = np.random.default_rng(5)
    xs = rng.standard_normal((T, B, I))
    out, (h_n, c_n) = lstm(rnnbp.tensor(xs))
    batch = TreeBatch([chain(T)] * B)
    # node t of tree b is row b * T + t
    output, (h_root, c_root) = tree_lstm(rnnbp.tensor(xs.transpose(1, 0, 2).reshape(B * T, I)), batch)
    np.testing.assert_allclose(output.numpy().reshape(B, T, H).transpose(1, 0, 2), out.numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(h_root.numpy(), h_n.numpy()[0], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(c_root.numpy(), c_n.numpy()[0], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("num_children", [None, 1])
def test_recursive_rnn_on_a_chain_is_nn_rnn(num_children):
    rnnbp.manual_seed(0)
    T, B, I, H = 6, 2, 3, 4
    rnn = nn.RNN(I, H, dtype=np.float64)
    rec = nn.RecursiveRNN(I, H, num_children=num_children, dtype=np.float64)
    rec.cell.load_state_dict({k[:-3]: v for k, v in rnn.state_dict().items()})
    xs = np.random.default_rng(6).standard_normal((T, B, I))
    out, h_n = rnn(rnnbp.tensor(xs))
    output, h_root = rec(rnnbp.tensor(xs.transpose(1, 0, 2).reshape(B * T, I)), TreeBatch([chain(T)] * B))
    np.testing.assert_allclose(output.numpy().reshape(B, T, H).transpose(1, 0, 2), out.numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(h_root.numpy(), h_n.numpy()[0], rtol=1e-12, atol=1e-13)


def test_one_cell_call_per_level_not_per_node():
    rnnbp.manual_seed(0)
    model = nn.TreeLSTM(3, 4, num_children=2)
    calls = []
    original = model.cell.combine
    model.cell.combine = lambda proj, kids: calls.append(proj.shape[0]) or original(proj, kids)
    rng = np.random.default_rng(7)
    trees = mixed_trees() * 10
    batch = TreeBatch(trees)
    model(rnnbp.tensor(rng.standard_normal((batch.num_nodes, 3)).astype(np.float32)), batch)
    assert len(calls) == batch.height + 1 == max(t.height for t in trees) + 1
    assert sum(calls) == batch.num_nodes


@pytest.mark.parametrize("depth", [40, 2000])
def test_float32_by_default_and_deep_trees_backpropagate(depth):
    """Iterative all the way (no recursion limit); at depth 40 the deepest leaf still gets a gradient."""
    rnnbp.manual_seed(0)
    model = nn.TreeLSTM(2, 3)
    with rnnbp.no_grad():
        model.cell.bias_ih.data[3:6] += 3.0  # forget gates open, so the gradient survives 40 levels
    batch = TreeBatch([chain(depth), mixed_trees()[0]])
    x = rnnbp.randn(batch.num_nodes, 2, requires_grad=True)
    output, (h, c) = model(x, batch)
    assert output.dtype == h.dtype == c.dtype == np.float32
    h.sum().backward()
    assert x.grad.numpy().dtype == np.float32 and model.cell.weight_hh.grad.numpy().dtype == np.float32
    assert np.isfinite(x.grad.numpy()).all()
    if depth == 40:
        assert np.abs(x.grad.numpy()[0]).sum() > 1e-12  # node 0 of the chain: the leaf 39 levels below the root


def test_state_dict_uses_pytorch_style_names():
    assert sorted(nn.TreeLSTM(3, 4, num_children=2).state_dict()) == [
        "cell.bias_hh", "cell.bias_ih", "cell.weight_hh", "cell.weight_ih"]
    cell = nn.NaryTreeLSTMCell(3, 4, num_children=2)
    assert cell.weight_ih.shape == (20, 3) and cell.weight_hh.shape == (20, 8)
    assert nn.ChildSumTreeLSTMCell(3, 4).weight_hh.shape == (16, 4)
    assert nn.RecursiveRNNCell(3, 4, num_children=3).weight_hh.shape == (4, 12)
    assert "num_children=2" in repr(nn.TreeLSTM(3, 4, num_children=2))
    assert "nonlinearity='relu'" in repr(nn.RecursiveRNNCell(3, 4, nonlinearity="relu"))


def test_cells_called_directly():
    """A cell call is one level: children (M, K, H) padded with zeros, or None for leaves."""
    rnnbp.manual_seed(0)
    cell = nn.ChildSumTreeLSTMCell(3, 4)
    x = rnnbp.randn(2, 3)
    h0, c0 = cell(x)
    zeros = rnnbp.zeros(2, 1, 4)
    h1, c1 = cell(x, (zeros, zeros))
    np.testing.assert_allclose(h0.numpy(), h1.numpy(), rtol=1e-6, atol=1e-7)
    kids = (rnnbp.randn(2, 2, 4), rnnbp.randn(2, 2, 4))
    padded = tuple(rnnbp.cat([k, rnnbp.zeros(2, 1, 4)], dim=1) for k in kids)
    np.testing.assert_allclose(cell(x, kids)[0].data, cell(x, padded)[0].data, rtol=1e-6, atol=1e-7)


def test_errors_name_the_module_and_the_shapes():
    batch = TreeBatch(mixed_trees(3))
    model = nn.TreeLSTM(3, 4, num_children=2)
    with pytest.raises(ValueError, match=r"TreeLSTM: a node in the batch has 3 children but the cell takes at most "
                                         r"num_children=2"):
        model(rnnbp.randn(batch.num_nodes, 3), batch)
    with pytest.raises(ValueError, match=rf"TreeLSTM: expected x of shape \({batch.num_nodes}, 3\) \(one row per "
                                         rf"node\), got \(4, 3\)"):
        nn.TreeLSTM(3, 4)(rnnbp.randn(4, 3), batch)
    with pytest.raises(ValueError, match=r"ChildSumTreeLSTMCell: expected input of shape \(M, 3\), got \(2, 5\)"):
        nn.ChildSumTreeLSTMCell(3, 4)(rnnbp.randn(2, 5))
    with pytest.raises(ValueError, match=r"NaryTreeLSTMCell: expected children of shape \(2, 2, 4\), got \(2, 1, 4\)"):
        nn.NaryTreeLSTMCell(3, 4)(rnnbp.randn(2, 3), (rnnbp.zeros(2, 1, 4), rnnbp.zeros(2, 1, 4)))
    with pytest.raises(ValueError, match=r"ChildSumTreeLSTMCell: children h \(2, 2, 4\) and c \(2, 1, 4\) must have "
                                         r"the same shape"):
        nn.ChildSumTreeLSTMCell(3, 4)(rnnbp.randn(2, 3), (rnnbp.zeros(2, 2, 4), rnnbp.zeros(2, 1, 4)))
    with pytest.raises(ValueError, match=r"children should be \(h, c\), got a tuple of 1"):
        nn.ChildSumTreeLSTMCell(3, 4)(rnnbp.randn(2, 3), (rnnbp.zeros(2, 1, 4),))
    with pytest.raises(TypeError, match="expected a TreeBatch"):
        model(rnnbp.randn(3, 3), [("+", 1, 2)])
    with pytest.raises(ValueError, match="num_children must be a positive integer, got 0"):
        nn.TreeLSTM(3, 4, num_children=0)
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'"):
        nn.RecursiveRNN(3, 4, nonlinearity="gelu")
    with pytest.raises(TypeError, match="has no 'input_projection'"):
        nn.Recursive(nn.LSTMCell(3, 4))


@pytest.mark.parametrize("num_children", [None, 1, 2, 3])
@pytest.mark.parametrize("loss_on", ["all-h", "root-c", "both"])
def test_fused_levels_equal_the_composed_cells(num_children, loss_on):
    """Values and every gradient, float64; the loss reaches the fused nodes through h, c or both."""
    if num_children == 1:
        trees = [chain(4), chain(1), chain(7)]
    else:
        trees = mixed_trees(num_children) + [Tree([(), (), (0, 1), (2, 2), (3, 2)])]  # and a DAG
    batch = TreeBatch(trees)
    rng = np.random.default_rng(8)
    x_data = rng.standard_normal((batch.num_nodes, 3))
    w_out, w_c = rng.standard_normal((batch.num_nodes, 4)), rng.standard_normal((batch.num_trees, 4))
    grads = {}
    for fused in (True, False):
        rnnbp.manual_seed(0)
        model = nn.TreeLSTM(3, 4, num_children=num_children, fused=fused, dtype=np.float64)
        with rnnbp.no_grad():
            for p in model.parameters():
                p.data *= 3.0  # saturate some gates
        x = rnnbp.tensor(x_data, requires_grad=True)
        output, (h, c) = model(x, batch)
        loss = {"all-h": (output * rnnbp.tensor(w_out)).sum(), "root-c": (c * rnnbp.tensor(w_c)).sum(),
                "both": (output * rnnbp.tensor(w_out)).sum() + (c * rnnbp.tensor(w_c)).sum()}[loss_on]
        loss.backward()
        grads[fused] = [output.numpy(), c.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in model.parameters()]
    for got, want in zip(grads[True], grads[False]):
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13)


def test_fused_levels_keep_float32():
    rnnbp.manual_seed(0)
    batch = TreeBatch(mixed_trees(3))
    for num_children in (None, 3):
        model = nn.TreeLSTM(3, 4, num_children=num_children)
        x = rnnbp.randn(batch.num_nodes, 3, requires_grad=True)
        output, (h, c) = model(x, batch)
        (output.sum() + c.sum()).backward()
        assert output.dtype == c.dtype == x.grad.numpy().dtype == model.cell.weight_hh.grad.numpy().dtype == np.float32
