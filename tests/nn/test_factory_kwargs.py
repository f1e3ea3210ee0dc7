"""PyTorch's factory keywords on the layers (``device=``, Embedding's options and ``from_pretrained``):
the CPU is taken, anything else refused by name."""
import numpy as np
import pytest

import rnnbp
from rnnbp import nn
from rnnbp.autograd.device import DeviceError

LAYERS = {
    "Linear": lambda **kw: nn.Linear(3, 2, **kw),
    "LayerNorm": lambda **kw: nn.LayerNorm(3, **kw),
    "Embedding": lambda **kw: nn.Embedding(5, 3, **kw),
    "RNN": lambda **kw: nn.RNN(3, 2, **kw),
    "LSTM": lambda **kw: nn.LSTM(3, 2, **kw),
    "GRU": lambda **kw: nn.GRU(3, 2, **kw),
    "RNNCell": lambda **kw: nn.RNNCell(3, 2, **kw),
    "LSTMCell": lambda **kw: nn.LSTMCell(3, 2, **kw),
    "GRUCell": lambda **kw: nn.GRUCell(3, 2, **kw),
    "LayerNormLSTM": lambda **kw: nn.LayerNormLSTM(3, 2, **kw),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_device_cpu_is_taken_and_cuda_refused(name):
    layer = LAYERS[name](device="cpu", dtype=rnnbp.float64)
    assert all(p.dtype == np.float64 for p in layer.parameters())
    LAYERS[name](device=rnnbp.device("cpu"))
    with pytest.raises(DeviceError, match="device 'cuda' is not available"):
        LAYERS[name](device="cuda")


def test_embedding_options_only_at_their_defaults():
    nn.Embedding(5, 3, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False)
    for kw in (dict(max_norm=1.0), dict(scale_grad_by_freq=True), dict(sparse=True)):
        name = next(iter(kw))
        with pytest.raises(ValueError, match=f"Embedding: {name}=.* is not supported on rnnbp"):
            nn.Embedding(5, 3, **kw)


def test_embedding_from_pretrained_copies_and_freezes():
    table = np.arange(6.0).reshape(3, 2)
    frozen = nn.Embedding.from_pretrained(rnnbp.tensor(table))
    assert not frozen.weight.requires_grad and frozen(rnnbp.tensor([2, 0])).tolist() == [[4.0, 5.0], [0.0, 1.0]]
    table[0, 0] = 99.0  # a copy: the caller's array is not the weight
    assert frozen.weight.numpy()[0, 0] == 0.0
    trained = nn.Embedding.from_pretrained(table, freeze=False, padding_idx=1)
    out = trained(rnnbp.tensor([0, 1])).sum()
    out.backward()
    assert trained.weight.requires_grad and trained.padding_idx == 1
    np.testing.assert_array_equal(trained.weight.grad.numpy(), [[1, 1], [0, 0], [0, 0]])
    with pytest.raises(ValueError, match=r"from_pretrained: embeddings must be 2-D"):
        nn.Embedding.from_pretrained(np.ones(3))
