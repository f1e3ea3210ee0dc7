"""The Transformer (Vaswani et al. 2017) as PyTorch lays it out: encoder and decoder layers, their
stacks, and ``Transformer``, with PyTorch's arguments, submodule names and masks.

Submodule names match ``torch.nn`` (``layers.0.self_attn.in_proj_weight``, ``linear1``,
``norm1``, ...), so a state dict moves between the two unchanged; everything is composed from
:class:`MultiheadAttention`, :class:`Linear`, :class:`LayerNorm` and :class:`Dropout`, so
autograd comes for free. PyTorch's inference fast paths and nested tensors have no counterpart:
``enable_nested_tensor`` is accepted and ignored.

Masks, as in PyTorch: ``*_mask`` is (L, S) or (N * nhead, L, S), bool True meaning *not*
allowed to attend, or float, added to the scores; ``*_key_padding_mask`` is (N, S) ((S,)
unbatched), bool True marking padding. ``Transformer.generate_square_subsequent_mask(L)`` gives
the causal float mask.
"""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np

from ..autograd.device import as_device
from ..autograd.dtypes import as_dtype
from ..autograd.tensor import Tensor
from ..autograd.dtypes import default_dtype
from ..validation import check_int, check_probability
from . import functional as F
from . import init
from .activation import GELU, ReLU
from .attention import MultiheadAttention
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .normalization import LayerNorm


def _activation_fn(owner: str, activation) -> Callable:
    """"relu" / "gelu" as F.relu / F.gelu; a callable (function or Module) as it is."""
    if isinstance(activation, str):
        if activation == "relu":
            return F.relu
        if activation == "gelu":
            return F.gelu
        raise ValueError(f"{owner}: activation should be 'relu', 'gelu' or a callable, got {activation!r}")
    if not callable(activation):
        raise TypeError(f"{owner}: activation should be 'relu', 'gelu' or a callable, got {type(activation).__name__}")
    return activation


def _relu_or_gelu(activation) -> int:
    # PyTorch's flag (1 relu, 2 gelu, 0 other); kept for code that reads it.
    if activation is F.relu or isinstance(activation, ReLU):
        return 1
    if activation is F.gelu or isinstance(activation, GELU):
        return 2
    return 0


