"""rnn_speed.py: a tiny run of the per-process benchmark prints the expected table with positive figures."""
import importlib.util
import re

import pytest

from demo_loader import load_demo

HAS_TORCH = importlib.util.find_spec("torch") is not None
COLUMNS = ["fused", "composed", "GEMM", "torch"]
FIGURE = re.compile(r"^([0-9.e+-]+) \[([0-9.e+-]+)-([0-9.e+-]+)\]$")  # median [min-max]


def _row(out: str, cell: str, size: str) -> dict:
    """The table row of ``cell``/``size`` as {column: (median, min, max) or None}, plus the ratios."""
    lines = [ln for ln in out.splitlines() if ln.split()[:2] == [cell, size]]
    assert len(lines) == 1, out
    # figures are "m [lo-hi]"; split on runs of 2+ spaces keeps each one whole
    fields = re.split(r"\s{2,}", lines[0].strip())
    figures = [f for f in fields if FIGURE.match(f) or f == "-"][:4]
    assert len(figures) == 4, fields
    row = {}
    for name, text in zip(COLUMNS, figures):
        m = FIGURE.match(text)
        row[name] = None if m is None else tuple(float(g) for g in m.groups())
    row["ratios"] = fields[-4:]
    return row


def _check(row: dict, torch_expected: bool) -> None:
    for name in ("fused", "composed", "GEMM"):
        med, lo, hi = row[name]
        assert 0 < lo <= med <= hi
    if torch_expected:
        med, lo, hi = row["torch"]
        assert 0 < lo <= med <= hi
        assert re.fullmatch(r"[0-9.]+x", row["ratios"][0])  # fused/torch
    else:
        assert row["torch"] is None and row["ratios"][0] == "-"


def test_tiny_training_step_one_process_per_implementation(capsys):
    bench = load_demo("benchmarks/rnn_speed.py")
    result = bench.main(["--sizes", "tiny", "--cells", "lstm", "--rounds", "1", "--repeats", "1",
                         "--min-time", "0"])
    out = capsys.readouterr().out
    assert "each implementation runs in its own process" in out and "threads: 2 per process" in out
    header = next(ln for ln in out.splitlines() if ln.startswith("cell "))
    for name in COLUMNS + ["fused/torch", "composed/fused", "fused/GEMM"]:
        assert name in header.split()
    _check(_row(out, "lstm", "tiny"), HAS_TORCH)
    assert set(result) == {("lstm", "tiny")}
    assert set(result["lstm", "tiny"]) == {"fused", "composed", "gemm"} | ({"torch"} if HAS_TORCH else set())
    assert all(v > 0 for v in result["lstm", "tiny"].values())


def test_streaming_one_call_per_step(capsys):
    bench = load_demo("benchmarks/rnn_speed.py")
    bench.main(["--streaming", "--cells", "gru", "--rounds", "1", "--repeats", "1", "--min-time", "0",
                "--block", "5"])
    out = capsys.readouterr().out
    assert "us/call" in out and "under no_grad" in out
    _check(_row(out, "gru", "streaming"), HAS_TORCH)


def test_a_failing_worker_names_itself():
    bench = load_demo("benchmarks/rnn_speed.py")
    args = bench.argparse.Namespace(threads=1, repeats=1, min_time=0.0, block=1)
    with pytest.raises(RuntimeError, match="worker fused nocell .* failed"):
        bench.run_worker("fused", "nocell", (2, 1, 4, 4), streaming=False, args=args, env=bench._child_env(1))
