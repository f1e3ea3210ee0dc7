"""rnnbp is real-valued: complex, string, object and None data are refused where tensors are made,
naming what came in (issue 13: a complex product's gradient was silently unconjugated, pointing uphill)."""
import numpy as np
import pytest

import rnnbp
from rnnbp import Tensor


@pytest.mark.parametrize("make", [
    lambda: Tensor(np.array([1 + 2j, 3j])),
    lambda: rnnbp.tensor([1 + 2j]),
    lambda: rnnbp.as_tensor(np.ones(2, dtype=np.complex64)),
    lambda: rnnbp.from_numpy(np.ones(2, dtype=np.complex128)),
    lambda: rnnbp.zeros(2, dtype=np.complex64),
    lambda: rnnbp.ones(3).to(np.complex64),
    lambda: rnnbp.ones(3) * 1j,
    lambda: 2j + rnnbp.ones(3),
], ids=["Tensor", "tensor", "as_tensor", "from_numpy", "zeros-dtype", "to", "mul-constant", "radd-constant"])
def test_complex_is_refused_naming_it(make):
    with pytest.raises(TypeError, match="complex"):
        make()


def test_assigning_complex_data_is_refused_and_keeps_the_old_values():
    t = rnnbp.ones(2)
    with pytest.raises(TypeError, match="complex"):
        t.data = np.array([1j, 2j])
    np.testing.assert_array_equal(t.numpy(), [1.0, 1.0])


@pytest.mark.parametrize("data, words", [
    ("abc", "string data of dtype <U3"),
    (None, "got None"),
    ([object(), object()], "object data"),
    ([[1, 2], [3]], "cannot make a tensor from list"),
])
def test_non_numeric_data_gets_an_error_that_says_what_came_in(data, words):
    with pytest.raises(TypeError, match=words):
        Tensor(data)


def test_real_dtypes_still_work():
    for dtype in (rnnbp.bool, rnnbp.int32, rnnbp.int64, rnnbp.float16, rnnbp.float32, rnnbp.float64):
        assert Tensor(np.zeros(2), dtype=dtype).dtype == dtype
