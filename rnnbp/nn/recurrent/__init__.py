"""The recurrent family: everything that runs a cell over time lives here.

* ``layers``          nn.RNN, nn.LSTM, nn.GRU: PyTorch's flat parameters, fused kernels
* ``cells``           nn.RNNCell, nn.LSTMCell, nn.GRUCell and their one-step functions
* ``layernorm_lstm``, ``layernorm_gru``  nn.LayerNormLSTMCell, nn.LayerNormGRUCell (composed from primitive ops)
* ``layernorm_layers``  nn.LayerNormLSTM, nn.LayerNormGRU: stacks of those cells run as fused kernels
* ``custom``          nn.Recurrent: any user cell in the same driver
* ``traced``, ``trace/``  nn.Recurrent's fast path: a cell's step recorded once and replayed
* ``regularization``  variational dropout, zoneout and DropConnect inside the fused layers
* ``driver``          what every stacked recurrent module shares: layers, directions,
                      dropout, initial states, lengths and packing
* ``inference``       the driver on bare arrays when no gradient can be asked for (streaming, no_grad)
* ``tape``            the composed reference path: a one-step cell run over time on the tape
* ``kernels/``        the fused layers (one autograd node per layer and direction) and
                      their step arithmetic (NumPy reference, numba compiled)
* ``packing``         PackedSequence, padding and packing (PyTorch's ``nn.utils.rnn``)
* ``probes``          recording dL/dh_t at every step (the gradient-flow probe)

Trees and fixed points, which recur over structure rather than time, live in ``nn/recursive/``.
"""
from .cells import GRUCell, LSTMCell, RNNCell
from .custom import Recurrent
from .layernorm_gru import LayerNormGRUCell
from .layernorm_layers import LayerNormGRU, LayerNormLSTM
from .layernorm_lstm import LayerNormLSTMCell
from .layers import GRU, LSTM, RNN, RNNBase
from .regularization import LayerMasks
from .packing import PackedSequence, pack_padded_sequence, pack_sequence, pad_packed_sequence, pad_sequence
from .probes import StateGradProbe, record_state_grads

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "LayerMasks", "LayerNormGRU", "LayerNormGRUCell", "LayerNormLSTM", "LayerNormLSTMCell", "PackedSequence", "RNN", "RNNBase", "RNNCell",
           "Recurrent", "StateGradProbe", "pack_padded_sequence", "pack_sequence", "pad_packed_sequence",
           "pad_sequence", "record_state_grads"]
