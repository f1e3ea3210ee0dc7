"""Composite expressions agree with PyTorch in float64: forward values and every gradient to 1e-10."""
from __future__ import annotations

import numpy as np
import pytest

from rnnbp.autograd import Tensor, ops

torch = pytest.importorskip("torch")


def mlp(lib, x, w1, b1, w2, targets):
    """Two-layer net with GELU, a cross-entropy via log_softmax and repeated-index gathering."""
    F = lib["F"]
    h = F.gelu(F.linear(x, w1, b1))  # (N, H)
    logits = h @ w2.T  # (N, C)
    logp = F.log_softmax(logits, -1)
    nll = -logp[lib["arange"], targets].mean()
    return nll + F.softmax(logits, 0).var(dim=0).sum() + lib["logsumexp"](logits, 1).mean()


def recurrent(lib, x, wh, wx, b):
    """A few steps of h = tanh(h W_h^T + x_t W_x^T + b) with a max over time and a tanh-GELU."""
    h = x[0] @ wx.T * 0.0
    hs = []
    for t in range(x.shape[0]):
        h = (h @ wh.T + x[t] @ wx.T + b).tanh()
        hs.append(h)
    hs = lib["stack"](hs, 0)  # (L, N, H)
    top = lib["max"](hs, 0)[0]  # values over time
    return (lib["F"].gelu(top, approximate="tanh") * hs.mean(0)).sum() + hs.var() * 3.0


def gathers(lib, x, w):
    """Indexing with repeats and a boolean mask, broadcast batched matmul, clamp, where, pow."""
    rows = x[lib["index"]]  # repeats: (5, 3, 4)
    y = rows.unsqueeze(1) @ w  # (5, 1, 3, 4) @ (2, 4, 3) -> (5, 2, 3, 3)
    z = lib["where"](y > 0, y.clamp(-1.0, 1.0), y.sigmoid() ** 2)
    masked = x[lib["mask"]]
    return z.sum() + (masked.abs() + 1.0).log().sum() + lib["F"].softplus(z, beta=2.0).mean()


def shapes(lib, a, b):
    """cat / split / permute / transpose / expand / sqrt / division / leaky_relu / maximum."""
    c = lib["cat"]([a, b], 1)  # (3, 7)
    p, q = lib["split"](c, [3, 4], 1)
    r = q.permute(1, 0).reshape(2, 6).transpose(0, 1)  # (6, 2)
    s = lib["maximum"](p.flatten(), r.sum(1)[:3].expand(3, 3).flatten() * 0.5)
    return (s / (r.exp().sum() + 1.0)).sum() + (lib["F"].leaky_relu(r, 0.1) ** 2 + 1.0).sqrt().mean()


class _RnnbpF:
    gelu = staticmethod(ops.gelu)
    linear = staticmethod(ops.linear)
    log_softmax = staticmethod(ops.log_softmax)
    softmax = staticmethod(ops.softmax)
    softplus = staticmethod(ops.softplus)
    leaky_relu = staticmethod(ops.leaky_relu)


def _libs(consts):
    ours = {"F": _RnnbpF, "logsumexp": ops.logsumexp, "stack": ops.stack, "max": ops.max, "where": ops.where,
            "cat": ops.cat, "split": ops.split, "maximum": ops.maximum}
    theirs = {"F": torch.nn.functional, "logsumexp": torch.logsumexp, "stack": torch.stack, "max": torch.max,
              "where": torch.where, "cat": torch.cat, "split": torch.split, "maximum": torch.maximum}
    for k, v in consts.items():
        ours[k] = v
        theirs[k] = torch.from_numpy(v)
    return ours, theirs


def _compare(fn, arrays, consts=None):
    ours_lib, torch_lib = _libs(consts or {})
    ours = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out, ref = fn(ours_lib, *ours), fn(torch_lib, *theirs)
    assert out.dtype == np.float64 and out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-10)
    out.backward()
    ref.backward()
    for i, (x, r) in enumerate(zip(ours, theirs)):
        assert x.grad is not None and np.abs(x.grad.numpy()).max() > 0, f"input {i} got no gradient"
        np.testing.assert_allclose(x.grad.numpy(), r.grad.numpy(), rtol=1e-10, atol=1e-10, err_msg=f"input {i}")


def test_mlp_matches_torch():
    rng = np.random.default_rng(0)
    n, h_in, h, c = 6, 5, 7, 4
    arrays = [rng.standard_normal((n, h_in)), rng.standard_normal((h, h_in)) * 0.5, rng.standard_normal(h),
              rng.standard_normal((c, h)) * 0.5]
    targets = np.array([0, 3, 3, 1, 0, 3])
    fn = lambda lib, x, w1, b1, w2: mlp(lib, x, w1, b1, w2, lib["targets"])  # noqa: E731
    _compare(fn, arrays, {"arange": np.arange(n), "targets": targets})


def test_recurrent_matches_torch():
    rng = np.random.default_rng(1)
    seq, n, h_in, h = 5, 3, 4, 6
    arrays = [rng.standard_normal((seq, n, h_in)), rng.standard_normal((h, h)) * 0.4,
              rng.standard_normal((h, h_in)) * 0.4, rng.standard_normal(h) * 0.1]
    _compare(recurrent, arrays)


def test_gathers_match_torch():
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((4, 3, 4)), rng.standard_normal((2, 4, 3))]
    consts = {"index": np.array([0, 2, 2, 3, 0]), "mask": rng.random((4, 3, 4)) > 0.5}
    _compare(gathers, arrays, consts)


def test_shape_ops_match_torch():
    rng = np.random.default_rng(3)
    _compare(shapes, [rng.standard_normal((3, 3)), rng.standard_normal((3, 4))])


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_elementwise_values_match_torch(approximate):
    """Pointwise ops over a wide range, including softplus past its threshold and sigmoid's tails."""
    x = np.linspace(-30, 30, 241)
    ours, theirs = Tensor(x.copy(), requires_grad=True), torch.tensor(x, requires_grad=True)
    tf = torch.nn.functional
    pairs = [
        (ops.gelu(ours, approximate), tf.gelu(theirs, approximate=approximate)),
        (ops.softplus(ours), tf.softplus(theirs)),
        (ops.softplus(ours, beta=2.0, threshold=5.0), tf.softplus(theirs, beta=2.0, threshold=5.0)),
        (ops.sigmoid(ours), torch.sigmoid(theirs)),
        (ops.tanh(ours * 0.1), torch.tanh(theirs * 0.1)),
        (ops.leaky_relu(ours, 0.05), tf.leaky_relu(theirs, 0.05)),
        (ops.logsumexp(ours.reshape(1, -1), 1), torch.logsumexp(theirs.reshape(1, -1), 1)),
    ]
    for i, (a, b) in enumerate(pairs):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=str(i))
        w = np.cos(np.arange(a.numel())).reshape(a.shape)
        ours.grad = None
        theirs.grad = None
        (a * Tensor(w)).sum().backward()
        (b * torch.from_numpy(w)).sum().backward()
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=str(i))
