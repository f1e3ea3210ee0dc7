"""Ctrl-C twice, KeyboardInterrupt inside a batch, errors and NaN from train_step: last.npz stays good."""
import os
import signal
import threading
import time

import numpy as np
import pytest

import rnnbp
from rnnbp.bptt import NonFiniteError
from rnnbp.train import Callback

main_thread_only = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                      reason="SIGINT handlers need the main thread")


def _wait_for(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.001)  # the pending signal handler runs here


class Poison:
    """Wrap a train_step: in epoch ``epoch`` at batch ``batch``, do ``what`` instead."""

    def __init__(self, trainer, epoch, batch, what):
        self.trainer, self.inner, self.epoch, self.batch, self.what = trainer, trainer.train_step, epoch, batch, what
        trainer.train_step = self

    def __call__(self, batch):
        t = self.trainer
        if t.epoch + 1 == self.epoch and t.position == self.batch:
            out = self.inner(batch)  # the update happens, then things go wrong
            if self.what == "nan":
                return {**out, "loss": float("nan")}
            if self.what == "keyboard":
                raise KeyboardInterrupt
            raise self.what
        return self.inner(batch)


@main_thread_only
def test_second_ctrl_c_raises_at_once_and_does_not_save(tmp_path, mlp):
    before = signal.getsignal(signal.SIGINT)

    class TwoCtrlC(Callback):
        def on_batch_end(self, trainer, batch_index, metrics):
            if trainer.epoch == 1 and batch_index == 1:
                os.kill(os.getpid(), signal.SIGINT)
                _wait_for(lambda: trainer.stop_training)
                os.kill(os.getpid(), signal.SIGINT)
                _wait_for(lambda: False)  # the handler raises KeyboardInterrupt while we wait

    messages = []
    trainer = mlp(tmp_path, callbacks=[TwoCtrlC()], log=messages.append)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(3)
    assert signal.getsignal(signal.SIGINT) is before
    assert rnnbp.load(tmp_path / "last.npz")["loop"]["epoch"] == 1
    assert rnnbp.load(tmp_path / "last.npz")["loop"]["position"] == 0
    assert any("second Ctrl-C" in m and "still holds the end of epoch 1" in m for m in messages), messages


def test_keyboard_interrupt_inside_a_batch_writes_no_checkpoint(tmp_path, mlp):
    messages = []
    trainer = mlp(tmp_path, log=messages.append)
    trainer.fit(1)
    before = (tmp_path / "last.npz").read_bytes()
    Poison(trainer, epoch=2, batch=2, what="keyboard")
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(3)
    assert (tmp_path / "last.npz").read_bytes() == before
    assert any("no checkpoint was written" in m and "end of epoch 1" in m for m in messages), messages


def test_error_in_train_step_propagates_and_keeps_last_checkpoint(tmp_path, mlp):
    trainer = mlp(tmp_path)
    trainer.fit(1)
    before = (tmp_path / "last.npz").read_bytes()
    error = NonFiniteError("TBPTT: non-finite gradient of w in chunk 5", tensor="w", step=None, chunk=5)
    Poison(trainer, epoch=2, batch=1, what=error)
    with pytest.raises(NonFiniteError, match="non-finite gradient of w in chunk 5") as info:
        trainer.fit(3)
    assert info.value is error
    assert (tmp_path / "last.npz").read_bytes() == before


def test_nan_loss_stops_naming_the_batch_and_keeps_last_checkpoint(tmp_path, mlp):
    trainer = mlp(tmp_path)
    trainer.fit(1)
    before = (tmp_path / "last.npz").read_bytes()
    Poison(trainer, epoch=2, batch=3, what="nan")
    with pytest.raises(NonFiniteError, match=r"non-finite loss \(nan\) at epoch 2, batch 3.*still holds the end of "
                                             r"epoch 1"):
        trainer.fit(3)
    assert (tmp_path / "last.npz").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "last.npz"]


def test_failed_checkpoint_write_leaves_the_old_file_whole(tmp_path, mlp, monkeypatch):
    trainer = mlp(tmp_path)
    trainer.fit(1)
    before = (tmp_path / "last.npz").read_bytes()

    def disk_full(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError, match="No space left"):
        trainer.fit(2)
    assert (tmp_path / "last.npz").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["best.npz", "last.npz"]  # no temp file left behind
    monkeypatch.undo()
    assert rnnbp.load(tmp_path / "last.npz")["loop"]["epoch"] == 1
