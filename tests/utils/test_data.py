"""rnnbp.utils.data: datasets, samplers, collation, DataLoader and random_split, against PyTorch's rules."""
from collections import namedtuple

import numpy as np
import pytest

import rnnbp
import rnnbp.utils.data as D
from rnnbp.utils.data import (
    BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler, SequentialSampler, Subset,
    SubsetRandomSampler, TensorDataset, WeightedRandomSampler, default_collate, default_convert, random_split,
)

Point = namedtuple("Point", ["x", "y"])


class Squares(Dataset):
    """A map-style dataset built by hand: sample i is (i as an array row, i*i)."""

    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return np.array([i, -i], dtype=np.float32), i * i

    def __len__(self):
        return self.n


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


def _ids(loader):
    """Every batch of a loader over TensorDataset(arange) as a list of ints."""
    return [batch[0].tolist() for batch in loader]


# ----------------------------------------------------------------------------- wiring
def test_import_paths():
    import rnnbp.utils.data as data

    assert rnnbp.utils.data is data and data.DataLoader is DataLoader
    assert D.get_worker_info() is None
    # Dataset[T] / Sampler[T] subscript in base lists, as PyTorch scripts write them.
    class Words(Dataset[str]):
        pass

    class Every(D.Sampler[int]):
        pass

    assert issubclass(Words, Dataset) and issubclass(Every, D.Sampler)


# ----------------------------------------------------------------------------- batching
def test_sequential_batches_last_batch_and_drop_last():
    ds = TensorDataset(rnnbp.arange(10), rnnbp.arange(10) * 10)
    loader = DataLoader(ds, batch_size=4)
    assert len(loader) == 3
    assert _ids(loader) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    x, y = next(iter(loader))
    assert isinstance(x, rnnbp.Tensor) and x.dtype == np.int64 and y.tolist() == [0, 10, 20, 30]
    dropped = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dropped) == 2 and _ids(dropped) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(ds)) == 10 and _ids(DataLoader(ds))[3] == [3]  # batch_size=1 by default


def test_tensor_dataset_fast_path_equals_default_collate_of_rows():
    rng = np.random.default_rng(0)
    x = rnnbp.Tensor(rng.standard_normal((9, 3, 2)).astype(np.float32))
    labels = rng.integers(0, 5, 9)  # a NumPy array inside a TensorDataset, as PyTorch allows
    ds = TensorDataset(x, labels)
    idx = [4, 0, 7]
    rows = default_collate([ds[i] for i in idx])  # the rule, sample by sample
    np.testing.assert_array_equal(rows[0].numpy(), x.numpy()[idx])
    assert rows[1].dtype == labels.dtype
    nested = Subset(Subset(ds, [8, 7, 6, 5, 4, 3, 2, 1, 0]), [4, 8, 1])  # positions 4, 8, 1 -> rows 4, 0, 7
    loaders = [
        DataLoader(ds, batch_sampler=[idx]),  # TensorDataset: one fancy index per tensor
        DataLoader(nested, batch_size=3),  # Subsets of it: index maps composed
        DataLoader(ds, batch_sampler=[idx], collate_fn=lambda b: default_collate(b)),  # the generic path
    ]
    for loader in loaders:
        batch = next(iter(loader))
        assert isinstance(batch, list) and len(batch) == 2
        for got, want in zip(batch, rows):
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_shuffle_is_a_new_permutation_each_epoch_and_repeats_under_manual_seed():
    ds = TensorDataset(rnnbp.arange(50))
    loader = DataLoader(ds, batch_size=8, shuffle=True)
    rnnbp.manual_seed(123)
    epoch1, epoch2 = sum(_ids(loader), []), sum(_ids(loader), [])
    assert sorted(epoch1) == list(range(50)) and sorted(epoch2) == list(range(50))
    assert epoch1 != list(range(50)) and epoch1 != epoch2
    rnnbp.manual_seed(123)  # the same seed, the same two epochs
    assert sum(_ids(loader), []) == epoch1 and sum(_ids(loader), []) == epoch2
    rnnbp.manual_seed(124)
    assert sum(_ids(loader), []) != epoch1


