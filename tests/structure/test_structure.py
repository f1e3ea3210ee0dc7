"""rnnbp.structure: building trees and DAGs, their schedules, batching level by level, gather_rows."""
import numpy as np
import pytest

import rnnbp
from rnnbp.autograd import gradcheck
from rnnbp.structure import StructureError, Tree, TreeBatch, gather_rows


def random_tree(rng, max_nodes=12, max_children=3):
    """A random tree built from a parent array whose ids are shuffled (not topologically ordered)."""
    n = int(rng.integers(1, max_nodes + 1))
    parents = [-1]
    counts = [0]
    for node in range(1, n):
        open_nodes = [p for p in range(node) if counts[p] < max_children]
        p = int(rng.choice(open_nodes))
        parents.append(p)
        counts[p] += 1
        counts.append(0)
    perm = rng.permutation(n)  # perm[old] = new id
    shuffled = np.empty(n, dtype=np.int64)
    for old, p in enumerate(parents):
        shuffled[perm[old]] = -1 if p < 0 else perm[p]
    return Tree.from_parents(shuffled, values=[f"v{i}" for i in range(n)])


def test_from_nested_labelled_numbers_nodes_in_post_order():
    t = Tree.from_nested(("+", ("*", 3, 4), 7), labelled=True)
    assert t.values == [3, 4, "*", 7, "+"]
    assert t.children == ((), (), (0, 1), (), (2, 3))
    assert t.root == 4 and t.height == 2 and t.num_nodes == 5 and t.max_children == 2
    assert t.heights.tolist() == [0, 0, 1, 0, 2]
    assert t.to_nested(labelled=True) == ("+", ("*", 3, 4), 7)


def test_from_nested_unlabelled_and_deep_trees_need_no_recursion():
    t = Tree.from_nested((("the", "cat"), ("sat", ("on", "mats"))))
    assert t.values == ["the", "cat", None, "sat", "on", "mats", None, None, None]
    assert t.to_nested() == (("the", "cat"), ("sat", ("on", "mats")))
    deep = 0
    for k in range(1, 5001):
        deep = (deep, k)
    chain = Tree.from_nested(deep)
    assert chain.height == 5000 and chain.num_nodes == 10001
    assert len(chain.schedule()) == 5001


def test_from_parents_and_schedules():
    # node 3 is the root; ids are not in topological order
    t = Tree.from_parents([3, 0, 0, -1, 3], values=list("abcde"))
    assert t.root == 3 and t.children[0] == (1, 2) and t.children[3] == (0, 4)
    assert [lv.tolist() for lv in t.schedule()] == [[1, 2, 4], [0], [3]]
    order = t.topological_order().tolist()
    assert sorted(order) == list(range(5)) and order[-1] == 3


@pytest.mark.parametrize("seed", range(20))
def test_every_child_comes_before_its_parents(seed):
    t = random_tree(np.random.default_rng(seed))
    seen = set()
    for node in t.topological_order().tolist():
        assert all(c in seen for c in t.children[node])
        seen.add(node)
    for node, kids in enumerate(t.children):
        for c in kids:
            assert t.heights[c] < t.heights[node]


def test_a_dag_may_share_a_child():
    # (a*b) used twice: node 2 is the child of 3 (twice) and of 4
    t = Tree([(), (), (0, 1), (2, 2), (3, 2)], values=["a", "b", "*", "+", "-"])
    assert t.root == 4 and t.heights.tolist() == [0, 0, 1, 2, 3]


@pytest.mark.parametrize("children, message", [
    ([(1,), (0,)], "no root"),
    ([(), ()], "2 roots"),
    ([(5,), ()], "node 0 has child 5, outside 0..1"),
    ([(0,)], "node 0 is its own child"),
    ([(1,), (2,), (1,), (0,)], "cycle through nodes"),
    ([], "at least one node"),
])
def test_bad_structures_are_refused_with_a_reason(children, message):
    with pytest.raises(StructureError, match=message):
        Tree(children)


def test_builder_errors():
    with pytest.raises(StructureError, match=r"node 2 has children \(0.9, 1.7\); expected a sequence of integer"):
        Tree([(), (), (0.9, 1.7)])
    with pytest.raises(StructureError, match="node 0 has children 1; expected a sequence"):
        Tree([1, ()])
    assert Tree([(), (np.int64(0),)]).children == ((), (0,))
    with pytest.raises(StructureError, match="3 values for 2 nodes"):
        Tree([(1,), ()], values=[1, 2, 3])
    with pytest.raises(StructureError, match="node 1 has parent 7"):
        Tree.from_parents([-1, 7])
    with pytest.raises(StructureError, match="1-D integer array"):
        Tree.from_parents([0.5, -1])
    with pytest.raises(StructureError, match="empty tuple"):
        Tree.from_nested(("+", (), 1), labelled=True)
    with pytest.raises(TypeError, match="item 1 is a tuple"):
        TreeBatch([Tree([()]), ("+", 1, 2)])


