"""``torch.set_default_dtype``: the dtype of floating tensors and parameters made without one."""
import numpy as np
import pytest

import rnnbp


@pytest.fixture
def float64_default():
    rnnbp.set_default_dtype(rnnbp.float64)
    try:
        yield
    finally:
        rnnbp.set_default_dtype(rnnbp.float32)


def test_float32_unless_set():
    assert rnnbp.get_default_dtype() == rnnbp.float32 and rnnbp.zeros(2).dtype == rnnbp.float32


def test_factories_parameters_and_promotions_follow_the_default(float64_default):
    assert rnnbp.get_default_dtype() == rnnbp.float64
    made = [rnnbp.zeros(2), rnnbp.ones(2), rnnbp.randn(2), rnnbp.rand(2), rnnbp.tensor([1.5]), rnnbp.tensor(2.0),
            rnnbp.full((2,), 0.5), rnnbp.linspace(0, 1, 3), rnnbp.eye(2), rnnbp.arange(3) / 2,
            rnnbp.arange(3) * 0.5, rnnbp.nn.Linear(2, 3).weight,
            rnnbp.nn.LSTM(2, 3).weight_hh_l0, rnnbp.nn.GRU(2, 3).bias_ih_l0, rnnbp.nn.LayerNorm(3).weight,
            rnnbp.nn.Embedding(4, 2).weight]
    assert [t.dtype for t in made] == [rnnbp.float64] * len(made)
    assert rnnbp.finfo().dtype == "float64" and rnnbp.finfo().eps == np.finfo(np.float64).eps
    assert rnnbp.nn.utils.clip_grad_norm_(rnnbp.nn.Linear(2, 2).parameters(), 1.0).dtype == rnnbp.float64  # no grads
    assert rnnbp.zeros(2, dtype=rnnbp.float32).dtype == rnnbp.float32  # an explicit dtype wins
    assert rnnbp.randint(0, 3, (2,)).dtype == rnnbp.int64
    with pytest.raises(TypeError, match="only floating-point types"):
        rnnbp.set_default_dtype(rnnbp.int64)
    assert rnnbp.get_default_dtype() == rnnbp.float64  # left as found


def _lstm_steps(lib):
    """A float64 program written for set_default_dtype(float64): no dtype anywhere."""
    lib.set_default_dtype(lib.float64)
    try:
        rng = np.random.default_rng(0)
        lib.manual_seed(0)
        lstm, head = lib.nn.LSTM(3, 4), lib.nn.Linear(4, 2)
        with lib.no_grad():
            for p in list(lstm.parameters()) + list(head.parameters()):
                p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape)) * 0.3))
        opt = lib.optim.Adam(list(lstm.parameters()) + list(head.parameters()), lr=0.05)
        x, y = lib.tensor(rng.standard_normal((5, 2, 3))), lib.tensor(rng.integers(0, 2, 10))
        losses = []
        for _ in range(3):
            opt.zero_grad()
            out, _ = lstm(x)
            loss = lib.nn.functional.cross_entropy(head(out).reshape(10, 2), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses, head.weight.dtype == lib.float64
    finally:
        lib.set_default_dtype(lib.float32)


def test_a_program_written_for_a_float64_default_runs_as_in_pytorch():
    torch = pytest.importorskip("torch")
    ours, theirs = _lstm_steps(rnnbp), _lstm_steps(torch)
    assert ours[1] and theirs[1]
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12)
