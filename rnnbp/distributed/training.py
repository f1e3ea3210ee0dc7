"""What the Trainer and the TBPTT engine do when they run on several ranks (and only then).

Every function here is called only when :func:`rnnbp.distributed.mpi.active` is true (an
initialized group of more than one rank), except :func:`on_fit_start`'s check for a forgotten
``init_process_group`` and :func:`rank_view`'s check that a checkpoint fits the world size.
In a world of one the Trainer and the engine run exactly as they would without this package.

What the ranks must agree on, and how they do:

* **weights**: broadcast from rank 0 when ``fit`` starts and at the engine's first training
  run; then every update uses gradients averaged over the ranks (one allreduce per update,
  :func:`~rnnbp.distributed.average_gradients`, which the engine calls after backward and before
  clipping; a hand-written ``train_step`` calls it itself). The Trainer checks after each epoch
  that the weights are still bit-identical on every rank, and says what to do if not;
* **batches**: each rank reads its own shard (:class:`~rnnbp.distributed.DistributedSampler`);
  before each batch one small allreduce checks that every rank has one, and carries any rank's
  request to stop (a callback, Ctrl-C), so all stop at the same batch boundary;
* **the epoch's logs**: the training means are over the items of every rank, the validation
  metrics and the time are rank 0's, so early stopping and schedules decide alike everywhere;
* **checkpoints**: rank 0 writes them, holding each rank's own ``stateful`` objects (a stream's
  carry), random generator and running sums under ``"ranks"``; on a resume rank 0 reads the
  file and hands it to the others (:func:`~rnnbp.distributed.from_rank0`).
"""
from __future__ import annotations

import hashlib
import warnings

import numpy as np

from . import mpi


# ---------------------------------------------------------------- Trainer
def on_fit_start(trainer) -> None:
    """Warn when launched on several ranks without a group; broadcast rank 0's weights otherwise."""
    if not mpi.active():
        launched = mpi.launched_world_size()
        if launched is not None and launched > 1 and not mpi.is_initialized():
            warnings.warn(f"Trainer.fit: this process is one of {launched} started by an MPI launcher, but "
                          "rnnbp.distributed.init_process_group() was not called: every process trains alone on "
                          "its own data and writes the same checkpoint files. Call it at the start of the script.",
                          RuntimeWarning, stacklevel=3)
        return
    mpi.broadcast_parameters(trainer.model)


class AgreedStop(Exception):
    """Raised by :func:`lockstep` on every rank at once: some rank was asked to stop."""


def agree_stop(trainer) -> bool:
    """Whether any rank was asked to stop (then every rank's Trainer is); one small allreduce."""
    if mpi.any_rank(trainer.stop_training) and not trainer.stop_training:
        trainer.request_stop("stop requested on another rank")
    return trainer.stop_training


def lockstep(batches, trainer, epoch: int):
    """Yield the epoch's batches while every rank has one, checking before each that no rank stops.

    One allreduce of two integers per batch (and one after the last): how many ranks have a
    next batch, and how many were asked to stop. The Trainer's own checks of ``stop_training``
    are off meanwhile: a flag set on one rank (a callback, Ctrl-C) takes effect at the next
    agreement, where every rank sees it together.

    Raises:
        AgreedStop: on every rank, when any rank was asked to stop (before this batch, or after the last).
        ValueError: on every rank, when some ranks have run out of batches and others have not.
    """
    comm, MPI, size = mpi._group.comm, mpi._group.MPI, mpi._group.size
    flags = np.zeros(2, dtype=np.int64)
    it, end, index = iter(batches), object(), trainer.position
    while True:
        batch = next(it, end)
        flags[0], flags[1] = batch is not end, bool(trainer.stop_training)
        comm.Allreduce(MPI.IN_PLACE, flags, op=MPI.SUM)
        have, stops = int(flags[0]), int(flags[1])
        if 0 < have < size:
            raise ValueError(f"Trainer: at batch {index} of epoch {epoch}, {have} of {size} ranks have a batch and "
                             "the others have run out: every rank must make the same number of batches (give each "
                             "a DistributedSampler, which pads or drops to equal shards, or cut the batches alike)")
        if stops:
            if not trainer.stop_training:
                trainer.request_stop("stop requested on another rank")
            raise AgreedStop
        if not have:
            return
        index += 1
        yield batch


