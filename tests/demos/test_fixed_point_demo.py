"""demos/fixed_point.py: the quick run learns, and its RBP-vs-BPTT table shows flat memory and agreeing gradients."""
import pytest

from demo_loader import load_demo


@pytest.fixture(scope="module")
def demo():
    return load_demo("fixed_point.py")


@pytest.fixture(scope="module")
def quick(demo):
    return demo.main(["--quick"])


def test_quick_run_learns_with_rbp_as_well_as_with_bptt(quick):
    """Two epochs already put the equilibrium network far above chance (10 %), and BPTT from the
    same initialisation ends within a point of it (the gradients agree to ~tol)."""
    assert quick["test_acc"] > 0.75
    assert abs(quick["test_acc"] - quick["bptt"]["test_acc"]) <= 0.01


def test_comparison_memory_is_flat_for_rbp_and_grows_for_bptt(quick):
    cfg = quick["config"]
    rows = {(r["tol"], r["method"]): r for r in quick["comparison"]}
    assert set(rows) == {(t, m) for t in cfg.compare_tols for m in ("neumann", "gmres")}
    loose, tight = max(cfg.compare_tols), min(cfg.compare_tols)
    for method in ("neumann", "gmres"):
        a, b = rows[loose, method], rows[tight, method]
        assert b["iterations"] >= 2 * a["iterations"]
        assert b["peak_rbp"] <= 1.25 * a["peak_rbp"]
        assert b["peak_bptt"] >= 2 * a["peak_bptt"]
        assert b["memory_ratio"] > 5 and b["memory_ratio"] > 1.5 * a["memory_ratio"]
    assert rows[tight, "gmres"]["vjps"] < rows[tight, "neumann"]["vjps"]


def test_comparison_gradients_agree_to_a_multiple_of_the_tolerance(quick):
    tight = min(quick["config"].compare_tols)
    for method in ("neumann", "gmres"):
        row = next(r for r in quick["comparison"] if r["tol"] == tight and r["method"] == method)
        assert 0 < row["grad_diff"] <= 20 * tight


def test_arguments_are_checked(demo):
    with pytest.raises(SystemExit):
        demo.main(["--quick", "--max-norm", "1.5"])
    with pytest.raises(SystemExit):
        demo.main(["--quick", "--step", "0"])
