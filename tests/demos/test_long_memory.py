"""demos/long_memory.py: the quick run's tables and gradient norms, the tasks' scoring, and argument checks."""
import math
from pathlib import Path

import numpy as np
import pytest

from rnnbp.data import ADDING_BASELINE_MSE

from demo_loader import load_demo


@pytest.fixture(scope="module")
def demo():
    return load_demo("long_memory.py")


@pytest.fixture(scope="module")
def quick(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("long_memory")
    return demo.main(["--quick", "--quiet", "--out", str(out)]), out


def test_quick_run_has_a_row_for_every_cell_length_and_k(demo, quick):
    result, _ = quick
    cfg = result["config"]
    cells = ("rnn", "lstm", "gru")
    assert {(r["T"], r["cell"]) for r in result["adding"]} == {(T, c) for T in cfg.lengths for c in cells}
    assert {(r["gap"], r["k"]) for r in result["truncation"]} == {(g, k) for g in cfg.trunc_gaps for k in cfg.trunc_ks}
    assert [r["cell"] for r in result["copy"]] == list(cells)
    for r in result["adding"] + result["truncation"]:
        assert 0 < r["mse"] < 1 and r["solved"] == (r["mse"] < cfg.solved_mse)
        stuck = r["mse"] > cfg.stuck_frac * ADDING_BASELINE_MSE
        assert r["verdict"] == ("solved" if r["solved"] else "stuck" if stuck else "partly")
        assert 0 < r["updates"] <= cfg.updates
    for r in result["copy"]:
        assert 0 < r["ce"] < math.log(9) + 1 and 0 <= r["acc"] <= 1


def test_quick_run_learns_something_at_the_shortest_length(quick):
    """150 updates at T = 8 already take the best cell clearly below the memoryless baseline."""
    result, _ = quick
    shortest = min(r["T"] for r in result["adding"])
    best = min(r["mse"] for r in result["adding"] if r["T"] == shortest)
    assert best < 0.85 * ADDING_BASELINE_MSE


def test_state_gradient_norms_are_finite_and_vanish_back_in_time_for_the_elman_rnn(quick):
    result, _ = quick
    T = result["config"].diag_length
    norms = result["grads"]["norms"]
    assert set(norms) == {"rnn", "lstm", "gru"}
    for cell, by_when in norms.items():
        for when, n in by_when.items():
            assert n.shape == (T,) and np.all(np.isfinite(n)) and np.all(n > 0), (cell, when)
    elman = norms["rnn"]["init"]
    assert elman[0] < 1e-3 * elman[-1]                       # vanished going back ...
    assert np.all(np.diff(np.log(elman[: T - 1])) > 0)       # ... at every step, not by a fluke
    rows = {(r["cell"], r["when"]): r for r in result["grads"]["rows"]}
    assert rows["rnn", "init"]["ratio"] == pytest.approx(elman[0] / elman[-1])


def test_plot_is_written_when_matplotlib_is_there(quick):
    result, out = quick
    try:
        import matplotlib.backends.backend_agg  # noqa: F401
    except ImportError:
        assert result["grads"]["plot"] is None
        return
    path = Path(result["grads"]["plot"])
    assert path == out / "grad_norms.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_adding_with_a_gap_places_both_markers_and_sums_them(demo):
    task = demo.Adding(30, lag=12, gap=4)
    x, target, mask = task.batch(500, np.random.default_rng(0))
    assert x.shape == (30, 500, 2) and target.shape == (30, 500, 1)
    assert mask[-1].all() and not mask[:-1].any() and not target[:-1].any()
    t, n = np.nonzero(x[:, :, 1])
    assert np.array_equal(np.bincount(n), np.full(500, 2))   # exactly two markers per sequence
    order = np.lexsort((t, n))                               # by sequence, then by step
    t, n = t[order], n[order]
    first, second = t[::2], t[1::2]
    assert np.all(30 - first == 12)                          # the first marker exactly lag steps back
    assert (30 - second).min() >= 5 and (30 - second).max() <= 11   # the second gap+1 .. lag-1 steps back
    cols = np.arange(500)
    np.testing.assert_array_equal(target[-1, :, 0], x[first, cols, 0] + x[second, cols, 0])


class _Constant:
    """A stand-in model: the same output at every step and row."""

    def __init__(self, value):
        self.value = np.asarray(value, dtype=np.float32)

    def __call__(self, x):
        import rnnbp

        L, N = x.shape[:2]
        return rnnbp.Tensor(np.broadcast_to(self.value, (L, N) + self.value.shape).copy()), None


def test_adding_score_of_the_mean_answer_is_the_baseline(demo):
    task = demo.Adding(20)
    data = task.batch(20_000, np.random.default_rng(1))
    assert task.score(_Constant([1.0]), data)["mse"] == pytest.approx(ADDING_BASELINE_MSE, rel=0.03)


def test_copy_score_of_a_uniform_guess_on_the_recall_steps(demo):
    """Certain blanks before the recall and uniform symbols on it score the memoryless baseline exactly."""
    task = demo.Copy(delay=5)
    data = task.batch(64, np.random.default_rng(2))

    class Memoryless:
        def __call__(self, x):
            import rnnbp

            T, N = x.shape[:2]
            logits = np.full((T, N, task.n_out), -1e4, dtype=np.float32)
            logits[:-task.recall, :, 0] = 0.0                 # blank, certain
            logits[-task.recall:, :, 1:] = 0.0                # uniform over the 8 symbols
            return rnnbp.Tensor(logits), None

    score = task.score(Memoryless(), data)
    assert score["ce"] == pytest.approx(task.baseline, rel=1e-6)
    _, y, _ = data
    perfect = np.eye(task.n_out, dtype=np.float32)[y] * 50   # (T, N, 9)

    class Perfect:
        def __call__(self, x):
            import rnnbp

            return rnnbp.Tensor(perfect), None

    assert task.score(Perfect(), data) == pytest.approx({"ce": 0.0, "acc": 1.0}, abs=1e-6)


@pytest.mark.parametrize("argv", [
    ["--trunc-lag", "50", "--trunc-length", "40"],
    ["--trunc-gaps", "19", "--trunc-lag", "20"],
    ["--cells", "transformer"],
])
def test_bad_arguments_stop_with_a_message(demo, argv, capsys):
    with pytest.raises(SystemExit):
        demo.main(["--quick"] + argv)
    assert "error" in capsys.readouterr().err