def test_shuffle_with_its_own_generator_ignores_the_default_one():
    ds = TensorDataset(rnnbp.arange(30))
    orders = []
    for default_seed in (0, 1):
        rnnbp.manual_seed(default_seed)
        g = rnnbp.Generator().manual_seed(7)
        orders.append(_ids(DataLoader(ds, batch_size=30, shuffle=True, generator=g))[0])
    np_gen = np.random.default_rng(7)  # a plain NumPy generator is accepted too
    assert orders[0] == orders[1] == np_gen.permutation(30).tolist()


def test_num_workers_and_pin_memory_are_accepted_and_load_in_process():
    ds = Squares(7)
    rnnbp.manual_seed(5)
    plain = list(DataLoader(ds, batch_size=3, shuffle=True))
    rnnbp.manual_seed(5)
    workers = DataLoader(ds, batch_size=3, shuffle=True, num_workers=4, pin_memory=True, persistent_workers=True,
                         prefetch_factor=2, worker_init_fn=lambda i: 1 / 0, timeout=5)
    got = list(workers)
    assert workers.num_workers == 4 and len(got) == len(plain) == 3
    for (a_x, a_y), (b_x, b_y) in zip(plain, got):
        np.testing.assert_array_equal(a_x.numpy(), b_x.numpy())
        np.testing.assert_array_equal(a_y.numpy(), b_y.numpy())


def test_samplers_and_batch_samplers_drive_the_loader():
    ds = Squares(10)
    loader = DataLoader(ds, batch_size=2, sampler=[9, 3, 5])
    assert [y.tolist() for _, y in loader] == [[81, 9], [25]]
    loader = DataLoader(ds, batch_sampler=BatchSampler(SequentialSampler(range(5)), 2, drop_last=False))
    assert len(loader) == 3 and [y.tolist() for _, y in loader] == [[0, 1], [4, 9], [16]]
    # batch_size=None: no batching, each sample converted (NumPy arrays to Tensors, ints kept)
    single = list(DataLoader(ds, batch_size=None, sampler=[2]))
    x, y = single[0]
    assert isinstance(x, rnnbp.Tensor) and x.shape == (2,) and y == 4


def test_sequential_and_batch_sampler():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    assert list(BatchSampler(range(10), 3, False)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert list(BatchSampler(range(10), 3, True)) == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert len(BatchSampler(range(10), 3, False)) == 4 and len(BatchSampler(range(10), 3, True)) == 3


def test_random_sampler_with_and_without_replacement():
    g = np.random.default_rng(0)
    ds = range(6)
    perm = list(RandomSampler(ds, generator=g))
    assert sorted(perm) == list(range(6)) and len(RandomSampler(ds)) == 6
    longer = list(RandomSampler(ds, num_samples=15, generator=g))  # two permutations then 3 of a third
    assert len(longer) == 15 and sorted(longer[:6]) == sorted(longer[6:12]) == list(range(6))
    assert len(set(longer[12:])) == 3
    drawn = list(RandomSampler(ds, replacement=True, num_samples=600, generator=g))
    assert len(drawn) == 600 and set(drawn) == set(range(6))
    assert np.bincount(drawn).min() > 60  # roughly uniform: 100 expected per index
    rnnbp.manual_seed(3)
    a = list(RandomSampler(ds))
    rnnbp.manual_seed(3)
    assert list(RandomSampler(ds)) == a


def test_subset_random_sampler_permutes_its_indices():
    s = SubsetRandomSampler([10, 20, 30, 40], generator=np.random.default_rng(1))
    first, second = list(s), list(s)
    assert sorted(first) == sorted(second) == [10, 20, 30, 40] and len(s) == 4
    assert first != second or first != [10, 20, 30, 40]


def test_weighted_random_sampler_follows_the_weights():
    g = np.random.default_rng(0)
    drawn = list(WeightedRandomSampler([1.0, 0.0, 3.0], 4000, generator=g))
    counts = np.bincount(drawn, minlength=3)
    assert counts[1] == 0 and abs(counts[2] / counts[0] - 3.0) < 0.3
    unique = list(WeightedRandomSampler([0.5, 1.0, 0.0, 2.0], 3, replacement=False, generator=g))
    assert sorted(unique) == [0, 1, 3]
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler([1.0, 0.0], 2, replacement=False)
    with pytest.raises(ValueError, match=r"1d sequence.*\(2, 2\)"):
        WeightedRandomSampler([[1.0, 2.0], [3.0, 4.0]], 2)


# ----------------------------------------------------------------------------- collation
def test_default_collate_rules():
    batch = default_collate([
        {"x": np.ones((2, 3), np.float32), "label": 1, "w": 0.5, "name": "a", "pair": (np.int32(1), True)},
        {"x": np.zeros((2, 3), np.float32), "label": 2, "w": 1.5, "name": "b", "pair": (np.int32(2), False)},
    ])
    assert set(batch) == {"x", "label", "w", "name", "pair"}
    assert batch["x"].shape == (2, 2, 3) and batch["x"].dtype == np.float32
    assert batch["label"].dtype == np.int64 and batch["label"].tolist() == [1, 2]
    assert batch["w"].dtype == np.float64 and batch["w"].tolist() == [0.5, 1.5]  # Python floats: float64, as torch
    assert batch["name"] == ["a", "b"]
    assert isinstance(batch["pair"], list)  # tuples become lists, as in PyTorch
    assert batch["pair"][0].dtype == np.int32 and batch["pair"][1].dtype == np.bool_
    points = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(points, Point) and points.x.tolist() == [1, 3] and points.y.dtype == np.float64
    lists = default_collate([[1, 2], [3, 4]])
    assert [t.tolist() for t in lists] == [[1, 3], [2, 4]]


def test_default_collate_stacks_tensors_in_the_graph():
    a = rnnbp.randn(3, dtype=np.float64, requires_grad=True)
    b = rnnbp.randn(3, dtype=np.float64, requires_grad=True)
    batch = default_collate([a, b])
    assert batch.shape == (2, 3) and batch.dtype == np.float64
    (batch * rnnbp.tensor([[1.0], [2.0]], dtype=np.float64)).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.ones(3))
    np.testing.assert_array_equal(b.grad.numpy(), 2 * np.ones(3))


