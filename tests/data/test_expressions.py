"""rnnbp.data.expressions: values against Python's eval, exact depths, shapes, balance, seeding, splits."""
import numpy as np
import pytest

import rnnbp
from rnnbp.data import (
    EXPRESSION_TOKENS, OPERATORS, evaluate_expression, expression_depth, expression_set, expression_size,
    expression_splits, expression_tokens, in_validation_part, random_expression,
)


def python_value(tree) -> int:
    """The reference: Python's own arithmetic on the infix string, then mod 10."""
    return eval("".join(expression_tokens(tree))) % 10


# ---------------------------------------------------------- one tree
def test_a_worked_example():
    tree = ("-", ("*", 3, 4), ("+", 7, ("*", 9, 9)))
    assert expression_tokens(tree) == list("((3*4)-(7+(9*9)))")
    assert evaluate_expression(tree) == (12 - 88) % 10 == 4
    assert expression_depth(tree) == 3 and expression_size(tree) == 9
    assert expression_tokens(7) == ["7"] and evaluate_expression(7) == 7 and expression_depth(7) == 0


@pytest.mark.parametrize("depth", [0, 1, 2, 4, 6, 9])
def test_random_trees_have_the_exact_depth_and_python_s_value(depth):
    rng = np.random.default_rng(depth)
    for _ in range(300):
        tree = random_expression(depth, rng)
        assert expression_depth(tree) == depth
        assert evaluate_expression(tree) == python_value(tree)
        tokens = expression_tokens(tree)
        assert len(tokens) == 2 * expression_size(tree) - 1   # n digits, n - 1 operators, 2(n - 1) brackets
        assert set(tokens) <= set(EXPRESSION_TOKENS)


def test_shapes_are_not_degenerate():
    """Deep paths go left and right, the shallow side takes every depth, and sizes vary."""
    rng = np.random.default_rng(0)
    trees = [random_expression(5, rng) for _ in range(2000)]
    left = np.array([expression_depth(t[1]) for t in trees])
    right = np.array([expression_depth(t[2]) for t in trees])
    assert np.all(np.maximum(left, right) == 4)
    # The deep side is a fair coin; the other side has depth 4 too one time in five.
    assert 0.36 < np.mean((left == 4) & (right < 4)) < 0.44 and 0.36 < np.mean((right == 4) & (left < 4)) < 0.44
    assert set(np.minimum(left, right)) == {0, 1, 2, 3, 4}
    sizes = {expression_size(t) for t in trees}
    assert min(sizes) == 11 and max(sizes) > 40    # a comb of 5 operators has 11 nodes; full would be 63
    ops = [t[0] for t in trees]
    assert min(ops.count(o) for o in OPERATORS) > 550


def test_ops_restrict_the_operators():
    rng = np.random.default_rng(1)
    tokens = {t for _ in range(200) for t in expression_tokens(random_expression(4, rng, ops=("+",)))}
    assert tokens == set("0123456789+()")


def test_bad_trees_and_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="depth must be an integer >= 0, got -1"):
        random_expression(-1)
    with pytest.raises(ValueError, match="ops must be distinct operators"):
        random_expression(2, ops=("+", "/"))
    with pytest.raises(ValueError, match="ops must be distinct operators"):
        expression_set(10, 2, ops=())
    with pytest.raises(ValueError, match="a leaf must be an int digit 0-9, got 10"):
        evaluate_expression(("+", 1, 10))
    with pytest.raises(ValueError, match=r"expected \(op, left, right\)"):
        expression_depth(("max", 1, 2))
    with pytest.raises(ValueError, match="depth must be an int >= 0 or"):
        expression_set(10, (3, 1))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        expression_set(0, 2)


def test_deep_trees_need_no_recursion():
    tree = 1
    for _ in range(5000):
        tree = ("+", tree, 1)
    assert expression_depth(tree) == 5000 and evaluate_expression(tree) == 5001 % 10


# ----------------------------------------------------------- data sets
def test_sets_are_reproducible_from_a_generator_and_from_manual_seed():
    a = expression_set(200, (1, 4), np.random.default_rng(3))
    b = expression_set(200, (1, 4), np.random.default_rng(3))
    c = expression_set(200, (1, 4), np.random.default_rng(4))
    assert a.trees == b.trees and np.array_equal(a.values, b.values)
    assert a.trees != c.trees
    rnnbp.manual_seed(9)
    d = expression_set(50, 3)
    rnnbp.manual_seed(9)
    assert expression_set(50, 3).trees == d.trees


def test_a_set_shares_depths_equally_and_balances_values_at_each_depth():
    s = expression_set(403, (1, 4), np.random.default_rng(0))
    assert len(s) == 403 and s.values.dtype == s.depths.dtype == np.int64
    assert [int(np.sum(s.depths == d)) for d in (1, 2, 3, 4)] == [101, 101, 101, 100]
    assert np.array_equal(s.depths, [expression_depth(t) for t in s.trees])
    assert np.array_equal(s.values, [python_value(t) for t in s.trees])
    for d in (1, 2, 3, 4):
        counts = np.bincount(s.values[s.depths == d], minlength=10)
        assert counts.max() - counts.min() <= 1, (d, counts)
    counts = np.bincount(s.values, minlength=10)
    assert s.majority() == (counts.argmax(), counts.max() / 403) and counts.max() <= 44


def test_without_balance_the_values_are_skewed_toward_zero():
    s = expression_set(4000, 4, np.random.default_rng(0), balance=False)
    value, freq = s.majority()
    assert value == 0 and 0.17 < freq < 0.25


