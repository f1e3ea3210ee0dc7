"""nn.init: each initialiser's distribution, in place, dtype kept, reproducible."""
import math

import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.nn import init


def _t(*shape, dtype=np.float32):
    return nn.Parameter(np.zeros(shape, dtype=dtype))


def test_uniform_normal_constant():
    t = init.uniform_(_t(200, 300), -2, 3, generator=np.random.default_rng(0))
    assert t.dtype == np.float32 and t.numpy().min() >= -2 and t.numpy().max() < 3
    assert abs(t.numpy().mean() - 0.5) < 0.02
    t = init.normal_(_t(200, 300), 1.0, 2.0, generator=np.random.default_rng(0))
    assert abs(t.numpy().mean() - 1) < 0.02 and abs(t.numpy().std() - 2) < 0.02
    assert np.all(init.constant_(_t(3), 4.5).data == 4.5)
    assert np.all(init.zeros_(_t(3)).data == 0) and np.all(init.ones_(_t(3)).data == 1)


def test_xavier_and_kaiming_scales():
    fan_out, fan_in = 300, 500
    a = math.sqrt(6 / (fan_in + fan_out))
    t = init.xavier_uniform_(_t(fan_out, fan_in), generator=np.random.default_rng(0))
    assert t.numpy().max() <= a and abs(t.numpy().std() - a / math.sqrt(3)) < 0.01 * a
    t = init.xavier_normal_(_t(fan_out, fan_in), gain=2.0, generator=np.random.default_rng(0))
    assert abs(t.numpy().std() - 2 * math.sqrt(2 / (fan_in + fan_out))) < 0.01
    t = init.kaiming_uniform_(_t(fan_out, fan_in), nonlinearity="relu", generator=np.random.default_rng(0))
    bound = math.sqrt(2) * math.sqrt(3 / fan_in)
    assert t.numpy().max() <= bound and t.numpy().max() > 0.99 * bound
    t = init.kaiming_normal_(_t(fan_out, fan_in), mode="fan_out", nonlinearity="relu",
                             generator=np.random.default_rng(0))
    assert abs(t.numpy().std() - math.sqrt(2 / fan_out)) < 0.002
    assert init.calculate_gain("tanh") == 5 / 3
    with pytest.raises(ValueError, match="fewer than 2"):
        init.xavier_uniform_(_t(5))


@pytest.mark.parametrize("shape", [(6, 6), (4, 9), (9, 4), (3, 2, 2)])
def test_orthogonal(shape):
    t = init.orthogonal_(_t(*shape, dtype=np.float64), gain=1.5, generator=np.random.default_rng(0))
    m = t.numpy().reshape(shape[0], -1) / 1.5
    small = min(m.shape)
    gram = m @ m.T if m.shape[0] == small else m.T @ m
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)


def test_default_generator_reproducible():
    rnnbp.manual_seed(5)
    a = init.normal_(_t(10)).numpy().copy()
    rnnbp.manual_seed(5)
    b = init.normal_(_t(10)).numpy().copy()
    np.testing.assert_array_equal(a, b)
