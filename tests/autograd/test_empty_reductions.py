"""Reductions over an empty dim: max/min/argmax name the op and the shape; logsumexp is -inf (PyTorch)."""
import numpy as np
import pytest

import rnnbp


@pytest.mark.parametrize("op", ["max", "min", "argmax", "argmin"])
def test_picking_from_an_empty_dim_names_the_op_and_shape(op):
    x = rnnbp.zeros(3, 0)
    with pytest.raises(IndexError, match=rf"{op}: expected reduction dim 1 to have non-zero size, got shape \(3, 0\)"):
        getattr(x, op)(dim=1)
    result = getattr(rnnbp.zeros(0, 3), op)(dim=1)  # a non-empty dim of an empty tensor is fine
    values = result[0] if isinstance(result, tuple) else result
    assert values.shape == (0,)


def test_logsumexp_over_an_empty_dim_is_minus_inf_with_a_zero_size_gradient():
    x = rnnbp.zeros(3, 0, dtype=rnnbp.float64, requires_grad=True)
    out = x.logsumexp(dim=1)
    np.testing.assert_array_equal(out.numpy(), [-np.inf, -np.inf, -np.inf])
    out.sum().backward()
    assert x.grad.shape == (3, 0)
    np.testing.assert_array_equal(rnnbp.zeros(2, 0, 4).logsumexp(dim=(1, 2)).numpy(), [-np.inf, -np.inf])
