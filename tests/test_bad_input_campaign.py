"""Bad-input campaign (issue #13, "Must show"): every bad input gets a clear error or correct handling.

Each case states its expectation, one of two kinds:

* ``error(name, exc, pattern)``: a clear error, an ``exc`` whose message matches ``pattern`` (a
  regex naming the op or argument and what was wrong);
* ``handled(name)``: correct handling; the case asserts the result itself.

The cases span tensors and ops, layers, optimizers and schedulers, checkpoints, training (TBPTT
and the Trainer) and data (DataLoader, collation, audio files written with soundfile into
temporary folders). Under pytest each case is one test. Run as a script, the campaign classifies
every case as the issue did (clear error, handled correctly, silently wrong, unclear error,
crashed) and prints the counts::

    python3 tests/test_bad_input_campaign.py            # this checkout
    python3 tests/test_bad_input_campaign.py -v         # and every case that is not clear or correct
"""
from __future__ import annotations

import math
import pickle
import re
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import rnnbp
import rnnbp.nn.functional as F
from rnnbp import nn, optim
from rnnbp.bptt import TBPTT, NonFiniteError, sequence_mse
from rnnbp.data import AudioFileError
from rnnbp.nn.utils import clip_grad_norm_, clip_grad_value_
from rnnbp.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pack_sequence
from rnnbp.optim import lr_scheduler as lrs
from rnnbp.serialization import CheckpointError
from rnnbp.train import Trainer
from rnnbp.utils.data import DataLoader, Subset, TensorDataset, WeightedRandomSampler, default_collate, random_split


@dataclass
class Case:
    name: str  # "<area>/<what>"
    fn: Callable[[Path], object]  # takes a fresh temporary folder
    exc: type | None = None  # the error expected, or None: handled correctly (fn asserts)
    pattern: str = ""


CASES: list[Case] = []


def error(name: str, exc: type, pattern: str):
    def register(fn):
        CASES.append(Case(name, fn, exc, pattern))
        return fn
    return register


def handled(name: str):
    def register(fn):
        CASES.append(Case(name, fn))
        return fn
    return register


T = rnnbp.tensor
NAN, INF = float("nan"), float("inf")


def _rand(*shape, dtype=np.float32, seed=0):
    return rnnbp.tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def _param(*shape, grad=None):
    p = nn.Parameter(np.zeros(shape, np.float32))
    if grad is not None:
        p._grad = np.asarray(grad, np.float32)
    return p


def _sgd(lr=0.1):
    return optim.SGD([_param(3)], lr=lr)


# =================================================================== tensors and ops
error("tensor/matmul inner sizes", ValueError, r"matmul: cannot multiply \(2, 3\) by \(4, 5\)")(
    lambda tmp: _rand(2, 3) @ _rand(4, 5))
error("tensor/matmul 1-D sizes", ValueError, r"matmul: cannot multiply \(3,\) by \(4,\)")(
    lambda tmp: _rand(3) @ _rand(4))
error("tensor/batched matmul", ValueError,
      r"matmul: cannot broadcast the batch dimensions of \(2, 3, 4\) and \(3, 4, 5\)")(
    lambda tmp: _rand(2, 3, 4) @ _rand(3, 4, 5))
error("tensor/add broadcast", ValueError, r"add: cannot broadcast shapes \(2, 3\) and \(4,\)")(
    lambda tmp: _rand(2, 3) + _rand(4))
error("tensor/mul broadcast", ValueError, r"mul: cannot broadcast shapes \(2, 3\) and \(3, 2\)")(
    lambda tmp: _rand(2, 3) * _rand(3, 2))
error("tensor/cat shapes", ValueError, r"cat: shapes \[\(2, 3\), \(4, 5\)\] differ outside dim 0")(
    lambda tmp: rnnbp.cat([_rand(2, 3), _rand(4, 5)]))
error("tensor/cat dim", IndexError, r"cat: dim 3 is out of range")(
    lambda tmp: rnnbp.cat([_rand(2, 3), _rand(2, 3)], dim=3))
error("tensor/cat nothing", ValueError, r"cat: expected a non-empty sequence")(lambda tmp: rnnbp.cat([]))
error("tensor/stack shapes", ValueError, r"stack: all tensors must have the same shape, got \[\(2, 3\), \(3, 2\)\]")(
    lambda tmp: rnnbp.stack([_rand(2, 3), _rand(3, 2)]))
error("tensor/reshape size", ValueError,
      r"reshape: cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(4, 2\)")(
    lambda tmp: _rand(2, 3).reshape(4, 2))
error("tensor/view two -1", ValueError, r"reshape: .* into \(-1, -1\)")(lambda tmp: _rand(6).view(-1, -1))
error("tensor/transpose dim", IndexError, r"transpose: dim 2 is out of range for a tensor of shape \(2, 3\)")(
    lambda tmp: _rand(2, 3).transpose(0, 2))
error("tensor/sum dim", IndexError, r"sum: dim 5 is out of range for a tensor with 2 dimensions")(
    lambda tmp: _rand(2, 3).sum(dim=5))
error("tensor/softmax dim", IndexError, r"softmax: dim 2 is out of range")(
    lambda tmp: rnnbp.softmax(_rand(2, 3), dim=2))
error("tensor/squeeze dim", IndexError, r"squeeze: dim 4 is out of range")(lambda tmp: _rand(2, 3).squeeze(4))
error("tensor/expand", ValueError, r"expand: cannot expand shape \(2, 3\) to \(4, 4\)")(
    lambda tmp: _rand(2, 3).expand(4, 4))
error("tensor/split sizes", ValueError, r"split: sizes \[1, 1\] do not add up to 3")(
    lambda tmp: rnnbp.split(_rand(2, 3), [1, 1], dim=1))
error("tensor/chunk 0", ValueError, r"chunk: chunks must be positive, got 0")(lambda tmp: rnnbp.chunk(_rand(2, 3), 0))
error("tensor/narrow", IndexError, r"narrow: start 2 and length 5 exceed dim 1 of size 3")(
    lambda tmp: rnnbp.narrow(_rand(2, 3), 1, 2, 5))
error("tensor/topk k", ValueError, r"topk: k \(5\) is out of range for dim 1 of size 3")(
    lambda tmp: rnnbp.topk(_rand(2, 3), 5, dim=1))
error("tensor/permute", ValueError, r"permute: dims \(0, 0\) are not a permutation")(
    lambda tmp: _rand(2, 3).permute(0, 0))
error("tensor/index out of range", IndexError, r"index 5 is invalid for a tensor of shape \(3,\)")(
    lambda tmp: rnnbp.arange(3)[5])
error("tensor/bool mask shape", IndexError, r"invalid for a tensor of shape \(3,\).*boolean index did not match")(
    lambda tmp: _rand(3)[T([True, False])])
error("tensor/gather index", IndexError, r"gather: index out of range for dim 1 of size 3 \(got values from 0 to 7\)")(
    lambda tmp: rnnbp.gather(_rand(2, 3), 1, T([[0, 7, 1]])))


@error("tensor/setitem shape", ValueError,
       r"setitem: cannot assign a value of shape \(3,\) .* of a tensor of shape \(3,\)")
def _(tmp):
    a = rnnbp.zeros(3)
    a[0:2] = rnnbp.ones(3)


error("tensor/where shapes", ValueError, r"where: cannot broadcast shapes \(2,\), \(2, 3\) and \(4, 5\)")(
    lambda tmp: rnnbp.where(T([True, False]), _rand(2, 3), _rand(4, 5)))
error("tensor/masked_fill int mask", TypeError, r"masked_fill: mask must be a bool tensor, got dtype int64")(
    lambda tmp: _rand(2, 3).masked_fill(T([[1, 0, 1], [0, 0, 1]]), 0.0))
error("tensor/string data", TypeError, r"Tensor: rnnbp tensors are real-valued .* got string data")(
    lambda tmp: rnnbp.Tensor("abc"))
error("tensor/None", TypeError, r"Tensor: got None")(lambda tmp: rnnbp.Tensor(None))
error("tensor/object array", TypeError, r"Tensor: .* got object data")(
    lambda tmp: rnnbp.tensor(np.array([1, "a"], dtype=object)))
error("tensor/complex", TypeError, r"Tensor: .* got complex data of dtype complex128")(
    lambda tmp: rnnbp.tensor([1 + 2j]))
error("tensor/ragged list", TypeError, r"Tensor: cannot make a tensor from list: .*inhomogeneous")(
    lambda tmp: rnnbp.tensor([[1, 2], [3]]))