def test_unique_and_exclude_are_honoured_and_impossible_requests_stop():
    s = expression_set(250, 1, np.random.default_rng(0), unique=True, balance=False)
    assert len(set(s.trees)) == 250
    rest = expression_set(50, 1, np.random.default_rng(1), unique=True, exclude=s.trees, balance=False)
    assert len(set(rest.trees)) == 50 and not set(rest.trees) & set(s.trees)   # 300 distinct in all
    with pytest.raises(RuntimeError, match="drew 5000 trees of depth 1 and kept only 300 of 301"):
        expression_set(301, 1, np.random.default_rng(0), unique=True, balance=False, max_draws=5000)


def test_token_ids_are_padded_time_major_with_lengths():
    s = expression_set(6, (0, 2), np.random.default_rng(0))
    ids, lengths = s.token_ids()
    assert ids.shape == (lengths.max(), 6) and ids.dtype == lengths.dtype == np.int64
    for b, tokens in enumerate(s.tokens):
        assert lengths[b] == len(tokens)
        assert [EXPRESSION_TOKENS[i] for i in ids[:lengths[b], b]] == tokens
        assert np.all(ids[lengths[b]:, b] == 0)
    sub_ids, sub_lengths = s.token_ids([5, 0])
    assert np.array_equal(sub_lengths, lengths[[5, 0]])
    assert np.array_equal(sub_ids, ids[:sub_lengths.max(), [5, 0]])
    sub = s.subset(np.array([5, 0]))
    assert sub.trees == [s.trees[5], s.trees[0]] and np.array_equal(sub.values, s.values[[5, 0]])


# ---------------------------------------------------------------- splits
@pytest.fixture(scope="module")
def splits():
    return expression_splits(2000, 300, 200, seed=7)


def test_splits_have_the_asked_depths_sizes_and_values(splits):
    assert len(splits.train) == 2000 and len(splits.val) == 300
    assert set(splits.train.depths) == set(splits.val.depths) == {1, 2, 3, 4}
    assert sorted(splits.test) == [5, 6, 7, 8]
    for d, test in splits.test.items():
        assert len(test) == 200 and np.all(test.depths == d)
        assert np.all([expression_depth(t) == d for t in test.trees])
        assert np.array_equal(test.values, [python_value(t) for t in test.trees])
        assert np.all(np.bincount(test.values, minlength=10) == 20)


def test_test_sets_are_distinct_and_disjoint_from_train(splits):
    train = set(splits.train.trees)
    for test in splits.test.values():
        assert len(set(test.trees)) == len(test) and not set(test.trees) & train


def test_test_sets_hold_no_repeat_even_where_draws_would_repeat():
    """2000 depth-2 trees out of ~290,000: i.i.d. draws would repeat a few (birthday), a test set never."""
    split = expression_splits(20, 20, 2000, train_depth=1, test_depths=(2,), seed=3)
    assert len(set(split.test[2].trees)) == 2000


def test_validation_is_its_own_part_of_the_expression_space(splits):
    """Not one validation expression is in training, even at depth 1, where training holds all it can."""
    assert all(in_validation_part(t) for t in splits.val.trees)
    assert not any(in_validation_part(t) for t in splits.train.trees)
    assert not set(splits.val.trees) & set(splits.train.trees)
    share = np.mean([in_validation_part(random_expression(3, np.random.default_rng(i))) for i in range(2000)])
    assert 0.17 < share < 0.23   # a fifth of the space


def test_training_and_validation_are_balanced_at_every_depth(splits):
    for data in (splits.train, splits.val):
        for d in (1, 2, 3, 4):
            counts = np.bincount(data.values[data.depths == d], minlength=10)
            assert counts.max() - counts.min() <= 1, (d, counts)


@pytest.mark.parametrize("kwargs, message", [
    (dict(test_depths=(4, 5)), r"test_depths must all be deeper than the training depths 1-4, got \[4, 5\]"),
    (dict(test_depths=5.0), r"must be a sequence of ints, got 5.0"),
    (dict(train_depth=(1, 2, 3)), r"depth must be an int or a pair \(low, high\) of ints, got \(1, 2, 3\)"),
    (dict(train_depth=None), r"depth must be an int or a pair \(low, high\) of ints, got None"),
])
def test_bad_split_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        expression_splits(10, 10, 10, **kwargs)
    with pytest.raises(ValueError, match="expression_splits: n_val must be a positive integer, got 0"):
        expression_splits(10, 0, 10)


def test_bad_set_arguments_are_named():
    with pytest.raises(ValueError, match=r"expression_set: depth must be an int or a pair \(low, high\) of ints, "
                                         r"got 2.5"):
        expression_set(10, 2.5)
    with pytest.raises(TypeError, match="generator must be a numpy.random.Generator .* got int"):
        expression_set(10, 2, generator=5)
    with pytest.raises(ValueError, match="exclude must hold trees as nested tuples"):
        expression_set(10, 1, exclude=[["+", 1, 2]])


def test_splits_reproduce_from_the_seed_and_each_split_has_its_own_stream(splits):
    again = expression_splits(2000, 300, 200, seed=7)
    assert again.train.trees == splits.train.trees and again.val.trees == splits.val.trees
    assert all(again.test[d].trees == splits.test[d].trees for d in splits.test)
    bigger_val = expression_splits(2000, 400, 200, seed=7)
    assert bigger_val.train.trees == splits.train.trees and bigger_val.test[6].trees == splits.test[6].trees
    assert expression_splits(2000, 300, 200, seed=8).train.trees != splits.train.trees
    with pytest.raises(ValueError, match="test_depths must be distinct"):
        expression_splits(10, 10, 10, test_depths=(5, 5))
