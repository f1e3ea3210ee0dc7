"""rnnbp.data.buckets: the ragged Features set, bucketing by length, zero-padding into (T, B, F), seeded epochs."""
import numpy as np
import pytest

import rnnbp
from rnnbp.data import Features, bucket_batches, pad_sequences, padded_batches


def ragged(lengths, n_features=3):
    """Sequence i holds i + 1 + t / 1000 at step t, so every value says where it came from."""
    arrays = [(i + 1 + np.arange(t)[:, None] / 1000 + np.zeros((1, n_features))).astype(np.float32)
              for i, t in enumerate(lengths)]
    return Features.from_arrays(arrays, n_features=n_features), arrays


def lengths_of(n, seed=0):
    return np.random.default_rng(seed).integers(9, 144, n)  # FSDD's range of frame counts


def padding_efficiency(lengths, batches):
    return sum(lengths[b].sum() for b in batches) / sum(lengths[b].max() * len(b) for b in batches)


# ------------------------------------------------------------ ragged set
def test_features_container_indexes_and_subsets():
    arrays = [np.full((t, 2), i, np.float32) for i, t in enumerate([3, 1, 4, 0, 2])]
    feats = Features.from_arrays(arrays)
    assert len(feats) == 5 and feats.lengths.tolist() == [3, 1, 4, 0, 2] and feats.n_features == 2
    assert all(np.array_equal(feats[i], a) for i, a in enumerate(arrays)) and np.array_equal(feats[-1], arrays[4])
    sub = feats.subset([4, 0, 3, 2])
    assert sub.lengths.tolist() == [2, 3, 0, 4]
    assert [float(a[0, 0]) for a in sub.to_list() if len(a)] == [4.0, 0.0, 2.0]
    assert len(feats.subset(np.array([True, False, True, False, False]))) == 2
    assert len(Features.from_arrays([], n_features=3)) == 0
    with pytest.raises(IndexError):
        feats[5]
    with pytest.raises(ValueError, match="different feature sizes"):
        Features.from_arrays([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="offsets must start at 0"):
        Features(np.zeros((4, 2)), np.array([0, 3, 2, 4]))


# ------------------------------------------------------------ bucketing
@pytest.mark.parametrize("n, batch_size, pool_batches", [
    (100, 8, 10), (100, 8, 1), (100, 8, None), (101, 7, 3), (5, 8, 10), (64, 64, 2), (1, 1, 1), (0, 4, 2),
])
def test_every_item_exactly_once_per_epoch(n, batch_size, pool_batches):
    lengths = lengths_of(n)
    batches = bucket_batches(lengths, batch_size, pool_batches=pool_batches, generator=np.random.default_rng(1))
    flat = np.concatenate(batches) if batches else np.zeros(0, np.int64)
    assert flat.dtype == np.int64 and np.array_equal(np.sort(flat), np.arange(n))
    sizes = [len(b) for b in batches]
    assert all(s == batch_size for s in sizes if s != n % batch_size) and sum(s < batch_size for s in sizes) <= 1
    assert all(np.all(np.diff(lengths[b]) >= 0) for b in batches)  # sorted within a batch, longest last


def test_drop_last_drops_only_the_short_batch():
    lengths = lengths_of(103)
    batches = bucket_batches(lengths, 10, drop_last=True, generator=np.random.default_rng(0))
    assert len(batches) == 10 and all(len(b) == 10 for b in batches)
    assert len(np.unique(np.concatenate(batches))) == 100
    assert len(bucket_batches(lengths[:100], 10, drop_last=True, generator=np.random.default_rng(0))) == 10


def test_bucketing_pads_less_than_random_batches():
    lengths = lengths_of(2700)
    g = np.random.default_rng(0)
    random_batches = padding_efficiency(lengths, bucket_batches(lengths, 32, pool_batches=1, generator=g))
    bucketed = padding_efficiency(lengths, bucket_batches(lengths, 32, pool_batches=10, generator=g))
    sorted_all = padding_efficiency(lengths, bucket_batches(lengths, 32, pool_batches=None, generator=g))
    assert random_batches < 0.65 < 0.8 < bucketed < sorted_all


def test_epochs_are_seeded():
    lengths = lengths_of(200)

    def epoch(seed):
        return [b.tolist() for b in bucket_batches(lengths, 16, generator=np.random.default_rng(seed))]

    assert epoch(0) == epoch(0) and epoch(0) != epoch(1)
    g = np.random.default_rng(5)
    first = [b.tolist() for b in bucket_batches(lengths, 16, generator=g)]
    second = [b.tolist() for b in bucket_batches(lengths, 16, generator=g)]
    assert first != second  # the generator advances: each epoch differs
    rnnbp.manual_seed(7)
    a = [b.tolist() for b in bucket_batches(lengths, 16)]
    rnnbp.manual_seed(7)
    assert a == [b.tolist() for b in bucket_batches(lengths, 16)]  # default: rnnbp's generator


def test_no_shuffle_is_deterministic_and_draws_nothing():
    lengths = np.array([5, 1, 4, 2, 3, 9, 7])
    g = np.random.default_rng(0)
    state = g.bit_generator.state
    batches = bucket_batches(lengths, 2, pool_batches=2, shuffle=False, generator=g)
    assert g.bit_generator.state == state
    # pools of 4 in the given order, each sorted by length (ties stable)
    assert [b.tolist() for b in batches] == [[1, 3], [2, 0], [4, 6], [5]]
    assert [b.tolist() for b in bucket_batches(lengths, 3, pool_batches=None, shuffle=False)] == \
        [[1, 3, 4], [2, 0, 6], [5]]


@pytest.mark.parametrize("kwargs, match", [
    (dict(lengths=[3, 2], batch_size=0), "batch_size must be an int > 0, got 0"),
    (dict(lengths=[3, 2], batch_size=2, pool_batches=0), "pool_batches must be an int > 0"),
    (dict(lengths=[3, -1], batch_size=2), "lengths must be >= 0"),
    (dict(lengths=[3.5, 2.0], batch_size=2), "1-D integer array"),
    (dict(lengths=[[3, 2]], batch_size=2), "1-D integer array"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bucket_batches(**kwargs)


# --------------------------------------------------------------- padding
def test_pad_sequences_is_time_major_with_zero_padding():
    feats, arrays = ragged([3, 1, 5, 2])
    x, lengths = pad_sequences(feats, [2, 0, 1])
    assert x.shape == (5, 3, 3) and x.dtype == np.float32 and x.flags.c_contiguous
    assert lengths.tolist() == [5, 3, 1] and lengths.dtype == np.int64
    for b, i in enumerate([2, 0, 1]):
        assert np.array_equal(x[:lengths[b], b], arrays[i])
        assert np.all(x[lengths[b]:, b] == 0)
    x_all, l_all = pad_sequences(arrays)  # a plain list works too, all items in order
    assert x_all.shape == (5, 4, 3) and l_all.tolist() == [3, 1, 5, 2]
    assert np.array_equal(x_all[:, 2], arrays[2])


def test_pad_sequences_edge_cases():
    feats, _ = ragged([0, 2])
    x, lengths = pad_sequences(feats, [0])
    assert x.shape == (0, 1, 3) and lengths.tolist() == [0]
    x, lengths = pad_sequences(feats)
    assert x.shape == (2, 2, 3) and np.all(x[:, 0] == 0)
    assert pad_sequences(feats, np.array([False, True]))[1].tolist() == [2]
    assert pad_sequences(feats, [1], dtype=np.float64)[0].dtype == np.float64


# ----------------------------------------------------------- the epoch
def test_padded_batches_keep_labels_aligned_and_cover_the_epoch():
    lengths = lengths_of(50, seed=3)
    feats, _ = ragged(lengths)
    labels = np.arange(50) % 10
    ids = np.arange(50)
    seen = []
    for x, lens, y, i in padded_batches(feats, labels, ids, batch_size=8, generator=np.random.default_rng(0)):
        assert x.ndim == 3 and x.shape[1] == len(lens) == len(y) == len(i) and x.shape[0] == lens.max()
        assert x.dtype == np.float32 and x.shape[2] == 3
        assert np.array_equal(lens, lengths[i]) and np.array_equal(y, labels[i])
        assert np.array_equal(x[0, :, 0], (i + 1).astype(np.float32))  # each column is its own sequence
        steps = np.arange(x.shape[0])[:, None]
        assert np.all(x[steps >= lens[None, :]] == 0)  # padding is exactly zero
        seen.extend(i.tolist())
    assert sorted(seen) == list(range(50))


def test_padded_batches_are_reproducible_and_check_arguments_at_once():
    feats, _ = ragged(lengths_of(30))
    a = [x for x, _ in padded_batches(feats, batch_size=4, generator=np.random.default_rng(2))]
    b = [x for x, _ in padded_batches(feats, batch_size=4, generator=np.random.default_rng(2))]
    assert len(a) == len(b) == 8 and all(np.array_equal(p, q) for p, q in zip(a, b))
    with pytest.raises(ValueError, match=r"the 30 items of features, got lengths \[29\]"):
        padded_batches(feats, np.zeros(29), batch_size=4)  # raised here, before iterating
    with pytest.raises(ValueError, match="batch_size"):
        padded_batches(feats, batch_size=-1)