error("tensor/int requires_grad", TypeError, r"only floating-point tensors can require gradients, got dtype int64")(
    lambda tmp: rnnbp.tensor([1, 2], requires_grad=True))
error("tensor/item of many", ValueError, r"item: a Tensor with 6 elements cannot be converted .* \(shape \(2, 3\)\)")(
    lambda tmp: _rand(2, 3).item())
error("tensor/backward non-scalar", RuntimeError,
      r"backward: grad can be implicitly created only for one-element outputs, got shape \(3,\)")(
    lambda tmp: (_rand(3).requires_grad_() * 2).backward())
error("tensor/backward gradient shape", ValueError,
      r"backward: gradient has shape \(4,\) but the tensor has shape \(3,\)")(
    lambda tmp: (_rand(3).requires_grad_() * 2).backward(rnnbp.ones(4)))
error("tensor/backward without grad", RuntimeError, r"backward: this tensor does not require grad")(
    lambda tmp: _rand(3).sum().backward())


@error("tensor/backward twice", RuntimeError,
       r"backward: the graph through Sum was already freed .*backward\(retain_graph=True\)")
def _(tmp):
    x = _rand(3).requires_grad_()
    y = (x * x).sum()
    y.backward()
    y.backward()


@error("tensor/in-place on a leaf", RuntimeError,
       r"add_: a leaf Tensor that requires grad is being used in an in-place")
def _(tmp):
    _rand(3).requires_grad_().add_(1)


error("tensor/to cuda", rnnbp.DeviceError, r"device 'cuda' is not available")(lambda tmp: _rand(3).to("cuda"))
error("tensor/max of empty dim", IndexError,
      r"max: expected reduction dim 0 to have non-zero size, got shape \(0, 3\)")(
    lambda tmp: rnnbp.zeros(0, 3).max(dim=0))
error("tensor/argmax of empty", ValueError, r"argmax: cannot reduce an empty tensor of shape \(0,\)")(
    lambda tmp: rnnbp.argmax(rnnbp.zeros(0)))
error("tensor/norm p", ValueError, r"norm: p must be 'fro', a positive number or inf, got 'abc'")(
    lambda tmp: _rand(2, 3).norm(p="abc"))


@handled("tensor/sum over an empty dim is 0")
def _(tmp):
    np.testing.assert_array_equal(rnnbp.zeros(0, 3).sum(0).numpy(), np.zeros(3, np.float32))


@handled("tensor/mean of empty is nan, without NumPy warnings")
def _(tmp):
    x = rnnbp.zeros(0, 3).requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = x.mean(0)
        assert np.isnan(m.numpy()).all() and m.shape == (3,)
        m.sum().backward()
    assert x.grad.shape == (0, 3)


@handled("tensor/logsumexp over an empty dim is -inf")
def _(tmp):
    np.testing.assert_array_equal(rnnbp.zeros(0, 3).logsumexp(0).numpy(), np.full(3, -np.inf, np.float32))


@handled("tensor/softmax of large logits is stable")
def _(tmp):
    np.testing.assert_allclose(rnnbp.softmax(T([1000.0, 0.0]), dim=0).numpy(), [1.0, 0.0])


@handled("tensor/log_softmax keeps -inf logits apart")
def _(tmp):
    out = rnnbp.log_softmax(T([-INF, 1.0, 2.0]), dim=0).numpy()
    assert out[0] == -np.inf and np.isfinite(out[1:]).all()
    np.testing.assert_allclose(np.exp(out[1:]).sum(), 1.0, rtol=1e-6)


@handled("tensor/logsumexp with inf entries, without NumPy warnings")
def _(tmp):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rnnbp.logsumexp(T([INF, 1.0]), dim=0).item() == np.inf
    assert rnnbp.logsumexp(T([-INF, -INF]), dim=0).item() == -np.inf


@handled("tensor/sigmoid saturates without overflow")
def _(tmp):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(rnnbp.sigmoid(T([-1000.0, 1000.0])).numpy(), [0.0, 1.0])


@handled("tensor/NaN propagates through max, sort and clamp")
def _(tmp):
    x = T([1.0, NAN, 3.0, -2.0])
    assert math.isnan(rnnbp.max(x).item()) and rnnbp.argmax(x).item() == 1
    assert math.isnan(rnnbp.sort(x)[0].numpy()[-1])
    assert np.isnan(rnnbp.clamp(x, -1, 1).numpy()[1])


@handled("tensor/a Python float does not promote float32")
def _(tmp):
    assert (rnnbp.ones(2) + 0.1).dtype == np.float32 and (rnnbp.ones(2) * np.float64(0.5)).dtype == np.float32


# ----------------------------------------------------------------------- losses
error("loss/cross_entropy class out of range", IndexError,
      r"cross_entropy: target class index 5 is out of range for 3 classes")(
    lambda tmp: F.cross_entropy(_rand(2, 3), T([0, 5])))
error("loss/cross_entropy negative class", IndexError, r"cross_entropy: target class index -3 is out of range")(
    lambda tmp: F.cross_entropy(_rand(2, 3), T([0, -3])))
error("loss/cross_entropy float target", ValueError,
      r"cross_entropy: expected target of integer dtype .* got float32 of shape \(2,\)")(
    lambda tmp: F.cross_entropy(_rand(2, 3), T([0.0, 1.0])))
error("loss/cross_entropy batch", ValueError,
      r"cross_entropy: expected a class-index target of shape \(2,\) for input of shape \(2, 3\), got \(3,\)")(
    lambda tmp: F.cross_entropy(_rand(2, 3), T([0, 1, 2])))
error("loss/cross_entropy weight", ValueError,
      r"cross_entropy: weight must have shape \(3,\), one value per class, got \(4,\)")(
    lambda tmp: F.cross_entropy(_rand(2, 3), T([0, 1]), weight=rnnbp.ones(4)))
error("loss/cross_entropy reduction", ValueError,
      r"cross_entropy: reduction must be 'none', 'mean' or 'sum', got 'bogus'")(
    lambda tmp: F.cross_entropy(_rand(2, 3), T([0, 1]), reduction="bogus"))
error("loss/nll class out of range", IndexError, r"nll_loss: target class index 4 is out of range for 3 classes")(
    lambda tmp: F.nll_loss(_rand(2, 3), T([0, 4])))
error("loss/mse shapes", ValueError, r"mse_loss: target shape \(3,\) differs from input shape \(2, 3\)")(
    lambda tmp: F.mse_loss(_rand(2, 3), _rand(3)))


@handled("loss/cross_entropy with a -inf logit on a wrong class")
def _(tmp):
    loss = F.cross_entropy(T([[-INF, 1.0, 2.0]]), T([2])).item()
    assert loss == pytest.approx(math.log1p(math.exp(-1.0)), rel=1e-6)


@handled("loss/cross_entropy ignores NaN logits of an ignored row")
def _(tmp):
    x = T([[1.0, 2.0], [NAN, 1.0]], requires_grad=True)
    loss = F.cross_entropy(x, T([1, -100]))
    assert loss.item() == pytest.approx(math.log1p(math.exp(-1.0)), rel=1e-6)
    loss.backward()
    assert np.isfinite(x.grad.numpy()).all() and not x.grad.numpy()[1].any()


@handled("loss/nll_loss ignores a NaN row that is ignored")
def _(tmp):
    assert F.nll_loss(T([[-1.0, -2.0], [NAN, -1.0]]), T([1, -100])).item() == pytest.approx(2.0)


# =================================================================== layers
X = lambda: _rand(5, 2, 3)  # (L, N, H_in)
H0 = lambda *s: rnnbp.zeros(*s)

error("layer/LSTM input size", ValueError, r"LSTM: input.size\(-1\) must be equal to input_size. Expected 3, got 7")(
    lambda tmp: nn.LSTM(3, 4)(_rand(5, 2, 7)))
error("layer/LSTM 4-D input", ValueError, r"LSTM: expected a 3-D input .* got shape \(5, 2, 3, 1\)")(
    lambda tmp: nn.LSTM(3, 4)(_rand(5, 2, 3, 1)))
error("layer/LSTM empty sequence", ValueError, r"LSTM: expected a non-empty input .* got shape \(0, 2, 3\)")(
    lambda tmp: nn.LSTM(3, 4)(_rand(0, 2, 3)))
error("layer/LSTM float64 input", TypeError, r"LSTM: input dtype float64 differs from the parameters' float32")(
    lambda tmp: nn.LSTM(3, 4)(_rand(5, 2, 3, dtype=np.float64)))
error("layer/LSTM h_0 batch", ValueError, r"LSTM: expected h_0 of shape \(1, 2, 4\), got \(1, 3, 4\)")(
    lambda tmp: nn.LSTM(3, 4)(X(), (H0(1, 3, 4), H0(1, 2, 4))))
