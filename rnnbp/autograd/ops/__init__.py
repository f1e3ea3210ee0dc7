"""The ops: differentiable ``Function``s grouped by kind, and their functional face.

* ``elementwise``, ``reduce``, ``shape``, ``linalg``, ``nn``, ``loss``, ``embedding``: the
  ``Function`` classes, each with its forward and backward side by side;
* ``promotion``: the dtype policy every op applies to its operands (PyTorch's rules);
* ``functions``: ``rnnbp.exp``, ``rnnbp.cat``, ... — what ``Tensor`` methods call.
"""
from .functions import (  # noqa: F401  (re-exported)
    abs, add, all, amax, any, argmax, argmin, argsort, bitwise, bitwise_and, bitwise_not, bitwise_or,
    bitwise_xor, cat, ceil, einsum, prod, chunk, clamp, clip, clone, fmod, logical, logical_and, logical_not, logical_or,
    logical_xor, log1p, nonzero, remainder, elu, silu,
    compare, concatenate, cos, div, dropout, exp, expand, expand_as, flatten, flip, floor, gather, gelu,
    getitem, index_arrays, index_select, isfinite, isinf, isnan, leaky_relu, linear, log,
    log_softmax, logsumexp, masked_fill, matmul, max, maximum, mean, min, minimum, mul, narrow, neg,
    norm, permute, pow, relu, repeat, reshape, round, rsqrt, setitem, sigmoid, sign, sin, softmax,
    softplus, sort, split, sqrt, square, squeeze, stack, std, sub, sum, tanh, topk, transpose, tril,
    triu, unsqueeze, var, view, where,
)
from .counting import bincount, cumsum, index_add, one_hot, roll, scatter_add  # noqa: F401
from .scatter import argwhere, bucketize, index_fill, nan_to_num, scatter, searchsorted, select  # noqa: F401
from .cumulative import cummax, cummin, cumprod, logcumsumexp  # noqa: F401
from .distance import cdist  # noqa: F401
from .composed import (  # noqa: F401  (re-exported)
    concat, count_nonzero, diag, diff, dot, kthvalue, quantile, unique_consecutive, hstack, isclose, masked_select, median, movedim, outer, repeat_interleave, tile, unflatten,
    unique, vstack, true_divide, lerp, dist,
)
from .promotion import cast  # noqa: F401
