"""Training programs run both as one process (in pytest) and as ``mpiexec -n 2 python mpi_programs.py OUT``.

Each program builds the same float64 model and data on every rank; rank r of K reads its shard
(K = 1: everything), so two ranks with half batches must end where one process with whole
batches ends. Run under mpiexec, ``main`` runs them all and rank 0 writes what they gave to OUT
(an .npz the test compares with its own one-process runs).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import rnnbp
import rnnbp.distributed as dist
from rnnbp import nn, optim
from rnnbp.bptt import TBPTT, sequence_cross_entropy
from rnnbp.data import stream_batches, stream_chunks
from rnnbp.nn import functional as F
from rnnbp.nn.utils import clip_grad_norm_
from rnnbp.train import Callback, StreamCarry, Trainer
from rnnbp.utils.data import DataLoader, TensorDataset

GLOBAL_BATCH = 12  # items per update over all ranks


def mlp_run(epochs: int = 2):
    """A hand-written train_step (average_gradients, then clipping, Adam) under the Trainer, with a
    DataLoader over a DistributedSampler. Returns (weights, history)."""
    K = dist.get_world_size()
    rnnbp.manual_seed(dist.get_rank())  # different initial weights per rank: fit must broadcast rank 0's
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((48, 5)), rng.integers(0, 3, 48)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    data = TensorDataset(rnnbp.tensor(x), rnnbp.tensor(y))
    sampler = dist.DistributedSampler(data, shuffle=True, seed=3)
    loader = DataLoader(data, batch_size=GLOBAL_BATCH // K, sampler=sampler)

    def batches(epoch, generator):
        sampler.set_epoch(epoch)
        return loader

    def train_step(batch):
        xb, yb = batch
        loss = F.cross_entropy(model(xb), yb)  # the mean over this rank's items
        opt.zero_grad()
        loss.backward()
        dist.average_gradients(model.parameters())
        clip_grad_norm_(model.parameters(), 0.5)  # clips the averaged gradient, as one process would
        opt.step()
        return {"loss": loss.item(), "count": len(yb)}

    trainer = Trainer(model, opt, train_step, batches, progress=False, log=None)
    trainer.fit(epochs)
    return _weights(model), trainer.history


class LM(nn.Module):
    def __init__(self, vocab=7, hidden=8):
        super().__init__()
        self.emb = nn.Embedding(vocab, 5)
        self.lstm = nn.LSTM(5, hidden)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, hx):
        out, hx = self.lstm(self.emb(x), hx)
        return self.head(out), hx


class StopOnRank(Callback):
    """Request a stop on one rank only, after a given batch of epoch 1: every rank must stop there."""

    def __init__(self, rank: int, batch: int):
        self.rank, self.batch = rank, batch

    def on_batch_end(self, trainer, batch_index, metrics):
        if dist.get_rank() == self.rank and trainer.epoch == 0 and batch_index == self.batch:
            trainer.request_stop("test stop")


def stream_trainer(checkpoint_dir=None, init_seed=0, callbacks=(), log=None):
    """TBPTT(k1=4, k2=6) over 4 streams of random ids (rank r of K takes streams r, r+K, ...),
    12-step segments from a random offset per epoch; a StreamCarry per rank in the checkpoints."""
    K, r = dist.get_world_size(), dist.get_rank()
    rnnbp.manual_seed(init_seed)
    rng = np.random.default_rng(11)
    stream = stream_batches(rng.integers(0, 7, 400), batch_size=4)[:, r::K]  # (100, 4 / K)
    val_stream = stream_batches(rng.integers(0, 7, 80), batch_size=4)
    model = LM().double()
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
        return {"loss": engine.evaluate(val_stream[:-1], val_stream[1:]).loss}

    checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir) / f"rank{r}"
    return Trainer(model, opt, train_step, batches, evaluate=val, checkpoint_dir=checkpoint_dir,
                   metrics_file=None if checkpoint_dir is None else checkpoint_dir / "metrics.jsonl",
                   stateful={"stream": holder}, callbacks=callbacks, progress=False, log=log)


def stream_run(checkpoint_dir, epochs: int = 2):
    """Stop in epoch 1 (asked on the last rank only), then resume with fresh objects. Returns
    (weights, history, the stopped run's history length, its position)."""
    first = stream_trainer(checkpoint_dir, callbacks=[StopOnRank(dist.get_world_size() - 1, 2)], log=print)
    first.fit(epochs)
    stopped_at = (first.epoch, first.position)
    again = stream_trainer(checkpoint_dir, init_seed=99, log=print)  # other weights: the checkpoint decides
    again.fit(epochs, resume=True)
    return _weights(again.model), again.history, stopped_at


def uneven_batches() -> str:
    """The last rank has one batch more: every rank must raise the same ValueError (no hang)."""
    model = nn.Linear(2, 1).double()
    opt = optim.SGD(model.parameters(), lr=0.1)
    n = 3 + (dist.get_rank() == dist.get_world_size() - 1)

    def train_step(batch):
        opt.zero_grad()
        model(rnnbp.ones(1, 2, dtype=rnnbp.float64)).sum().backward()
        dist.average_gradients(model)
        opt.step()
        return {"loss": 0.0}

    try:
        Trainer(model, opt, train_step, lambda e, g: range(n), progress=False, log=None).fit(1)
    except ValueError as exc:
        return str(exc)
    return "no error"


def _weights(model) -> dict:
    return {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


def main(out: str) -> None:
    dist.init_process_group()
    mlp_weights, mlp_history = mlp_run()
    stream_weights, stream_history, stopped_at = stream_run(Path(out).parent / "checkpoints")
    messages = [None] * dist.get_world_size()
    dist.all_gather_object(messages, uneven_batches())
    if dist.get_rank() == 0:
        arrays = {f"mlp/{k}": v for k, v in mlp_weights.items()}
        arrays.update({f"stream/{k}": v for k, v in stream_weights.items()})
        info = {"world": dist.get_world_size(), "mlp_history": mlp_history, "stream_history": stream_history,
                "stopped_at": stopped_at, "uneven": messages}
        np.savez(out, info=np.array(json.dumps(info)), **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
