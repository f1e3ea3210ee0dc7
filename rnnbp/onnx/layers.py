"""Converters of the feed-forward modules: Linear, Embedding, activations, Dropout, LayerNorm, Flatten,
Identity, Sequential. Each takes (module, g, input Value) and returns the output Value."""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from .errors import ExportError
from .registry import converts


def _check_last_axis(g, x, size: int, module, what: str) -> None:
    shape = g.shape(x)
    if shape and isinstance(shape[-1], int) and shape[-1] != size:
        raise ExportError(f"rnnbp.onnx.export: {type(module).__name__} {g.where} expects {what} {size} in "
                          f"the last axis, got an input of shape {shape}")


@converts(nn.Linear)
def linear(m, g, x):
    """y = x W^T + b as MatMul (any leading axes) and Add."""
    _check_last_axis(g, x, m.in_features, m, "in_features")
    y = g.op("MatMul", x, g.param(m, "weight", transform=lambda w: w.T, key="T"))  # (*, H_out)
    return y if m.bias is None else g.op("Add", y, g.param(m, "bias"))


@converts(nn.Embedding)
def embedding(m, g, indices):
    return g.op("Gather", g.param(m, "weight"), indices, axis=0)  # (*, D)


@converts(nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)
def identity(m, g, x, *_args, **_kwargs):
    """Identity, and dropout as exported (eval mode: the identity)."""
    return x


@converts(nn.ReLU)
def relu(m, g, x):
    return g.op("Relu", x)


@converts(nn.Tanh)
def tanh(m, g, x):
    return g.op("Tanh", x)


@converts(nn.Sigmoid)
def sigmoid(m, g, x):
    return g.op("Sigmoid", x)


@converts(nn.LeakyReLU)
def leaky_relu(m, g, x):
    return g.op("LeakyRelu", x, alpha=float(m.negative_slope))


@converts(nn.Softmax)
def softmax(m, g, x):
    return g.op("Softmax", x, axis=int(m.dim))


@converts(nn.LogSoftmax)
def log_softmax(m, g, x):
    return g.op("LogSoftmax", x, axis=int(m.dim))


@converts(nn.GELU)
def gelu(m, g, x):
    """ONNX's Gelu from opset 20; before, its formula: 0.5 x (1 + erf(x / sqrt 2)), or the tanh form."""
    if g.opset >= 20:
        return g.op("Gelu", x, approximate=m.approximate)
    dtype = g.dtype(x)
    half = g.op("Mul", x, g.constant(0.5, dtype=dtype))
    if m.approximate == "tanh":
        cube = g.op("Mul", g.op("Mul", x, x), x)
        inner = g.op("Add", x, g.op("Mul", cube, g.constant(0.044715, dtype=dtype)))
        core = g.op("Tanh", g.op("Mul", inner, g.constant(math.sqrt(2 / math.pi), dtype=dtype)))
    else:
        core = g.op("Erf", g.op("Mul", x, g.constant(1 / math.sqrt(2), dtype=dtype)))
    return g.op("Mul", half, g.op("Add", core, g.constant(1.0, dtype=dtype)))


@converts(nn.Softplus)
def softplus(m, g, x):
    """PyTorch's rule: log(1 + exp(beta x)) / beta, and x itself where beta x > threshold."""
    dtype = g.dtype(x)
    bx = x if m.beta == 1 else g.op("Mul", x, g.constant(m.beta, dtype=dtype))
    soft = g.op("Softplus", bx)
    if m.beta != 1:
        soft = g.op("Div", soft, g.constant(m.beta, dtype=dtype))
    linear_part = g.op("Greater", bx, g.constant(m.threshold, dtype=dtype))
    return g.op("Where", linear_part, x, soft)


@converts(nn.LayerNorm)
def layer_norm(m, g, x):
    """ONNX LayerNormalization over the last len(normalized_shape) axes."""
    k = len(m.normalized_shape)
    shape = g.shape(x)
    if shape is not None and all(isinstance(d, int) for d in shape[len(shape) - k:]) \
            and tuple(shape[len(shape) - k:]) != tuple(m.normalized_shape):
        raise ExportError(f"rnnbp.onnx.export: LayerNorm {g.where} normalizes {m.normalized_shape} but the "
                          f"input has shape {shape}")
    if m.weight is not None:
        scale = g.param(m, "weight")
    else:
        scale = g.constant(np.ones(m.normalized_shape, dtype=g.dtype(x)), name="ones")
    bias = g.param(m, "bias") if m.bias is not None else None
    return g.op("LayerNormalization", x, scale, bias, axis=-k, epsilon=float(m.eps))


@converts(nn.Flatten)
def flatten(m, g, x):
    """Reshape to the input's shape with axes start_dim..end_dim merged (dynamic axes kept dynamic)."""
    rank = g.rank(x)
    start, end = m.start_dim % rank if rank else 0, m.end_dim % rank if rank else 0
    if start >= end:
        return x
    parts = []
    if start > 0:
        parts.append(g.op("Shape", x, start=0, end=start))
    parts.append(g.ints([-1]))
    if end + 1 < rank:
        parts.append(g.op("Shape", x, start=end + 1))
    return g.reshape(x, g.concat(parts, axis=0))


@converts(nn.Sequential)
def sequential(m, g, x):
    for child in m:
        x = g.module(child, x)
    return x