error("layer/LSTM c_0 size", ValueError, r"LSTM: expected c_0 of shape \(1, 2, 4\), got \(1, 2, 5\)")(
    lambda tmp: nn.LSTM(3, 4)(X(), (H0(1, 2, 4), H0(1, 2, 5))))
error("layer/LSTM hx one tensor", TypeError, r"LSTM: hx must be a pair \(h_0, c_0\), got Tensor")(
    lambda tmp: nn.LSTM(3, 4)(X(), H0(1, 2, 4)))
error("layer/LSTM hx (None, None)", TypeError, r"LSTM: h_0 is None; give a tensor of shape \(1, 2, 4\), or hx=None")(
    lambda tmp: nn.LSTM(3, 4)(X(), (None, None)))
error("layer/LSTM h_0 float64", TypeError, r"LSTM: h_0 has dtype float64 but the input has dtype float32")(
    lambda tmp: nn.LSTM(3, 4)(X(), (H0(1, 2, 4).double(), H0(1, 2, 4).double())))
error("layer/GRU hx pair", TypeError, r"GRU: hx must be one tensor h_0, got a tuple")(
    lambda tmp: nn.GRU(3, 4)(X(), (H0(1, 2, 4), H0(1, 2, 4))))
error("layer/RNN h_0 layers", ValueError, r"RNN: expected h_0 of shape \(4, 2, 4\), got \(2, 2, 4\)")(
    lambda tmp: nn.RNN(3, 4, num_layers=2, bidirectional=True)(X(), H0(2, 2, 4)))
error("layer/LSTM unbatched input, batched h_0", ValueError, r"LSTM: expected h_0 of shape \(1, 4\), got \(1, 2, 4\)")(
    lambda tmp: nn.LSTM(3, 4)(_rand(5, 3), (H0(1, 2, 4), H0(1, 2, 4))))
error("layer/lengths beyond L", ValueError,
      r"LSTM: lengths must be between 0 and the sequence length 5, got min 2 and max 6")(
    lambda tmp: nn.LSTM(3, 4)(X(), lengths=[6, 2]))
error("layer/lengths negative", ValueError, r"LSTM: lengths must be between 0 and the sequence length 5, got min -1")(
    lambda tmp: nn.LSTM(3, 4)(X(), lengths=[5, -1]))
error("layer/lengths count", ValueError, r"LSTM: lengths has 3 entries but the batch has 2 sequences")(
    lambda tmp: nn.LSTM(3, 4)(X(), lengths=[5, 3, 2]))
error("layer/lengths float", ValueError, r"LSTM: lengths must be a 1-D array of integers, got float64")(
    lambda tmp: nn.LSTM(3, 4)(X(), lengths=[5.0, 2.5]))
error("layer/lengths and packed", ValueError, r"LSTM: give lengths or a PackedSequence, not both")(
    lambda tmp: nn.LSTM(3, 4)(pack_padded_sequence(X(), [5, 2]), lengths=[5, 2]))
error("layer/pack unsorted", ValueError,
      r"pack_padded_sequence: lengths must be sorted in decreasing order .* enforce_sorted=False")(
    lambda tmp: pack_padded_sequence(X(), [2, 5]))
error("layer/pack zero length", ValueError,
      r"pack_padded_sequence: lengths must be between 1 and the sequence length 5, got min 0")(
    lambda tmp: pack_padded_sequence(X(), [5, 0]))
error("layer/pad_packed total_length", ValueError,
      r"pad_packed_sequence: total_length 3 is shorter than the longest sequence \(5\)")(
    lambda tmp: pad_packed_sequence(pack_padded_sequence(X(), [5, 2]), total_length=3))
error("layer/pad_packed of a tensor", TypeError, r"pad_packed_sequence: expected a PackedSequence .* got Tensor")(
    lambda tmp: pad_packed_sequence(X()))
error("layer/packed input size", ValueError, r"LSTM: input.size\(-1\) must be equal to input_size. Expected 7, got 3")(
    lambda tmp: nn.LSTM(7, 4)(pack_padded_sequence(X(), [5, 2])))
error("layer/pack_sequence of nothing", ValueError, r"pad_sequence: expected a non-empty list of tensors")(
    lambda tmp: pack_sequence([]))
error("layer/LSTMCell h size", ValueError, r"LSTMCell: expected h of shape \(2, 4\), got \(2, 5\)")(
    lambda tmp: nn.LSTMCell(3, 4)(_rand(2, 3), (H0(2, 5), H0(2, 4))))
error("layer/GRUCell input size", ValueError,
      r"GRUCell: input has 5 features \(shape \(2, 5\)\), expected input_size=3")(
    lambda tmp: nn.GRUCell(3, 4)(_rand(2, 5)))
error("layer/RNN nonlinearity", ValueError, r"RNN: nonlinearity must be 'tanh' or 'relu', got 'gelu'")(
    lambda tmp: nn.RNN(3, 4, nonlinearity="gelu"))
error("layer/LSTM hidden_size str", ValueError, r"LSTM: hidden_size must be a positive integer, got (str )?'4'")(
    lambda tmp: nn.LSTM(3, "4"))
error("layer/GRU num_layers 0", ValueError, r"GRU: num_layers must be a positive integer, got 0")(
    lambda tmp: nn.GRU(3, 4, num_layers=0))
error("layer/LSTM dropout 2", ValueError, r"LSTM: dropout .*in \[0, 1\], got 2")(
    lambda tmp: nn.LSTM(3, 4, dropout=2))
error("layer/LSTM proj_size negative", ValueError,
      r"LSTM: proj_size .*(a non-negative integer|an integer >= 0), got -1")(
    lambda tmp: nn.LSTM(3, 4, proj_size=-1))
error("layer/LSTMCell input_size 0", ValueError, r"LSTMCell: input_size must be a positive integer, got 0")(
    lambda tmp: nn.LSTMCell(0, 4))


@handled("layer/a padded row equals the sequence run alone (bidirectional GRU)")
def _(tmp):
    rnnbp.manual_seed(0)
    gru = nn.GRU(3, 4, bidirectional=True, dtype=np.float64)
    x = _rand(5, 2, 3, dtype=np.float64)
    out, h = gru(x, lengths=[3, 5])
    alone, h_alone = gru(x[:3, 0:1])
    np.testing.assert_allclose(out.numpy()[:3, 0], alone.numpy()[:, 0], atol=1e-12)
    np.testing.assert_allclose(h.numpy()[:, 0], h_alone.numpy()[:, 0], atol=1e-12)
    assert not out.numpy()[3:, 0].any()  # zero past the row's length


@handled("layer/bidirectional batch_first LSTM with lengths equals the row run alone")
def _(tmp):
    rnnbp.manual_seed(0)
    lstm = nn.LSTM(3, 4, batch_first=True, bidirectional=True, dtype=np.float64)
    x = _rand(2, 5, 3, dtype=np.float64)
    out, (h, _) = lstm(x, lengths=[5, 3])
    alone, (h_alone, _) = lstm(x[1:2, :3])
    np.testing.assert_allclose(out.numpy()[1, :3], alone.numpy()[0], atol=1e-12)
    np.testing.assert_allclose(h.numpy()[:, 1], h_alone.numpy()[:, 0], atol=1e-12)


@handled("layer/h_0 and c_0 that require grad get gradients")
def _(tmp):
    h0, c0 = rnnbp.zeros(1, 2, 4, requires_grad=True), rnnbp.zeros(1, 2, 4, requires_grad=True)
    out, _ = nn.LSTM(3, 4)(X(), (h0, c0))
    out.sum().backward()
    assert np.abs(h0.grad.numpy()).sum() > 0 and np.abs(c0.grad.numpy()).sum() > 0


@handled("layer/unsorted packed batch keeps each row's h_0")
def _(tmp):
    rnnbp.manual_seed(0)
    lstm = nn.LSTM(3, 4, dtype=np.float64)
    x = _rand(5, 2, 3, dtype=np.float64)
    h0, c0 = _rand(1, 2, 4, dtype=np.float64, seed=1), _rand(1, 2, 4, dtype=np.float64, seed=2)
    _, (h, _) = lstm(pack_padded_sequence(x, [3, 5], enforce_sorted=False), (h0, c0))
    _, (h_alone, _) = lstm(x[:3, 0:1], (h0[:, 0:1], c0[:, 0:1]))
    np.testing.assert_allclose(h.numpy()[:, 0], h_alone.numpy()[:, 0], atol=1e-12)


