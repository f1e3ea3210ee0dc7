"""``unroll``: run any one-step cell over time on the autograd tape.

The public face of the reference path. A cell written by a user from primitive
ops (anything with PyTorch's cell call ``cell(x_t, hx) -> hx'``) runs over a
whole batch of variable-length sequences, and autograd gives its full BPTT
gradients; for the built-in cells the result equals the fused layers'.
"""
from __future__ import annotations

from ..autograd.tensor import Tensor
from ..nn.module import Module
from ..nn.recurrent.custom import Recurrent


def unroll(cell: Module, inputs, hx=None, lengths=None, batch_first: bool = False):
    """Run ``cell`` over every step of ``inputs``; equivalent to::

        for t in range(L):
            hx = cell(inputs[t], hx)      # rows past their length keep their state
            outputs[t] = h of hx          # zero past each row's length

    Args:
        cell : Module, ``cell(x_t (N, H_in), hx) -> hx'``; hx one tensor (N, H) or a tuple
            (h first). Its ``state_size`` (int or tuple) gives the zero initial state.
        inputs : Tensor [shape=(L, N, H_in)], or (N, L, H_in) with ``batch_first``.
        hx : initial state, like the cell's (zeros when None).
        lengths : array of ints [shape=(N,)], in any order, each in [0, L]; a row of length 0
            keeps ``hx``.

    ``nn.recurrent.probes.record_state_grads`` sees the recurrent modules of a model, not a cell unrolled
    by this function inside a forward: for diagnostics, hold the cell in an ``nn.Recurrent``.

    Returns:
        (outputs [shape=(L, N, H)] or (N, L, H), final state like ``hx``): each row's state
        after its own last step.
    """
    if not isinstance(cell, Module):
        raise TypeError(f"unroll: cell must be an nn.Module called as cell(x_t, hx), got {type(cell).__name__}")
    x = inputs if isinstance(inputs, Tensor) else Tensor(inputs)
    if x.ndim != 3:
        raise ValueError(f"unroll: expected inputs of shape (L, N, H_in) (or (N, L, H_in) with batch_first), "
                         f"got {x.shape}")
    input_size = getattr(cell, "input_size", x.shape[-1])
    if x.shape[-1] != input_size:
        raise ValueError(f"unroll: inputs of shape {x.shape} have {x.shape[-1]} features, but "
                         f"{type(cell).__name__} has input_size={input_size}")
    size = getattr(cell, "state_size", getattr(cell, "hidden_size", None))
    if size is None:
        raise TypeError(f"unroll: {type(cell).__name__} has neither state_size nor hidden_size; set "
                        "cell.state_size (an int, or a tuple of ints for several state tensors)")
    sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,)
    if hx is not None:
        hx = _checked_state(hx, sizes, x.shape[0 if batch_first else 1], type(cell).__name__)
    first = sizes[0]
    driver = Recurrent(lambda i, h: cell, input_size, int(first), batch_first=batch_first)
    if hx is not None:
        hx = tuple(s.unsqueeze(0) for s in hx) if isinstance(hx, (tuple, list)) else hx.unsqueeze(0)
    outputs, final = driver(x, hx, lengths=lengths)
    final = tuple(s.squeeze(0) for s in final) if isinstance(final, tuple) else final.squeeze(0)
    return outputs, final


def _checked_state(hx, sizes: tuple, batch: int, cell_name: str):
    """``hx`` as Tensors of shape (N, size) each, in the cell's form (one tensor or a tuple)."""
    parts = tuple(hx) if isinstance(hx, (tuple, list)) else (hx,)
    if len(parts) != len(sizes) or (len(sizes) > 1) != isinstance(hx, (tuple, list)):
        form = "one tensor" if len(sizes) == 1 else f"a tuple of {len(sizes)} tensors"
        raise TypeError(f"unroll: {cell_name} carries {form} (state_size {sizes if len(sizes) > 1 else sizes[0]}), "
                        f"got {type(hx).__name__}" + (f" of {len(parts)}" if isinstance(hx, (tuple, list)) else ""))
    parts = tuple(p if isinstance(p, Tensor) else Tensor(p) for p in parts)
    for i, (p, size) in enumerate(zip(parts, sizes)):
        if p.shape != (batch, size):
            what = "hx" if len(sizes) == 1 else f"hx[{i}]"
            raise ValueError(f"unroll: expected {what} of shape {(batch, size)}, got {p.shape}")
    return parts if len(sizes) > 1 else parts[0]
