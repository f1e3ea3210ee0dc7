"""gather_rows: rows picked from several tensors into one zero-padded tensor, as one autograd node.

The level-by-level scheduler keeps each level's states as a tensor of its own; a node's
children live in earlier levels. Gathering them through a concatenation would copy every
earlier level once per level; this op reads only the rows it needs and, in backward,
scatters the gradient straight back into each source.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..autograd.function import Function


@dataclass(frozen=True)
class GatherPlan:
    """Where each output row comes from.

    ``sources[k]`` reads rows ``rows[k]`` of the k-th source tensor into output rows
    ``dest[k]``; output rows named by no source stay zero. ``unique[k]`` says the k-th
    source's rows are distinct, so backward may assign instead of ``np.add.at``.
    """

    num_rows: int
    sources: tuple[int, ...]
    dest: tuple[np.ndarray, ...]
    rows: tuple[np.ndarray, ...]
    unique: tuple[bool, ...]


class GatherRows(Function):
    """out[dest[k]] = sources[k][rows[k]]; everything else zero. Shape (plan.num_rows, *row_shape)."""

    @staticmethod
    def forward(ctx, *parts, plan: GatherPlan):
        row_shape = parts[0].shape[1:] if parts else ()
        for part in parts[1:]:
            if part.shape[1:] != row_shape:
                raise ValueError(f"gather_rows: sources have rows of shape {row_shape} and {part.shape[1:]}")
        dtype = np.result_type(*parts) if parts else np.float32
        out = np.zeros((plan.num_rows,) + row_shape, dtype=dtype)
        for part, dest, rows in zip(parts, plan.dest, plan.rows):
            out[dest] = part[rows]
        ctx.plan, ctx.shapes = plan, [p.shape for p in parts]
        return out

    @staticmethod
    def backward(ctx, grad):
        plan = ctx.plan
        grads = []
        for needs, shape, dest, rows, unique in zip(ctx.needs_input_grad, ctx.shapes, plan.dest, plan.rows,
                                                    plan.unique):
            if not needs:
                grads.append(None)
                continue
            g = np.zeros(shape, dtype=grad.dtype)
            if unique:
                g[rows] = grad[dest]
            else:
                np.add.at(g, rows, grad[dest])
            grads.append(g)
        return tuple(grads)


def gather_rows(parts, plan: GatherPlan):
    """Rows of the tensors ``parts[plan.sources[k]]`` gathered into one (plan.num_rows, ...) tensor."""
    return GatherRows.apply(*(parts[k] for k in plan.sources), plan=plan)