@handled("layer/NaN in padding reaches neither output nor state")
def _(tmp):
    x = _rand(5, 2, 3).numpy().copy()
    x[2:, 1] = np.nan
    out, (h, c) = nn.LSTM(3, 4)(T(x), lengths=[5, 2])
    assert np.isfinite(out.numpy()).all() and np.isfinite(h.numpy()).all() and np.isfinite(c.numpy()).all()


@handled("layer/no gradient reaches padded inputs")
def _(tmp):
    x = _rand(5, 2, 3).requires_grad_()
    out, _ = nn.LSTM(3, 4)(x, lengths=[5, 2])
    out.sum().backward()
    assert not x.grad.numpy()[2:, 1].any() and x.grad.numpy()[:2, 1].any()


error("layer/Linear in_features", ValueError, r"linear: input of shape \(4, 5\) does not fit weight of shape \(2, 3\)")(
    lambda tmp: nn.Linear(3, 2)(_rand(4, 5)))
error("layer/Linear 0-d input", ValueError, r"linear: input of shape \(\) does not fit weight of shape \(2, 3\)")(
    lambda tmp: nn.Linear(3, 2)(T(1.0)))
error("layer/Linear int input", TypeError,
      r"linear: input of shape \(4, 3\) is int64 but the weight \(2, 3\) is float32")(
    lambda tmp: nn.Linear(3, 2)(rnnbp.ones(4, 3, dtype=rnnbp.int64)))
error("layer/Linear in_features float", ValueError, r"Linear: in_features must be a positive integer, got 3.0")(
    lambda tmp: nn.Linear(3.0, 2))
error("layer/Linear out_features 0", ValueError, r"Linear: out_features must be a positive integer, got 0")(
    lambda tmp: nn.Linear(3, 0))


@handled("layer/Linear on an empty batch")
def _(tmp):
    assert nn.Linear(3, 2)(rnnbp.ones(0, 3)).shape == (0, 2)


error("layer/Embedding id too large", IndexError, r"embedding: index 5 is out of range for 5 embeddings")(
    lambda tmp: nn.Embedding(5, 2)(T([1, 5])))
error("layer/Embedding negative id", IndexError, r"embedding: index -1 is out of range for 5 embeddings")(
    lambda tmp: nn.Embedding(5, 2)(T([-1, 2])))
error("layer/Embedding float ids", TypeError, r"embedding: expected integer indices, got dtype float32")(
    lambda tmp: nn.Embedding(5, 2)(T([1.0])))
error("layer/Embedding padding_idx", ValueError,
      r"Embedding: padding_idx (7 must be within num_embeddings 5|must be an integer in \[-5, 4\], got 7)")(
    lambda tmp: nn.Embedding(5, 2, padding_idx=7))
error("layer/Embedding num_embeddings str", TypeError,
      r"Embedding: num_embeddings must be a positive integer, got str '5'")(
    lambda tmp: nn.Embedding("5", 2))


@handled("layer/Embedding padding row gets no gradient")
def _(tmp):
    emb = nn.Embedding(5, 2, padding_idx=0)
    emb(T([0, 1, 0])).sum().backward()
    g = emb.weight.grad.numpy()
    assert not g[0].any() and (g[1] == 1).all()


MHA = lambda: nn.MultiheadAttention(4, 2)
Q = lambda: _rand(3, 2, 4)
error("layer/attention embed_dim % num_heads", ValueError,
      r"MultiheadAttention: embed_dim \(5\) must be divisible by num_heads \(2\)")(
    lambda tmp: nn.MultiheadAttention(5, 2))
error("layer/attention attn_mask shape", ValueError,
      r"MultiheadAttention: attn_mask of shape \(2, 2\) does not fit .* expected \(L, S\) = \(3, 3\)")(
    lambda tmp: MHA()(Q(), Q(), Q(), attn_mask=rnnbp.zeros(2, 2)))
error("layer/attention key_padding_mask shape", ValueError,
      r"MultiheadAttention: key_padding_mask of shape \(3, 2\) .* expected \(2, 3\)")(
    lambda tmp: MHA()(Q(), Q(), Q(), key_padding_mask=rnnbp.zeros(3, 2, dtype=rnnbp.bool)))
error("layer/attention int mask", TypeError,
      r"MultiheadAttention: attn_mask must be a bool or floating-point mask, got dtype int64")(
    lambda tmp: MHA()(Q(), Q(), Q(), attn_mask=rnnbp.zeros(3, 3, dtype=rnnbp.int64)))
error("layer/attention query features", ValueError,
      r"MultiheadAttention: expected query to end in 4 features, got shape \(3, 2, 5\)")(
    lambda tmp: MHA()(_rand(3, 2, 5), Q(), Q()))
error("layer/attention key and value lengths", ValueError,
      r"MultiheadAttention: key \(4, 2, 4\) and value \(5, 2, 4\) must agree")(
    lambda tmp: MHA()(Q(), _rand(4, 2, 4), _rand(5, 2, 4)))
error("layer/attention is_causal without mask", ValueError,
      r"MultiheadAttention: is_causal=True is a hint that needs attn_mask")(
    lambda tmp: MHA()(Q(), Q(), Q(), is_causal=True))
error("layer/sdpa dropout_p", ValueError, r"scaled_dot_product_attention: dropout_p must be in \[0, 1\], got 2.0")(
    lambda tmp: F.scaled_dot_product_attention(Q(), Q(), Q(), dropout_p=2.0))


@handled("layer/attention: a masked key does not change the output")
def _(tmp):
    rnnbp.manual_seed(0)
    mha = MHA().eval()
    q = _rand(3, 1, 4)
    k = _rand(4, 1, 4, seed=1).numpy().copy()
    mask = T([[False, False, False, True]])
    out, _ = mha(q, T(k), T(k), key_padding_mask=mask)
    k[3] = 100.0  # a different masked key
    out2, _ = mha(q, T(k), T(k), key_padding_mask=mask)
    np.testing.assert_allclose(out.numpy(), out2.numpy(), atol=1e-6)


error("layer/BatchNorm1d channels", ValueError,
      r"BatchNorm1d: expected input of shape \(N, 4\) or \(N, 4, L\) .* got shape \(8, 3\)")(
    lambda tmp: nn.BatchNorm1d(4)(_rand(8, 3)))
error("layer/BatchNorm1d batch of 1 in training", ValueError,
      r"BatchNorm1d: expected more than 1 value per channel when training, got input of shape \(1, 4\)")(
    lambda tmp: nn.BatchNorm1d(4)(_rand(1, 4)))
error("layer/BatchNorm1d (N, L, C) input", ValueError,
      r"BatchNorm1d: expected input of shape \(N, 3\) or \(N, 3, L\) .* got shape \(2, 5, 3\)")(
    lambda tmp: nn.BatchNorm1d(3)(_rand(2, 5, 3)))
error("layer/BatchNorm1d int input", TypeError, r"BatchNorm1d: expected a floating-point input, got int64")(
    lambda tmp: nn.BatchNorm1d(4)(rnnbp.ones(3, 4, dtype=rnnbp.int64)))
error("layer/BatchNorm1d momentum", ValueError,
      r"BatchNorm1d: momentum must be a number in \[0, 1\] or None .* got 2.0")(
    lambda tmp: nn.BatchNorm1d(4, momentum=2.0))


@handled("layer/BatchNorm1d batch of 1 in eval mode")
def _(tmp):
    bn = nn.BatchNorm1d(4).eval()
    np.testing.assert_allclose(bn(T([[1.0, 2.0, 3.0, 4.0]])).numpy(), [[1.0, 2.0, 3.0, 4.0]], rtol=1e-4)


error("layer/Dropout p", ValueError, r"Dropout: dropout probability has to be between 0 and 1, but got 1.5")(
    lambda tmp: nn.Dropout(1.5))
error("layer/Dropout p str", TypeError,
      r"Dropout: p \(the dropout probability\) must be a number in \[0, 1\], got str '0.5'")(
    lambda tmp: nn.Dropout("0.5"))
error("layer/LayerNorm shape", ValueError,
      r"layer_norm: input of shape \(2, 3\) does not end in normalized_shape \(4,\)")(
    lambda tmp: nn.LayerNorm(4)(_rand(2, 3)))
error("layer/Sequential of a function", TypeError, r"add_module: '1' must be a Module or None, got function")(
    lambda tmp: nn.Sequential(nn.Linear(2, 2), lambda x: x))
error("layer/Sequential index", IndexError, r"Sequential: index 3 is out of range for 1 modules")(
    lambda tmp: nn.Sequential(nn.Linear(2, 2))[3])
