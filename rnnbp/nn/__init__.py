"""Layers, losses and initialisation, with PyTorch's names, shapes and weight layouts."""
from . import functional, init, utils
from .activation import GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Softplus, Tanh
from .attention import MultiheadAttention
from .container import ModuleList, Sequential
from .dropout import Dropout, Dropout1d, Dropout2d
from .fixed_point import FixedPoint, FixedPointError, FixedPointRNNCell, NotConvergedError
from .layernorm_lstm import LayerNormLSTMCell
from .linear import Flatten, Identity, Linear
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss
from .module import Module
from .normalization import BatchNorm1d, LayerNorm
from .parameter import Parameter
from .recurrent import Recurrent
from .rnn import GRU, LSTM, RNN, RNNBase
from .rnn_cells import GRUCell, LSTMCell, RNNCell
from .sparse import Embedding
from .tree import ChildSumTreeLSTMCell, NaryTreeLSTMCell, Recursive, RecursiveRNN, RecursiveRNNCell, TreeLSTM
from .transformer import (
    Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer,
)
