"""A row whose target is ignore_index adds nothing to cross_entropy / nll_loss, even when its logits are
NaN or Inf (padding carries no loss): the value equals torch's, the row gets a zero gradient."""
import numpy as np
import pytest

import rnnbp
from rnnbp.autograd import gradcheck
from rnnbp.nn.functional import cross_entropy, nll_loss

NAN, INF = np.nan, np.inf


def _logits(dtype=np.float64):
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(dtype)
    x[1] = [NAN, 1.0, 2.0]  # ignored rows hold garbage
    x[3] = [INF, -INF, NAN]
    return x


TARGET = np.array([2, -100, 0, -100])


@pytest.mark.parametrize("kwargs", [{}, {"reduction": "sum"}, {"reduction": "none"}, {"label_smoothing": 0.2},
                                    {"weight": np.array([0.5, 1.0, 2.0])}])
def test_cross_entropy_of_garbage_in_ignored_rows_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    x = rnnbp.tensor(_logits(), requires_grad=True)
    loss = cross_entropy(x, rnnbp.tensor(TARGET), **{k: (rnnbp.tensor(v) if k == "weight" else v)
                                                       for k, v in kwargs.items()})
    tx = torch.tensor(_logits(), requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tx, torch.tensor(TARGET), **{
        k: (torch.tensor(v) if k == "weight" else v) for k, v in kwargs.items()})
    np.testing.assert_allclose(loss.numpy(), tloss.detach().numpy(), rtol=1e-12)
    assert np.isfinite(loss.numpy()).all()
    loss.sum().backward()
    tloss.sum().backward()
    valid = TARGET != -100
    np.testing.assert_allclose(x.grad.numpy()[valid], tx.grad.numpy()[valid], rtol=1e-12, atol=1e-15)
    assert not x.grad.numpy()[~valid].any()  # torch gives NaN there; nothing flows into an ignored row here


def test_nll_loss_of_nan_in_ignored_rows_matches_torch():
    torch = pytest.importorskip("torch")
    x = rnnbp.tensor(_logits(), requires_grad=True)
    loss = nll_loss(x, rnnbp.tensor(TARGET))
    tloss = torch.nn.functional.nll_loss(torch.tensor(_logits()), torch.tensor(TARGET))
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-12)
    loss.backward()
    assert np.isfinite(x.grad.numpy()).all()


@pytest.mark.parametrize("loss_fn", [cross_entropy, nll_loss])
def test_gradcheck_with_ignored_rows(loss_fn):
    x = _logits()
    x[1], x[3] = [0.3, -0.2, 0.1], [1.0, 2.0, -1.0]  # finite, for the central differences
    gradcheck(lambda t: loss_fn(t, rnnbp.tensor(TARGET)), [rnnbp.tensor(x, requires_grad=True)])


def test_a_nan_in_a_counted_row_still_gives_nan():
    x = _logits(np.float32)
    loss = cross_entropy(rnnbp.tensor(x), rnnbp.tensor(np.array([2, 0, 0, -100])))
    assert np.isnan(loss.item())
