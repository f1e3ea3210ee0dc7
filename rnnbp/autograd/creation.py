"""Tensor factories with PyTorch's signatures: ``tensor``, ``zeros``, ``arange``, ``randn``, ``randint``, ...

Each takes ``dtype`` (float32 by default for floating results) and, for scripts written for
PyTorch, ``device`` (the CPU; anything else raises ``DeviceError``). Random ones draw from
``generator`` or the default generator that ``rnnbp.manual_seed`` reseeds.
"""
from __future__ import annotations

import numpy as np

from . import random as _random
from .device import as_device
from .dtypes import as_dtype
from .function import Function
from .tensor import Tensor
from .dtypes import default_dtype


def _dtype(dtype, default=None) -> np.dtype:
    """``dtype`` as given, else ``default``, else the default floating dtype."""
    if dtype is not None:
        return as_dtype(dtype)
    return default_dtype() if default is None else default


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        return tuple(size[0])
    return tuple(size)


def _leaf(array: np.ndarray, requires_grad: bool, device) -> Tensor:
    as_device(device)
    return Tensor(array, requires_grad=requires_grad)


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of ``data`` (Python floats become the default dtype, float32 unless set)."""
    as_device(device)
    t = Tensor(data, dtype=dtype)
    t._data = np.array(t._data, copy=True)
    as_dtype(t._data.dtype)  # refuses complex (and object) data, naming the dtype
    return t.requires_grad_(requires_grad) if requires_grad else t


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a Tensor, sharing memory with an ndarray or Tensor of the right dtype."""
    as_device(device)
    if isinstance(data, Tensor) and (dtype is None or as_dtype(dtype) == data.dtype):
        return data
    t = Tensor(data, dtype=dtype)
    as_dtype(t._data.dtype)  # refuses complex (and object) data, naming the dtype
    return t


def from_numpy(array: np.ndarray) -> Tensor:
    """A Tensor sharing memory with ``array`` (its dtype kept: float64 stays float64)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(array).__name__}")
    as_dtype(array.dtype)
    return Tensor(array)


def is_tensor(obj) -> bool:
    """Whether ``obj`` is a Tensor (or Parameter)."""
    return isinstance(obj, Tensor)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.zeros(_size(size), dtype=_dtype(dtype)), requires_grad, device)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.ones(_size(size), dtype=_dtype(dtype)), requires_grad, device)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Zeros (rnnbp never hands out uninitialised memory)."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` everywhere; the dtype follows the value (bool, int64, float32) unless given.

    As ``torch.full``: a Python bool gives bool, a Python or NumPy integer int64, anything else
    (floats, NumPy float64 included) float32.
    """
    if dtype is None:
        if isinstance(fill_value, bool):
            dtype = np.bool_
        elif isinstance(fill_value, (int, np.integer)):
            dtype = np.int64
        else:
            dtype = default_dtype()
    return _leaf(np.full(tuple(size), fill_value, dtype=as_dtype(dtype)), requires_grad, device)


def zeros_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return zeros(t.shape, dtype=dtype or t.dtype, device=device, requires_grad=requires_grad)


def ones_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return ones(t.shape, dtype=dtype or t.dtype, device=device, requires_grad=requires_grad)


