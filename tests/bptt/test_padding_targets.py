"""Padding carries no loss: NaN (or any garbage) in targets past a row's length changes nothing."""
from __future__ import annotations

import math

import numpy as np
import pytest

from rnnbp import nn, optim
from rnnbp.bptt import TBPTT, NonFiniteError, sequence_cross_entropy, sequence_mse

F64 = "float64"
LENGTHS = np.array([7, 4, 2])


class Model(nn.Module):
    def __init__(self, out=2, seed=0):
        super().__init__()
        gen = np.random.default_rng(seed)
        self.rnn = nn.LSTM(3, 4, dtype=F64, generator=gen)
        self.head = nn.Linear(4, out, dtype=F64, generator=gen)

    def forward(self, x, hx=None, lengths=None):
        out, hx = self.rnn(x, hx, lengths=lengths)
        return self.head(out), hx


def _batch(pad_x, pad_y, seed=0, classes=None):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((7, 3, 3))
    y = rng.integers(0, classes, (7, 3)) if classes else rng.standard_normal((7, 3, 2))
    for row, n in enumerate(LENGTHS):
        x[n:, row] = pad_x
        y[n:, row] = pad_y
    return x, y


def _train(pad_y, loss_fn=sequence_mse, classes=None, **run):
    model = Model(out=classes or 2)
    engine = TBPTT(model, loss_fn, optim.SGD(model.parameters(), lr=0.1), k1=3)
    x, y = _batch(np.nan, pad_y, classes=classes)
    result = engine.run(x, y, lengths=LENGTHS, **run)
    return result, {n: p.numpy().copy() for n, p in model.named_parameters()}


@pytest.mark.parametrize("pad_y", [np.nan, np.inf, -np.inf])
def test_nonfinite_padded_targets_train_as_finite_ones(pad_y):
    got, params = _train(pad_y)
    ref, ref_params = _train(123.0)  # any finite padding: it carries no loss
    assert math.isfinite(got.loss)
    assert got.loss == pytest.approx(ref.loss, rel=1e-12)
    assert [u.grad_norm for u in got.updates] == pytest.approx([u.grad_norm for u in ref.updates], rel=1e-12)
    for name in ref_params:
        np.testing.assert_allclose(params[name], ref_params[name], rtol=1e-12, err_msg=name)


def test_out_of_range_class_padding_is_ignored():
    # -1 and 99 are no class of 5: past the length they must never reach cross-entropy.
    got, params = _train(-1, sequence_cross_entropy, classes=5)
    ref, ref_params = _train(0, sequence_cross_entropy, classes=5)
    assert got.loss == pytest.approx(ref.loss, rel=1e-12)
    for name in ref_params:
        np.testing.assert_allclose(params[name], ref_params[name], rtol=1e-12, err_msg=name)


def test_zero_weight_steps_of_loss_mask_may_hold_nan_targets():
    x, y = _batch(0.0, 0.0)
    mask = np.zeros((7, 3))
    mask[-1] = 1.0  # only the last step carries a loss (the adding problem)
    y_nan = y.copy()
    y_nan[:-1] = np.nan
    results = []
    for targets in (y, y_nan):
        model = Model()
        engine = TBPTT(model, sequence_mse, optim.SGD(model.parameters(), lr=0.1), k1=7)
        results.append((engine.run(x, targets, loss_mask=mask).loss, model.head.weight.numpy().copy()))
    assert math.isfinite(results[1][0]) and results[1][0] == pytest.approx(results[0][0], rel=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-12)


def test_evaluate_ignores_nan_padding():
    x, y_nan = _batch(np.nan, np.nan)
    _, y_fin = _batch(np.nan, 5.0)
    model = Model()
    engine = TBPTT(model, sequence_mse, None, k1=3)
    got = engine.evaluate(x, y_nan, lengths=LENGTHS)
    ref = engine.evaluate(x, y_fin, lengths=LENGTHS)
    assert math.isfinite(got.loss) and got.loss == pytest.approx(ref.loss, rel=1e-12)
    assert got.count == ref.count == LENGTHS.sum() * 1.0


def test_scalar_loss_sees_zeros_not_nan_past_the_length():
    def mean_mse(out, target):  # a scalar loss: the engine does not mask it, but it never sees the NaN
        return ((out - target) ** 2).mean()

    x, y_nan = _batch(np.nan, np.nan)
    _, y_zero = _batch(np.nan, 0.0)
    losses = []
    for y in (y_nan, y_zero):
        model = Model()
        losses.append(TBPTT(model, mean_mse, optim.SGD(model.parameters(), lr=0.1), k1=3)
                      .run(x, y, lengths=LENGTHS).loss)
    assert math.isfinite(losses[0]) and losses[0] == pytest.approx(losses[1], rel=1e-12)


def test_nan_target_inside_a_row_is_named_as_the_target():
    x, y = _batch(np.nan, np.nan)
    y[1, 2, 0] = np.nan  # row 2 has length 2: step 1 is real
    model = Model()
    before = model.head.weight.numpy().copy()
    engine = TBPTT(model, sequence_mse, optim.SGD(model.parameters(), lr=0.1), k1=3)
    with pytest.raises(NonFiniteError, match=r"at step 1 \(row 2\) in chunk 0.*the target is NaN or Inf") as err:
        engine.run(x, y, lengths=LENGTHS)
    assert err.value.tensor == "target" and err.value.step == 1 and err.value.chunk == 0
    assert "finite (nan)" not in str(err.value)
    np.testing.assert_array_equal(model.head.weight.numpy(), before)


def test_gradient_message_never_calls_a_nan_loss_finite():
    model = Model()
    engine = TBPTT(model, sequence_mse, None, k1=3)
    for p in model.parameters():
        p._grad = np.full(p.shape, np.nan)
    for loss, said in ((float("nan"), "and the loss was nan"), (0.5, "although the loss was finite (0.5)")):
        with pytest.raises(NonFiniteError) as err:
            engine._finish({"loss": loss, "count": 1.0}, None, 0, (0, 3), (0, 3))
        assert said in str(err.value)
        assert "finite (nan)" not in str(err.value)
