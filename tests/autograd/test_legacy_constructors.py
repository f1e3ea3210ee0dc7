"""Legacy constructors (``torch.Tensor(2, 3)``, ``torch.LongTensor([1])``) and legacy type names."""
import numpy as np
import pytest

import rnnbp
from rnnbp.autograd.legacy import LegacyTensor


@pytest.fixture
def torch_standin():
    """``import torch`` under rnnbp's stand-in, restored afterwards."""
    import rnnbp.torch as standin

    was = standin.is_installed()
    standin.install()
    import torch

    yield torch
    if not was:
        standin.uninstall()


# ------------------------------------------------------------------ torch-free, hand-computed
def test_tensor_constructor_forms():
    T = LegacyTensor
    assert T([0]).dtype == rnnbp.float32 and T([0]).tolist() == [0.0]  # not int64 as rnnbp.Tensor([0])
    assert rnnbp.Tensor([0]).dtype == rnnbp.int64  # rnnbp's own constructor keeps its meaning
    assert T(2, 3).shape == (2, 3) and T(2, 3).dtype == rnnbp.float32 and not T(2, 3).numpy().any()
    assert T().shape == (0,) and T().dtype == rnnbp.float32
    assert T(rnnbp.Size([2, 1])).shape == (2, 1) and T((2, 1)).tolist() == [2.0, 1.0]  # a tuple is data
    assert T(np.array([1, 2])).dtype == rnnbp.float32 and T(np.int64(3)).shape == (3,)
    assert T(size=(1, 2)).shape == (1, 2) and T(2, True).shape == (2, 1)
    a = np.array([1.0, 2.0], dtype=np.float32)
    T(a)[0] = 9.0
    assert a[0] == 9.0  # a float32 array is shared, as in PyTorch


def test_typed_constructors():
    assert rnnbp.LongTensor([1.7, -1.7]).tolist() == [1, -1] and rnnbp.LongTensor([1]).dtype == rnnbp.int64
    assert rnnbp.LongTensor(2, 3).dtype == rnnbp.int64 and rnnbp.LongTensor(2, 3).shape == (2, 3)
    assert rnnbp.ByteTensor([-1, 255]).tolist() == [255, 255] and rnnbp.BoolTensor([0, 2]).tolist() == [False, True]
    assert rnnbp.HalfTensor([1.5]).dtype == rnnbp.float16 and rnnbp.IntTensor([1]).dtype == rnnbp.int32
    assert rnnbp.DoubleTensor([1]).dtype == rnnbp.float64 and rnnbp.FloatTensor().shape == (0,)


@pytest.mark.parametrize("call, error", [
    (lambda: LegacyTensor(3.5), TypeError),
    (lambda: LegacyTensor(None), TypeError),
    (lambda: LegacyTensor(-1), RuntimeError),
    (lambda: LegacyTensor(2, 3.0), TypeError),
    (lambda: LegacyTensor([1], [2]), TypeError),
    (lambda: LegacyTensor([1], requires_grad=True), TypeError),
    (lambda: LegacyTensor([1], dtype=rnnbp.float64), TypeError),
    (lambda: LegacyTensor([[1], [2, 3]]), ValueError),
    (lambda: rnnbp.ByteTensor([256]), RuntimeError),
    (lambda: rnnbp.IntTensor([2 ** 31]), RuntimeError),
    (lambda: rnnbp.LongTensor(rnnbp.tensor([1.0])), TypeError),
])
def test_bad_calls_raise(call, error):
    with pytest.raises(error, match="torch.[A-Za-z]*Tensor"):
        call()


def test_tensor_argument_gives_an_alias():
    x = rnnbp.tensor([1.0, 2.0])
    y = LegacyTensor(x)
    y[0] = 5.0
    assert x.tolist() == [5.0, 2.0]
    assert LegacyTensor(rnnbp.tensor([1, 2])).dtype == rnnbp.int64  # torch.Tensor takes any dtype
    w = rnnbp.tensor([1.0, 2.0], requires_grad=True)
    (LegacyTensor(w) * 3).sum().backward()
    assert w.grad.tolist() == [3.0, 3.0]


def test_isinstance_by_dtype():
    x, f = rnnbp.tensor([1]), rnnbp.tensor([1.0])
    assert isinstance(x, rnnbp.LongTensor) and not isinstance(x, rnnbp.FloatTensor)
    assert isinstance(f, rnnbp.FloatTensor) and isinstance(rnnbp.nn.Parameter(rnnbp.zeros(1)), rnnbp.FloatTensor)
    assert not isinstance(3, rnnbp.LongTensor) and not isinstance(np.zeros(1), rnnbp.FloatTensor)
    assert isinstance(x, LegacyTensor) and isinstance(rnnbp.nn.Parameter(rnnbp.zeros(1)), LegacyTensor)
    assert issubclass(rnnbp.nn.Parameter, LegacyTensor) and not issubclass(rnnbp.LongTensor, LegacyTensor)
    assert type(x) == LegacyTensor and hash(LegacyTensor) == hash(rnnbp.Tensor)
    assert repr(rnnbp.LongTensor) == "<class 'torch.LongTensor'>" and repr(LegacyTensor) == "<class 'torch.Tensor'>"