error("layer/load_state_dict shapes", RuntimeError,
      r"size mismatch for weight: copying a param with shape \(2, 4\) .* \(2, 3\)")(
    lambda tmp: nn.Linear(3, 2).load_state_dict({"weight": np.zeros((2, 4)), "bias": np.zeros(2)}))
error("layer/load_state_dict missing key", RuntimeError, r'Missing key\(s\) in state_dict: "bias"')(
    lambda tmp: nn.Linear(3, 2).load_state_dict({"weight": np.zeros((2, 3))}))
error("layer/load_state_dict strings", RuntimeError, r"dtype mismatch for weight: cannot copy a value of dtype <U1")(
    lambda tmp: nn.Linear(3, 2).load_state_dict({"weight": np.full((2, 3), "a"), "bias": np.zeros(2)}))
error("layer/load_state_dict of a list", TypeError, r"Linear.load_state_dict: expected a dict .* got list")(
    lambda tmp: nn.Linear(3, 2).load_state_dict([1, 2]))

# =================================================================== optimizers and schedulers
for _cls, _kw, _arg in [(optim.SGD, {"lr": "0.1"}, "lr"), (optim.Adam, {"lr": "1e-3"}, "lr"),
                        (optim.AdamW, {"weight_decay": "0.01"}, "weight_decay"),
                        (optim.RMSprop, {"alpha": "0.9"}, "alpha"), (optim.Adagrad, {"lr_decay": "0"}, "lr_decay"),
                        (optim.Adadelta, {"rho": "0.9"}, "rho"), (optim.Adamax, {"eps": "1e-8"}, "eps"),
                        (optim.NAdam, {"momentum_decay": "4e-3"}, "momentum_decay")]:
    error(f"optim/{_cls.__name__}({_arg}=str)", TypeError, rf"{_cls.__name__}: {_arg} must be a number, got str '")(
        lambda tmp, c=_cls, kw=_kw: c([_param(3)], **kw))
error("optim/LBFGS(history_size=str)", ValueError,
      r"(LBFGS: history_size must be a number, got str '10'|Invalid history_size value: '10' \(expected an int "
      r">= 1\))")(
    lambda tmp: optim.LBFGS([_param(3)], history_size="10"))
error("optim/RAdam(betas=strs)", TypeError, r"RAdam: betas\[0\] must be a number, got str '0.9'")(
    lambda tmp: optim.RAdam([_param(3)], betas=("0.9", "0.999")))
error("optim/SGD(lr=None)", TypeError, r"SGD: lr must be a number, got NoneType None")(
    lambda tmp: optim.SGD([_param(3)], lr=None))
error("optim/SGD(lr=-1)", ValueError, r"Invalid learning rate: -1")(lambda tmp: optim.SGD([_param(3)], lr=-1))
error("optim/SGD(lr=nan)", ValueError, r"Invalid learning rate: nan")(lambda tmp: optim.SGD([_param(3)], lr=NAN))
error("optim/Adam beta 1.0", ValueError, r"Invalid beta parameter at index 0: 1.0")(
    lambda tmp: optim.Adam([_param(3)], betas=(1.0, 0.9)))
error("optim/Adam one beta", ValueError, r"Invalid betas: expected two values \(beta1, beta2\), got \(0.9,\)")(
    lambda tmp: optim.Adam([_param(3)], betas=(0.9,)))
error("optim/SGD nesterov without momentum", ValueError, r"Nesterov momentum requires a momentum and zero dampening")(
    lambda tmp: optim.SGD([_param(3)], lr=0.1, nesterov=True))
error("optim/empty parameter list", ValueError, r"optimizer got an empty parameter list")(
    lambda tmp: optim.SGD([], lr=0.1))
error("optim/one Tensor as params", TypeError,
      r"params argument given to the optimizer should be an iterable of Tensors")(
    lambda tmp: optim.SGD(_param(2), lr=0.1))
error("optim/non-leaf parameter", ValueError, r"can't optimize a non-leaf Tensor \(params\[0\]\)")(
    lambda tmp: optim.SGD([_param(2).requires_grad_() * 2], lr=0.1))
error("optim/ints as parameters", TypeError, r"optimizer can only optimize Tensors, but params\[0\] is int")(
    lambda tmp: optim.SGD([1, 2], lr=0.1))


@error("optim/grad of another shape", ValueError,
       r"SGD.step: params\[0\] has shape \(3,\) but its grad has shape \(4,\)")
def _(tmp):
    p = _param(3)
    opt = optim.SGD([p], lr=0.1)
    p._grad = np.zeros(4, np.float32)
    opt.step()


@error("optim/assigning a grad of another shape", ValueError,
       r"grad: assigned grad has shape \(4,\) .* but the tensor has shape \(3,\)")
def _(tmp):
    _param(3).grad = rnnbp.zeros(4)


@error("optim/a parameter in two groups", ValueError, r"some parameters appear in more than one parameter group")
def _(tmp):
    p = _param(2)
    optim.SGD([p], lr=0.1).add_param_group({"params": [p]})


error("optim/LBFGS step without a closure", TypeError,
      r"LBFGS.step\(\) missing 1 required positional argument: 'closure'")(
    lambda tmp: optim.LBFGS([_param(2)]).step())
error("optim/closure not callable", TypeError, r"SGD.step: closure must be callable .* got int")(
    lambda tmp: _sgd().step(3))


@handled("optim/a float64 grad does not promote a float32 parameter")
def _(tmp):
    p = _param(3)
    opt = optim.SGD([p], lr=0.5)
    p._grad = np.ones(3)
    opt.step()
    assert p.dtype == np.float32 and np.allclose(p.numpy(), -0.5)


@handled("optim/a NaN gradient entry spoils only its own parameter entry (as torch)")
def _(tmp):
    p = _param(3, grad=[NAN, 1.0, 1.0])
    optim.Adam([p], lr=0.1).step()
    out = p.numpy()
    assert np.isnan(out[0]) and np.allclose(out[1:], -0.1)


@error("optim/an Adam state dict into SGD", ValueError,
       r"SGD.load_state_dict: this state dict was saved from an optimizer such as Adam, not SGD")
def _(tmp):
    p = _param(3, grad=[1.0, 1.0, 1.0])
    adam = optim.Adam([p], lr=0.1)
    adam.step()
    optim.SGD([p], lr=0.1, momentum=0.9).load_state_dict(adam.state_dict())


@error("optim/a model's state dict into an optimizer", ValueError,
       r"load_state_dict: state dict lacks the key\(s\) \['state', 'param_groups'\]")
def _(tmp):
    model = nn.Linear(3, 2)
    optim.SGD(model.parameters(), lr=0.1).load_state_dict(model.state_dict())


def _lambda_run(cls, value, steps=3):
    opt = _sgd()
    sched = cls(opt, lambda epoch: value if epoch >= 2 else 1.0)
    for _ in range(steps):
        opt.step()
        sched.step()


error("sched/LambdaLR negative factor", ValueError,
      r"LambdaLR: lr_lambda returned -1.0 at epoch 2 \(param group 0\); it must return a finite number >= 0")(
    lambda tmp: _lambda_run(lrs.LambdaLR, -1.0))
error("sched/LambdaLR NaN factor", ValueError, r"LambdaLR: lr_lambda returned nan at epoch 2")(
    lambda tmp: _lambda_run(lrs.LambdaLR, NAN))
error("sched/LambdaLR None factor", ValueError, r"LambdaLR: lr_lambda returned None at epoch 2")(
    lambda tmp: _lambda_run(lrs.LambdaLR, None))
error("sched/MultiplicativeLR negative factor", ValueError, r"MultiplicativeLR: lr_lambda returned -0.5 at epoch 2")(
    lambda tmp: _lambda_run(lrs.MultiplicativeLR, -0.5))
error("sched/MultiplicativeLR NaN factor", ValueError, r"MultiplicativeLR: lr_lambda returned nan at epoch 2")(
    lambda tmp: _lambda_run(lrs.MultiplicativeLR, NAN))
error("sched/ExponentialLR negative gamma", ValueError,
      r"ExponentialLR: the learning rate of param group 0 at epoch 1 would be -0.05")(
    lambda tmp: lrs.ExponentialLR(_sgd(), gamma=-0.5).step())
error("sched/MultiStepLR gamma str", TypeError, r"MultiStepLR: gamma must be a number, got str '0.1'")(
    lambda tmp: lrs.MultiStepLR(_sgd(), [1], gamma="0.1"))
error("sched/StepLR step_size float", ValueError, r"StepLR: step_size must be a positive integer, got 2.5")(
    lambda tmp: lrs.StepLR(_sgd(), 2.5))