def test_default_convert_converts_without_batching():
    out = default_convert({"a": np.arange(3), "b": (np.float32(1.5), 2), "s": "text"})
    assert isinstance(out["a"], rnnbp.Tensor) and out["a"].tolist() == [0, 1, 2]
    assert isinstance(out["b"], list) and out["b"][0].dtype == np.float32 and out["b"][1] == 2
    assert out["s"] == "text"


def _structure(obj, torch):
    """A batch as nested plain Python: (dtype name, values) for every tensor, keeping containers."""
    if isinstance(obj, (rnnbp.Tensor, torch.Tensor)):
        dtype = str(obj.dtype).replace("torch.", "")
        return (dtype, obj.tolist() if isinstance(obj, torch.Tensor) else obj.numpy().tolist())
    if isinstance(obj, dict):
        return {k: _structure(v, torch) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return (type(obj).__name__,) + tuple(_structure(v, torch) for v in obj)
    if isinstance(obj, list):
        return [_structure(v, torch) for v in obj]
    return obj


def test_default_collate_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.data import default_collate as torch_collate

    def samples():
        return [
            (np.full((2,), i, np.float32), i, i / 4, np.float64(i), np.int16(i), bool(i % 2), f"s{i}",
             {"k": [np.arange(i, i + 2), i * 1.0]}, Point(np.uint8(i), [i, -i]))
            for i in range(3)
        ]

    assert _structure(default_collate(samples()), torch) == _structure(torch_collate(samples()), torch)
    assert _structure(default_convert(samples()[1]), torch) == _structure(
        torch.utils.data.default_convert(samples()[1]), torch)


def test_collate_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"different shapes: \(3,\) at entry 0 and \(4,\) at entry 1"):
        default_collate([np.zeros(3), np.zeros(4)])
    with pytest.raises(ValueError, match=r"different shapes"):
        default_collate([rnnbp.zeros(2), rnnbp.zeros(2, 1)])
    with pytest.raises(ValueError, match="equal size"):
        default_collate([(1, 2), (1, 2, 3)])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([object(), object()])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([np.array(["a"]), np.array(["b"])])


# ----------------------------------------------------------------------------- iterable datasets
def test_iterable_dataset_batches_and_length():
    loader = DataLoader(Stream(7), batch_size=3)
    assert [b.tolist() for b in loader] == [[0, 1, 2], [3, 4, 5], [6]] and len(loader) == 3
    dropped = DataLoader(Stream(7), batch_size=3, drop_last=True)
    assert [b.tolist() for b in dropped] == [[0, 1, 2], [3, 4, 5]] and len(dropped) == 2
    assert list(DataLoader(Stream(2), batch_size=None)) == [0, 1]
    assert [b.tolist() for b in DataLoader(Stream(2) + Stream(2), batch_size=4)] == [[0, 1, 0, 1]]
    with pytest.raises(ValueError, match="IterableDataset: expected unspecified shuffle"):
        DataLoader(Stream(3), shuffle=True)