@pytest.mark.parametrize("seed", range(10))
def test_batch_rows_are_the_trees_concatenated_and_levels_respect_children(seed):
    rng = np.random.default_rng(seed)
    trees = [random_tree(rng) for _ in range(7)]
    batch = TreeBatch(trees)
    assert batch.num_nodes == sum(t.num_nodes for t in trees) and batch.num_trees == 7
    assert batch.height == max(t.height for t in trees)
    assert batch.values == [v for t in trees for v in t.values]
    assert batch.levels[0].start == 0 and batch.levels[-1].stop == batch.num_nodes
    for prev, level in zip(batch.levels, batch.levels[1:]):
        assert prev.stop == level.start
    # level order: where each node sits in the schedule, from the plan that builds it
    level_order = batch.to_levels.rows[0]
    row_of_node = np.argsort(level_order)
    assert sorted(level_order.tolist()) == list(range(batch.num_nodes))
    for i, tree in enumerate(trees):
        pos = batch.positions(i)
        assert pos.tolist() == list(range(batch.offsets[i], batch.offsets[i + 1]))
        assert batch.roots[i] == pos[tree.root] and (batch.tree_index[pos] == i).all()
        for node, kids in enumerate(tree.children):
            row = row_of_node[pos[node]]
            level = next(lv for lv in batch.levels if lv.start <= row < lv.stop)
            assert tree.heights[node] == batch.levels.index(level)
            assert level.children[row - level.start, :len(kids)].tolist() == [row_of_node[pos[c]] for c in kids]
            assert (level.children[row - level.start, len(kids):] == -1).all()
            assert level.num_children[row - level.start] == len(kids)


def test_plans_move_rows_between_node_order_and_level_order():
    rng = np.random.default_rng(0)
    trees = [random_tree(rng) for _ in range(5)]
    batch = TreeBatch(trees)
    x = rnnbp.tensor(rng.standard_normal((batch.num_nodes, 3)))
    in_levels = gather_rows([x], batch.to_levels)
    parts = in_levels.split(batch.level_sizes, dim=0) if batch.height else (in_levels,)
    np.testing.assert_array_equal(gather_rows(list(parts), batch.from_levels).data, x.numpy())
    np.testing.assert_array_equal(gather_rows(list(parts), batch.roots_from_levels).data, x.numpy()[batch.roots])


def test_concat_lays_out_per_node_data_tree_after_tree():
    trees = [Tree.from_nested(("+", 1, 2), labelled=True), Tree.from_nested(5, labelled=True)]
    batch = TreeBatch(trees)
    assert batch.concat([[10, 11, 12], [20]]).tolist() == [10, 11, 12, 20]
    assert batch.values == [1, 2, "+", 5] and batch.roots.tolist() == [2, 3]
    assert [lv.size for lv in batch.levels] == [3, 1]
    with pytest.raises(ValueError, match="tree 0 has 3 nodes, got 2 items"):
        batch.concat([[1, 2], [3]])


def test_gather_plan_marks_repeated_rows_of_a_dag():
    t = Tree([(), (), (0, 1), (2, 2), (3, 2)])
    batch = TreeBatch([t])
    plan = batch.levels[2].plan  # node 3 reads node 2 twice
    assert plan.unique == (False,)
    assert batch.levels[1].plan.unique == (True,)


@pytest.mark.parametrize("seed", range(3))
def test_gather_rows_gradcheck_including_repeated_rows(seed):
    rng = np.random.default_rng(seed)
    trees = [random_tree(rng, max_nodes=8) for _ in range(3)] + [Tree([(), (), (0, 1), (2, 2), (3, 2)])]
    batch = TreeBatch(trees)
    parts = [rnnbp.tensor(rng.standard_normal((lv.size, 2)), requires_grad=True) for lv in batch.levels]
    for k, level in enumerate(batch.levels[1:], start=1):
        used = [parts[j] for j in level.plan.sources]

        def fn(*tensors, plan=level.plan, sources=level.plan.sources):
            full = [None] * len(parts)
            for j, t in zip(sources, tensors):
                full[j] = t
            return gather_rows(full, plan)

        out = fn(*used)
        assert out.shape == (level.size * level.max_children, 2)
        flat = level.children.reshape(-1)
        everything = np.concatenate([p.numpy() for p in parts])  # level order
        expected = np.where((flat >= 0)[:, None], everything[np.maximum(flat, 0)], 0.0)
        np.testing.assert_array_equal(out.numpy(), expected)
        assert gradcheck(fn, used)