error("sched/scheduler of a model", TypeError, r"StepLR: expected an rnnbp.optim.Optimizer, got Linear")(
    lambda tmp: lrs.StepLR(nn.Linear(2, 2), 2))
error("sched/ReduceLROnPlateau.step('abc')", TypeError,
      r"ReduceLROnPlateau.step: metrics must be one number.* got str 'abc'")(
    lambda tmp: lrs.ReduceLROnPlateau(_sgd()).step("abc"))
error("sched/ReduceLROnPlateau.step(vector)", TypeError,
      r"ReduceLROnPlateau.step: metrics must be one number.* got a Tensor of shape \(3,\)")(
    lambda tmp: lrs.ReduceLROnPlateau(_sgd()).step(rnnbp.ones(3)))
error("sched/ReduceLROnPlateau factor 0", ValueError, r"ReduceLROnPlateau: factor must be in \(0, 1\), got 0.0")(
    lambda tmp: lrs.ReduceLROnPlateau(_sgd(), factor=0))
error("sched/ReduceLROnPlateau factor 1", ValueError,
      r"ReduceLROnPlateau: factor (should be < 1.0|must be in \(0, 1\)), got 1.0")(
    lambda tmp: lrs.ReduceLROnPlateau(_sgd(), factor=1.0))
error("sched/ReduceLROnPlateau patience -1", ValueError,
      r"ReduceLROnPlateau: patience must be (a non-negative integer|an integer >= 0), got -1")(
    lambda tmp: lrs.ReduceLROnPlateau(_sgd(), patience=-1))


@error("sched/StepLR state into CosineAnnealingLR", ValueError,
       r"CosineAnnealingLR.load_state_dict: this state dict was saved from a StepLR, not a CosineAnnealingLR")
def _(tmp):
    opt = _sgd()
    lrs.CosineAnnealingLR(opt, 10).load_state_dict(lrs.StepLR(opt, 3).state_dict())


@error("sched/LambdaLR state into MultiplicativeLR", ValueError,
       r"MultiplicativeLR.load_state_dict: this state dict was saved from a LambdaLR")
def _(tmp):
    opt = _sgd()
    lrs.MultiplicativeLR(opt, lambda e: 1.0).load_state_dict(lrs.LambdaLR(opt, lambda e: 1.0).state_dict())


@handled("sched/ReduceLROnPlateau takes a 0-d Tensor metric")
def _(tmp):
    opt = _sgd()
    sched = lrs.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    sched.step(T(1.0))
    sched.step(T(2.0))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)


def _clip(**kw):
    return clip_grad_norm_([_param(3, grad=[2.0, 2.0, 2.0])], **kw)


error("clip/norm_type 'fro'", TypeError,
      r"clip_grad_norm_: norm_type must be a number, .*'fro' of a vector.*got str 'fro'")(
    lambda tmp: _clip(max_norm=1, norm_type="fro"))
error("clip/max_norm negative", ValueError, r"clip_grad_norm_: max_norm must be >= 0, got -1.0")(
    lambda tmp: _clip(max_norm=-1))
error("clip/max_norm str", TypeError, r"clip_grad_norm_: max_norm must be a number.*got str 'a'")(
    lambda tmp: _clip(max_norm="a"))
error("clip/non-finite with error_if_nonfinite", RuntimeError,
      r"The total norm of order 2.0 for gradients .* is non-finite")(
    lambda tmp: clip_grad_norm_([_param(3, grad=[NAN, 1.0, 1.0])], 1.0, error_if_nonfinite=True))
error("clip/parameters None", TypeError,
      r"clip_grad_norm_: parameters must be a Tensor or an iterable of Tensors .* got NoneType")(
    lambda tmp: clip_grad_norm_(None, 1.0))
error("clip/parameters of ints", TypeError, r"clip_grad_norm_: parameters\[0\] is int, not a Tensor")(
    lambda tmp: clip_grad_norm_([1, 2], 1.0))
error("clip/clip_value negative", ValueError, r"clip_grad_value_: clip_value must be >= 0, got -1.0")(
    lambda tmp: clip_grad_value_([_param(3)], -1))


@handled("clip/huge finite gradients are clipped, not zeroed")
def _(tmp):
    p = _param(2, grad=[3e38, 3e38])
    clip_grad_norm_([p], 1.0)
    np.testing.assert_allclose(p._grad, [2 ** -0.5] * 2, rtol=1e-5)


# =================================================================== checkpoints
def _saved(tmp) -> Path:
    path = tmp / "good.pt"
    rnnbp.save(nn.LSTM(3, 4).state_dict(), path)
    return path