# ----------------------------------------------------------------------------- datasets
def test_subset_concat_and_tensor_dataset():
    ds = Squares(5)
    cat = ds + Squares(3)
    assert isinstance(cat, ConcatDataset) and len(cat) == 8 and cat.cumulative_sizes == [5, 8]
    assert cat[6][1] == 1 and cat[-1][1] == 4 and cat[4][1] == 16
    with pytest.raises(IndexError):
        cat[8]
    sub = Subset(ds, [4, 1])
    assert len(sub) == 2 and sub[0][1] == 16 and [s[1] for s in sub.__getitems__([1, 0])] == [1, 16]
    td = TensorDataset(rnnbp.arange(4), np.arange(4) * 2)
    assert len(td) == 4 and td[2][0].item() == 2 and td[2][1] == 4
    with pytest.raises(ValueError, match=r"size mismatch.*\(4,\), \(5, 2\)"):
        TensorDataset(rnnbp.arange(4), rnnbp.zeros(5, 2))


def test_random_split_sizes_disjoint_and_reproducible():
    ds = Squares(10)
    rnnbp.manual_seed(0)
    parts = random_split(ds, [6, 3, 1])
    assert [len(p) for p in parts] == [6, 3, 1]
    flat = sum((list(p.indices) for p in parts), [])
    assert sorted(flat) == list(range(10))  # disjoint and covering
    rnnbp.manual_seed(0)
    assert [list(p.indices) for p in random_split(ds, [6, 3, 1])] == [list(p.indices) for p in parts]
    g = [list(p.indices) for p in random_split(ds, [5, 5], generator=rnnbp.Generator().manual_seed(1))]
    assert g == [list(p.indices) for p in random_split(ds, [5, 5], generator=rnnbp.Generator().manual_seed(1))]
    # fractions: floor of each, the remainder dealt one at a time from the first split (PyTorch 2.x)
    assert [len(p) for p in random_split(ds, [0.7, 0.3])] == [7, 3]
    assert [len(p) for p in random_split(ds, [0.33, 0.33, 0.34])] == [4, 3, 3]
    assert [len(p) for p in random_split(Squares(11), [0.5, 0.5])] == [6, 5]
    with pytest.warns(UserWarning, match="index 1 is 0"):
        random_split(Squares(3), [0.9, 0.1])
    with pytest.raises(ValueError, match=r"sum to 10|is 9.*\(10\)"):
        random_split(ds, [5, 4])
    with pytest.raises(ValueError, match="integers"):
        random_split(ds, [0.5, 0.4])


@pytest.mark.parametrize("lengths", [[0.33, 0.33, 0.34], [0.5, 0.5], [0.1, 0.2, 0.7], [3, 8]])
def test_random_split_lengths_match_torch(lengths):
    torch = pytest.importorskip("torch")
    ours = [len(p) for p in random_split(Squares(11), lengths)]
    theirs = [len(p) for p in torch.utils.data.random_split(range(11), lengths)]
    assert ours == theirs


# ----------------------------------------------------------------------------- bad input
def test_loader_refuses_bad_arguments():
    ds = Squares(4)
    cases = [
        (dict(batch_size=0), "batch_size should be a positive integer value, but got batch_size=0"),
        (dict(shuffle=True, sampler=[0]), "sampler option is mutually exclusive with shuffle"),
        (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler option is mutually exclusive"),
        (dict(batch_size=None, drop_last=True), "mutually exclusive with drop_last"),
        (dict(num_workers=-1), "num_workers option should be a non-negative integer, got -1"),
        (dict(prefetch_factor=2), "prefetch_factor"),
        (dict(persistent_workers=True), "persistent_workers option needs num_workers > 0"),
        (dict(drop_last="yes"), "drop_last should be a boolean value"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            DataLoader(ds, **kwargs)
    with pytest.raises(TypeError, match="generator must be a numpy.random.Generator"):
        DataLoader(ds, shuffle=True, generator=42)
    with pytest.raises(ValueError, match="num_samples should be a positive integer value"):
        RandomSampler([], generator=None)
    loader = DataLoader(ds)
    with pytest.raises(ValueError, match="batch_size attribute should not be set"):
        loader.batch_size = 3
