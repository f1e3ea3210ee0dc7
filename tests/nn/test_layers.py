"""Layers: gradients (float64 gradcheck), PyTorch initialisation and PyTorch parity."""
import math

import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.autograd import gradcheck


def _double(module):
    return module.to(np.float64)


def _check_module_grads(module, x):
    """gradcheck of the module output with respect to its input and every parameter."""
    params = list(module.parameters())

    def fn(x, *ps):
        return module(x)

    assert gradcheck(fn, [x] + params)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradcheck(bias):
    rnnbp.manual_seed(0)
    lin = _double(nn.Linear(3, 4, bias=bias))
    _check_module_grads(lin, rnnbp.randn(2, 5, 3, dtype=np.float64, requires_grad=True))


def test_layernorm_gradcheck():
    rnnbp.manual_seed(0)
    ln = _double(nn.LayerNorm(5))
    ln.weight.data[...] = np.random.default_rng(0).standard_normal(5)
    ln.bias.data[...] = np.random.default_rng(1).standard_normal(5)
    _check_module_grads(ln, rnnbp.randn(3, 5, dtype=np.float64, requires_grad=True))
    ln2 = _double(nn.LayerNorm((2, 3), elementwise_affine=False))
    assert list(ln2.parameters()) == []
    assert gradcheck(ln2, [rnnbp.randn(4, 2, 3, dtype=np.float64, requires_grad=True)])


def test_layernorm_normalises():
    x = rnnbp.randn(6, 10) * 3 + 2
    y = nn.LayerNorm(10)(x).numpy()
    np.testing.assert_allclose(y.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=1), 1, atol=1e-3)
    with pytest.raises(ValueError, match=r"layer_norm.*\(6, 10\).*\(4,\)"):
        nn.LayerNorm(4)(x)


def test_embedding_gradcheck_repeats_and_padding():
    rnnbp.manual_seed(0)
    idx = np.array([[1, 2, 1], [5, 1, 2]])
    plain = _double(nn.Embedding(6, 3))
    assert gradcheck(lambda w: plain(idx), [plain.weight])
    # The padding row gets no gradient by definition (PyTorch's rule), so it is checked exactly.
    emb = _double(nn.Embedding(6, 3, padding_idx=2))
    assert np.all(emb.weight.data[2] == 0)
    out = emb(rnnbp.tensor(idx))
    out.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy()[:, 0], [0, 3, 0, 0, 0, 1])
    with pytest.raises(IndexError, match="6"):
        emb(np.array([6]))
    with pytest.raises(TypeError, match="integer"):
        emb(np.array([1.0]))


def test_dropout_train_and_eval():
    rnnbp.manual_seed(0)
    drop = nn.Dropout(0.25)
    x = rnnbp.ones(1000, 50)
    y = drop(x).numpy()
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.01 and y.dtype == np.float32
    drop.eval()
    assert drop(x) is x
    with pytest.raises(ValueError, match="1.5"):
        nn.Dropout(1.5)


def test_dropout_gradient_uses_the_same_mask():
    x = rnnbp.randn(20, 20, dtype=np.float64, requires_grad=True)
    drop = nn.Dropout(0.5, generator=np.random.default_rng(3))
    y = drop(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), (y.numpy() != 0) * 2.0)


def test_activation_modules_match_functional():
    x = rnnbp.randn(4, 5)
    F = nn.functional
    pairs = [(nn.ReLU(), F.relu(x)), (nn.Tanh(), F.tanh(x)), (nn.Sigmoid(), F.sigmoid(x)),
             (nn.LeakyReLU(0.2), F.leaky_relu(x, 0.2)), (nn.GELU("tanh"), F.gelu(x, "tanh")),
             (nn.Softplus(2.0), F.softplus(x, 2.0)), (nn.Softmax(0), F.softmax(x, 0)),
             (nn.LogSoftmax(1), F.log_softmax(x, 1)), (nn.Identity(), x)]
    for module, expected in pairs:
        np.testing.assert_array_equal(module(x).numpy(), expected.numpy())
    assert nn.Flatten()(rnnbp.randn(2, 3, 4)).shape == (2, 12)


def test_linear_default_init_bounds():
    rnnbp.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (lin.weight, lin.bias):
        assert np.abs(p.numpy()).max() <= bound and np.abs(p.numpy()).max() > 0.95 * bound
    assert abs(lin.weight.numpy().std() - bound / math.sqrt(3)) < 0.01 * bound


def test_pytorch_parity_linear_layernorm_embedding():
    torch = pytest.importorskip("torch")
    rnnbp.manual_seed(0)
    ours = nn.Sequential(nn.Linear(5, 7), nn.GELU(), nn.LayerNorm(7), nn.Linear(7, 3)).to(np.float64)
    theirs = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.GELU(), torch.nn.LayerNorm(7),
                                 torch.nn.Linear(7, 3)).double()
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 5))
    xo, xt = rnnbp.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yo, yt = ours(xo), theirs(xt)
    np.testing.assert_allclose(yo.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    (yo * yo).sum().backward()
    (yt * yt).sum().backward()
    np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (name, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