def test_type_casts_and_names():
    x = rnnbp.tensor([1.5, -2.5])
    assert x.type() == "torch.FloatTensor" and rnnbp.tensor([True]).type() == "torch.BoolTensor"
    assert x.type(rnnbp.LongTensor).tolist() == [1, -2] and x.type("torch.LongTensor").dtype == rnnbp.int64
    assert rnnbp.tensor([1]).type(LegacyTensor).dtype == rnnbp.float32
    assert rnnbp.tensor([1]).type("torch.Tensor").dtype == rnnbp.float32
    assert x.type(rnnbp.float64).dtype == rnnbp.float64
    for bad in ("foo", "torch.int32", "LongTensor", int):
        with pytest.raises(ValueError, match="invalid type"):
            x.type(bad)


def test_standin_names(torch_standin):
    torch = torch_standin
    assert torch.Tensor is LegacyTensor and torch.LongTensor is rnnbp.LongTensor
    from torch import Tensor

    assert Tensor([0]).dtype == torch.float32
    assert isinstance(torch.nn.Parameter(torch.Tensor(3, 2)), torch.Tensor)
    assert torch.Tensor.add(torch.ones(2), torch.ones(2)).tolist() == [2.0, 2.0]


# ------------------------------------------------------------------ parity with PyTorch
CASES = [
    ("Tensor", ()), ("Tensor", (2, 3)), ("Tensor", ([0],)), ("Tensor", ([[1, 2], [3, 4]],)), ("Tensor", ((2, 3),)),
    ("Tensor", ([True],)), ("Tensor", ([],)), ("Tensor", (0,)), ("Tensor", (2, True)), ("Tensor", ([1e40],)),
    ("LongTensor", ([1.7, -1.7],)), ("LongTensor", (2, 3)), ("LongTensor", ()), ("IntTensor", ([1, 2],)),
    ("BoolTensor", ([0, 2, 0.5],)), ("ByteTensor", ([1, 255, -1],)), ("HalfTensor", ([1.5],)),
    ("DoubleTensor", ([1],)), ("ShortTensor", ([-3],)), ("CharTensor", ([5],)),
    ("Tensor", (3.5,)), ("Tensor", (None,)), ("Tensor", (-1,)), ("Tensor", (2, 3.0)), ("Tensor", ([1], [2])),
    ("Tensor", (True,)), ("ByteTensor", ([256],)), ("IntTensor", ([2 ** 31],)), ("CharTensor", ([200],)),
    ("LongTensor", ([1e30],)), ("LongTensor", (2.5,)), ("LongTensor", ([[1], [2, 3]],)),
]


@pytest.mark.parametrize("name, args", CASES)
def test_matches_torch(name, args):
    torch = pytest.importorskip("torch")
    legacy = LegacyTensor if name == "Tensor" else getattr(rnnbp, name)
    try:
        ref = getattr(torch, name)(*args)
    except Exception as exc:  # noqa: BLE001  (the same kind of error must come out)
        with pytest.raises(type(exc)):
            legacy(*args)
        return
    mine = legacy(*args)
    assert mine.type() == ref.type() and tuple(mine.shape) == tuple(ref.shape)
    if not args or not isinstance(args[0], int):  # sizes: PyTorch leaves memory uninitialised
        np.testing.assert_array_equal(mine.numpy(), ref.numpy())


@pytest.mark.parametrize("value", [[1], [1.5], [True]])
@pytest.mark.parametrize("legacy", ["FloatTensor", "DoubleTensor", "HalfTensor", "LongTensor", "IntTensor",
                                    "ShortTensor", "CharTensor", "ByteTensor", "BoolTensor", "Tensor"])
def test_isinstance_and_type_match_torch(value, legacy):
    torch = pytest.importorskip("torch")
    mine_cls = LegacyTensor if legacy == "Tensor" else getattr(rnnbp, legacy)
    x, ref = rnnbp.tensor(value), torch.tensor(value)
    assert isinstance(x, mine_cls) == isinstance(ref, getattr(torch, legacy))
    assert x.type(mine_cls).type() == ref.type(getattr(torch, legacy)).type()
    assert x.type(f"torch.{legacy}").type() == ref.type(f"torch.{legacy}").type()
    np.testing.assert_array_equal(x.type(mine_cls).numpy(), ref.type(getattr(torch, legacy)).numpy())