def empty_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return zeros_like(t, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(t: Tensor, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return full(t.shape, fill_value, dtype=dtype or t.dtype, device=device, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive) by ``step``: int64 for integer arguments, else float32."""
    data = np.arange(start, end, step) if end is not None else np.arange(0, start, step)
    if dtype is None:
        dtype = np.int64 if data.dtype.kind in "iu" else default_dtype()
    return _leaf(data.astype(as_dtype(dtype)), requires_grad, device)


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    if steps < 0:
        raise ValueError(f"linspace: number of steps must be non-negative, got {steps}")
    return _leaf(np.linspace(start, end, steps).astype(_dtype(dtype)), requires_grad, device)


def logspace(start, end, steps: int, base: float = 10.0, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """``steps`` values from ``base ** start`` to ``base ** end``, evenly spaced in the exponent."""
    if steps < 0:
        raise ValueError(f"logspace: number of steps must be non-negative, got {steps}")
    return _leaf(np.logspace(start, end, steps, base=base).astype(_dtype(dtype)), requires_grad, device)


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    return _leaf(np.eye(n, m, dtype=_dtype(dtype)), requires_grad, device)


def randn(*size, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Standard normal samples from ``generator`` (default: the one ``manual_seed`` sets)."""
    rng = _random.get_generator(generator)
    return _leaf(rng.standard_normal(_size(size)).astype(_dtype(dtype)), requires_grad, device)


def rand(*size, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    """Uniform [0, 1) samples from ``generator`` (default: the one ``manual_seed`` sets)."""
    rng = _random.get_generator(generator)
    return _leaf(rng.random(_size(size)).astype(_dtype(dtype)), requires_grad, device)


def randn_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    return randn(t.shape, dtype=dtype or t.dtype, device=device, requires_grad=requires_grad, generator=generator)


def rand_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False, generator=None) -> Tensor:
    return rand(t.shape, dtype=dtype or t.dtype, device=device, requires_grad=requires_grad, generator=generator)


def randint(*args, low=None, high=None, size=None, dtype=None, device=None, generator=None,
            requires_grad: bool = False) -> Tensor:
    """Integers drawn uniformly from [low, high): ``randint(high, size)``, ``randint(low, high, size)``,
    or with ``low=``, ``high=``, ``size=`` keywords (``low`` defaults to 0).

    int64 unless ``dtype`` is given, as ``torch.randint``.
    """
    bounds = list(args)
    if size is None:
        if not bounds:
            raise TypeError("randint: missing the size argument")
        size = bounds.pop()
    if high is None:
        if not bounds:
            raise TypeError("randint: missing the high argument (randint(high, size) or randint(low, high, size))")
        high = bounds.pop()
    if low is None:
        low = bounds.pop() if bounds else 0
    if bounds:
        raise TypeError(f"randint: expected (high, size) or (low, high, size), got {len(args)} positional arguments "
                        "and more bounds than that")
    if high <= low:
        raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
    size = tuple(size) if isinstance(size, (tuple, list)) else (size,)
    rng = _random.get_generator(generator)
    return _leaf(rng.integers(low, high, size).astype(_dtype(dtype, np.dtype(np.int64))), requires_grad, device)


def randperm(n: int, dtype=None, device=None, generator=None) -> Tensor:
    """A random permutation of 0..n-1 (int64)."""
    rng = _random.get_generator(generator)
    return _leaf(rng.permutation(n).astype(_dtype(dtype, np.dtype(np.int64))), False, device)


def multinomial(input, num_samples: int, replacement: bool = False, generator=None) -> Tensor:
    """Indices drawn with probabilities proportional to the rows of ``input`` (int64).

    Shape: input (C,) or (N, C) of non-negative weights -> (num_samples,) or (N, num_samples).
    Without replacement, each row needs at least ``num_samples`` nonzero weights.
    """
    weights = np.asarray(input._data if isinstance(input, Tensor) else input, dtype=np.float64)
    if weights.ndim not in (1, 2):
        raise ValueError(f"multinomial: input must be 1-D or 2-D, got shape {weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("multinomial: probability tensor contains either inf, nan or element < 0")
    rows = weights.reshape(-1, weights.shape[-1])
    totals = rows.sum(axis=1)
    if np.any(totals <= 0):
        raise ValueError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
    if not replacement and num_samples > int((rows > 0).sum(axis=1).min()):
        raise ValueError(
            f"multinomial: cannot draw {num_samples} samples without replacement from a row with fewer "
            "nonzero weights"
        )
    rng = _random.get_generator(generator)
    out = np.stack([rng.choice(row.size, size=num_samples, replace=replacement, p=row / row.sum()) for row in rows])
    out = out.astype(np.int64)
    return Tensor(out.reshape(num_samples) if weights.ndim == 1 else out)


def bernoulli(input, generator=None) -> Tensor:
    """1 with probability ``input`` (elementwise), else 0, in ``input``'s dtype."""
    p = input._data if isinstance(input, Tensor) else np.asarray(input)
    rng = _random.get_generator(generator)
    return Tensor((rng.random(p.shape) < p).astype(p.dtype if p.dtype.kind == "f" else default_dtype()))


class _NormalSample(Function):
    """mean + std * z for fresh standard-normal ``z``, with PyTorch's zero gradient for mean and std.

    ``torch.normal`` is a sampler, not a reparameterisation: PyTorch defines the gradients of
    mean and std as zero (``distributions.Normal.rsample`` is the differentiable path). Kept as
    a node so that the output requires grad exactly when PyTorch's does.
    """

    @staticmethod
    def forward(ctx, mean, std, z):
        ctx.shapes = (np.shape(mean), np.shape(std))
        return (mean + std * z).astype(z.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad):
        return tuple(None if not need else np.zeros(shape, dtype=grad.dtype)
                     for need, shape in zip(ctx.needs_input_grad[:2], ctx.shapes)) + (None,)


def normal(mean, std=1.0, size=None, *, generator=None, out=None, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """``torch.normal``: samples of N(mean, std^2), from ``generator`` (default: the one ``manual_seed`` sets).

    PyTorch's four overloads:

    * ``normal(mean: Tensor, std: Tensor)``: shapes broadcast; mean's dtype.
    * ``normal(mean: Tensor, std: float = 1.0)``: mean's shape and dtype.
    * ``normal(mean: float, std: Tensor)``: std's shape and dtype.
    * ``normal(mean: float, std: float, size)``: shape ``size``, float32 unless ``dtype`` (and
      ``device``, ``requires_grad``) say otherwise; only this form takes them.

    As in PyTorch, a result made from Tensors that require grad requires grad too, with zero
    gradients for mean and std (it samples, it does not reparameterise: use
    ``distributions.Normal(mean, std).rsample()`` for the pathwise gradient). std must be >= 0.
    """
    if out is not None:
        raise TypeError("normal: out= is not supported on rnnbp; assign the result instead")
    rng = _random.get_generator(generator)
    tensors = isinstance(mean, Tensor) or isinstance(std, Tensor)
    if not tensors:
        if size is None:
            raise TypeError(
                "normal: with a float mean and a float std, give the size: normal(mean, std, size); "
                "or pass mean or std as a Tensor"
            )
        if std < 0:
            raise ValueError(f"normal: expected std >= 0.0, but found std {std}")
        z = rng.standard_normal(_size((size,) if isinstance(size, (int, np.integer)) else (tuple(size),)))
        return _leaf((mean + std * z).astype(_dtype(dtype)), requires_grad, device)
    if size is not None or dtype is not None or requires_grad:
        raise TypeError("normal: size, dtype and requires_grad go with the (float mean, float std, size) form only; "
                        f"got mean {type(mean).__name__} and std {type(std).__name__}")
    as_device(device)
    for name, value in (("mean", mean), ("std", std)):
        if isinstance(value, Tensor) and value.dtype.kind != "f":
            raise TypeError(f"normal: {name} must be a floating-point Tensor, got dtype {value.dtype}")
    out_dtype = mean.dtype if isinstance(mean, Tensor) else std.dtype
    std_data = std._data if isinstance(std, Tensor) else std
    if np.any(np.asarray(std_data) < 0):
        raise ValueError("normal: expected all elements of std >= 0.0" if isinstance(std, Tensor)
                         else f"normal: expected std >= 0.0, but found std {std}")
    try:
        shape = np.broadcast_shapes(np.shape(mean._data if isinstance(mean, Tensor) else mean), np.shape(std_data))
    except ValueError:
        raise ValueError(f"normal: the shapes of mean {tuple(mean.shape)} and std {tuple(std.shape)} do not "
                         "broadcast") from None
    z = rng.standard_normal(shape).astype(out_dtype, copy=False)
    return _NormalSample.apply(mean, std, z)
