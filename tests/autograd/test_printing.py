"""Tensors print as PyTorch prints them (precision 4, integral floats as "1.", scientific when the
magnitudes call for it, aligned columns, summaries of large tensors), and set_printoptions."""
import numpy as np
import pytest

import rnnbp

NAN, INF = float("nan"), float("inf")
CASES = {
    "fixed": lambda m: m.tensor([1.5, 2.0]), "integral": lambda m: m.tensor([1.0, 2.0]),
    "wide range": lambda m: m.tensor([0.001, 1234.5]), "tiny": lambda m: m.tensor([1e-5, 1.0]),
    "nan inf": lambda m: m.tensor([NAN, 1.25, INF]), "scalar": lambda m: m.tensor(3.25),
    "matrix": lambda m: m.tensor([[1.5, -2.25], [3.0, 4.0]]), "ints": lambda m: m.tensor([1, -20, 3]),
    "bools": lambda m: m.tensor([True, False]), "float64": lambda m: m.tensor([1.5], dtype=m.float64),
    "huge": lambda m: m.tensor([1e9, 1.0]), "zeros": lambda m: m.zeros(2), "negative": lambda m: m.tensor([-0.5, 12.125]),
    "summarised": lambda m: m.arange(2000).reshape(40, 50) * 1.5, "long row": lambda m: m.arange(30) * 0.25,
    "int32": lambda m: m.tensor([1, 2], dtype=m.int32),
}


def test_reprs_equal_torch():
    torch = pytest.importorskip("torch")
    for name, make in CASES.items():
        ours, theirs = repr(make(rnnbp)), repr(make(torch)).replace("torch.", "")
        assert ours == theirs, f"{name}:\n{ours}\n{theirs}"


def test_by_hand():
    assert repr(rnnbp.tensor([1.5, 2.0])) == "tensor([1.5000, 2.0000])"
    assert repr(rnnbp.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(rnnbp.tensor([0.001, 1234.5])) == "tensor([1.0000e-03, 1.2345e+03])"


def test_set_printoptions():
    try:
        rnnbp.set_printoptions(precision=2)
        assert repr(rnnbp.tensor([1.5, 2.25])) == "tensor([1.50, 2.25])"
        rnnbp.set_printoptions(sci_mode=True)
        assert repr(rnnbp.tensor([1.5])) == "tensor([1.50e+00])"
        rnnbp.set_printoptions(profile="full")
        assert "..." not in repr(rnnbp.arange(2000.0))
    finally:
        rnnbp.set_printoptions(profile="default")
    assert repr(rnnbp.tensor([1.5])) == "tensor([1.5000])" and "..." in repr(rnnbp.arange(2000.0))
