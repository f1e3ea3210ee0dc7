"""A run stopped anywhere at a batch boundary and resumed equals the run never stopped, bit for bit."""
import os
import signal
import threading

import numpy as np
import pytest

import rnnbp
from rnnbp.train import Callback


class StopAt(Callback):
    """Stop in epoch ``epoch`` after batch ``batch`` (0-based), by ``how``."""

    def __init__(self, epoch, batch, how="request"):
        self.epoch, self.batch, self.how = epoch, batch, how

    def on_batch_end(self, trainer, batch_index, metrics):
        if trainer.epoch + 1 != self.epoch or batch_index != self.batch:
            return
        if self.how == "request":
            trainer.request_stop()
        elif self.how == "flag":
            trainer.stop_training = True
        elif self.how == "sigint":
            os.kill(os.getpid(), signal.SIGINT)
        elif self.how == "keyboard":
            raise KeyboardInterrupt
        elif self.how == "crash":
            raise RuntimeError("the machine died")


def test_resume_at_epoch_end_equals_straight_run(tmp_path, mlp, same_run):
    straight = mlp(tmp_path / "a")
    straight.fit(4)
    first = mlp(tmp_path / "b")
    assert len(first.fit(2)) == 2
    # A new process would rebuild everything from other seeds: the checkpoint decides what follows.
    resumed = mlp(tmp_path / "b", init_seed=99)
    history = resumed.fit(4, resume=True)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    same_run(straight, resumed)
    # The run did change the lr and the weights (so the comparison is not vacuous).
    assert history[3]["lr"] == pytest.approx(1e-2 * 0.7 ** 3)
    assert len({h["loss"] for h in history}) == 4


@pytest.mark.parametrize("how", ["request", "flag", "keyboard"])
def test_resume_in_mid_epoch_equals_straight_run(tmp_path, mlp, same_run, how):
    straight = mlp(tmp_path / "a")
    straight.fit(3)
    first = mlp(tmp_path / "b", callbacks=[StopAt(epoch=2, batch=2, how=how)])
    if how == "keyboard":  # a KeyboardInterrupt at a batch boundary: saved, then re-raised
        with pytest.raises(KeyboardInterrupt):
            first.fit(3)
    else:
        assert len(first.fit(3)) == 1
    saved = rnnbp.load(tmp_path / "b" / "last.npz")
    assert (saved["loop"]["epoch"], saved["loop"]["position"]) == (1, 3)
    resumed = mlp(tmp_path / "b", init_seed=99)
    resumed.fit(3, resume=True)
    same_run(straight, resumed)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="SIGINT needs the main thread")
def test_ctrl_c_stops_saves_and_resumes_exactly(tmp_path, mlp, same_run):
    straight = mlp(tmp_path / "a")
    straight.fit(3)
    before = signal.getsignal(signal.SIGINT)
    messages = []
    first = mlp(tmp_path / "b", callbacks=[StopAt(epoch=2, batch=1, how="sigint")], log=messages.append)
    history = first.fit(3)  # returns, no KeyboardInterrupt
    assert signal.getsignal(signal.SIGINT) is before
    assert len(history) == 1 and first.position > 0
    assert any("Ctrl-C" in m and "resume=True" in m and "last.npz" in m for m in messages), messages
    resumed = mlp(tmp_path / "b", init_seed=99)
    resumed.fit(3, resume=True)
    same_run(straight, resumed)


def test_checkpoint_every_survives_a_crash(tmp_path, mlp, same_run):
    straight = mlp(tmp_path / "a")
    straight.fit(2)
    first = mlp(tmp_path / "b", checkpoint_every=2, callbacks=[StopAt(epoch=2, batch=2, how="crash")])
    with pytest.raises(RuntimeError, match="the machine died"):
        first.fit(2)
    saved = rnnbp.load(tmp_path / "b" / "last.npz")
    assert (saved["loop"]["epoch"], saved["loop"]["position"]) == (1, 2)
    resumed = mlp(tmp_path / "b", init_seed=99, checkpoint_every=2)
    resumed.fit(2, resume=True)
    same_run(straight, resumed)


def test_tbptt_stream_resumes_exactly_in_mid_epoch(tmp_path, char_stream, same_run):
    straight = char_stream(tmp_path / "a")
    straight.fit(3)
    first = char_stream(tmp_path / "b", callbacks=[StopAt(epoch=2, batch=3)])
    first.fit(3)
    saved = rnnbp.load(tmp_path / "b" / "last.npz")
    assert saved["loop"]["position"] == 4
    carry = saved["stateful"]["stream"]["carry"]
    assert carry["history"].shape == (2, 4)  # k2 - k1 = 2 steps of input carried across segments
    h, c = carry["state"]
    assert h.shape == (2, 4, 8) and np.abs(h).sum() > 0
    resumed = char_stream(tmp_path / "b", init_seed=99)
    resumed.fit(3, resume=True)
    same_run(straight, resumed)
    assert straight.updates == resumed.updates > 3 * 8  # several TBPTT updates per segment


def test_resume_without_the_carry_would_differ(tmp_path, char_stream, same_run):
    """The carry matters: resetting it on resume changes the losses (the test above is not vacuous)."""
    straight = char_stream(tmp_path / "a")
    straight.fit(2)
    first = char_stream(tmp_path / "b", callbacks=[StopAt(epoch=2, batch=3)])
    first.fit(2)
    resumed = char_stream(tmp_path / "b", init_seed=99)
    resumed.fit(1, resume=True)  # loads the state only: epoch 1 is done already
    resumed.stateful["stream"].reset()
    resumed.fit(2)
    with pytest.raises(AssertionError):
        same_run(straight, resumed)
