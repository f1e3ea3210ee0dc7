"""Synchronous data-parallel training over MPI, as ``torch.distributed`` names it.

Every rank holds the whole model, reads its own shard of the data, and after each backward
pass the gradients are averaged over the ranks (one allreduce over one flat buffer), so every
rank makes the same update and the weights stay identical: K ranks with batches of b items
train as one process with batches of K*b.

Install and launch (``pip install 'rnnbp[mpi]'`` brings mpi4py and the ``mpich`` wheel, whose
``mpiexec`` lands in the environment's ``bin/``, beside ``python``)::

    mpiexec -n 2 python train.py            # or: python -m rnnbp.distributed -n 2 train.py

and in ``train.py``::

    import rnnbp.distributed as dist
    dist.init_process_group()               # a world of one when run without mpiexec
    sampler = dist.DistributedSampler(train_set, seed=0)
    loader = DataLoader(train_set, batch_size=32, sampler=sampler)

    def batches(epoch, generator):
        sampler.set_epoch(epoch)
        return loader

    def train_step(batch):                  # a TBPTT engine averages by itself; plain code says so:
        opt.zero_grad(); loss.backward()
        dist.average_gradients(model.parameters())
        clip_grad_norm_(model.parameters(), 1.0); opt.step()
        return {"loss": loss.item(), "count": len(batch[0])}

    Trainer(model, opt, train_step, batches, checkpoint_dir="runs/x").fit(10, resume=True)

The Trainer then broadcasts rank 0's weights, keeps the ranks in step, logs the means over
every rank's items, and lets only rank 0 print, write metrics and write checkpoints (with each
rank's own stream carry and generator inside, so a resume on as many ranks is exact); rank 0
reads a checkpoint and hands it to the others. :mod:`rnnbp.distributed.training` lists what the
ranks agree on. Without mpiexec (or with ``-n 1``) mpi4py is never imported and nothing changes.

Differences from PyTorch: one backend ("mpi") and one group; ``get_rank``/``get_world_size``
answer 0 and 1 before ``init_process_group`` instead of raising; gradients are averaged by an
explicit call (or by the engine), not by a ``DistributedDataParallel`` wrapper.
"""
from .mpi import (
    ReduceOp, active, all_gather_object, all_reduce, allgather, any_rank, average_gradients, barrier, broadcast,
    broadcast_object_list, broadcast_parameters, destroy_process_group, from_rank0, gather, gather_object, get_rank,
    get_world_size, init_process_group, is_available, is_initialized, is_main_process, launched_world_size,
)
from .launch import find_mpiexec
from .sampler import DistributedSampler

__all__ = [
    "init_process_group", "destroy_process_group", "is_available", "is_initialized", "get_rank", "get_world_size",
    "is_main_process", "active", "barrier", "broadcast", "all_reduce", "ReduceOp", "broadcast_object_list",
    "all_gather_object", "gather_object", "allgather", "gather", "from_rank0", "any_rank", "broadcast_parameters",
    "average_gradients", "DistributedSampler", "find_mpiexec", "launched_world_size",
]