@error("ckpt/truncated file", CheckpointError, r"load: .*trunc\.pt is not an rnnbp checkpoint: it is truncated")
def _(tmp):
    raw = _saved(tmp).read_bytes()
    (tmp / "trunc.pt").write_bytes(raw[: len(raw) // 2])
    rnnbp.load(tmp / "trunc.pt")


@error("ckpt/empty file", CheckpointError, r"load: .*empty\.pt is not an rnnbp checkpoint")
def _(tmp):
    (tmp / "empty.pt").write_bytes(b"")
    rnnbp.load(tmp / "empty.pt")


@error("ckpt/text file", CheckpointError, r"load: .*notes\.pt is not an rnnbp checkpoint")
def _(tmp):
    (tmp / "notes.pt").write_text("hello world\n")
    rnnbp.load(tmp / "notes.pt")


@error("ckpt/a pickle", CheckpointError,
       r"load: .*model\.pt is a Python pickle, not an rnnbp checkpoint; rnnbp never unpickles")
def _(tmp):
    (tmp / "model.pt").write_bytes(pickle.dumps({"a": 1}))
    rnnbp.load(tmp / "model.pt")


@error("ckpt/a plain .npz", CheckpointError,
       r"load: .*plain\.npz is an \.npz archive not written by rnnbp.save .* holds \['a'\]")
def _(tmp):
    np.savez(tmp / "plain.npz", a=np.zeros(3))
    rnnbp.load(tmp / "plain.npz")


@error("ckpt/a plain .npy", CheckpointError, r"load: .*plain\.npy is a single \.npy array, not an rnnbp checkpoint")
def _(tmp):
    np.save(tmp / "plain.npy", np.zeros(3))
    rnnbp.load(tmp / "plain.npy")


@error("ckpt/another zip", CheckpointError, r"load: .*other\.pt is an \.npz archive not written by rnnbp.save")
def _(tmp):
    with zipfile.ZipFile(tmp / "other.pt", "w") as z:
        z.writestr("x.txt", "hi")
    rnnbp.load(tmp / "other.pt")


@error("ckpt/a flipped bit in an array", CheckpointError,
       r"load: .*flip\.pt: array 'a1' \(obj\['weight_hh_l0'\]\): .* the file is corrupt")
def _(tmp):
    path = _saved(tmp)
    raw = bytearray(path.read_bytes())
    at = raw.find(np.asarray(rnnbp.load(path)["weight_hh_l0"]).tobytes())  # arrays are stored uncompressed
    raw[at + 17] ^= 0x10
    (tmp / "flip.pt").write_bytes(bytes(raw))
    rnnbp.load(tmp / "flip.pt")


error("ckpt/missing file", FileNotFoundError, r"No such file or directory: .*nope\.pt")(
    lambda tmp: rnnbp.load(tmp / "nope.pt"))
error("ckpt/a directory", IsADirectoryError, r"Is a directory")(lambda tmp: rnnbp.load(tmp))
error("ckpt/load(3)", TypeError, r"load: expected a path \(str or os.PathLike\) or a binary file object .* got int")(
    lambda tmp: rnnbp.load(3))
error("ckpt/save a lambda", TypeError, r"save: cannot save obj\['f'\], a lambda")(
    lambda tmp: rnnbp.save({"f": lambda x: x}, tmp / "lam.pt"))
error("ckpt/save an object", TypeError, r"save: cannot save obj, an object of class builtins.object")(
    lambda tmp: rnnbp.save(object(), tmp / "obj.pt"))
error("ckpt/save into a missing folder", FileNotFoundError,
      r"save: cannot write .*x\.pt: directory .*nodir does not exist")(
    lambda tmp: rnnbp.save({"a": 1}, tmp / "nodir" / "x.pt"))


@error("ckpt/a whole model where a state dict was expected", TypeError,
       r"LSTM.load_state_dict: expected a dict .* got LSTM \(to copy a whole model, pass other.state_dict\(\)\)")
def _(tmp):
    rnnbp.save(nn.LSTM(3, 4), tmp / "whole.pt")
    nn.LSTM(3, 4).load_state_dict(rnnbp.load(tmp / "whole.pt", weights_only=False))


@error("ckpt/another architecture", RuntimeError,
       r"Error\(s\) in loading state_dict for GRU:\s+size mismatch for weight_ih_l0")
def _(tmp):
    nn.GRU(3, 4).load_state_dict(rnnbp.load(_saved(tmp)))


@error("ckpt/an optimizer's state as a model's", RuntimeError,
       r'Missing key\(s\) in state_dict: "weight_ih_l0".*\s+Unexpected key\(s\) in state_dict: "state", "param_groups"')
def _(tmp):
    model = nn.LSTM(3, 4)
    rnnbp.save(optim.SGD(model.parameters(), lr=0.1).state_dict(), tmp / "opt.pt")
    model.load_state_dict(rnnbp.load(tmp / "opt.pt"))


@handled("ckpt/a state dict round-trips exactly")
def _(tmp):
    model = nn.LSTM(3, 4)
    rnnbp.save(model.state_dict(), tmp / "m.pt")
    other = nn.LSTM(3, 4)
    other.load_state_dict(rnnbp.load(tmp / "m.pt"))
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=k)


# =================================================================== training
class _Model(nn.Module):
    def __init__(self):
        super().__init__()
        rnnbp.manual_seed(0)
        self.rnn, self.head = nn.LSTM(3, 4), nn.Linear(4, 2)

    def forward(self, x, hx=None, lengths=None):
        out, hx = self.rnn(x, hx, lengths=lengths)
        return self.head(out), hx


def _stream(L=8, N=2):
    rng = np.random.default_rng(0)
    return rng.standard_normal((L, N, 3)).astype(np.float32), rng.standard_normal((L, N, 2)).astype(np.float32)


def _engine(**kw):
    model = _Model()
    return TBPTT(model, sequence_mse, optim.SGD(model.parameters(), lr=0.1), **kw)


error("train/TBPTT k1 0", ValueError, r"TBPTT: k1 must be a positive integer, got 0")(lambda tmp: _engine(k1=0))
error("train/TBPTT k1 2.5", ValueError, r"TBPTT: k1 must be a positive integer( or None)?, got 2.5")(
    lambda tmp: _engine(k1=2.5))
error("train/TBPTT k1 str", ValueError, r"TBPTT: k1 must be a positive integer( or None)?, got (str )?'4'")(
    lambda tmp: _engine(k1="4"))
error("train/TBPTT k2 < k1", ValueError, r"TBPTT: k2 must be >= k1 .* got k1=4, k2=2")(lambda tmp: _engine(k1=4, k2=2))
error("train/TBPTT k2 without k1", ValueError, r"TBPTT: give k1 \(and optionally k2 >= k1\), or neither")(
    lambda tmp: _engine(k2=3))
error("train/TBPTT clip_norm negative", ValueError,
      r"TBPTT: clip_norm must be (a positive number|in \(0, inf\)), got -1")(
    lambda tmp: _engine(k1=2, clip_norm=-1))
error("train/TBPTT clip_norm str", TypeError, r"TBPTT: clip_norm must be a number or None, got str '1'")(
    lambda tmp: _engine(k1=2, clip_norm="1"))
error("train/TBPTT loss_fn None", TypeError, r"TBPTT: loss_fn must be callable .* got NoneType")(
    lambda tmp: TBPTT(_Model(), None, None, k1=2))
error("train/TBPTT model a function", TypeError, r"TBPTT: model must be an nn.Module .* got function")(
    lambda tmp: TBPTT(lambda x, h: (x, h), sequence_mse, None, k1=2))


@error("train/TBPTT NaN input names step and chunk", NonFiniteError,
       r"TBPTT: non-finite loss at step 5 \(row 1\) in chunk 2 \(steps 4-5\): the model's output is NaN")
def _(tmp):
    x, y = _stream()
    x[5, 1, 0] = np.nan
    _engine(k1=2).run(x, y)


@error("train/TBPTT NaN target names step and chunk", NonFiniteError,
       r"TBPTT: non-finite loss at step 5 \(row 1\) in chunk 2 \(steps 4-5\): the target is NaN")
def _(tmp):
    x, y = _stream()
    y[5, 1, 0] = np.nan
    _engine(k1=2).run(x, y)


error("train/TBPTT targets length", ValueError,
      r"TBPTT.run: targets must match the inputs' \(L, N\) = \(8, 2\), got shape \(5, 2, 2\)")(
    lambda tmp: _engine(k1=2).run(_stream()[0], _stream()[1][:5]))
error("train/TBPTT lengths beyond L", ValueError, r"TBPTT.run: lengths must be between 0 and L = 8, got 3..9")(
    lambda tmp: _engine(k1=2).run(*_stream(), lengths=[9, 3]))
error("train/TBPTT loss_mask shape", ValueError,
      r"TBPTT.run: loss_mask must have shape \(L, N\) = \(8, 2\), got \(8, 3\)")(
    lambda tmp: _engine(k1=2).run(*_stream(), loss_mask=np.ones((8, 3))))


@handled("train/TBPTT: NaN targets in padding carry no loss")
def _(tmp):
    x, y = _stream()
    y[4:, 1] = np.nan
    result = _engine(k1=2).run(x, y, lengths=[8, 4])
    assert math.isfinite(result.loss) and result.count == 8 + 4  # one loss per valid (step, row)


def _trainer(step=lambda b: {"loss": 0.0}, batches=lambda e, g: [0, 1], **kw):
    model = nn.Linear(1, 1)
    return Trainer(model, optim.SGD(model.parameters(), lr=0.1), step, batches, progress=False, log=None, **kw)


error("train/Trainer NaN loss names epoch and batch", NonFiniteError,
      r"Trainer: train_step returned a non-finite loss \(nan\) at epoch 1, batch 1")(
    lambda tmp: _trainer(step=lambda b: {"loss": NAN if b == 1 else 1.0}).fit(1))
error("train/Trainer patience 0", ValueError, r"Trainer: patience must be a positive integer.*, got 0")(
    lambda tmp: _trainer(patience=0))
error("train/Trainer seed -1", ValueError, r"Trainer: seed must be (a non-negative integer|an integer >= 0), got -1")(
    lambda tmp: _trainer(seed=-1))
error("train/Trainer.fit(-1)", ValueError,
      r"Trainer.fit: epochs must be (a non-negative integer|an integer >= 0), got -1")(
    lambda tmp: _trainer().fit(-1))
error("train/Trainer no loss", ValueError, r"Trainer: train_step must return a 'loss' entry, got keys \['acc'\]")(
    lambda tmp: _trainer(step=lambda b: {"acc": 1.0}).fit(1))
error("train/Trainer batches a list", TypeError, r"Trainer: batches must be callable, got list")(
    lambda tmp: _trainer(batches=[1, 2]))
error("train/Trainer batches returns an int", TypeError,
      r"Trainer: batches\(epoch, generator\) must return an iterable of batches .* got int")(
    lambda tmp: _trainer(batches=lambda e, g: 3).fit(1))
error("train/Trainer checkpoint_dir is a file", ValueError,
      r"Trainer: checkpoint_dir .*notes is a file; give a folder")(
    lambda tmp: (tmp / "notes").write_text("x") and _trainer(checkpoint_dir=tmp / "notes").fit(1))
error("train/Trainer resume from a missing file", FileNotFoundError, r"No such file or directory: .*nope\.npz")(
    lambda tmp: _trainer().fit(1, resume=tmp / "nope.npz"))


@error("train/Trainer resume with another model", RuntimeError,
       r"loading state_dict for Linear:\s+size mismatch for weight: .* \(1, 1\) from checkpoint, the shape in "
       r"current model is \(1, 2\)")
def _(tmp):
    model = nn.Linear(1, 1)
    Trainer(model, optim.SGD(model.parameters(), lr=0.1), lambda b: {"loss": 0.0}, lambda e, g: [0],
            checkpoint_dir=tmp / "run", progress=False, log=None).fit(1)
    other = nn.Linear(2, 1)
    Trainer(other, optim.SGD(other.parameters(), lr=0.1), lambda b: {"loss": 0.0}, lambda e, g: [0],
            checkpoint_dir=tmp / "run", progress=False, log=None).fit(2, resume=True)


error("train/Trainer resume from a model file", ValueError, r"Trainer.load_state_dict: not a Trainer checkpoint")(
    lambda tmp: _trainer().fit(1, resume=_saved(tmp)))

# =================================================================== data
DS = lambda: TensorDataset(_rand(5, 2), rnnbp.arange(5))
error("data/TensorDataset sizes", ValueError,
      r"TensorDataset: size mismatch between tensors.* got shapes \(5, 2\), \(4,\)")(
    lambda tmp: TensorDataset(_rand(5, 2), rnnbp.arange(4)))
error("data/DataLoader batch_size 0", ValueError,
      r"batch_size should be a positive integer value, but got batch_size=0")(
    lambda tmp: DataLoader(DS(), batch_size=0))
error("data/DataLoader num_workers -1", ValueError,
      r"DataLoader: num_workers option should be a non-negative integer, got -1")(
    lambda tmp: DataLoader(DS(), num_workers=-1))
error("data/DataLoader sampler and shuffle", ValueError,
      r"DataLoader: sampler option is mutually exclusive with shuffle")(
    lambda tmp: DataLoader(DS(), sampler=[0, 1], shuffle=True))
error("data/DataLoader batch_sampler and batch_size", ValueError,
      r"DataLoader: batch_sampler option is mutually exclusive with batch_size")(
    lambda tmp: DataLoader(DS(), batch_sampler=[[0, 1]], batch_size=2))
error("data/DataLoader of an int", TypeError, r"DataLoader: dataset must be a map-style dataset .* got int")(
    lambda tmp: list(DataLoader(5, batch_size=2)))
error("data/WeightedRandomSampler negative weight", ValueError,
      r"WeightedRandomSampler: weights must be finite and non-negative .* got \[1.0, -1.0\]")(
    lambda tmp: list(WeightedRandomSampler([1.0, -1.0], 2)))
error("data/collate ragged arrays", ValueError,
      r"default_collate: cannot stack arrays of different shapes: \(2,\) at entry 0 and \(3,\) at entry 1")(
    lambda tmp: list(DataLoader([np.zeros(2), np.zeros(3)], batch_size=2)))
error("data/collate an array and a str", TypeError,
      r"default_collate: sample 1 is a string \(str\) where sample 0 is a NumPy array")(
    lambda tmp: default_collate([np.zeros(2), "a"]))
error("data/collate dicts with other keys", ValueError,
      r"default_collate: sample 1 has keys \['b'\] but sample 0 has \['a'\]")(
    lambda tmp: default_collate([{"a": 1}, {"b": 2}]))
error("data/random_split lengths", ValueError,
      r"random_split: sum of input lengths \[2, 2\] is 4, which does not equal the length of the input dataset \(5\)")(
    lambda tmp: random_split(DS(), [2, 2]))
error("data/random_split negative", ValueError,
      r"random_split: length at index 1 must be a non-negative int or a fraction, got -1")(
    lambda tmp: random_split(DS(), [6, -1]))
error("data/Subset index", IndexError, r"index 7 is invalid for a tensor of shape \(5, 2\)")(
    lambda tmp: Subset(DS(), [7])[0])


@handled("data/collate of ints and a float keeps the float")
def _(tmp):
    batch = default_collate([1, 2.5])
    assert batch.dtype == np.float32 and np.allclose(batch.numpy(), [1.0, 2.5])


@handled("data/random_split by fractions")
def _(tmp):
    parts = random_split(DS(), [0.5, 0.5])
    assert [len(p) for p in parts] == [3, 2]
    assert sorted(int(i) for p in parts for i in p.indices) == list(range(5))


@handled("data/drop_last with a batch larger than the dataset")
def _(tmp):
    assert list(DataLoader(DS(), batch_size=10, drop_last=True)) == []


# ----------------------------------------------------------------------- audio
def _tone(n=4000, amplitude=0.5):
    return (amplitude * np.sin(np.arange(n) / 5.0)).astype(np.float32)


def _wav(tmp, name, samples, sr=8000, subtype=None):
    import soundfile as sf
    path = tmp / name
    sf.write(path, samples, sr, subtype=subtype)
    return path


def _read(path):
    from rnnbp.data import read_audio
    return read_audio(path)


@error("audio/truncated WAV", AudioFileError,
       r"audio file .*trunc\.wav is truncated: its data chunk declares 8000 bytes but only 3978 follow")
def _(tmp):
    raw = _wav(tmp, "ok.wav", _tone()).read_bytes()
    (tmp / "trunc.wav").write_bytes(raw[: len(raw) // 2])
    _read(tmp / "trunc.wav")


@error("audio/a header only", AudioFileError, r"cannot read audio file .*header\.wav: .*No 'data' chunk")
def _(tmp):
    (tmp / "header.wav").write_bytes(_wav(tmp, "ok.wav", _tone()).read_bytes()[:30])
    _read(tmp / "header.wav")


@error("audio/a text file", AudioFileError, r"cannot read audio file .*text\.wav: .*Format not recognised")
def _(tmp):
    (tmp / "text.wav").write_text("not audio")
    _read(tmp / "text.wav")


@error("audio/no samples", AudioFileError, r"audio file .*zero\.wav holds no samples")
def _(tmp):
    _read(_wav(tmp, "zero.wav", np.zeros(0, np.float32)))


@error("audio/missing file", AudioFileError, r"cannot read audio file .*nope\.wav: FileNotFoundError")
def _(tmp):
    _read(tmp / "nope.wav")


@error("audio/NaN samples", AudioFileError, r"audio file .*nan\.wav holds NaN or infinite samples")
def _(tmp):
    y = _tone()
    y[100] = np.nan
    _read(_wav(tmp, "nan.wav", y, subtype="FLOAT"))


@error("audio/samples of 1e20", AudioFileError,
       r"audio file .*loud\.wav: its features hold NaN or Inf: the samples reach")
def _(tmp):
    from rnnbp.data import file_features
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        file_features(_wav(tmp, "loud.wav", _tone() * 1e20, subtype="FLOAT"))


@handled("audio/stereo is averaged to mono")
def _(tmp):
    y = _tone()
    got = _read(_wav(tmp, "stereo.wav", np.stack([y, 0.5 * y], axis=1), subtype="FLOAT"))
    np.testing.assert_allclose(got, 0.75 * y, atol=1e-6)


@handled("audio/another sample rate is resampled")
def _(tmp):
    got = _read(_wav(tmp, "16k.wav", np.repeat(_tone(), 2), sr=16000))
    assert got.dtype == np.float32 and got.shape == (4000,)


# =================================================================== running the cases
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case, tmp_path):
    if case.name.startswith("audio/"):
        pytest.importorskip("soundfile")
    if case.exc is None:
        case.fn(tmp_path)
    else:
        with pytest.raises(case.exc, match=case.pattern):
            case.fn(tmp_path)


def test_the_campaign_is_large_and_spans_every_area():
    areas = {c.name.split("/")[0] for c in CASES}
    assert len(CASES) >= 100 and len({c.name for c in CASES}) == len(CASES)
    assert {"tensor", "loss", "layer", "optim", "sched", "clip", "ckpt", "train", "data", "audio"} <= areas


# Errors that are bugs, whatever the message: a user never expects these from a library call.
_CRASHES = (AttributeError, KeyError, NameError, UnboundLocalError, ZeroDivisionError, RecursionError,
            MemoryError, AssertionError, StopIteration, SystemError, UnicodeError, FloatingPointError)


def classify(case: Case, tmp: Path) -> tuple[str, str]:
    """(class, detail): 'clear error', 'handled correctly', 'silently wrong', 'unclear error' or 'crashed'."""
    exc = case.exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.fn(tmp)
    except BaseException as e:  # noqa: BLE001  (classifying is the point)
        detail = f"{type(e).__name__}: {str(e)[:200]}"
        if exc is None:
            if isinstance(e, AssertionError):
                return "silently wrong", detail
            return ("crashed" if isinstance(e, _CRASHES) else "unclear error"), detail
        if isinstance(e, exc) and re.search(case.pattern, str(e)):
            return "clear error", detail
        if isinstance(e, _CRASHES) and not isinstance(e, exc):
            return "crashed", detail
        return "unclear error", detail
    if exc is None:
        return "handled correctly", ""
    return "silently wrong", "no error"


def main(argv: list[str]) -> int:
    classes = ["clear error", "handled correctly", "silently wrong", "unclear error", "crashed"]
    counts = dict.fromkeys(classes, 0)
    shown = []
    for case in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            kind, detail = classify(case, Path(tmp))
        counts[kind] += 1
        if kind not in ("clear error", "handled correctly"):
            shown.append(f"  [{kind}] {case.name}: {detail}")
    print(f"{len(CASES)} cases: " + ", ".join(f"{counts[k]} {k}" for k in classes))
    if "-v" in argv:
        print("\n".join(shown))
    return 0 if counts["clear error"] + counts["handled correctly"] == len(CASES) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
