"""All parameters as one flat vector and back (``torch.nn.utils.parameters_to_vector``), e.g. for
second-order methods, weight averaging or a parameter-space distance."""
from __future__ import annotations

from ...autograd.ops import cat, reshape
from ...autograd.tensor import Tensor


def parameters_to_vector(parameters) -> Tensor:
    """The parameters, each flattened, joined into one 1-D tensor (differentiable, as in PyTorch)."""
    params = list(parameters)
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    return cat([reshape(p, -1) for p in params])


def vector_to_parameters(vec, parameters) -> None:
    """Make each parameter's data the next piece of the 1-D ``vec`` (a view of it, in its dtype,
    as PyTorch's ``param.data = ...``), bumping the parameter's version."""
    if not isinstance(vec, Tensor) or vec.ndim != 1:
        raise TypeError(f"vector_to_parameters: expected a 1-D Tensor, got {type(vec).__name__}"
                        f"{'' if not isinstance(vec, Tensor) else ' of shape ' + str(tuple(vec.shape))}")
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if total > vec.shape[0]:
        raise ValueError(f"vector_to_parameters: the vector has {vec.shape[0]} elements, the parameters {total}")
    start = 0
    for p in params:
        n = p.numel()
        p._data = vec._data[start:start + n].reshape(p.shape)
        p._bump_version()  # new values: graphs that saved the old ones are stale
        start += n
