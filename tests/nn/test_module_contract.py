"""One contract, run over every module (scikit-learn's test_common style).

float32 in gives float32 out and float32 gradients; a batch equals its items
run one by one; the state dict round-trips into a fresh instance.
"""
import numpy as np
import pytest

import rnnbp
from rnnbp import nn

# name -> (factory, input maker for a batch of N)
FLOAT_INPUT = lambda n: rnnbp.randn(n, 6)  # noqa: E731
MODULES = {
    "Linear": (lambda: nn.Linear(6, 4), FLOAT_INPUT),
    "Linear-nobias": (lambda: nn.Linear(6, 4, bias=False), FLOAT_INPUT),
    "MLP": (lambda: nn.Sequential(nn.Linear(6, 8), nn.GELU(), nn.Dropout(0.3), nn.Linear(8, 3)), FLOAT_INPUT),
    "LayerNorm": (lambda: nn.LayerNorm(6), FLOAT_INPUT),
    "ReLU": (nn.ReLU, FLOAT_INPUT),
    "Tanh": (nn.Tanh, FLOAT_INPUT),
    "Sigmoid": (nn.Sigmoid, FLOAT_INPUT),
    "LeakyReLU": (nn.LeakyReLU, FLOAT_INPUT),
    "Softplus": (nn.Softplus, FLOAT_INPUT),
    "Softmax": (lambda: nn.Softmax(-1), FLOAT_INPUT),
    "LogSoftmax": (lambda: nn.LogSoftmax(-1), FLOAT_INPUT),
    "Flatten": (nn.Flatten, lambda n: rnnbp.randn(n, 2, 3)),
    "Embedding": (lambda: nn.Embedding(7, 4), lambda n: rnnbp.tensor(np.arange(3 * n).reshape(n, 3) % 7)),
    "FixedPointRNNCell": (lambda: nn.FixedPointRNNCell(6, 4, max_norm=0.5), FLOAT_INPUT),
}


@pytest.fixture(params=sorted(MODULES))
def case(request):
    rnnbp.manual_seed(0)
    factory, make_input = MODULES[request.param]
    return factory, make_input


def _float_leaf(x):
    if x.dtype.kind == "f":
        x.requires_grad_(True)
    return x


def test_float32_in_float32_out_and_grads(case):
    factory, make_input = case
    module = factory()
    x = _float_leaf(make_input(5))
    y = module(x)
    assert y.dtype == np.float32
    (y * 0.5).sum().backward()
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.numpy().dtype == np.float32, name
    if x.requires_grad:
        assert x.grad.numpy().dtype == np.float32


def test_batch_equals_items_one_by_one(case):
    factory, make_input = case
    module = factory().eval()
    x = make_input(4)
    with rnnbp.no_grad():
        batched = module(x).numpy()
        for i in range(4):
            single = module(x[i:i + 1]).numpy()
            np.testing.assert_allclose(batched[i:i + 1], single, rtol=1e-5, atol=1e-6)


def test_state_dict_round_trip(case):
    factory, make_input = case
    source = factory().eval()
    rnnbp.manual_seed(99)
    target = factory().eval()
    target.load_state_dict(source.state_dict())
    x = make_input(3)
    with rnnbp.no_grad():
        np.testing.assert_array_equal(source(x).numpy(), target(x).numpy())
