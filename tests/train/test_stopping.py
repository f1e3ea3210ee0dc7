"""Early stopping, best.npz, restore_best, and the two ways of stepping a scheduler."""
import numpy as np
import pytest

import rnnbp
from rnnbp import optim
from rnnbp.train import Callback


class Snapshots(Callback):
    """The model's weights at the end of every epoch."""

    def __init__(self):
        self.weights = {}

    def on_epoch_end(self, trainer, epoch, logs):
        self.weights[epoch] = {k: v.numpy().copy() for k, v in trainer.model.state_dict().items()}


def scripted(values):
    """An evaluate() returning the given validation losses, one per epoch."""
    it = iter(values)
    return lambda: {"loss": next(it)}


def assert_weights_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_early_stopping_after_patience_bad_epochs_and_best_checkpoint(tmp_path, mlp):
    snaps, messages = Snapshots(), []
    trainer = mlp(tmp_path, evaluate=scripted([1.0, 0.5, 0.6, 0.5, 0.7, 0.3, 0.2]), patience=3,
                  callbacks=[snaps], log=messages.append)
    history = trainer.fit(7)
    # Epoch 2 is the best; 3, 4 (equal is not better) and 5 are bad: stop after epoch 5.
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    assert [h["val_loss"] for h in history] == [1.0, 0.5, 0.6, 0.5, 0.7]
    assert (trainer.monitor.best, trainer.monitor.best_epoch, trainer.monitor.bad_epochs) == (0.5, 2, 3)
    assert any(m.startswith("early stop after epoch 5") for m in messages), messages
    best = rnnbp.load(tmp_path / "best.npz")
    assert best["loop"]["epoch"] == 2
    assert_weights_equal(dict(best["model"]), snaps.weights[2])
    assert_weights_equal(dict(rnnbp.load(tmp_path / "last.npz")["model"]), snaps.weights[5])
    assert_weights_equal(dict(trainer.model.state_dict()), snaps.weights[5])  # restore_best=False
    # Resuming a run early stopping ended does nothing more, unless patience grows.
    again = mlp(tmp_path, evaluate=scripted([0.1]), patience=3, init_seed=5, log=messages.append)
    assert len(again.fit(7, resume=True)) == 5 and "nothing to do" in messages[-1]
    more = mlp(tmp_path, evaluate=scripted([0.6, 0.2]), patience=4, init_seed=5)
    assert [h["val_loss"] for h in more.fit(7, resume=True)][5:] == [0.6]  # the 4th bad epoch since epoch 2


def test_min_delta_and_mode_max(tmp_path, mlp):
    values = iter([0.50, 0.505, 0.52, 0.525, 0.528, 0.6])
    trainer = mlp(tmp_path, evaluate=lambda: {"acc": next(values)}, monitor="val_acc", mode="max",
                  min_delta=0.01, patience=2)
    history = trainer.fit(6)
    # 0.505 is not 0.01 better than 0.50; 0.52 is; 0.525 and 0.528 are not: stop after epoch 5.
    assert len(history) == 5 and trainer.monitor.best_epoch == 3


def test_restore_best_loads_the_best_epochs_weights(tmp_path, mlp):
    snaps = Snapshots()
    trainer = mlp(tmp_path, evaluate=scripted([1.0, 0.4, 0.6, 0.8]), restore_best=True, callbacks=[snaps])
    trainer.fit(4)
    assert_weights_equal(dict(trainer.model.state_dict()), snaps.weights[2])
    # Also after a resume, from best.npz.
    first = mlp(tmp_path / "b", evaluate=scripted([1.0, 0.4]), restore_best=True)
    first.fit(2)
    resumed = mlp(tmp_path / "b", evaluate=scripted([0.6, 0.8]), restore_best=True, init_seed=3)
    resumed.fit(4, resume=True)
    assert_weights_equal(dict(resumed.model.state_dict()), dict(rnnbp.load(tmp_path / "b" / "best.npz")["model"]))
    assert resumed.monitor.best_epoch == 2


def test_reduce_lr_on_plateau_gets_the_monitored_value(mlp):
    trainer = mlp(evaluate=scripted([1.0, 1.0, 1.0, 1.0]), scheduler=None)
    trainer.scheduler = optim.lr_scheduler.ReduceLROnPlateau(trainer.optimizer, factor=0.5, patience=1)
    history = trainer.fit(4)
    # Best after epoch 1; two bad epochs (> patience 1) reduce the lr after epoch 3.
    assert [h["lr"] for h in history] == [1e-2, 1e-2, 1e-2, 5e-3]


def test_scheduler_step_per_update(mlp):
    trainer = mlp(scheduler=None, scheduler_step="update")
    trainer.scheduler = optim.lr_scheduler.StepLR(trainer.optimizer, step_size=2, gamma=0.5)
    history = trainer.fit(2)
    # 5 batches per epoch: after 5 and 10 scheduler steps the lr is 1e-2 * 0.5**(5 // 2), 0.5**(10 // 2).
    assert [h["lr"] for h in history] == pytest.approx([1e-2 * 0.5 ** 2, 1e-2 * 0.5 ** 5])
    assert [h["updates"] for h in history] == [5, 10]


def test_plateau_needs_epoch_steps(mlp):
    base = mlp()
    with pytest.raises(ValueError, match="scheduler_step='epoch'"):
        mlp(scheduler=optim.lr_scheduler.ReduceLROnPlateau(base.optimizer), scheduler_step="update")


def test_unknown_monitor_is_named_with_the_keys_there_are(tmp_path, mlp):
    trainer = mlp(tmp_path, monitor="val_acc")
    with pytest.raises(ValueError, match=r"monitor='val_acc' is not among .*'val_loss'"):
        trainer.fit(1)


def test_a_stop_asked_before_an_epoch_runs_no_batch(tmp_path, mlp):
    class StopAtStart(Callback):
        def on_epoch_start(self, trainer, epoch):
            if epoch == 2:
                trainer.request_stop("budget spent")

    trainer = mlp(checkpoint_dir=tmp_path, callbacks=[StopAtStart()])
    trainer.fit(3)
    assert (trainer.epoch, trainer.position, trainer.updates) == (1, 0, 5)
