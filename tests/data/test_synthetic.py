"""rnnbp.data.synthetic: layouts, dtypes, seeding and memoryless baselines of the memory tasks."""
import math

import numpy as np
import pytest

import rnnbp
import rnnbp.nn.functional as F
from rnnbp.data import (
    ADDING_BASELINE_MSE, IGNORE_INDEX, adding_problem, copy_memory, copy_memory_baseline, delayed_recall,
    delayed_recall_baseline,
)

TASKS = {
    "adding": lambda g: adding_problem(16, 30, g),
    "adding_lag": lambda g: adding_problem(16, 30, g, lag=(5, 12)),
    "copy": lambda g: copy_memory(16, 20, generator=g),
    "recall": lambda g: delayed_recall(16, 25, 3, 5, g),
}


def marker_steps(inputs):
    """(t1, t2) per sequence from the marker channel."""
    t, n = np.nonzero(inputs[..., 1])
    order = np.lexsort((t, n))
    steps = t[order].reshape(-1, 2)
    assert np.array_equal(n[order].reshape(-1, 2), np.repeat(np.arange(inputs.shape[1]), 2).reshape(-1, 2))
    return steps[:, 0], steps[:, 1]


# ---------------------------------------------------------------- seeding
@pytest.mark.parametrize("task", TASKS)
def test_tasks_are_reproducible_from_a_generator_and_from_manual_seed(task):
    make = TASKS[task]
    a = make(np.random.default_rng(5))
    b = make(np.random.default_rng(5))
    c = make(np.random.default_rng(6))
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    rnnbp.manual_seed(11)
    d = make(None)
    rnnbp.manual_seed(11)
    e = make(None)
    for x, y in zip(d, e):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("task", TASKS)
def test_inputs_are_float32_and_targets_typed(task):
    x, y = TASKS[task](np.random.default_rng(0))
    assert x.dtype == np.float32
    assert y.dtype == (np.float32 if task.startswith("adding") else np.int64)


# ----------------------------------------------------------------- adding
def test_adding_problem_layout():
    x, y = adding_problem(200, 31, np.random.default_rng(0))
    assert x.shape == (31, 200, 2) and y.shape == (200,)
    assert set(np.unique(x[..., 1])) == {0.0, 1.0} and np.all(x[..., 1].sum(0) == 2)
    t1, t2 = marker_steps(x)
    assert t1.min() == 0 and t1.max() == 14 and t2.min() == 15 and t2.max() == 30  # halves [0, 15), [15, 31)
    cols = np.arange(200)
    assert np.array_equal(y, x[t1, cols, 0] + x[t2, cols, 0])
    assert np.all((x[..., 0] >= 0) & (x[..., 0] < 1))


def test_adding_problem_baseline_is_one_sixth():
    _, y = adding_problem(200_000, 4, np.random.default_rng(1))
    assert ADDING_BASELINE_MSE == pytest.approx(1 / 6)
    assert np.mean((y.astype(np.float64) - 1.0) ** 2) == pytest.approx(1 / 6, abs=3e-3)


def test_adding_problem_fixed_lag_sets_the_dependency_length():
    x, _ = adding_problem(100, 50, np.random.default_rng(2), lag=7)
    t1, t2 = marker_steps(x)
    assert np.all(50 - t1 == 7) and np.all(t2 > t1)
    assert set(t2) == set(range(44, 50))


def test_adding_problem_lag_range_is_inclusive():
    x, _ = adding_problem(2000, 40, np.random.default_rng(3), lag=(2, 6))
    t1, t2 = marker_steps(x)
    assert set(40 - t1) == {2, 3, 4, 5, 6} and np.all(t2 > t1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=0, length=10), "n must be a positive integer"),
    (dict(n=2, length=1), "length must be an integer >= 2"),
    (dict(n=2, length=10, lag=1), "2 <= low <= high <= length=10"),
    (dict(n=2, length=10, lag=11), "lag must be"),
    (dict(n=2, length=10, lag=(6, 5)), "lag must be"),
    (dict(n=True, length=10), "n must be"),
])
def test_adding_problem_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        adding_problem(**kwargs)


# ------------------------------------------------------------------- copy
def test_copy_memory_layout():
    delay, length, k = 5, 3, 4
    x, y = copy_memory(50, delay, n_symbols=k, length=length, generator=np.random.default_rng(0))
    steps = delay + 2 * length
    assert x.shape == (steps, 50, k + 2) and y.shape == (steps, 50)
    assert np.all(x.sum(-1) == 1)  # one-hot
    ids = x.argmax(-1)
    symbols = ids[:length]
    assert symbols.min() >= 1 and symbols.max() <= k
    assert np.all(ids[length:length + delay - 1] == 0)
    assert np.all(ids[length + delay - 1] == k + 1)  # the delimiter
    assert np.all(ids[length + delay:] == 0)
    assert np.all(y[:delay + length] == 0) and np.array_equal(y[delay + length:], symbols)


def test_copy_memory_baseline_matches_the_targets_entropy():
    delay, length = 30, 10
    _, y = copy_memory(20_000, delay, length=length, generator=np.random.default_rng(0))
    # The best memoryless predictor outputs each step's marginal target distribution.
    entropy = 0.0
    for step in y:
        p = np.bincount(step, minlength=9) / len(step)
        entropy -= np.sum(p[p > 0] * np.log(p[p > 0]))
    assert entropy / len(y) == pytest.approx(copy_memory_baseline(delay, length=length), abs=2e-3)
    assert copy_memory_baseline(100) == pytest.approx(10 * math.log(8) / 120)


@pytest.mark.parametrize("args", [dict(n=1, delay=0), dict(n=1, delay=3, n_symbols=0), dict(n=1, delay=3, length=0)])
def test_copy_memory_rejects_bad_arguments(args):
    with pytest.raises(ValueError, match="copy_memory: .* must be a positive integer"):
        copy_memory(**args)


# ----------------------------------------------------------------- recall
def test_delayed_recall_layout():
    length, delay, k = 12, 4, 6
    x, y = delayed_recall(30, length, delay, k, np.random.default_rng(0))
    assert x.shape == (length, 30, k) and y.shape == (length, 30) and np.all(x.sum(-1) == 1)
    assert IGNORE_INDEX == -100 and np.all(y[:delay] == IGNORE_INDEX)
    assert np.array_equal(y[delay:], x.argmax(-1)[:length - delay])


def test_delayed_recall_targets_work_with_cross_entropy_ignore_index():
    length, delay, k = 10, 3, 4
    x, y = delayed_recall(8, length, delay, k, np.random.default_rng(1))
    perfect = np.zeros((length, 8, k), dtype=np.float32)
    perfect[delay:] = 20.0 * x[:length - delay]  # logits that copy the input from `delay` steps back
    flat = rnnbp.tensor(perfect.reshape(-1, k))
    assert float(F.cross_entropy(flat, y.reshape(-1)).numpy()) < 1e-6
    uniform = rnnbp.zeros(length * 8, k)
    assert float(F.cross_entropy(uniform, y.reshape(-1)).numpy()) == pytest.approx(delayed_recall_baseline(k), rel=1e-6)


def test_delayed_recall_zero_delay_scores_every_step():
    _, y = delayed_recall(3, 5, 0, 2, np.random.default_rng(0))
    assert np.all(y >= 0)


@pytest.mark.parametrize("args, match", [
    ((2, 4, 4, 3), "length must be an integer >= 5"),
    ((2, 4, -1, 3), "delay must be"),
    ((2, 4, 1, 1), "n_symbols must be an integer >= 2"),
])
def test_delayed_recall_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        delayed_recall(*args)
