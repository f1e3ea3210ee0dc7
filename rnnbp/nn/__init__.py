"""Layers, losses and initialisation, with PyTorch's names, shapes and weight layouts."""
from . import functional, init, utils
from .activation import ELU, GELU, LeakyReLU, LogSoftmax, PReLU, ReLU, Sigmoid, SiLU, Softmax, Softplus, Tanh
from .attention import MultiheadAttention
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .ctc import CTCLoss
from .dropout import Dropout, Dropout1d, Dropout2d
from .linear import Flatten, Identity, Linear
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss
from .loss import GaussianNLLLoss, KLDivLoss, PoissonNLLLoss
from .module import Module
from .normalization import BatchNorm1d, LayerNorm, RMSNorm
from .parameter import Parameter
from .recurrent import (GRU, LSTM, RNN, GRUCell, LayerNormGRU, LayerNormGRUCell, LayerNormLSTM, LayerNormLSTMCell,
                        LSTMCell, Recurrent, RNNBase,
                        RNNCell)
from .recursive import (ChildSumTreeLSTMCell, FixedPoint, FixedPointError, FixedPointRNNCell, NaryTreeLSTMCell,
                        NotConvergedError, Recursive, RecursiveRNN, RecursiveRNNCell, TreeLSTM)
from .sparse import Embedding
from .transformer import (
    Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer,
)
