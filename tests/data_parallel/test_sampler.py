"""DistributedSampler: disjoint equal shards that cover the dataset, reshuffled by set_epoch, drop_last."""
import numpy as np
import pytest

from rnnbp.distributed import DistributedSampler
from rnnbp.utils.data import DataLoader, TensorDataset


def shards(n, k, **kw):
    return [list(DistributedSampler(range(n), num_replicas=k, rank=r, **kw)) for r in range(k)]


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n, k", [(12, 3), (10, 4), (7, 2), (5, 8)])
def test_shards_are_disjoint_equal_and_cover_the_dataset(n, k, shuffle):
    parts = shards(n, k, shuffle=shuffle, seed=1)
    size = -(-n // k)
    assert [len(p) for p in parts] == [size] * k
    together = [i for p in parts for i in p]
    assert set(together) == set(range(n))
    assert len(together) - len(set(together)) == size * k - n  # only the padding repeats items
    if n % k == 0:
        assert sorted(together) == list(range(n))


def test_without_shuffle_rank_r_takes_every_kth_item():
    assert shards(10, 3, shuffle=False) == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]


def test_drop_last_cuts_the_tail_instead_of_padding():
    parts = shards(10, 4, shuffle=False, drop_last=True)
    assert parts == [[0, 4], [1, 5], [2, 6], [3, 7]]
    parts = shards(11, 3, shuffle=True, seed=5, drop_last=True)
    together = [i for p in parts for i in p]
    assert [len(p) for p in parts] == [3, 3, 3] and len(set(together)) == 9
    assert len(DistributedSampler(range(11), num_replicas=3, rank=0, drop_last=True)) == 3


def test_set_epoch_reshuffles_alike_on_every_rank_and_repeats_for_the_same_epoch():
    samplers = [DistributedSampler(range(20), num_replicas=2, rank=r, seed=7) for r in range(2)]
    epoch0 = [list(s) for s in samplers]
    for s in samplers:
        s.set_epoch(1)
    epoch1 = [list(s) for s in samplers]
    assert epoch0 != epoch1
    for part in (epoch0, epoch1):  # each epoch's shards still split one permutation
        assert sorted(part[0] + part[1]) == list(range(20))
    for s in samplers:
        s.set_epoch(0)
    assert [list(s) for s in samplers] == epoch0
    other_seed = DistributedSampler(range(20), num_replicas=2, rank=0, seed=8)
    assert list(other_seed) != epoch0[0]


def test_k_ranks_batch_i_together_is_one_process_batch_i():
    """With batch b per rank, batch i over all ranks holds the items of batch i of one process with K*b."""
    data = TensorDataset(np.arange(24.0))
    one = DistributedSampler(data, num_replicas=1, rank=0, seed=3)
    whole = [sorted(b[0].numpy().tolist()) for b in DataLoader(data, batch_size=6, sampler=one)]
    per_rank = [[b[0].numpy().tolist() for b in DataLoader(data, batch_size=2, sampler=DistributedSampler(
        data, num_replicas=3, rank=r, seed=3))] for r in range(3)]
    joined = [sorted(sum((per_rank[r][i] for r in range(3)), [])) for i in range(4)]
    assert joined == whole


def test_defaults_to_the_process_group_a_world_of_one_without_mpi():
    s = DistributedSampler(range(5), shuffle=False)
    assert (s.num_replicas, s.rank, list(s)) == (1, 0, [0, 1, 2, 3, 4])


@pytest.mark.parametrize("kw, match", [
    (dict(num_replicas=2, rank=2), r"Invalid rank 2, rank should be in the interval \[0, 1\]"),
    (dict(num_replicas=2, rank=-1), "Invalid rank -1"),
    (dict(num_replicas=0, rank=0), "num_replicas should be a positive integer"),
    (dict(num_replicas=2, rank=0, seed=-1), "seed should be an integer >= 0"),
    (dict(num_replicas=2, rank=0, shuffle="yes"), "shuffle should be a boolean"),
])
def test_bad_arguments_are_named(kw, match):
    with pytest.raises(ValueError, match=match):
        DistributedSampler(range(4), **kw)
    with pytest.raises(ValueError, match="set_epoch: epoch should be an integer >= 0"):
        DistributedSampler(range(4), num_replicas=1, rank=0).set_epoch(-1)
