"""Resuming with another optimizer class (an Adam checkpoint into SGD) is refused, naming both."""
import numpy as np
import pytest

import rnnbp
from rnnbp import nn, optim
from rnnbp.bptt import TBPTT, sequence_mse
from rnnbp.data import batches as data_batches
from rnnbp.nn import functional as F
from rnnbp.train import Trainer


def make_trainer(checkpoint_dir, make_opt, init_seed=0):
    rnnbp.manual_seed(init_seed)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((24, 4)).astype(np.float32), rng.integers(0, 3, 24)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = make_opt(model.parameters())

    def train_step(batch):
        xb, yb = batch
        loss = F.cross_entropy(model(rnnbp.Tensor(xb)), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "count": len(yb)}

    def batches(epoch, generator):
        return data_batches(x, y, batch_size=8, generator=generator)

    return Trainer(model, opt, train_step, batches, checkpoint_dir=checkpoint_dir, progress=False, log=None)


def adam(params):
    return optim.Adam(params, lr=1e-2)


def sgd(params):
    return optim.SGD(params, lr=1e-2)


def weights(trainer):
    return [p.numpy().copy() for p in trainer.model.parameters()]


def test_trainer_records_the_optimizer_class(tmp_path):
    make_trainer(tmp_path, adam).fit(1)
    assert rnnbp.load(tmp_path / "last.npz")["optimizer_class"] == "Adam"


def test_adam_checkpoint_into_sgd_is_refused_and_nothing_is_loaded(tmp_path):
    make_trainer(tmp_path, adam).fit(1)
    other = make_trainer(tmp_path, sgd, init_seed=5)
    before = weights(other)
    with pytest.raises(ValueError, match=r"written with optimizer Adam, this one has SGD") as err:
        other.fit(2, resume=True)
    assert str(err.value).startswith("Trainer.load_state_dict: the checkpoint does not fit this Trainer")
    assert "resume with Adam, or start a fresh run" in str(err.value)
    for a, b in zip(weights(other), before):  # refused before anything was written
        np.testing.assert_array_equal(a, b)
    assert other.epoch == 0 and other.optimizer.state == {} and other.optimizer.param_groups[0]["lr"] == 1e-2
    assert set(other.optimizer.param_groups[0]) == set(sgd(nn.Linear(1, 1).parameters()).param_groups[0])


def test_the_same_class_resumes(tmp_path):
    make_trainer(tmp_path, adam).fit(1)
    resumed = make_trainer(tmp_path, adam, init_seed=5)
    history = resumed.fit(2, resume=True)
    assert [h["epoch"] for h in history] == [1, 2]


def test_old_checkpoint_without_the_record_still_loads(tmp_path):
    first = make_trainer(tmp_path, adam)
    first.fit(1)
    state = rnnbp.load(tmp_path / "last.npz")
    del state["optimizer_class"]  # as written before the class was recorded
    rnnbp.save(state, tmp_path / "last.npz")
    resumed = make_trainer(tmp_path, adam, init_seed=5)
    resumed.fit(1, resume=True)  # nothing left to train: only the load
    for a, b in zip(weights(resumed), weights(first)):
        np.testing.assert_array_equal(a, b)
    assert resumed.epoch == 1


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(2, 3)
        self.head = nn.Linear(3, 1)

    def forward(self, x, hx=None):
        out, hx = self.rnn(x, hx)
        return self.head(out), hx


def _engine(make_opt):
    model = Model()
    return TBPTT(model, sequence_mse, None if make_opt is None else make_opt(model.parameters()), k1=2)


def _trained_state(tmp_path, make_opt):
    engine = _engine(make_opt)
    rng = np.random.default_rng(0)
    engine.run(rng.standard_normal((6, 2, 2)).astype(np.float32), rng.standard_normal((6, 2, 1)).astype(np.float32))
    assert engine.updates_done == 3
    rnnbp.save(engine.state_dict(), tmp_path / "engine.npz")
    return rnnbp.load(tmp_path / "engine.npz")


@pytest.mark.parametrize("saved, loaded, names", [
    (adam, sgd, ("Adam", "SGD")),
    (sgd, adam, ("SGD", "Adam")),
    (None, adam, ("no optimizer", "Adam")),
    (adam, None, ("Adam", "no optimizer")),
])
def test_tbptt_state_of_another_optimizer_is_refused(tmp_path, saved, loaded, names):
    state = _trained_state(tmp_path, saved)
    engine = _engine(loaded)
    with pytest.raises(ValueError, match=rf"TBPTT.load_state_dict: .*written with optimizer {names[0]}, "
                                         rf"this one has {names[1]}"):
        engine.load_state_dict(state)
    assert engine.updates_done == 0


@pytest.mark.parametrize("make_opt", [adam, None])
def test_tbptt_state_round_trips_with_the_same_optimizer_and_old_states_load(tmp_path, make_opt):
    state = _trained_state(tmp_path, make_opt)
    engine = _engine(make_opt)
    engine.load_state_dict(state)
    assert engine.updates_done == 3
    old = _engine(sgd)
    old.load_state_dict({"updates_done": 4})  # written before the class was recorded
    assert old.updates_done == 4
    with pytest.raises(ValueError, match="expected a dict with an 'updates_done' entry"):
        old.load_state_dict({"optimizer": "SGD"})
