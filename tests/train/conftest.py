"""Tiny training setups for the Trainer tests: an MLP with dropout, and a TBPTT character stream."""
import numpy as np
import pytest

import rnnbp
from rnnbp import nn, optim
from rnnbp.bptt import TBPTT, sequence_cross_entropy
from rnnbp.data import batches as data_batches
from rnnbp.data import stream_batches, stream_chunks
from rnnbp.nn import functional as F
from rnnbp.train import StreamCarry, Trainer


def _mlp_data():
    rng = np.random.default_rng(123)
    x = rng.standard_normal((40, 5)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    xv = rng.standard_normal((16, 5)).astype(np.float32)
    yv = rng.integers(0, 3, 16)
    return x, y, xv, yv


def make_mlp_trainer(checkpoint_dir=None, init_seed=0, evaluate="default", scheduler="step", **kwargs):
    """MLP (with Dropout) on 40 random points, batches of 8 shuffled per epoch, Adam, StepLR.

    ``init_seed`` seeds the initialisation (and so rnnbp's default generator); a resumed run
    uses a different one to show that the checkpoint, not the seed, decides what follows.
    """
    rnnbp.manual_seed(init_seed)
    x, y, xv, yv = _mlp_data()
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7) if scheduler == "step" else scheduler

    def train_step(batch):
        xb, yb = batch
        loss = F.cross_entropy(model(rnnbp.Tensor(xb)), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "count": len(yb)}

    def batches(epoch, generator):
        return data_batches(x, y, batch_size=8, generator=generator)

    def val():
        return {"loss": F.cross_entropy(model(rnnbp.Tensor(xv)), yv).item()}

    kwargs.setdefault("progress", False)
    kwargs.setdefault("log", None)
    return Trainer(model, opt, train_step, batches, evaluate=val if evaluate == "default" else evaluate,
                   scheduler=sched, checkpoint_dir=checkpoint_dir, **kwargs)


class CharLM(nn.Module):
    """Embedding -> 2-layer LSTM (dropout between layers) -> linear head; time-major."""

    def __init__(self, vocab=7, hidden=8):
        super().__init__()
        self.emb = nn.Embedding(vocab, 6)
        self.lstm = nn.LSTM(6, hidden, num_layers=2, dropout=0.2)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, hx):
        out, hx = self.lstm(self.emb(x), hx)
        return self.head(out), hx


def make_stream_trainer(checkpoint_dir=None, init_seed=0, **kwargs):
    """A TBPTT(k1=4, k2=6) stream over random ids, 12-step segments from a random offset per epoch."""
    rnnbp.manual_seed(init_seed)
    rng = np.random.default_rng(7)
    stream = stream_batches(rng.integers(0, 7, 400), batch_size=4)  # (100, 4)
    val_stream = stream_batches(rng.integers(0, 7, 80), batch_size=4)  # (20, 4)
    model = CharLM()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    engine = TBPTT(model, sequence_cross_entropy, opt, k1=4, k2=6, clip_norm=1.0)
    holder = StreamCarry()

    def batches(epoch, generator):
        offset = int(generator.integers(0, 5))
        for i, (x, y) in enumerate(stream_chunks(stream[offset:], 12)):
            yield i == 0, x, y

    def train_step(batch):
        first, x, y = batch
        if first:
            holder.reset()
        result = engine.run(x, y, carry=holder.carry)
        holder.carry = result.carry
        return {"loss": result.loss, "count": result.count, "updates": len(result.updates)}

    def val():
        x, y = val_stream[:-1], val_stream[1:]
        return {"loss": engine.evaluate(x, y).loss}

    kwargs.setdefault("progress", False)
    kwargs.setdefault("log", None)
    return Trainer(model, opt, train_step, batches, evaluate=val, checkpoint_dir=checkpoint_dir,
                   stateful={"stream": holder}, **kwargs)


def params(trainer):
    return {k: v.numpy().copy() for k, v in trainer.model.state_dict().items()}


def without_time(history):
    return [{k: v for k, v in record.items() if k != "time"} for record in history]


def assert_same_run(a, b):
    """Same per-epoch logs (bit for bit, apart from the wall time) and the same final weights."""
    assert without_time(a.history) == without_time(b.history)
    pa, pb = params(a), params(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)


@pytest.fixture
def mlp():
    return make_mlp_trainer


@pytest.fixture
def char_stream():
    return make_stream_trainer


@pytest.fixture
def same_run():
    return assert_same_run