def epoch_totals(trainer, seconds: float, val: dict) -> tuple[dict, dict, float, float, dict]:
    """Combine the ranks' running sums; take rank 0's time and validation; check the weights agree.

    Returns ``(sums, weights, count, seconds, val)`` identical on every rank.

    Raises:
        RuntimeError: on every rank, when the model's weights differ between ranks.
    """
    mine = (trainer._sums, trainer._weights, trainer._count, seconds, val, _fingerprint(trainer.model))
    every = mpi.allgather(mine)
    prints = [e[5] for e in every]
    if len(set(prints)) > 1:
        differ = [r for r, p in enumerate(prints) if p != prints[0]]
        raise RuntimeError(
            f"Trainer: after epoch {trainer.epoch + 1} the model's weights differ between ranks (ranks {differ} "
            "differ from rank 0): train_step must average the gradients over the ranks before clipping and the "
            "optimizer step, with rnnbp.distributed.average_gradients(model.parameters()) right after "
            "loss.backward() (a TBPTT engine does it itself), and draw nothing random that changes the weights")
    sums, weights, count = {}, {}, 0.0
    for rank_sums, rank_weights, rank_count, *_ in every:
        for k, v in rank_sums.items():
            sums[k] = sums.get(k, 0.0) + v
        for k, v in rank_weights.items():
            weights[k] = weights.get(k, 0.0) + v
        count += rank_count
    return sums, weights, count, every[0][3], every[0][4]


def checkpoint_to_write(state: dict) -> dict | None:
    """Gather each rank's own part of ``state`` on rank 0: its state with ``"ranks"``; None elsewhere.

    Per rank: ``stateful``, ``rng`` and the running epoch's ``sums``, ``weights``, ``count``. The
    top-level ``stateful`` and ``rng`` stay rank 0's and the top-level sums become the totals over
    the ranks, so that one process can still read the checkpoint (its weights, its history).
    A collective call: every rank must make it.
    """
    loop = state["loop"]
    own = {"stateful": state["stateful"], "rng": state["rng"],
           "sums": loop["sums"], "weights": loop["weights"], "count": loop["count"]}
    ranks = mpi.gather(own, dst=0)
    if ranks is None:
        return None
    sums, weights, count = {}, {}, 0.0
    for r in ranks:
        for k, v in r["sums"].items():
            sums[k] = sums.get(k, 0.0) + v
        for k, v in r["weights"].items():
            weights[k] = weights.get(k, 0.0) + v
        count += r["count"]
    return {**state, "loop": {**loop, "sums": sums, "weights": weights, "count": count}, "ranks": ranks}


def rank_view(state: dict, stateful_names) -> dict:
    """``state`` with this rank's own ``stateful``, ``rng`` and running sums, when it holds them.

    A checkpoint written by K ranks resumes on K ranks, each taking its own part. On another
    number of ranks (one process included) only a checkpoint without ``stateful`` objects loads,
    every rank taking rank 0's generator state and rank 0 alone the running sums: a stream's carry
    belongs to one rank's shard.

    Raises:
        ValueError: the world sizes differ and the Trainer has ``stateful`` objects.
    """
    ranks = state.get("ranks")
    saved = len(ranks) if ranks else 1
    world = mpi.get_world_size()
    if saved != world:
        if stateful_names:
            raise ValueError(f"Trainer.load_state_dict: the checkpoint was written by {saved} rank(s) and this run "
                             f"has {world}; the stateful objects {sorted(stateful_names)} hold each rank's own "
                             f"state, which cannot be split or merged: resume with mpiexec -n {saved}")
        if mpi.get_rank() == 0:
            return state
        # The running sums are counted once over the ranks at the epoch's end: rank 0 brings them.
        return {**state, "loop": {**state["loop"], "sums": {}, "weights": {}, "count": 0.0}}
    if not ranks:
        return state
    own = ranks[mpi.get_rank()]
    loop = {**state["loop"], "sums": own["sums"], "weights": own["weights"], "count": own["count"]}
    return {**state, "stateful": own["stateful"], "rng": own["rng"], "loop": loop}


def _fingerprint(model) -> str:
    """A hash of the model's weights, bit for bit."""
    h = hashlib.blake2b(digest_size=16)
    for p in model.parameters():
        h.update(np.ascontiguousarray(p._data).data)
    return h.hexdigest()


# ------------------------------------------------------------------ TBPTT
def tbptt_steps(engine, L_run: int, L: int) -> int:
    """At a training run on several ranks: rank 0's weights first (once), and the steps to run.

    Every rank must make the same updates, so the run covers the most steps any rank needs
    (rows past their lengths carry no loss); a rank with fewer input steps than that cannot.

    Raises:
        ValueError: on every rank, when some rank's inputs are shorter than another's run.
    """
    if not engine._weights_synced:
        mpi.broadcast_parameters(engine.model)
        engine._weights_synced = True
    longest, minus_shortest = mpi.max_over_ranks([L_run, -L])
    if longest > -minus_shortest:
        raise ValueError(f"TBPTT.run: under data-parallel training every rank makes the same updates, but one "
                         f"rank's batch runs {longest} steps and another's inputs have only {-minus_shortest}: "
                         "pad every rank's batch to the same length L (lengths= marks where each row ends)")
    return int(longest)
