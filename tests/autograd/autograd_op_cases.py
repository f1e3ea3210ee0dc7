"""The table of ops that drives the gradient and dtype tests (HIPS ``tests/numpy_utils.py`` style).

Each row is ``Case(name, fn, specs)``: ``fn`` takes one Tensor per spec and returns a Tensor or a
tuple of them; a spec is ``(shape, kind)``, where ``kind`` says how to draw the values so that no
input sits on a kink or a tie (|x|, relu, clamp, max, maximum) within the finite-difference step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from rnnbp.autograd import Tensor, ops


def draw(rng: np.random.Generator, shape: tuple, kind: str) -> np.ndarray:
    """Float64 sample values of ``shape``; ``kind`` keeps them away from non-differentiable points."""
    if kind == "n":  # standard normal
        return rng.standard_normal(shape)
    if kind == "pos":  # >= 0.5: log, sqrt, fractional powers, positive bases
        return np.abs(rng.standard_normal(shape)) + 0.5
    if kind == "away":  # odd multiples of 1/8: at least 0.125 from 0, +-0.5 and every multiple of 0.25
        return (rng.integers(-8, 8, shape) + 0.5) * 0.25
    if kind == "distinct":  # all different, at least 0.3 apart: no ties for max/min
        n = int(np.prod(shape, dtype=int))
        return ((rng.permutation(n) - n / 2) * 0.3).reshape(shape) + 0.05
    if kind == "int":  # integers; paired with "half" they never tie (maximum/minimum)
        return rng.integers(-3, 4, shape).astype(np.float64)
    if kind == "half":  # integers + 0.5
        return rng.integers(-3, 3, shape) + 0.5
    if kind == "big":  # half the values past softplus's threshold of 20 (and beta * x > 20 for beta >= 1)
        x = rng.standard_normal(shape)
        return np.where(rng.random(shape) < 0.5, x + 25.0, x)
    raise ValueError(f"unknown kind {kind!r}")


@dataclass(frozen=True)
class Case:
    name: str
    fn: object
    specs: tuple  # ((shape, kind), ...)

    def inputs(self, dtype=np.float64, seed: int = 0) -> list:
        rng = np.random.default_rng(seed)
        return [Tensor(draw(rng, shape, kind).astype(dtype), requires_grad=True) for shape, kind in self.specs]


def _fmt(shape) -> str:
    return "x".join(map(str, shape)) if shape else "()"


CASES: list = []


def add(name: str, fn, samples, kinds="n") -> None:
    """One row per sample; a sample is a tuple of shapes, ``kinds`` one kind or a tuple of them."""
    for shapes in samples:
        ks = kinds if isinstance(kinds, tuple) else (kinds,) * len(shapes)
        specs = tuple(zip(shapes, ks))
        CASES.append(Case(f"{name}[{','.join(_fmt(s) for s in shapes)}]", fn, specs))


UNARY = [((),), ((2,),), ((3, 2),)]
BINARY = [((), ()), ((2,), (2,)), ((3, 2), (3, 2)), ((3, 2), (1, 2)), ((3, 2), (2,)), ((2,), (3, 1)),
          ((), (3, 2)), ((1, 2), (3, 1))]

# ----------------------------------------------------------------- arithmetic
add("add", lambda a, b: a + b, BINARY)
add("sub", lambda a, b: a - b, BINARY)
add("mul", lambda a, b: a * b, BINARY)
add("div", lambda a, b: a / b, BINARY, ("n", "away"))
add("pow_tensor", lambda a, b: a ** b, BINARY, ("pos", "n"))
add("add_scalar", lambda x: x + 1.5, UNARY)
add("radd_scalar", lambda x: 1.5 + x, UNARY)
add("rsub_scalar", lambda x: 2.0 - x, UNARY)
add("sub_np64", lambda x: x - np.float64(0.5), UNARY)
add("mul_np64", lambda x: x * np.float64(2.0), UNARY)
add("rmul_np64", lambda x: np.float64(2.0) * x, UNARY)
add("rdiv_scalar", lambda x: 1.0 / x, UNARY, "away")
add("div_np64", lambda x: x / np.float64(3.0), UNARY)
add("rdiv_np64", lambda x: np.float64(3.0) / x, UNARY, "away")
add("mul_const_array", lambda x: x * np.array([0.5, -2.0]), [((2,),), ((3, 2),)])
add("pow_2", lambda x: x ** 2, UNARY)
add("pow_3", lambda x: x ** 3.0, UNARY)
add("pow_np64", lambda x: x ** np.float64(2.0), UNARY)
add("pow_half", lambda x: x ** 0.5, UNARY, "pos")
add("pow_neg", lambda x: x ** -1.5, UNARY, "pos")
add("rpow", lambda x: 2.0 ** x, UNARY)
add("rpow_np64", lambda x: np.float64(1.5) ** x, UNARY)
add("pow_method", lambda x: x.pow(2), [((3, 2),)])
add("neg", lambda x: -x, UNARY)
add("neg_fn", ops.neg, [((3, 2),)])

# ------------------------------------------------------------------ matmul / linear
add("matmul", lambda a, b: a @ b,
    [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((2, 3, 4), (4, 5)),
     ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3)), ((2, 3, 4), (4,)), ((2, 3, 4), (2, 4, 2))])
add("matmul_fn", ops.matmul, [((2, 3), (3, 2))])
add("matmul_const_np64", lambda x: x @ np.linspace(-1, 1, 6).reshape(3, 2), [((3,),), ((2, 3),)])
add("rmatmul_const", lambda x: np.linspace(-1, 1, 6).reshape(2, 3) @ x, [((3,),), ((3, 2),)])
add("linear", lambda x, w, b: ops.linear(x, w, b), [((3, 4), (2, 4), (2,)), ((2, 3, 4), (2, 4), (2,)),
                                                    ((4,), (2, 4), (2,))])
add("linear_nobias", lambda x, w: ops.linear(x, w), [((3, 4), (2, 4)), ((2, 3, 4), (5, 4)), ((4,), (2, 4))])

# ------------------------------------------------------------------ pointwise
add("exp", lambda x: x.exp(), UNARY)
add("log", lambda x: x.log(), UNARY, "pos")
add("sqrt", lambda x: x.sqrt(), UNARY, "pos")
add("abs", lambda x: abs(x), UNARY, "away")
add("abs_method", lambda x: x.abs(), [((3, 2),)], "away")
add("tanh", lambda x: x.tanh(), UNARY)
add("sigmoid", lambda x: x.sigmoid(), UNARY)
add("sigmoid_large", lambda x: ops.sigmoid(x * 10.0), [((3, 2),)])
add("relu", lambda x: x.relu(), UNARY, "away")
add("leaky_relu", lambda x: x.leaky_relu(), UNARY, "away")
add("leaky_relu_slope", lambda x: ops.leaky_relu(x, 0.2), [((3, 2),)], "away")
add("leaky_relu_np64", lambda x: ops.leaky_relu(x, np.float64(0.3)), [((3, 2),)], "away")
add("softplus", lambda x: x.softplus(), UNARY)
add("softplus_beta", lambda x: ops.softplus(x, beta=2.0), UNARY)
add("softplus_beta_np64", lambda x: ops.softplus(x, beta=np.float64(0.5)), [((3, 2),)])
add("softplus_threshold", lambda x: ops.softplus(x), [((3, 2),), ((4,),)], "big")
add("softplus_beta_threshold", lambda x: ops.softplus(x, beta=3.0, threshold=10.0), [((3, 2),)], "big")
add("gelu", lambda x: x.gelu(), UNARY)
add("gelu_tanh", lambda x: ops.gelu(x, approximate="tanh"), UNARY)
add("clamp_min", lambda x: x.clamp(min=-0.5), UNARY, "away")
add("clamp_max", lambda x: x.clamp(max=0.5), UNARY, "away")
add("clamp_both", lambda x: ops.clamp(x, -0.5, 0.5), UNARY, "away")
add("clamp_np64", lambda x: ops.clamp(x, np.float64(-0.5), np.float64(0.5)), [((3, 2),)], "away")
add("clip", lambda x: x.clip(-1.0, 1.0), [((3, 2),)], "away")
add("maximum", lambda a, b: ops.maximum(a, b), BINARY, ("int", "half"))
add("minimum", lambda a, b: ops.minimum(a, b), BINARY, ("half", "int"))
add("maximum_scalar", lambda x: ops.maximum(x, 0.0), UNARY, "away")
add("minimum_np64", lambda x: x.minimum(np.float64(0.0)), UNARY, "away")
_COND = np.array([[True, False], [False, True], [True, True]])
add("where", lambda a, b: ops.where(_COND, a, b), [((3, 2), (3, 2)), ((3, 2), (2,)), ((1, 2), ()),
                                                   ((3, 1), (1, 2))])
add("where_tensor_cond", lambda a: ops.where(Tensor(_COND[:, :1]), a, 0.0), [((3, 2),), ((2,),)])
add("where_np64", lambda a: ops.where(_COND, np.float64(1.0), a), [((3, 2),)])
add("dropout", lambda x: ops.dropout(x, 0.4, generator=np.random.default_rng(0)), [((), ), ((4, 3),)])
add("dropout_eval", lambda x: ops.dropout(x, 0.4, training=False), [((3, 2),)])

# ------------------------------------------------------------------ reductions
for _op in ("sum", "mean"):
    add(_op, lambda x, _op=_op: getattr(x, _op)(), UNARY)
    add(f"{_op}_dim0", lambda x, _op=_op: getattr(x, _op)(dim=0), [((),), ((2,),), ((3, 2),)])
    add(f"{_op}_dim1", lambda x, _op=_op: getattr(ops, _op)(x, 1), [((2, 3, 2),)])
    add(f"{_op}_dimneg", lambda x, _op=_op: getattr(x, _op)(dim=-1), [((3, 2),), ((2, 3, 2),)])
    add(f"{_op}_dimtuple", lambda x, _op=_op: getattr(x, _op)(dim=(0, 2)), [((2, 3, 2),)])
    add(f"{_op}_dimtuple_neg_keep", lambda x, _op=_op: getattr(x, _op)(dim=(-1, 0), keepdim=True), [((2, 3, 2),)])
    add(f"{_op}_keepdim", lambda x, _op=_op: getattr(x, _op)(dim=1, keepdim=True), [((3, 2),)])
    add(f"{_op}_all_keepdim", lambda x, _op=_op: getattr(x, _op)(keepdim=True), [((3, 2),)])
add("var", lambda x: x.var(), [((2,),), ((3, 2),)])
add("var_dim0", lambda x: x.var(dim=0), [((3, 2),), ((3,),)])
add("var_dimneg_keep", lambda x: x.var(dim=-1, keepdim=True), [((3, 2),), ((2, 3, 4),)])
add("var_dimtuple", lambda x: x.var(dim=(0, 2)), [((2, 3, 2),)])
add("var_population", lambda x: ops.var(x, correction=0), [((),), ((3, 2),)])
add("var_unbiased_false", lambda x: ops.var(x, 1, unbiased=False), [((3, 2),)])
for _op in ("max", "min"):
    add(_op, lambda x, _op=_op: getattr(x, _op)(), UNARY, "distinct")
    add(f"{_op}_dim0", lambda x, _op=_op: getattr(x, _op)(dim=0), [((),), ((3,),), ((3, 2),)], "distinct")
    add(f"{_op}_dimneg", lambda x, _op=_op: getattr(ops, _op)(x, -1), [((3, 2),), ((2, 3, 2),)], "distinct")
    add(f"{_op}_dim1_keepdim", lambda x, _op=_op: getattr(x, _op)(1, keepdim=True), [((2, 3, 2),)], "distinct")
    add(f"{_op}_values", lambda x, _op=_op: getattr(x, _op)(dim=1).values * 2.0, [((3, 2),)], "distinct")

# ------------------------------------------------------------------ shape ops
add("reshape", lambda x: x.reshape(2, 3), [((3, 2),), ((6,),)])
add("reshape_tuple", lambda x: x.reshape((3, -1)), [((3, 2),), ((2, 3),)])
add("reshape_scalar", lambda x: x.reshape(1, 1), [((),)])
add("reshape_to_scalar", lambda x: x.reshape(()), [((1,),)])
add("view", lambda x: x.view(-1), [((3, 2),)])
add("transpose", lambda x: x.transpose(0, 1), [((3, 2),), ((3, 2, 2),)])
add("transpose_neg", lambda x: ops.transpose(x, -1, 0), [((2, 3, 4),)])
add("permute", lambda x: x.permute(2, 0, 1), [((2, 3, 4),)])
add("permute_tuple_neg", lambda x: x.permute((-1, 0)), [((3, 2),)])
add("T", lambda x: x.T, [((),), ((2,),), ((3, 2),), ((2, 3, 4),)])
add("mT", lambda x: x.mT, [((2, 3, 4),)])
add("squeeze", lambda x: x.squeeze(), [((),), ((1, 3, 1),)])
add("squeeze_dim", lambda x: x.squeeze(0), [((1, 3, 1),), ((3, 2),)])
add("squeeze_negdim", lambda x: ops.squeeze(x, -1), [((1, 3, 1),)])
add("squeeze_tuple", lambda x: ops.squeeze(x, (0, 2)), [((1, 3, 1),)])
add("unsqueeze", lambda x: x.unsqueeze(0), UNARY)
add("unsqueeze_neg", lambda x: x.unsqueeze(-1), UNARY)
add("unsqueeze_mid", lambda x: x.unsqueeze(1), [((3, 2),)])
add("expand", lambda x: x.expand(2, 3), [((1, 3),), ((3,),), ((),)])
add("expand_new_axes", lambda x: x.expand(2, 3, 4), [((3, 1),)])
add("expand_minus1", lambda x: x.expand(4, -1, -1), [((1, 3, 2),)])
add("expand_as", lambda x: x.expand_as(Tensor(np.zeros((2, 3)))), [((1, 3),)])
add("flatten", lambda x: x.flatten(), [((),), ((3, 2),), ((2, 3, 2),)])
add("flatten_start", lambda x: x.flatten(1), [((2, 3, 2),)])
add("flatten_range", lambda x: ops.flatten(x, 0, -2), [((2, 3, 2),)])

# ------------------------------------------------------------------ indexing
_MASK = np.array([[True, False], [False, False], [True, True]])
add("index_slice", lambda x: x[1:3], [((4, 3),)])
add("index_slice_step", lambda x: x[::2, 1:], [((4, 3),)])
add("index_int", lambda x: x[1], [((2,),), ((4, 3),)])
add("index_int_pair", lambda x: x[-1, 0], [((4, 3),)])
add("index_none", lambda x: x[None, :, 1], [((4, 3),)])
add("index_ellipsis", lambda x: x[..., 1], [((2, 4, 3),)])
add("index_ellipsis_none", lambda x: x[..., None], [((),), ((3, 2),)])
add("index_negative_step", lambda x: x[::-1, ::-2], [((4, 3),)])
add("index_int_array", lambda x: x[np.array([2, 0])], [((4, 3),), ((4,),)])
add("index_repeated", lambda x: x[[0, 0, 2, 0]], [((4, 3),), ((4,),)])
add("index_repeated_2d_array", lambda x: x[np.array([[1, 1], [3, 1]])], [((4, 3),)])
add("index_repeated_pairs", lambda x: x[[0, 0, 3], [1, 1, 2]], [((4, 3),)])
add("index_repeated_with_slice", lambda x: x[1:, [2, 2, 0]], [((4, 3),)])
add("index_bool_mask", lambda x: x[_MASK], [((3, 2),)])
add("index_bool_rows", lambda x: x[np.array([True, False, True])], [((3, 2),)])
add("index_tensor", lambda x: x[Tensor(np.array([3, 3, 1]))], [((4, 3),)])
add("index_tensor_mask", lambda x: x[Tensor(_MASK)], [((3, 2),)])
add("index_tensor_in_tuple", lambda x: x[:, Tensor(np.array([0, 0]))], [((4, 3),)])

# ------------------------------------------------------------------ joining and splitting
add("cat", lambda a, b: ops.cat([a, b]), [((2,), (3,)), ((2, 3), (1, 3))])
add("cat_dim1", lambda a, b: ops.cat([a, b], dim=1), [((2, 3), (2, 1))])
add("cat_dimneg", lambda a, b, c: ops.cat((a, b, c), dim=-1), [((2, 1), (2, 3), (2, 2))])
add("cat_const", lambda a: ops.cat([a, np.ones((1, 2)), [[2.0, 3.0]]]), [((2, 2),)])
add("stack", lambda a, b: ops.stack([a, b]), [((), ()), ((2, 3), (2, 3))])
add("stack_dim1", lambda a, b: ops.stack([a, b], dim=1), [((2, 3), (2, 3))])
add("stack_dimneg", lambda a, b, c: ops.stack([a, b, c], dim=-1), [((3,), (3,), (3,))])
add("split", lambda x: ops.split(x, 2), [((5, 2),), ((4,),)])
add("split_sections", lambda x: x.split([1, 3, 1], dim=1), [((2, 5),)])
add("split_some_unused", lambda x: (lambda p: (p[0] * 2.0, p[2]))(ops.split(x, [2, 1, 2])), [((5, 2),)])
add("split_one_used", lambda x: ops.split(x, 1, dim=-1)[1], [((3, 3),)])
add("split_single", lambda x: ops.split(x, 5)[0], [((3, 2),)])
add("chunk", lambda x: x.chunk(3), [((5, 2),), ((3,),)])
add("chunk_dimneg_some_unused", lambda x: ops.chunk(x, 2, dim=-1)[0], [((2, 4),)])

# ------------------------------------------------------------------ softmax family
add("softmax", lambda x: x.softmax(), [((),), ((3,),), ((3, 4),)])
add("softmax_dim0", lambda x: ops.softmax(x, 0), [((),), ((3, 4),)])
add("softmax_dim1", lambda x: ops.softmax(x, dim=1), [((2, 3, 2),)])
add("log_softmax", lambda x: x.log_softmax(), [((),), ((3,),), ((3, 4),)])
add("log_softmax_dim0", lambda x: ops.log_softmax(x, 0), [((3, 4),)])
add("log_softmax_dim1", lambda x: ops.log_softmax(x, dim=1), [((2, 3, 2),)])
add("logsumexp", lambda x: x.logsumexp(), [((),), ((3,),), ((3, 4),)])
add("logsumexp_dim0", lambda x: ops.logsumexp(x, 0), [((3, 4),)])
add("logsumexp_dim1_keepdim", lambda x: ops.logsumexp(x, 1, keepdim=True), [((2, 3, 2),)])
add("logsumexp_large", lambda x: ops.logsumexp(x * 100.0, -1), [((3, 4),)])

# ------------------------------------------------------------------ composites (shared nodes, long paths)
add("diamond", lambda a: (a * a).exp() * a.tanh() + a, UNARY)
add("mlp", lambda x, w, b: ops.linear(x, w, b).gelu().softmax(-1).log().mean(), [((3, 4), (5, 4), (5,))])


def case_params(cases=None) -> list:
    return [pytest.param(c, id=c.name) for c in (CASES if cases is None else cases)]