def _factory(device, dtype):
    as_device(device)
    return as_dtype(dtype) if dtype is not None else default_dtype()


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual connection and LayerNorm.

    norm_first=False (post-norm, the paper's):  x = norm1(x + SA(x));  x = norm2(x + FF(x))
    norm_first=True (pre-norm):                 x = x + SA(norm1(x));  x = x + FF(norm2(x))
    where SA(x) = dropout1(self_attn(x, x, x)) and FF(x) = dropout2(linear2(dropout(act(linear1(x))))).

    Args:
        d_model : int > 0, E. nhead : int > 0 dividing d_model.
        dim_feedforward : hidden width of the feed-forward block (2048).
        dropout : probability for every dropout (0.1), attention weights included.
        activation : "relu", "gelu" or a callable (a function or a Module).
        layer_norm_eps, batch_first, norm_first, bias : as in PyTorch.
        device, dtype, generator : factory arguments and an optional init generator.

    Shape: src (S, N, E), (N, S, E) when batch_first, or (S, E) -> the same.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable = F.relu, layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None, generator=None):
        super().__init__()
        name = type(self).__name__
        dim_feedforward = check_int(name, "dim_feedforward", dim_feedforward)
        dropout = check_probability(name, "dropout", dropout)
        dtype = _factory(device, dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype, generator=generator)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype, generator=generator)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype, generator=generator)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation_fn(name, activation)
        self.activation_relu_or_gelu = _relu_or_gelu(self.activation)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        """One encoder layer over ``src``; masks as in :class:`MultiheadAttention`."""
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerDecoderLayer(Module):
    """Self-attention, attention to the encoder's ``memory``, then feed-forward; each residual + LayerNorm.

    norm_first=False:  x = norm1(x + SA(x)); x = norm2(x + MHA(x, memory)); x = norm3(x + FF(x))
    norm_first=True:   x = x + SA(norm1(x)); x = x + MHA(norm2(x), memory); x = x + FF(norm3(x))
    Arguments as :class:`TransformerEncoderLayer`.

    Shape: tgt (T, N, E) (or (N, T, E), or (T, E)), memory (S, N, E) likewise -> tgt's shape.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable = F.relu, layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None, generator=None):
        super().__init__()
        name = type(self).__name__
        dim_feedforward = check_int(name, "dim_feedforward", dim_feedforward)
        dropout = check_probability(name, "dropout", dropout)
        dtype = _factory(device, dtype)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first, bias=bias,
                                            dtype=dtype, generator=generator)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=batch_first,
                                                 bias=bias, dtype=dtype, generator=generator)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype, generator=generator)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype, generator=generator)
        self.norm_first = bool(norm_first)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation_fn(name, activation)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal: bool = False, memory_is_causal: bool = False):
        """One decoder layer: ``tgt`` attends to itself (``tgt_mask``) and to ``memory`` (``memory_mask``)."""
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           is_causal=is_causal, need_weights=False)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal):
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                                is_causal=is_causal, need_weights=False)[0]
        return self.dropout2(x)

    def _ff_block(self, x):
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))


def _clones(owner: str, layer: Module, num_layers: int) -> ModuleList:
    """``num_layers`` deep copies of ``layer`` (same initial weights, as in PyTorch)."""
    if not isinstance(layer, Module):
        raise TypeError(f"{owner}: expected a layer Module to copy, got {type(layer).__name__}")
    num_layers = check_int(owner, "num_layers", num_layers)
    return ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])


class TransformerEncoder(Module):
    """A stack of ``num_layers`` copies of ``encoder_layer`` (submodules ``layers.0`` ...), then ``norm``.

    Every copy starts with the same weights, as in PyTorch. ``enable_nested_tensor`` and
    ``mask_check`` are accepted for compatibility; rnnbp has no nested tensors.
    """

    def __init__(self, encoder_layer: Module, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True):
        super().__init__()
        self.layers = _clones(type(self).__name__, encoder_layer, num_layers)
        self.num_layers = len(self.layers)
        self.norm = norm
        self.enable_nested_tensor, self.use_nested_tensor, self.mask_check = enable_nested_tensor, False, mask_check

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal: bool | None = None):
        """Run ``src`` through every layer with the same masks. ``is_causal=None`` detects a causal ``mask``."""
        is_causal = _detect_is_causal_mask(mask, is_causal, _seq_len(src, self.layers[0]))
        output = src
        for layer in self.layers:
            output = layer(output, src_mask=mask, is_causal=is_causal, src_key_padding_mask=src_key_padding_mask)
        return output if self.norm is None else self.norm(output)


class TransformerDecoder(Module):
    """A stack of ``num_layers`` copies of ``decoder_layer`` (``layers.0`` ...), each attending to
    ``memory``, then ``norm``."""

    def __init__(self, decoder_layer: Module, num_layers: int, norm: Module | None = None):
        super().__init__()
        self.layers = _clones(type(self).__name__, decoder_layer, num_layers)
        self.num_layers = len(self.layers)
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal: bool | None = None, memory_is_causal: bool = False):
        """Run ``tgt`` through every layer against ``memory``. ``tgt_is_causal=None`` detects a causal ``tgt_mask``."""
        tgt_is_causal = _detect_is_causal_mask(tgt_mask, tgt_is_causal, _seq_len(tgt, self.layers[0]))
        output = tgt
        for layer in self.layers:
            output = layer(output, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                           tgt_key_padding_mask=tgt_key_padding_mask,
                           memory_key_padding_mask=memory_key_padding_mask,
                           tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)
        return output if self.norm is None else self.norm(output)


class Transformer(Module):
    """Encoder-decoder Transformer: ``encoder`` (a TransformerEncoder with a final LayerNorm) and
    ``decoder`` (a TransformerDecoder with a final LayerNorm), PyTorch's layout.

    Args:
        d_model (512), nhead (8), num_encoder_layers (6), num_decoder_layers (6),
        dim_feedforward (2048), dropout (0.1), activation (relu), layer_norm_eps, batch_first,
        norm_first, bias : as the layers take them.
        custom_encoder, custom_decoder : Modules used instead of the built stacks.
        device, dtype, generator : factory arguments and an optional init generator.

    Every weight matrix (every parameter with more than one dim) is re-drawn Xavier-uniform at
    construction, as in PyTorch. Shape: src (S, N, E), tgt (T, N, E) (batch first or unbatched
    likewise) -> (T, N, E).
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str | Callable = F.relu, custom_encoder: Module | None = None,
                 custom_decoder: Module | None = None, layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device=None, dtype=None, generator=None):
        super().__init__()
        dtype = _factory(device, dtype)
        layer_args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps, batch_first,
                      norm_first, bias)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(
                TransformerEncoderLayer(*layer_args, dtype=dtype, generator=generator), num_encoder_layers,
                LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(
                TransformerDecoderLayer(*layer_args, dtype=dtype, generator=generator), num_decoder_layers,
                LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        self._reset_parameters(generator)
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, src_is_causal: bool | None = None,
                tgt_is_causal: bool | None = None, memory_is_causal: bool = False):
        """Encode ``src`` into memory, then decode ``tgt`` against it; masks as the layers take them."""
        name = type(self).__name__
        batch_axis = 0 if self.batch_first else 1
        if src.ndim == 3 and (tgt.ndim != 3 or src.shape[batch_axis] != tgt.shape[batch_axis]):
            raise ValueError(
                f"{name}: src of shape {src.shape} and tgt of shape {tgt.shape} must have the same batch size "
                f"(dim {batch_axis}, batch_first={self.batch_first})"
            )
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ValueError(
                f"{name}: src {src.shape} and tgt {tgt.shape} must both end in d_model = {self.d_model} features"
            )
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
        """The (sz, sz) causal float mask: -inf above the diagonal (future positions), 0 elsewhere."""
        return _generate_square_subsequent_mask(sz, device, dtype)

    def _reset_parameters(self, generator=None) -> None:
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p, generator=generator)


def _generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
    sz = check_int("generate_square_subsequent_mask", "sz", sz)
    dtype = _factory(device, dtype)
    if dtype.kind != "f":
        raise TypeError(f"generate_square_subsequent_mask: dtype must be floating (the mask holds -inf), got {dtype}")
    return Tensor(np.triu(np.full((sz, sz), -np.inf, dtype=dtype), k=1))


def _seq_len(x, first_layer: Module) -> int:
    attn = getattr(first_layer, "self_attn", None)
    batch_first = getattr(attn, "batch_first", False)
    return x.shape[0] if x.ndim == 2 or not batch_first else x.shape[1]


def _detect_is_causal_mask(mask, is_causal: bool | None, size: int) -> bool:
    """``is_causal`` if given; else whether ``mask`` equals the (size, size) causal float mask (PyTorch's rule)."""
    if is_causal is not None:
        return bool(is_causal)
    if mask is None or tuple(mask.shape) != (size, size):
        return False
    data = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    if data.dtype.kind != "f":
        return False
    return bool(np.array_equal(data, np.triu(np.full((size, size), -np.inf), k=1)))
