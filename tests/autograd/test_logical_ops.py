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


def _pairs(m):
    nan = float("nan")
    return {
        "int8 & int64": m.tensor([1, 2, 3], dtype=m.int8) & m.tensor([7, 7, 7]),
        "bool & int32": m.tensor([True, False]) & m.tensor([1, 2], dtype=m.int32),
        "uint8 ^ int8": m.tensor([1, 2], dtype=m.uint8) ^ m.tensor([3, 3], dtype=m.int8),
        "nonzero 0-d true": m.nonzero(m.tensor(5)), "nonzero 0-d false": m.nonzero(m.tensor(0)),
        "remainder zero signs": m.remainder(m.tensor([-2.0, 2.0, -3.0]), m.tensor([1.0, -1.0, 1.5])),
        "median nan": m.median(m.tensor([3.0, nan, 2.0, 4.0, 5.0])),
        "median dim nan values": m.median(m.tensor([[3.0, nan, 2.0], [1.0, 2.0, 3.0]]), 1)[0],
        "median dim nan indices": m.median(m.tensor([[3.0, nan, 2.0], [1.0, 2.0, 3.0]]), 1)[1],
        "unique nan": m.unique(m.tensor([nan, 1.0, nan])),
        "dot int32": m.dot(m.tensor([1, 2], dtype=m.int32), m.tensor([3, 4], dtype=m.int32)),
        "unique_consecutive": m.unique_consecutive(m.tensor([0, 3, 3, 0, 2, 2])),
        "unique_consecutive counts": m.unique_consecutive(m.tensor([0, 3, 3, 0, 2, 2]), return_counts=True)[1],
        "unique_consecutive inverse": m.unique_consecutive(m.tensor([[0, 3], [3, 1]]), return_inverse=True)[1],
        "kthvalue indices": m.kthvalue(m.tensor([[3.0, 1.0, 2.0], [0.5, 9.0, 4.0]]), 2)[1],
        "count_nonzero": m.count_nonzero(m.tensor([[0, 1, 2], [0, 0, 3]]), dim=1),
        "count_nonzero all": m.count_nonzero(m.tensor([[0, 1, 2], [0, 0, 3]])),
        "quantile nan": m.quantile(m.tensor([[1.0, nan, 3.0], [1.0, 2.0, 3.0]], dtype=m.float64), 0.2, dim=1),
        "vector_norm no dims": m.linalg.vector_norm(m.ones(2, 2), dim=()),
        "diff int": m.diff(m.tensor([1, 4, 9, 16]), n=2), "diff bool": m.diff(m.tensor([True, True, False])),
    }


def test_review_cases_match_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = _pairs(rnnbp), _pairs(torch)
    for name, got in ours.items():
        want = theirs[name]
        assert tuple(got.shape) == tuple(want.shape), name
        assert str(got.dtype).replace("torch.", "") == str(want.dtype).replace("torch.", ""), name
        np.testing.assert_array_equal(np.asarray(got.tolist()), np.asarray(want.tolist()), err_msg=name)
        assert np.array_equal(np.signbit(np.asarray(got.tolist(), dtype=float)),
                              np.signbit(np.asarray(want.tolist(), dtype=float))), name


def test_median_gradient_is_shared_by_ties_as_torch():
    x = rnnbp.tensor([1.0, 2.0, 2.0, 2.0, 3.0], dtype=rnnbp.float64, requires_grad=True)
    rnnbp.median(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [0, 1 / 3, 1 / 3, 1 / 3, 0])


def test_in_place_bitwise_refuses_a_result_it_cannot_hold():
    mask = rnnbp.tensor([True, True])
    with pytest.raises(TypeError, match="bitwise_and_: the result type int64 cannot be cast to this tensor's bool"):
        mask &= rnnbp.tensor([1, 0])
    assert mask.tolist() == [True, True]  # left as it was
    small = rnnbp.tensor([5, 6], dtype=rnnbp.int8)
    small &= rnnbp.tensor([4, 4])
    assert small.dtype == np.int8 and small.tolist() == [4, 4]


def test_einsum_refuses_letters_of_different_sizes():
    with pytest.raises(ValueError, match=r"einsum: 'j' has size 1 in one operand and 3 in another"):
        rnnbp.einsum("ij,jk->ik", rnnbp.ones(2, 1), rnnbp.ones(3, 4))


def test_a_zero_dim_tensor_formats_as_its_number():
    loss = rnnbp.tensor(1.5, dtype=rnnbp.float64)
    assert f"{loss}" == "1.5" and f"{loss:.3f}" == "1.500" and f"{rnnbp.tensor([1.0])}" == repr(rnnbp.tensor([1.0]))
