"""MultiheadAttention (Vaswani et al. 2017) with PyTorch's arguments, parameter names and masks.

Composed from ops (``linear``, ``reshape``/``permute``, ``matmul``, ``softmax``, ``dropout``),
so autograd comes for free and a state dict moves to and from ``torch.nn.MultiheadAttention``
unchanged. Models that put attention on top of an RNN, and the Transformer layers
(:mod:`.transformer`), are built on it.
"""
from __future__ import annotations


import numpy as np

from ..autograd.device import as_device
from ..autograd.dtypes import as_dtype
from ..autograd.ops import cat
from ..autograd.tensor import Tensor
from ..autograd.dtypes import default_dtype
from ..validation import check_int, check_probability
from . import init
from .functional import _attend, _mask_bias, linear
from .linear import Linear
from .module import Module
from .parameter import Parameter


class MultiheadAttention(Module):
    """Attention over ``num_heads`` subspaces: concat_h(softmax(Q_h K_h^T / sqrt(D) + mask) V_h) W_o^T + b_o.

    Q = query W_q^T + b_q, K = key W_k^T + b_k, V = value W_v^T + b_v, each split into
    ``num_heads`` heads of D = embed_dim / num_heads features.

    Args:
        embed_dim : int > 0, E, divisible by ``num_heads``.
        num_heads : int > 0.
        dropout : probability of dropping an attention weight (training only).
        bias : learn ``in_proj_bias`` and ``out_proj.bias``.
        add_bias_kv : learn ``bias_k``, ``bias_v`` (1, 1, E), appended to the keys and values as
            one more position.
        add_zero_attn : append a zero key and value (after projection) as one more position.
        kdim, vdim : features of key and value (E by default); when either differs from E the
            projections are the separate ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim)
            and ``v_proj_weight`` (E, vdim), else one ``in_proj_weight`` (3E, E) holding W_q, W_k, W_v.
        batch_first : inputs and output are (N, L, E) rather than (L, N, E).
        device, dtype : PyTorch's factory arguments (the CPU; float32 by default).
        generator : optional ``np.random.Generator`` for the initialisation.

    Parameters: ``in_proj_weight`` (3E, E) or the three separate ones, ``in_proj_bias`` (3E,),
    ``out_proj`` a Linear(E, E), ``bias_k``/``bias_v``; absent ones are registered as None.
    Initialisation (PyTorch's): Xavier-uniform projections, zero biases, Xavier-normal bias_k/v,
    ``out_proj.weight`` as Linear.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None, dtype=None, generator=None):
        super().__init__()
        name = type(self).__name__
        embed_dim = check_int(name, "embed_dim", embed_dim)
        num_heads = check_int(name, "num_heads", num_heads)
        if embed_dim % num_heads:
            raise ValueError(
                f"{name}: embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads}); "
                f"each head gets embed_dim // num_heads features"
            )
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else check_int(name, "kdim", kdim)
        self.vdim = embed_dim if vdim is None else check_int(name, "vdim", vdim)
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout = check_probability(name, "dropout", dropout)
        self.batch_first, self.add_zero_attn = bool(batch_first), bool(add_zero_attn)
        as_device(device)
        dtype = as_dtype(dtype) if dtype is not None else default_dtype()
        E = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * E, E), dtype=dtype))
            for absent in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(absent, None)
        else:
            self.q_proj_weight = Parameter(np.empty((E, E), dtype=dtype))
            self.k_proj_weight = Parameter(np.empty((E, self.kdim), dtype=dtype))
            self.v_proj_weight = Parameter(np.empty((E, self.vdim), dtype=dtype))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(np.empty(3 * E, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(E, E, bias=bias, dtype=dtype, generator=generator)
        if add_bias_kv:
            self.bias_k = Parameter(np.empty((1, 1, E), dtype=dtype))
            self.bias_v = Parameter(np.empty((1, 1, E), dtype=dtype))
        else:
            self.register_parameter("bias_k", None)
            self.register_parameter("bias_v", None)
        self._reset_parameters(generator)

    def _reset_parameters(self, generator=None) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight, generator=generator)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w, generator=generator)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        for b in (self.bias_k, self.bias_v):
            if b is not None:
                init.xavier_normal_(b, generator=generator)

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True, attn_mask=None,
                average_attn_weights: bool = True, is_causal: bool = False):
        """Attend from ``query`` to ``key``/``value``; returns (output, weights or None).

        Args:
            query : (L, N, E), or (N, L, E) when ``batch_first``, or (L, E) unbatched.
            key : (S, N, kdim) / (N, S, kdim) / (S, kdim); value likewise with vdim.
            key_padding_mask : (N, S) or (S,) unbatched. bool: True marks a key to ignore
                (padding); float: added to the scores.
            need_weights : also return the attention weights (after dropout).
            attn_mask : (L, S), shared by the batch, or (N * num_heads, L, S). bool: True means
                *not* allowed to attend (the opposite of ``scaled_dot_product_attention``);
                float: added to the scores.
            average_attn_weights : average the returned weights over the heads.
            is_causal : a hint that ``attn_mask`` is the causal mask; the mask is required and
                is what is applied.

        Returns:
            output : shaped as ``query`` with E features.
            weights : (N, L, S) averaged, (N, num_heads, L, S) per head, without N unbatched;
                None unless ``need_weights``.

        A query whose every key is masked gets NaN when the weights are returned and zeros
        otherwise, as in PyTorch.
        """
        name = type(self).__name__
        batched = self._check_inputs(query, key, value, key_padding_mask, attn_mask)
        if is_causal and attn_mask is None:
            raise ValueError(
                f"{name}: is_causal=True is a hint that needs attn_mask; pass "
                "attn_mask=nn.Transformer.generate_square_subsequent_mask(L) as well"
            )
        if not batched:  # run as a batch of one, seq-first
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        batch_first = self.batch_first and batched
        seq_axis = 1 if batch_first else 0
        N = query.shape[1 - seq_axis]
        L, S = query.shape[seq_axis], key.shape[seq_axis]
        H, D, E = self.num_heads, self.head_dim, self.embed_dim
        dtype = query.dtype

        mask = _mask_bias(attn_mask, dtype, name, "attn_mask", true_means_keep=False)
        if mask is not None:  # (L, S) -> (1, 1, L, S); (N*H, L, S) -> (N, H, L, S)
            mask = mask.reshape((1, 1, L, S) if mask.ndim == 2 else (N, H, L, S))
        padding = _mask_bias(key_padding_mask, dtype, name, "key_padding_mask", true_means_keep=False)
        if padding is not None:
            padding = padding.reshape(N, 1, 1, S)

        q, k, v = self._in_projection(query, key, value)  # each (L|S, N, E) or (N, L|S, E)
        if self.bias_k is not None:
            bias_shape = (N, 1, E) if batch_first else (1, N, E)
            k = cat([k, self.bias_k.reshape(1, 1, E).expand(*bias_shape)], dim=seq_axis)
            v = cat([v, self.bias_v.reshape(1, 1, E).expand(*bias_shape)], dim=seq_axis)
            mask, padding, S = _pad_key(mask), _pad_key(padding), S + 1
        q, k, v = (self._split_heads(t, batch_first) for t in (q, k, v))  # (N, H, L|S, D)
        if self.add_zero_attn:
            zeros = np.zeros((N, H, 1, D), dtype=dtype)
            k, v = cat([k, zeros], dim=2), cat([v, zeros], dim=2)
            mask, padding, S = _pad_key(mask), _pad_key(padding), S + 1
        if mask is None or padding is None:
            bias = padding if mask is None else mask
        else:
            bias = padding + mask if isinstance(padding, Tensor) else mask + padding

        dropout_p = self.dropout if self.training else 0.0
        out, weights = _attend(q, k, v, bias, dropout_p, zero_masked_rows=not need_weights)  # (N, H, L, D)
        if batch_first:
            out = out.permute(0, 2, 1, 3).reshape(N, L, E)
        else:
            out = out.permute(2, 0, 1, 3).reshape(L, N, E)
        out = linear(out, self.out_proj.weight, self.out_proj.bias)  # as PyTorch: out_proj's hooks do not run
        if not batched:
            out = out.squeeze(1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = weights.mean(dim=1)  # (N, L, S)
        return out, (weights if batched else weights.squeeze(0))

    def _in_projection(self, query, key, value) -> tuple:
        """Q, K, V as one product when query, key and value are one tensor (self-attention)."""
        E, b = self.embed_dim, self.in_proj_bias
        bq = bk = bv = None
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:
                return tuple(linear(query, w, b).split(E, dim=-1))
            wq, wk, wv = w[:E], w[E:2 * E], w[2 * E:]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        if b is not None:
            bq, bk, bv = b[:E], b[E:2 * E], b[2 * E:]
        return linear(query, wq, bq), linear(key, wk, bk), linear(value, wv, bv)

    def _split_heads(self, x, batch_first: bool):
        """(len, N, E) or (N, len, E) -> (N, H, len, D)."""
        H, D = self.num_heads, self.head_dim
        if batch_first:
            n, length = x.shape[:2]
            return x.reshape(n, length, H, D).permute(0, 2, 1, 3)
        length, n = x.shape[:2]
        return x.reshape(length, n, H, D).permute(1, 2, 0, 3)

    def _check_inputs(self, query, key, value, key_padding_mask, attn_mask) -> bool:
        """Check every shape against the others; True when the input is batched (3-D)."""
        name = type(self).__name__
        for arg, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise TypeError(f"{name}: {arg} must be a Tensor, got {type(t).__name__}")
        if query.ndim not in (2, 3):
            raise ValueError(
                f"{name}: query must be 3-D (batched) or 2-D (unbatched), got shape {query.shape}"
            )
        if key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(
                f"{name}: key and value must have query's {query.ndim} dims, got query {query.shape}, "
                f"key {key.shape} and value {value.shape}"
            )
        for arg, t, size in (("query", query, self.embed_dim), ("key", key, self.kdim), ("value", value, self.vdim)):
            if t.shape[-1] != size:
                raise ValueError(f"{name}: expected {arg} to end in {size} features, got shape {t.shape}")
        batched = query.ndim == 3
        seq_axis = 1 if self.batch_first and batched else 0
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(
                f"{name}: key {key.shape} and value {value.shape} must agree on every dim but the last"
            )
        if batched and query.shape[1 - seq_axis] != key.shape[1 - seq_axis]:
            raise ValueError(
                f"{name}: query {query.shape} and key {key.shape} have different batch sizes "
                f"(batch_first={self.batch_first})"
            )
        L, S = query.shape[seq_axis], key.shape[seq_axis]
        N = query.shape[1 - seq_axis] if batched else None
        if key_padding_mask is not None:
            expected = (N, S) if batched else (S,)
            if tuple(key_padding_mask.shape) != expected:
                raise ValueError(
                    f"{name}: key_padding_mask of shape {tuple(key_padding_mask.shape)} does not fit key of "
                    f"shape {key.shape}: expected {expected} ({'(N, S)' if batched else '(S,)'})"
                )
        if attn_mask is not None:
            shape = tuple(attn_mask.shape)
            heads = self.num_heads * (N if batched else 1)
            if shape not in ((L, S), (heads, L, S)):
                raise ValueError(
                    f"{name}: attn_mask of shape {shape} does not fit query {query.shape} and key {key.shape}: "
                    f"expected (L, S) = {(L, S)} or (N * num_heads, L, S) = {(heads, L, S)}"
                )
        return batched


def _pad_key(mask):
    """A mask with one more key position (a zero bias: the appended key always takes part)."""
    if mask is None:
        return None
    if isinstance(mask, Tensor):
        return cat([mask, np.zeros(mask.shape[:-1] + (1,), dtype=mask.dtype)], dim=-1)
    return np.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, 1)])
