"""Each demo and benchmark runs end to end on a tiny budget (full runs are not tests)."""
import numpy as np
import pytest

import rnnbp

from demo_loader import load_demo


def test_ocr_digits_quick_run_learns_and_saves(tmp_path):
    demo = load_demo("ocr_digits.py")
    out = tmp_path / "ocr.npz"
    result = demo.main(["--quick", "--out", str(out)])
    # Three epochs already put a 64-512-256-10 MLP far above chance (10 %).
    assert result["test_acc"] > 0.85
    saved = rnnbp.load(out)
    model = demo.build_model(demo.Config())
    model.load_state_dict(saved["model"])
    model.eval()
    x = rnnbp.Tensor(np.zeros((1, 64), dtype=np.float32))
    np.testing.assert_array_equal(model(x).numpy(), result["model"].eval()(x).numpy())


def test_mlp_speed_benchmark_runs(capsys):
    bench = load_demo("benchmarks/mlp_speed.py")
    result = bench.main(["--batch", "16", "--rounds", "2", "--block", "1", "--warmup", "1"])
    assert result["ratio"] > 0 and "ratio rnnbp/NumPy" in capsys.readouterr().out


def test_rnn_speed_benchmark_runs_and_profiles(capsys, monkeypatch):
    bench = load_demo("benchmarks/rnn_speed.py")
    monkeypatch.setitem(bench.SIZES, "small", (4, 3, 5, 6))
    result = bench.main(["--sizes", "small", "--cells", "lstm", "gru", "--rounds", "1", "--repeats", "1",
                         "--no-torch"])
    assert set(result) == {("lstm", "small"), ("gru", "small")}
    assert all(v > 0 for ms in result.values() for v in ms.values())
    phases = bench.main(["--profile", "--sizes", "small", "--cells", "rnn", "--rounds", "1"])
    assert set(phases[("rnn", "small")]) == {"layer forward", "head+loss forward", "backward"}
    assert "fused/GEMM" in capsys.readouterr().out


def test_tree_speed_benchmark_runs_and_its_steps_agree(capsys):
    bench = load_demo("benchmarks/tree_speed.py")
    result = bench.main(["--trees", "6", "--depth", "3", "--hidden", "8", "--rounds", "1"])
    assert set(result) == {"2ary", "childsum"}
    for kind in result.values():
        assert all(t > 0 for t in kind["times"].values())
        assert kind["disagreement"] < 1e-4  # float32: level-batched, composed, tree by tree, node by node
    assert "node by node" in capsys.readouterr().out


def test_row_threads_benchmark_runs_and_its_halves_agree(capsys):
    bench = load_demo("benchmarks/row_threads.py")  # main asserts the two halves' states equal the batch's
    result = bench.main(["--repeats", "2"])
    assert set(result) == {"one thread", "two threads", "after a product"}
    assert all(len(times) == 2 and min(times) > 0 for times in result.values())
    assert "after a product" in capsys.readouterr().out


def test_indexed_fill_benchmark_runs(capsys):
    bench = load_demo("benchmarks/indexed_fill.py")
    result = bench.main(["--steps", "30", "--batch", "2", "--hidden", "5"])
    assert result["forward"] > 0 and result["grad"].shape == (5, 5) and "peak RSS" in capsys.readouterr().out
    assert bench.main(["--masking", "--steps", "20"])["seconds"] > 0


def test_indexed_fill_benchmark_agrees_with_pytorch():
    pytest.importorskip("torch")
    bench = load_demo("benchmarks/indexed_fill.py")
    for extra in ([], ["--accumulate"]):
        ours = bench.main(["--steps", "30", "--batch", "2", "--hidden", "5"] + extra)
        theirs = bench.main(["--steps", "30", "--batch", "2", "--hidden", "5", "--torch"] + extra)
        np.testing.assert_allclose(ours["grad"], theirs["grad"], rtol=1e-10)
