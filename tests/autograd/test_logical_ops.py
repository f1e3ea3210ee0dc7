"""~ & | ^ on bool and integer tensors, the logical_* and bitwise_* functions, %, where(cond) and
nonzero: PyTorch's results and dtypes, floats refused where PyTorch refuses them."""
import numpy as np
import pytest

import rnnbp

A = [True, False, True, False]
B = [True, True, False, False]
I = [5, -3, 0, 12]
J = [3, 3, -7, 5]


def _ops(m):
    a, b, i, j = m.tensor(A), m.tensor(B), m.tensor(I), m.tensor(J)
    f = m.tensor([0.0, -1.5, 2.0, 0.0])
    return {
        "~bool": ~a, "&": a & b, "|": a | b, "^": a ^ b, "& scalar": a & True, "~int": ~i, "int & int": i & j,
        "int | scalar": i | 8, "int ^ int": i ^ j, "logical_not float": m.logical_not(f),
        "logical_and mixed": m.logical_and(f, i), "logical_or": a.logical_or(f), "logical_xor": m.logical_xor(a, b),
        "bitwise_and": m.bitwise_and(i, j), "int %": i % j, "int % scalar": i % 4, "fmod int": m.fmod(i, j),
        "float % negative": m.tensor([5.5, -5.5, 2.0]) % -2.0, "where(cond)": m.where(a)[0],
        "nonzero": m.tensor([[0, 1], [1, 1]]).nonzero(), "nonzero as_tuple": m.nonzero(m.tensor([[0, 1], [1, 1]]), as_tuple=True)[1],
        "isclose": m.isclose(f, m.tensor([1e-9, -1.5, 2.1, float("nan")])),
        "unique": m.unique(i % 3), "unique inverse": m.unique(m.tensor([[3, 1], [3, 2]]), return_inverse=True)[1],
        "unique counts": m.unique(m.tensor([3, 1, 3, 3]), return_counts=True)[1],
        "floor ceil": m.floor(f * 0.7) + m.ceil(f * 0.3), "median index": m.median(m.tensor([[4.0, 1.0, 3.0, 2.0]]), 1)[1],
    }


def test_values_and_dtypes_match_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = _ops(rnnbp), _ops(torch)
    for name, got in ours.items():
        want = theirs[name]
        assert got.tolist() == want.tolist(), name
        assert str(got.dtype).replace("torch.", "") == str(want.dtype).replace("torch.", ""), name


def test_by_hand():
    got = _ops(rnnbp)
    assert got["~bool"].tolist() == [False, True, False, True]
    assert got["^"].tolist() == [False, True, True, False]
    assert got["int %"].tolist() == [2, 0, 0, 2] and got["fmod int"].tolist() == [2, 0, 0, 2]
    assert got["float % negative"].tolist() == [-0.5, -1.5, -0.0]
    assert got["nonzero"].tolist() == [[0, 1], [1, 0], [1, 1]]


def test_in_place_and_or_xor_write_into_the_mask():
    mask = rnnbp.tensor(A)
    same = mask
    mask &= rnnbp.tensor(B)
    assert mask is same and mask.tolist() == [True, False, False, False]
    mask |= rnnbp.tensor([False, False, False, True])
    assert mask.tolist() == [True, False, False, True]


def test_floats_and_zero_divisors_are_refused_as_in_torch():
    with pytest.raises(TypeError, match="bitwise_not: needs bool or integer tensors, got float32"):
        ~rnnbp.ones(2)
    with pytest.raises(TypeError, match="bitwise_and: needs bool or integer tensors, got float32"):
        rnnbp.tensor(A) & rnnbp.ones(4)
    with pytest.raises(ZeroDivisionError, match="remainder: integer division by zero"):
        rnnbp.tensor(I) % 0
    with pytest.raises(TypeError, match="where: takes a condition alone"):
        rnnbp.where(rnnbp.tensor(A), rnnbp.ones(4))


def test_finfo_iinfo_as_torch():
    torch = pytest.importorskip("torch")
    assert rnnbp.finfo(rnnbp.float32).eps == torch.finfo(torch.float32).eps
    assert rnnbp.finfo().tiny == torch.finfo().tiny
    assert rnnbp.iinfo(rnnbp.int64).max == torch.iinfo(torch.int64).max


def test_a_missing_tensor_method_says_so():
    with pytest.raises(AttributeError, match=r"rnnbp's Tensor does not have Tensor\.no_such_method \(the README"):
        rnnbp.ones(2).no_such_method()
    assert not hasattr(rnnbp.ones(2), "no_such_method")
