"""Matrix products: ``matmul`` (1-D, 2-D and batched with broadcasting) and the fused ``linear``."""
from __future__ import annotations

import numpy as np

from ..function import Function, unbroadcast


def _matmul_error(a, b) -> ValueError:
    sa, sb = np.shape(a), np.shape(b)
    if len(sa) == 0 or len(sb) == 0:
        return ValueError(f"matmul: both operands need at least one dimension, got {sa} and {sb}")
    ka = sa[-1]
    kb = sb[-2] if len(sb) > 1 else sb[0]
    if ka != kb:
        return ValueError(f"matmul: cannot multiply {sa} by {sb}: inner sizes {ka} and {kb} differ")
    return ValueError(f"matmul: cannot broadcast the batch dimensions of {sa} and {sb}")


class MatMul(Function):
    """a @ b as ``np.matmul``. Backward: dA = G B^T, dB = A^T G, summed over broadcast batches."""

    @staticmethod
    def forward(ctx, a, b):
        try:
            out = np.matmul(a, b)
        except ValueError:
            raise _matmul_error(a, b) from None
        ctx.a, ctx.b = a, b
        return out

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.a, ctx.b
        na, nb = ctx.needs_input_grad
        # Treat 1-D operands as matrices, as np.matmul does, then drop the added axes.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g = grad
        # Restore b's axis (last) before a's (second to last): 1-D @ 1-D gives a 0-d grad.
        if b.ndim == 1:
            g = np.expand_dims(g, -1)
        if a.ndim == 1:
            g = np.expand_dims(g, -2)
        ga = gb = None
        if na:
            ga = np.matmul(g, np.swapaxes(b2, -1, -2))
            ga = unbroadcast(ga, a2.shape)
            if a.ndim == 1:
                ga = ga.reshape(a.shape)
        if nb:
            gb = np.matmul(np.swapaxes(a2, -1, -2), g)
            gb = unbroadcast(gb, b2.shape)
            if b.ndim == 1:
                gb = gb.reshape(b.shape)
        return ga, gb


class Linear(Function):
    """y = x W^T + b in one node (PyTorch's layout: W is (H_out, H_in)).

    Shape: x (*, H_in), W (H_out, H_in), b (H_out,) -> y (*, H_out).
    Leading dimensions are flattened so every product is one 2-D GEMM.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        if x.dtype != weight.dtype:
            raise TypeError(
                f"linear: input of shape {x.shape} is {x.dtype} but the weight {weight.shape} is {weight.dtype}; "
                f"cast the input (x.float() / x.double()) or the module (.to({x.dtype}))"
            )
        if x.ndim == 0 or x.shape[-1] != weight.shape[-1]:
            raise ValueError(
                f"linear: input of shape {x.shape} does not fit weight of shape {weight.shape}: "
                f"expected last dimension {weight.shape[-1]}"
            )
        x2 = x if x.ndim == 2 else x.reshape(-1, x.shape[-1])
        out = x2 @ weight.T  # (N, H_out)
        if bias is not None:
            out += bias
        ctx.x2, ctx.weight, ctx.in_shape = x2, weight, x.shape
        return out if x.ndim == 2 else out.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, grad):
        needs = ctx.needs_input_grad
        nx, nw = needs[0], needs[1]
        g2 = grad if grad.ndim == 2 else grad.reshape(-1, grad.shape[-1])  # (N, H_out)
        gx = None
        if nx:
            gx = g2 @ ctx.weight
            if len(ctx.in_shape) != 2:
                gx = gx.reshape(ctx.in_shape)
        gw = g2.T @ ctx.x2 if nw else None
        if len(needs) == 2:  # no bias
            return gx, gw
        gb = g2.sum(axis=0) if needs[2] else None
        return gx, gw, gb


def parse_einsum(equation: str, n_operands: int) -> tuple[list[str], str]:
    """(input subscripts, output subscripts) of an einsum ``equation`` for ``n_operands`` operands.

    Letters only: no ``...`` and no letter twice within one operand (a diagonal), which the
    backward below does not take. Without ``->`` the output is the letters used once, sorted
    (NumPy's and PyTorch's implicit form).
    """
    eq = equation.replace(" ", "")
    if "." in eq:
        raise ValueError(f"einsum: '...' (ellipsis) is not supported on rnnbp, got {equation!r}")
    lhs, arrow, out = eq.partition("->")
    inputs = lhs.split(",")
    if len(inputs) != n_operands:
        raise ValueError(f"einsum: {equation!r} names {len(inputs)} operands, got {n_operands}")
    letters = "".join(inputs)
    if not (letters + out).isalpha() and (letters + out):
        raise ValueError(f"einsum: subscripts must be letters, got {equation!r}")
    for s in inputs:
        if len(set(s)) != len(s):
            raise ValueError(f"einsum: a letter repeated within one operand ({s!r}, a diagonal) is not supported "
                             f"on rnnbp, got {equation!r}")
    if not arrow:
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    elif len(set(out)) != len(out) or not set(out) <= set(letters):
        raise ValueError(f"einsum: the output {out!r} must name distinct letters of the inputs, got {equation!r}")
    return inputs, out


class Einsum(Function):
    """``np.einsum`` over letters-only subscripts. Backward for operand k: the einsum of the output
    gradient with the other operands onto k's letters; a letter only k has (summed away) gets the
    gradient broadcast along it."""

    @staticmethod
    def forward(ctx, *arrays, inputs=(), output=""):
        sizes = {}
        for s, a in zip(inputs, arrays):
            if len(s) != a.ndim:
                raise ValueError(f"einsum: subscripts {s!r} name {len(s)} dims for an operand of shape {a.shape}")
            for letter, n in zip(s, a.shape):
                if sizes.setdefault(letter, n) != n:
                    raise ValueError(f"einsum: {letter!r} has size {sizes[letter]} in one operand and {n} in another "
                                     f"(shapes {', '.join(str(b.shape) for b in arrays)})")
        try:
            out = np.einsum(",".join(inputs) + "->" + output, *arrays, optimize=len(arrays) > 2)
        except ValueError as exc:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"einsum: {','.join(inputs)}->{output} does not fit shapes {shapes}: {exc}") from None
        ctx.arrays, ctx.inputs, ctx.output = arrays, inputs, output
        return np.asarray(out)

    @staticmethod
    def backward(ctx, grad):
        arrays, inputs, output = ctx.arrays, ctx.inputs, ctx.output
        grads = []
        for k, (subs, a) in enumerate(zip(inputs, arrays)):
            if not ctx.needs_input_grad[k]:
                grads.append(None)
                continue
            others = [(s, b) for j, (s, b) in enumerate(zip(inputs, arrays)) if j != k]
            seen = set(output).union(*[set(s) for s, _ in others])
            kept = "".join(c for c in subs if c in seen)
            g = np.einsum(",".join([output] + [s for s, _ in others]) + "->" + kept, grad, *[b for _, b in others],
                          optimize=len(others) > 1)
            shape = tuple(a.shape[i] if c in seen else 1 for i, c in enumerate(subs))
            grads.append(np.ascontiguousarray(np.broadcast_to(np.reshape(g, shape), a.shape)).astype(a.dtype, copy=False))
        return tuple(grads)
