"""The PyTorch Tensor surface of issue #12 (items 2 and 3): new ops, in-place rules, dtypes, devices.

One table (``GRAD_CASES``) drives the gradient tests: each row is written once against a
library ``m`` (``rnnbp`` or ``torch``), so the same code gives a float64 ``gradcheck`` in rnnbp
and, where torch is installed, a forward and backward parity check against PyTorch.
"""
import math

import numpy as np
import pytest

import rnnbp
from rnnbp.autograd import gradcheck

F64 = np.float64


# ------------------------------------------------------------------ the op table
def _setitem(index, lib_index=False):
    """``y = x * 1; y[index] = v``: the write lands on a non-leaf; x and v both get gradients."""
    def f(m, x, v):
        y = x * 1.0
        y[m.tensor(index) if lib_index else index] = v
        return y
    return f


def _inplace_chain(m, a, b, c):
    y = a * 2
    y.add_(b)
    y.mul_(c)
    return y


def _augmented(m, a, b):
    y = a * 1.0
    y += b
    y -= a * 0.5
    y *= b
    y /= a * a + 1.0
    return y


def _inplace_alpha(m, a, b):
    y = a.sin()  # (exp would save its output, which torch then refuses to see changed)
    y.add_(b, alpha=3.0)
    y.sub_(b, alpha=0.5)
    y.clamp_(-1.0, 2.0)
    y.div_(b * b + 1.0)
    return y


def _copy_broadcast(m, s):
    y = m.zeros(2, 3, dtype=m.float64)
    y.copy_(s)  # a constant leaf takes src's place in the graph
    return y * m.tensor([[1.0], [2.0]], dtype=m.float64)


def _copy_into_non_leaf(m, a, s):
    y = a * 2
    y.copy_(s * 3)  # a's old values get no gradient
    return y * a


def _fill_non_leaf(m, a):
    y = a * 2
    y.fill_(1.5)
    z = a * 3
    z.zero_()
    return y * a + z


MASK34 = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, False]])
COND34 = np.array([[False, True, True, False], [True, False, False, True], [True, False, True, False]])

# name -> (fn(m, *inputs), input shapes; a shape in ("pos", shape) draws positive values)
GRAD_CASES = {
    "sin": (lambda m, x: x.sin(), [(3, 4)]),
    "cos": (lambda m, x: m.cos(x), [(3, 4)]),
    "square": (lambda m, x: x.square(), [(3, 4)]),
    "rsqrt": (lambda m, x: x.rsqrt(), [("pos", (3, 4))]),
    "clone": (lambda m, x: x.clone() * x, [(3, 4)]),
    "contiguous": (lambda m, x: x.t().contiguous() * 2.0, [(3, 4)]),
    "repeat-new-dim": (lambda m, x: x.repeat(2, 1, 3), [(3, 4)]),
    "repeat": (lambda m, x: x.repeat(2, 2), [(3, 4)]),
    "narrow": (lambda m, x: x.narrow(1, 1, 2), [(3, 4)]),
    "flip": (lambda m, x: x.flip(0) * x, [(3, 4)]),
    "remainder-operator": (lambda m, x: (x % 2.5) * x, [(3, 4)]),
    "remainder-tensor-divisor": (lambda m, x, y: m.remainder(x, y), [(3, 4), ("pos", (4,))]),
    "fmod": (lambda m, x, y: m.fmod(x * 3.0, y), [(3, 4), ("pos", (3, 4))]),
    "max-of-two": (lambda m, x, y: m.max(x, y) + m.min(x, y) * 2.0, [(3, 4), (3, 4)]),
    "silu": (lambda m, x: m.nn.functional.silu(x), [(3, 4)]),
    "diff": (lambda m, x: m.diff(x) + 0.0, [(3, 4)]),
    "kthvalue": (lambda m, x: m.kthvalue(x, 2).values.sum() + x.kthvalue(3, dim=0, keepdim=True).values.sum(), [(3, 4)]),
    "linalg-vector_norm": (lambda m, x: m.linalg.vector_norm(x) + m.linalg.vector_norm(x, 1, dim=1).sum()
                           + m.linalg.vector_norm(x, 3.0, dim=(0, 1), keepdim=True).sum(), [(3, 4)]),
    "linalg-norm-matrix": (lambda m, x: m.linalg.norm(x) + m.linalg.matrix_norm(x) + m.linalg.norm(x, 2, dim=0).sum()
                           + m.linalg.norm(x, "fro", dim=(0, 1)), [(3, 4)]),
    "quantile": (lambda m, x: m.quantile(x, 0.3) + x.quantile(0.75, dim=1).sum(), [(3, 4)]),
    "quantile-vector-keepdim": (lambda m, x: m.quantile(x, m.tensor([0.1, 0.5, 1.0], dtype=m.float64), dim=0,
                                                        keepdim=True), [(3, 4)]),
    "quantile-interpolations": (lambda m, x: sum(x.quantile(0.4, dim=-1, interpolation=i)
                                                 for i in ("lower", "higher", "midpoint", "nearest")), [(3, 5)]),
    "quantile-all-keepdim": (lambda m, x: m.quantile(x, 0.5, keepdim=True) * 2.0, [(3, 4)]),
    "diff-n2-dim0-prepend": (lambda m, x, y: x.diff(n=2, dim=0, prepend=y), [(3, 4), (1, 4)]),
    "prod": (lambda m, x: x.prod() + m.prod(x, 1).sum() + x.prod(0, keepdim=True).sum(), [(3, 4)]),
    "prod-with-a-zero": (lambda m, x: (x * m.tensor([[1.0, 0.0, 1.0, 1.0]], dtype=m.float64)).prod(1), [(3, 4)]),
    "cosine_similarity": (lambda m, x, y: m.nn.functional.cosine_similarity(x, y, dim=-1), [(3, 4), (3, 4)]),
    "cosine_similarity-broadcast": (lambda m, x, y: m.nn.functional.cosine_similarity(x, y), [(3, 4), (1, 4)]),
    "kl_div": (lambda m, x, y: m.nn.functional.kl_div(x.log_softmax(-1), y.softmax(-1), reduction="batchmean"),
               [(3, 4), (3, 4)]),
    "kl_div-log-target-none": (lambda m, x, y: m.nn.functional.kl_div(x, y.log_softmax(-1), reduction="none",
                                                                     log_target=True), [(3, 4), (3, 4)]),
    "einsum-batched": (lambda m, x, y: m.einsum("btp,pq->btq", x, y), [(2, 3, 4), (4, 5)]),
    "einsum-implicit-list": (lambda m, x, y: m.einsum("ij,jk", [x, y]), [(3, 4), (4, 2)]),
    "einsum-reduce-and-transpose": (lambda m, x: m.einsum("ijk->kj", x), [(2, 3, 4)]),
    "einsum-three": (lambda m, x, y, z: m.einsum("ij,jk,kl->il", x, y, z), [(2, 3), (3, 4), (4, 2)]),
    "einsum-summed-away": (lambda m, x, y: m.einsum("ijk,lm->il", x, y), [(2, 3, 4), (3, 2)]),
    "einsum-attention": (lambda m, q, k: m.einsum("bhqd,bhkd->bhqk", q, k).softmax(-1), [(2, 2, 3, 4), (2, 2, 5, 4)]),
    "hstack-vstack-concat": (lambda m, x, y: m.hstack([x, y]).sum(0)[2:6] + m.vstack([x[0], y[1]]).sum(1).sum()
                             + m.concat([x, y], dim=0).sum(0), [(3, 4), (3, 4)]),
    "tile": (lambda m, x: x.tile(2) + 0.0 * m.tile(x, (2, 1, 1)).sum(), [(3, 4)]),
    "outer-dot": (lambda m, x, y: m.outer(x, y) * m.dot(x, x), [(3,), (4,)]),
    "movedim-unflatten": (lambda m, x: m.movedim(x, 0, -1).unflatten(0, (2, 2)), [(3, 4)]),
    "diag-vector-offset": (lambda m, x: m.diag(x, 1) + m.diag(x, -1), [(3,)]),
    "diag-matrix": (lambda m, x: m.diag(x) * 2.0 + m.diag(x, -1).sum() + x.diag(2).sum(), [(3, 4)]),
    "masked_select": (lambda m, x: x.masked_select(m.tensor(MASK34)) * 3.0, [(3, 4)]),
    "repeat_interleave": (lambda m, x: m.repeat_interleave(x, 2) + 0.0, [(2, 3)]),
    "repeat_interleave-counts-dim": (lambda m, x: x.repeat_interleave(m.tensor([1, 0, 3]), dim=0), [(3, 4)]),
    "median": (lambda m, x: m.median(x) + x.median(dim=1).values.sum() + m.median(x, 0, keepdim=True).values.sum(),
               [(3, 4)]),
    "elu": (lambda m, x: m.nn.functional.elu(x, alpha=0.7), [(3, 4)]),
    "elu-module": (lambda m, x: m.nn.ELU()(x) + m.nn.SiLU()(x), [(3, 4)]),
    "log1p": (lambda m, x: x.log1p() + m.log1p(x * 0.5), [("pos", (3, 4))]),
    "normalize": (lambda m, x: m.nn.functional.normalize(x, dim=-1), [(3, 4)]),
    "normalize-p1-dim0": (lambda m, x: m.nn.functional.normalize(x, p=1.0, dim=0), [(3, 4)]),
    "pad": (lambda m, x: m.nn.functional.pad(x, (1, 2)) * 2.0, [(3, 4)]),
    "pad-two-dims-value": (lambda m, x: m.nn.functional.pad(x, (0, 1, 2, 0), value=-1.5).sin(), [(2, 3, 4)]),
    "flip-dims-list": (lambda m, x: m.flip(x, [0, -1]), [(2, 3, 4)]),
    "flip-varargs": (lambda m, x: x.flip(2, 1).sin(), [(2, 3, 4)]),
    "narrow-negative-start": (lambda m, x: m.narrow(x, 0, -2, 2), [(3, 4)]),
    "index_select-repeated": (lambda m, x: x.index_select(1, m.tensor([0, 2, 2, 3])), [(3, 4)]),
    "gather-repeated": (lambda m, x: x.gather(1, m.tensor([[0, 0, 1], [2, 2, 2], [3, 1, 0]])), [(3, 4)]),
    "gather-dim0-smaller": (lambda m, x: m.gather(x, 0, m.tensor([[0, 1, 2, 2], [1, 1, 0, 0]])), [(3, 4)]),
    "masked_fill-number": (lambda m, x: x.masked_fill(m.tensor(MASK34), -2.5), [(3, 4)]),
    "masked_fill-tensor-value": (lambda m, x, v: x.masked_fill(m.tensor(MASK34), v), [(3, 4), ()]),
    "masked_fill-broadcast-mask": (lambda m, x, v: x.masked_fill(m.tensor([True, False, True, False]), v),
                                   [(3, 4), ()]),
    "tril-1": (lambda m, x: x.tril(-1), [(3, 4)]),
    "tril0": (lambda m, x: m.tril(x), [(2, 3, 3)]),
    "tril+1": (lambda m, x: x.tril(1), [(3, 4)]),
    "triu-1": (lambda m, x: m.triu(x, -1), [(3, 4)]),
    "triu0": (lambda m, x: x.triu(), [(2, 3, 3)]),
    "triu+1": (lambda m, x: x.triu(diagonal=1), [(4, 3)]),
    "sort-values": (lambda m, x: x.sort(dim=1, descending=True).values, [(3, 4)]),
    "sort-values-dim0": (lambda m, x: m.sort(x, dim=0)[0], [(3, 4)]),
    "topk-values": (lambda m, x: x.topk(2, dim=0).values, [(3, 4)]),
    "topk-smallest": (lambda m, x: m.topk(x, 3, largest=False)[0], [(3, 4)]),
    "std-dim": (lambda m, x: x.std(dim=1), [(3, 4)]),
    "std-all": (lambda m, x: x.std(), [(3, 4)]),
    "std-correction0-keepdim": (lambda m, x: x.std(dim=0, correction=0, keepdim=True), [(3, 4)]),
    "amax-dim": (lambda m, x: x.amax(1), [(3, 4)]),
    "amax-dims-keepdim": (lambda m, x: m.amax(x, (0, 2), keepdim=True), [(2, 3, 4)]),
    "add-alpha": (lambda m, x, y: x.add(y, alpha=2.5), [(3, 4), (4,)]),
    "sub-alpha": (lambda m, x, y: m.sub(x, y, alpha=-0.5), [(3, 4), (3, 1)]),
    "unbind": (lambda m, x: x.unbind(1), [(3, 4)]),
    "unbind-negative-dim": (lambda m, x: m.stack(x.unbind(-2), dim=1), [(2, 3, 4)]),
    "where-method": (lambda m, x, y: x.where(m.tensor(COND34), y), [(3, 4), (4,)]),
    "setitem-int": (_setitem(1), [(3, 4), (4,)]),
    "setitem-slices": (_setitem((slice(None), slice(1, 3))), [(3, 4), (3, 2)]),
    "setitem-broadcast-row": (_setitem((slice(None), slice(1, 3))), [(3, 4), (2,)]),
    "setitem-broadcast-scalar": (_setitem((slice(None), 2)), [(3, 4), ()]),
    "setitem-advanced-lists": (_setitem(([0, 2], [1, 3])), [(3, 4), (2,)]),
    "setitem-tensor-index": (_setitem([0, 2], lib_index=True), [(3, 4), (2, 4)]),
    "setitem-bool-mask": (_setitem(MASK34, lib_index=True), [(3, 4), ()]),
    "inplace-chain": (_inplace_chain, [(3,), (3,), (3,)]),
    "augmented-assignment": (_augmented, [(2, 3), (3,)]),
    "inplace-alpha-clamp-div": (_inplace_alpha, [(4,), (4,)]),
    "copy_-broadcast": (_copy_broadcast, [(3,)]),
    "copy_-into-non-leaf": (_copy_into_non_leaf, [(3,), (3,)]),
    "fill_-zero_-non-leaf": (_fill_non_leaf, [(3,)]),
}
for _p in (0.5, 1, 2, math.inf, 3):
    GRAD_CASES[f"norm-p{_p}"] = (lambda m, x, p=_p: x.norm(p=p), [(3, 4)])
    GRAD_CASES[f"norm-p{_p}-dim"] = (lambda m, x, p=_p: x.norm(p=p, dim=1), [(3, 4)])
    GRAD_CASES[f"norm-p{_p}-dims-keepdim"] = (lambda m, x, p=_p: m.norm(x, p=p, dim=(0, 1), keepdim=True),
                                              [(2, 3, 2)])


def _arrays(name):
    """The float64 inputs of a row, drawn from a seed fixed by the row (distinct values: no ties)."""
    rng = np.random.default_rng(sum(map(ord, name)))
    out = []
    for spec in GRAD_CASES[name][1]:
        if isinstance(spec, tuple) and spec and spec[0] == "pos":
            out.append(rng.uniform(0.5, 2.0, spec[1]))
        else:
            out.append(np.asarray(rng.standard_normal(spec)))
    return out


def _outputs(result):
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradcheck(name):
    fn = GRAD_CASES[name][0]
    inputs = [rnnbp.tensor(a, dtype=rnnbp.float64, requires_grad=True) for a in _arrays(name)]
    assert gradcheck(lambda *xs: fn(rnnbp, *xs), inputs)


def _run(m, name):
    """Forward and backward of a row in library ``m``: (outputs, input gradients) as ndarrays."""
    fn = GRAD_CASES[name][0]
    xs = [m.tensor(a, dtype=m.float64, requires_grad=True) for a in _arrays(name)]
    outs = _outputs(fn(m, *xs))
    rng = np.random.default_rng(1)
    loss = None
    for o in outs:
        term = (o * m.tensor(rng.standard_normal(tuple(o.shape)), dtype=m.float64)).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    values = [np.array(o.detach().numpy()) for o in outs]
    grads = [None if x.grad is None else np.array(x.grad.numpy()) for x in xs]
    return values, grads


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_forward_and_backward_match_torch(name):
    torch = pytest.importorskip("torch")
    ours, theirs = _run(rnnbp, name), _run(torch, name)
    for kind, a_list, b_list in (("output", ours[0], theirs[0]), ("gradient", ours[1], theirs[1])):
        assert len(a_list) == len(b_list)
        for i, (a, b) in enumerate(zip(a_list, b_list)):
            if b is None:
                assert a is None or not np.any(a), f"{name}: {kind} {i} should be zero"
                continue
            assert a is not None, f"{name}: {kind} {i} missing"
            assert a.shape == b.shape, f"{name}: {kind} {i} shape {a.shape} vs torch {b.shape}"
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"{name}: {kind} {i}")


# ---------------------------------------------------------- ties and repeated writes
@pytest.mark.parametrize("case", ["amax-ties", "amax-ties-all", "norm-inf-ties", "norm-zero", "norm3-zero",
                                  "norm-half-zero-entry", "setitem-repeated-index"])
def test_tie_and_zero_gradients_match_torch(case):
    """Where finite differences do not apply (ties, a zero norm, a repeated write), PyTorch's rule."""
    torch = pytest.importorskip("torch")
    data = np.array([[3.0, 3.0, 1.0], [3.0, 0.0, 2.0]])
    value = np.array([5.0, 7.0])
    fns = {
        "amax-ties": lambda m, x, v: x.amax(1),  # row 0: two tied maxima share the gradient
        "amax-ties-all": lambda m, x, v: m.amax(x, (0, 1)),  # three tied maxima share it in thirds
        "norm-inf-ties": lambda m, x, v: x.norm(p=float("inf"), dim=1),
        "norm-zero": lambda m, x, v: (x * 0).norm(dim=1),
        "norm3-zero": lambda m, x, v: (x * 0).norm(p=3),
        "norm-half-zero-entry": lambda m, x, v: x.norm(p=0.5, dim=1),  # x[1, 1] == 0: its gradient is 0
        "setitem-repeated-index": _setitem(([0, 0], [1, 1])),
    }
    results = []
    for m in (rnnbp, torch):
        x = m.tensor(data, dtype=m.float64, requires_grad=True)
        v = m.tensor(value, dtype=m.float64, requires_grad=True)
        out = fns[case](m, x, v)
        (out * m.tensor(np.arange(1.0, out.numel() + 1).reshape(tuple(out.shape)), dtype=m.float64)).sum().backward()
        grads = [np.zeros(t.shape) if t.grad is None else np.array(t.grad.numpy()) for t in (x, v)]
        results.append((np.array(out.detach().numpy()), grads))
    (ours, our_grads), (theirs, their_grads) = results
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    for a, b in zip(our_grads, their_grads):
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_amax_forward_is_exactly_the_maximum():
    x = rnnbp.tensor([[0.1, 0.1, 0.1], [-np.inf, -np.inf, -np.inf], [np.inf, 1.0, np.inf]],
                     dtype=rnnbp.float64, requires_grad=True)
    out = x.amax(1)
    assert out.numpy().tolist() == [0.1, -np.inf, np.inf]
    assert np.isnan(rnnbp.tensor([1.0, np.nan]).amax(0).item())


def test_gradients_of_in_place_chain_equal_out_of_place():
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((2, 3)) for _ in range(3)]
    grads = []
    for inplace in (True, False):
        a, b, c = (rnnbp.tensor(x, dtype=rnnbp.float64, requires_grad=True) for x in arrays)
        if inplace:
            y = a * 2
            y.add_(b)
            y.mul_(c)
            y += a
        else:
            y = (a * 2 + b) * c + a
        (y * y).sum().backward()
        grads.append([a.grad.numpy().copy(), b.grad.numpy().copy(), c.grad.numpy().copy()])
    for g_in, g_out in zip(*grads):
        np.testing.assert_array_equal(g_in, g_out)


def test_augmented_assignment_keeps_the_object():
    a = rnnbp.tensor([1.0, 2.0], requires_grad=True)
    y = a * 1.0
    before = id(y)
    y += rnnbp.tensor([3.0, 4.0])
    assert id(y) == before and y.numpy().tolist() == [4.0, 6.0] and y.grad_fn is not None
    z = rnnbp.zeros(2)
    alias = z.numpy()
    z += 1
    assert alias.tolist() == [1.0, 1.0]  # outside a graph the write lands in the same memory


def test_clone_has_its_own_memory():
    x = rnnbp.tensor([1.0, 2.0])
    y = x.clone()
    y.add_(1)
    assert x.numpy().tolist() == [1.0, 2.0] and y.numpy().tolist() == [2.0, 3.0]
    t = rnnbp.zeros(3, 2).t()
    assert not t.is_contiguous() and t.contiguous().is_contiguous()


# ------------------------------------------------------- non-differentiable parity
@pytest.mark.parametrize("mode", ["trunc", "floor"])
@pytest.mark.parametrize("kind", ["int", "float"])
def test_div_rounding_mode_matches_torch(mode, kind):
    torch = pytest.importorskip("torch")
    a = [7, -7, 7, -7, 0, 9, -1, 1]
    b = [2, 2, -2, -2, 3, 3, 2, -2]
    if kind == "float":
        a, b = [x + 0.5 for x in a], [float(x) for x in b]
    for divisor in (b, 2, -3, 2.5):
        mine = rnnbp.tensor(a).div(rnnbp.tensor(divisor) if isinstance(divisor, list) else divisor, rounding_mode=mode)
        ref = torch.tensor(a).div(torch.tensor(divisor) if isinstance(divisor, list) else divisor, rounding_mode=mode)
        assert mine.numpy().tolist() == ref.tolist(), (divisor, mine, ref)
        assert mine.dtype.name == str(ref.dtype).replace("torch.", "")
    assert (rnnbp.tensor(a) // 2).numpy().tolist() == (torch.tensor(a) // 2).tolist()
    assert (7 // rnnbp.tensor(b)).numpy().tolist() == (7 // torch.tensor(b)).tolist()


def test_integer_division_by_zero_raises_like_torch():
    with pytest.raises(ZeroDivisionError, match="div"):
        rnnbp.tensor([1, 2]).div(0, rounding_mode="floor")
    with pytest.raises(ZeroDivisionError, match="div"):
        rnnbp.tensor([1, 2]).div(rnnbp.tensor([1, 0]), rounding_mode="trunc")


def test_sort_argsort_topk_match_torch_with_ties():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    data = rng.integers(0, 5, (3, 40)).astype(np.float64)  # many ties; past insertion-sort sizes
    x, t = rnnbp.tensor(data), torch.tensor(data)
    for descending in (False, True):
        for stable in (False, True):
            # rnnbp always sorts stably; torch's CPU sort with stable=True is the reference.
            mine = x.sort(dim=1, descending=descending, stable=stable)
            ref = t.sort(dim=1, descending=descending, stable=True)
            np.testing.assert_array_equal(mine.values.numpy(), ref.values.numpy())
            np.testing.assert_array_equal(mine.indices.numpy(), ref.indices.numpy())
            np.testing.assert_array_equal(x.argsort(dim=1, descending=descending, stable=stable).numpy(),
                                          ref.indices.numpy())
        mine = x.sort(dim=0, descending=descending)
        ref = t.sort(dim=0, descending=descending, stable=True)
        np.testing.assert_array_equal(mine.indices.numpy(), ref.indices.numpy())
    for largest in (True, False):
        mine, ref = x.topk(7, dim=1, largest=largest), t.topk(7, dim=1, largest=largest)
        np.testing.assert_array_equal(mine.values.numpy(), ref.values.numpy())
        # With ties torch's choice among equal entries is unspecified: the indices must point at the values.
        np.testing.assert_array_equal(np.take_along_axis(data, mine.indices.numpy(), 1), mine.values.numpy())
        assert all(len(set(row)) == 7 for row in mine.indices.numpy().tolist())
    distinct = rng.permutation(12).astype(np.float64).reshape(3, 4)
    for largest in (True, False):
        mine = rnnbp.tensor(distinct).topk(2, dim=0, largest=largest)
        ref = torch.tensor(distinct).topk(2, dim=0, largest=largest)
        np.testing.assert_array_equal(mine.indices.numpy(), ref.indices.numpy())


@pytest.mark.parametrize("data", [
    [1.0, float("nan"), 0.0, float("inf"), -float("inf"), float("nan")],
    np.array([np.iinfo(np.int64).min, 0, np.iinfo(np.int64).max, -1], dtype=np.int64),
    np.array([-128, 5, 127, 0], dtype=np.int8),
    np.array([0, 255, 3], dtype=np.uint8),
    [True, False, True, False],
], ids=["nan-inf", "int64-extremes", "int8-extremes", "uint8", "bool"])
def test_sort_special_values_match_torch(data):
    torch = pytest.importorskip("torch")
    for descending in (False, True):
        mine = rnnbp.tensor(data).sort(descending=descending, stable=True)
        ref = torch.tensor(data).sort(descending=descending, stable=True)
        np.testing.assert_array_equal(mine.values.numpy(), ref.values.numpy())
        np.testing.assert_array_equal(mine.indices.numpy(), ref.indices.numpy())


def test_multinomial_shapes_and_ranges():
    torch = pytest.importorskip("torch")
    rnnbp.manual_seed(0)
    weights = [[0.1, 0.0, 0.5, 0.4], [1.0, 1.0, 0.0, 1.0]]
    for w, k, replacement in ((weights[0], 1, False), (weights[0], 50, True), (weights, 3, False), (weights, 20, True)):
        mine = rnnbp.multinomial(rnnbp.tensor(w), k, replacement=replacement)
        ref = torch.multinomial(torch.tensor(w), k, replacement=replacement)
        assert tuple(mine.shape) == tuple(ref.shape) and mine.dtype == rnnbp.int64
        drawn = mine.numpy().reshape(-1, k)
        allowed = np.asarray(w).reshape(-1, 4) > 0
        assert all(allowed[r][drawn[r]].all() for r in range(len(drawn)))  # zero weights never drawn
        if not replacement:
            assert all(len(set(row)) == k for row in drawn.tolist())


@pytest.mark.parametrize("args, kwargs, low, high", [
    ((10, (3,)), {}, 0, 10),
    ((2, 10, (3, 2)), {}, 2, 10),
    ((5,), {"size": (4,)}, 0, 5),
    ((3, 5), {"size": [2, 2]}, 3, 5),
    ((), {"low": 2, "high": 6, "size": (50,)}, 2, 6),
    ((), {"high": 4, "size": (50,)}, 0, 4),
    ((-3, 3, (100,)), {"dtype": rnnbp.float64}, -3, 3),
])
def test_randint_signatures_match_torch(args, kwargs, low, high):
    torch = pytest.importorskip("torch")
    mine = rnnbp.randint(*args, **kwargs)
    ref = torch.randint(*args, **{k: (torch.float64 if k == "dtype" else v) for k, v in kwargs.items()})
    assert tuple(mine.shape) == tuple(ref.shape)
    assert mine.dtype.name == str(ref.dtype).replace("torch.", "")
    assert mine.numpy().min() >= low and mine.numpy().max() < high


def test_randint_bad_bounds():
    with pytest.raises(ValueError, match="randint: expected low < high"):
        rnnbp.randint(5, 5, (2,))
    with pytest.raises(TypeError, match="randint: missing the size"):
        rnnbp.randint()


@pytest.mark.parametrize("args, kwargs", [
    ((0, 1, 5), {}), ((-1, 1, 1), {}), ((2.5, -1, 8), {}), ((0, 10), {"steps": 11, "dtype": "float64"}),
])
def test_linspace_matches_torch(args, kwargs):
    torch = pytest.importorskip("torch")
    mine = rnnbp.linspace(*args, **kwargs)
    ref = torch.linspace(*args, **{k: (torch.float64 if k == "dtype" else v) for k, v in kwargs.items()})
    assert mine.dtype.name == str(ref.dtype).replace("torch.", "")
    np.testing.assert_allclose(mine.numpy(), ref.numpy(), rtol=1e-6 if mine.dtype == rnnbp.float32 else 1e-14)


@pytest.mark.parametrize("args", [(5,), (1, 5), (5, 0, -1), (0, 10, 3), (0, 1, 0.25), (0.0, 3), (1, 2.5), (-2, 2, 0.5)])
def test_arange_values_and_dtypes_match_torch(args):
    torch = pytest.importorskip("torch")
    mine, ref = rnnbp.arange(*args), torch.arange(*args)
    expected = "int64" if all(isinstance(a, int) for a in args) else "float32"
    assert mine.dtype.name == expected == str(ref.dtype).replace("torch.", "")
    np.testing.assert_array_equal(mine.numpy(), ref.numpy())


@pytest.mark.parametrize("value", [1, 1.5, True, np.int64(2), np.int32(3), np.float64(2.0), -0.0])
def test_full_dtype_inference_matches_torch(value):
    torch = pytest.importorskip("torch")
    mine, ref = rnnbp.full((2, 3), value), torch.full((2, 3), value)
    assert mine.dtype.name == str(ref.dtype).replace("torch.", ""), (value, mine.dtype, ref.dtype)
    np.testing.assert_array_equal(mine.numpy(), ref.numpy())
    assert rnnbp.full([2], 7, dtype=rnnbp.float64).dtype == rnnbp.float64


def test_size_is_a_tuple_subclass_like_torch_size():
    torch = pytest.importorskip("torch")
    x = rnnbp.zeros(2, 3, 4)
    size = x.size()
    assert isinstance(size, tuple) and type(size) is rnnbp.Size
    assert size == torch.zeros(2, 3, 4).size() == (2, 3, 4)
    assert size.numel() == 24 == torch.Size([2, 3, 4]).numel()
    assert x.size(1) == 3 and x.size(-1) == 4
    assert repr(size) == "rnnbp.Size([2, 3, 4])"
    assert rnnbp.Size([]).numel() == 1


@pytest.mark.parametrize("name", ["float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"])
def test_type_strings_match_torch(name):
    torch = pytest.importorskip("torch")
    mine = rnnbp.zeros(2, dtype=getattr(rnnbp, name)).type()
    assert mine == torch.zeros(2, dtype=getattr(torch, name)).type()
    assert rnnbp.zeros(2).type(mine).dtype == getattr(rnnbp, name)  # and back


# ------------------------------------------------------------------ in-place rules
INPLACE_OPS = {
    "add_": (lambda t: t.add_(rnnbp.tensor([1.0, 1.0, 1.0], dtype=rnnbp.float64), alpha=2), lambda a: a + 2),
    "sub_": (lambda t: t.sub_(1.0), lambda a: a - 1),
    "mul_": (lambda t: t.mul_(3.0), lambda a: a * 3),
    "div_": (lambda t: t.div_(4.0), lambda a: a / 4),
    "clamp_": (lambda t: t.clamp_(min=1.5), lambda a: np.maximum(a, 1.5)),
    "fill_": (lambda t: t.fill_(7.0), lambda a: np.full_like(a, 7.0)),
    "zero_": (lambda t: t.zero_(), np.zeros_like),
    "copy_": (lambda t: t.copy_(rnnbp.tensor([4.0, 5.0, 6.0])), lambda a: np.array([4.0, 5.0, 6.0])),
    "uniform_": (lambda t: t.uniform_(10.0, 11.0), None),
    "normal_": (lambda t: t.normal_(100.0, 0.1), None),
    "masked_fill_": (lambda t: t.masked_fill_(rnnbp.tensor([True, False, True]), 0.0),
                     lambda a: np.where([True, False, True], 0.0, a)),
    "setitem": (lambda t: t.__setitem__(1, -9.0), lambda a: np.array([a[0], -9.0, a[2]])),
    "+=": (lambda t: t.__iadd__(1.0), lambda a: a + 1),
}


@pytest.mark.parametrize("op", sorted(INPLACE_OPS))
def test_in_place_on_a_leaf_requiring_grad(op):
    apply, expect = INPLACE_OPS[op]
    p = rnnbp.tensor([1.0, 2.0, 3.0], dtype=rnnbp.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Tensor that requires grad"):
        apply(p)
    assert p.numpy().tolist() == [1.0, 2.0, 3.0] and p._version == 0
    memory = p.numpy()
    with rnnbp.no_grad():
        out = apply(p)
    assert p._version == 1
    assert p.is_leaf and p.requires_grad and p.grad_fn is None
    assert np.shares_memory(p.numpy(), memory)  # written in place: aliases (p.data, optimizer state) see it
    if out is not None:
        assert out is p
    if expect is not None:
        np.testing.assert_array_equal(p.numpy(), expect(np.array([1.0, 2.0, 3.0])))
    else:
        assert p.numpy().min() >= 10.0  # the random fills replaced every value


def test_manual_sgd_through_data_updates_the_parameter():
    p = rnnbp.tensor([1.0, -2.0, 3.0], dtype=rnnbp.float64, requires_grad=True)
    assert p.grad is None
    (p * p).sum().backward()
    assert isinstance(p.grad, rnnbp.Tensor) and p.grad.numpy().tolist() == [2.0, -4.0, 6.0]
    assert not p.grad.requires_grad
    data = p.data
    assert not data.requires_grad and data.grad_fn is None and np.shares_memory(data.numpy(), p.numpy())
    kept = p * 1.0  # a graph through p built before the update still runs afterwards (no version bump)
    version = p._version
    p.data.add_(p.grad, alpha=-0.25)
    np.testing.assert_array_equal(p.numpy(), [0.5, -1.0, 1.5])
    assert p._version == version and p.is_leaf and p.grad_fn is None and p.requires_grad
    kept.sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), [3.0, -3.0, 7.0])  # 2p (before) + 1, accumulated


def test_grad_zero_and_accumulation():
    p = rnnbp.tensor([1.0, 2.0], dtype=rnnbp.float64, requires_grad=True)
    (p * p).sum().backward()
    (p * 3).sum().backward()
    assert p.grad.numpy().tolist() == [5.0, 7.0]  # backward adds into .grad
    p.grad.zero_()
    assert p.grad.numpy().tolist() == [0.0, 0.0]
    (p * 3).sum().backward()
    assert p.grad.numpy().tolist() == [3.0, 3.0]
    assert p.grad.norm().item() == pytest.approx(math.sqrt(18), rel=1e-15)
    assert p.grad.norm(p=1).item() == 6.0 and p.grad.norm(float("inf")).item() == 3.0


def test_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(2).standard_normal((4, 3))
    norms = []
    for m in (rnnbp, torch):
        p = m.tensor(data, dtype=m.float64, requires_grad=True)
        (p.sin() * p).sum().backward()
        norms.append([p.grad.norm().item(), p.grad.norm(p=1).item(), p.grad.norm(dim=0).numpy().tolist()])
    np.testing.assert_allclose(norms[0][:2], norms[1][:2], rtol=1e-13)
    np.testing.assert_allclose(norms[0][2], norms[1][2], rtol=1e-13)


@pytest.mark.parametrize("lib", ["rnnbp", "torch"])
def test_in_place_change_of_a_saved_input_refuses_backward(lib):
    m = rnnbp if lib == "rnnbp" else pytest.importorskip("torch")
    x = m.tensor([0.5, 1.0, 2.0], dtype=m.float64, requires_grad=True)
    y = x * 1.0
    z = y.sin()  # sin saved y
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified in place|modified by an inplace operation"):
        z.sum().backward()
    w = x.sin()  # sin saved the leaf x: an update under no_grad (an optimizer step) invalidates it
    with m.no_grad():
        x.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified in place|modified by an inplace operation"):
        w.sum().backward()


def test_in_place_change_of_a_saved_constant_refuses_backward():
    """The op saved c: backward after changing it in place must raise (as PyTorch does), not use the new c."""
    x = rnnbp.tensor([1.0, 2.0], dtype=rnnbp.float64, requires_grad=True)
    c = rnnbp.tensor([1.0, 2.0], dtype=rnnbp.float64)
    z = x * c
    c.add_(1.0)
    with pytest.raises(RuntimeError, match="modified in place"):
        z.sum().backward()


def test_in_place_write_into_a_non_leaf_keeps_it_in_the_graph():
    a = rnnbp.tensor([1.0, 2.0, 3.0], dtype=rnnbp.float64, requires_grad=True)
    y = a * 2
    y.zero_()
    assert y.requires_grad and not y.is_leaf and y._version == 1
    y.sum().backward()
    assert a.grad.numpy().tolist() == [0.0, 0.0, 0.0]
    with rnnbp.no_grad():
        y = a * 2
        y.fill_(1.0)
    assert not y.requires_grad and y.numpy().tolist() == [1.0, 1.0, 1.0]


def test_copy_from_a_tensor_requiring_grad_is_recorded_and_casts():
    src = rnnbp.tensor([1.0, 2.0], dtype=rnnbp.float64, requires_grad=True)
    dst = rnnbp.zeros(3, 2)  # float32
    dst.copy_(src)
    assert dst.dtype == rnnbp.float32 and dst.grad_fn is not None
    (dst * rnnbp.tensor([[1.0], [2.0], [3.0]])).sum().backward()
    assert src.grad.dtype == rnnbp.float64 and src.grad.numpy().tolist() == [6.0, 6.0]
    with pytest.raises(ValueError, match=r"copy_: source of shape \(3,\) does not broadcast"):
        rnnbp.zeros(2, 2).copy_(rnnbp.ones(3))
    with rnnbp.no_grad():
        plain = rnnbp.zeros(2, dtype=rnnbp.float64).copy_(src)
    assert not plain.requires_grad and plain.numpy().tolist() == [1.0, 2.0]


def test_copy_into_a_graph_tensor_gives_its_old_values_a_zero_gradient():
    a = rnnbp.tensor(np.arange(6.0).reshape(3, 2), dtype=rnnbp.float64, requires_grad=True)
    b = rnnbp.tensor([3.0, 4.0], dtype=rnnbp.float64, requires_grad=True)
    x = a.clone()
    x.copy_(b)  # broadcast over the rows
    (x * x).sum().backward()
    assert a.grad is not None and a.grad.numpy().tolist() == [[0.0, 0.0]] * 3  # PyTorch's zeros, not None
    assert b.grad.numpy().tolist() == [18.0, 24.0]  # 3 rows of 2 b


@pytest.mark.parametrize("fill", ["uniform_", "normal_"])
def test_random_fills_are_reproducible(fill):
    def draw(**kwargs):
        t = rnnbp.empty(2000, dtype=rnnbp.float64)
        return getattr(t, fill)(2.0, 3.0, **kwargs).numpy().copy()

    rnnbp.manual_seed(11)
    first = draw()
    rnnbp.manual_seed(11)
    np.testing.assert_array_equal(first, draw())
    assert not np.array_equal(first, draw())
    np.testing.assert_array_equal(draw(generator=rnnbp.Generator().manual_seed(5)),
                                  draw(generator=rnnbp.Generator().manual_seed(5)))
    if fill == "uniform_":
        assert first.min() >= 2.0 and first.max() < 3.0 and first.mean() == pytest.approx(2.5, abs=0.03)
    else:
        assert first.mean() == pytest.approx(2.0, abs=0.3) and first.std() == pytest.approx(3.0, rel=0.1)
    assert rnnbp.empty(3).uniform_().dtype == rnnbp.float32  # the tensor's dtype is kept


# ------------------------------------------------------------------ dtypes
DTYPE_NAMES = ["float32", "float64", "float16", "int64", "long", "int32", "int", "bool", "double", "float"]


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_dtype_objects_in_factories_to_and_comparisons(name):
    dtype = getattr(rnnbp, name)
    made = [rnnbp.zeros(2, dtype=dtype), rnnbp.ones(2, 2, dtype=dtype), rnnbp.tensor([1, 0], dtype=dtype),
            rnnbp.full((2,), 1, dtype=dtype), rnnbp.arange(3, dtype=dtype), rnnbp.empty(1, dtype=dtype),
            rnnbp.ones(2).to(dtype), rnnbp.ones(2).to(dtype=dtype), rnnbp.ones(2).to("cpu", dtype),
            rnnbp.ones(2).new_zeros(3, dtype=dtype), rnnbp.zeros_like(rnnbp.ones(2), dtype=dtype)]
    for t in made:
        assert t.dtype == dtype and t.dtype is dtype
    others = [d for d in DTYPE_NAMES if getattr(rnnbp, d) != dtype]
    assert all(made[0].dtype != getattr(rnnbp, d) for d in others)


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_dtype_objects_mean_what_torch_means(name):
    torch = pytest.importorskip("torch")
    assert getattr(rnnbp, name).name == str(getattr(torch, name)).replace("torch.", "")


def test_dtype_method_casts():
    x = rnnbp.tensor([1.5, -2.5])
    assert x.double().dtype is rnnbp.float64 and x.half().dtype is rnnbp.float16
    assert x.long().dtype is rnnbp.int64 and x.long().numpy().tolist() == [1, -2]
    assert x.int().dtype is rnnbp.int32 and x.bool().dtype is rnnbp.bool
    assert x.double().float().dtype is rnnbp.float32
    assert x.type(rnnbp.float64).dtype is rnnbp.float64
    assert rnnbp.tensor([1, 2], dtype=float).dtype is rnnbp.float64  # Python's float is float64, as in torch


@pytest.mark.parametrize("spec", ["complex64", np.complex128, "torch.complex64", complex])
def test_complex_dtypes_are_refused_by_name(spec):
    name = np.dtype(spec.replace("torch.", "") if isinstance(spec, str) else spec).name
    with pytest.raises(TypeError, match=f"real-valued.*{name}"):
        rnnbp.zeros(2, dtype=spec)
    with pytest.raises(TypeError, match=name):
        rnnbp.ones(2).to(spec)


def test_complex_data_is_refused_by_name():
    with pytest.raises(TypeError, match="complex128"):
        rnnbp.tensor([1 + 2j])
    with pytest.raises(TypeError, match="complex128"):
        rnnbp.as_tensor(np.array([1j]))
    with pytest.raises(TypeError, match="complex64"):
        rnnbp.from_numpy(np.zeros(2, dtype=np.complex64))


# ------------------------------------------------------------------ devices
def test_cpu_device_forms():
    x = rnnbp.tensor([1.0, 2.0])
    double = rnnbp.zeros(1, dtype=rnnbp.float64)
    for same in (x.to("cpu"), x.to(rnnbp.device("cpu")), x.to(device="cpu:0"), x.cpu(), x.to(x)):
        assert same.dtype is rnnbp.float32 and np.shares_memory(same.numpy(), x.numpy())
    for cast in (x.to(double), x.to("cpu", rnnbp.float64), x.to(rnnbp.device("cpu"), dtype=rnnbp.float64)):
        assert cast.dtype is rnnbp.float64 and cast.numpy().tolist() == [1.0, 2.0]
    copy = x.to("cpu", copy=True)
    assert not np.shares_memory(copy.numpy(), x.numpy())
    assert x.device == rnnbp.device("cpu") == "cpu" and str(x.device) == "cpu" and x.device.type == "cpu"
    assert not x.is_cuda
    assert rnnbp.device("cpu", 0) == rnnbp.device("cpu:0") == rnnbp.device(rnnbp.device("cpu"))


def test_no_accelerator_is_available():
    assert rnnbp.cuda.is_available() is False and rnnbp.cuda.device_count() == 0
    assert rnnbp.backends.mps.is_available() is False
    assert rnnbp.accelerator.is_available() is False
    device = rnnbp.device("cuda" if rnnbp.cuda.is_available() else "cpu")  # the usual script line
    assert rnnbp.zeros(2, device=device).device == "cpu"


@pytest.mark.parametrize("request_cuda", [
    lambda: rnnbp.ones(2).cuda(),
    lambda: rnnbp.device("cuda"),
    lambda: rnnbp.device("cuda:1"),
    lambda: rnnbp.device(0),
    lambda: rnnbp.ones(2).to("cuda"),
    lambda: rnnbp.ones(2).to(device="cuda"),
    lambda: rnnbp.ones(2).to("cuda", rnnbp.float64),
    lambda: rnnbp.zeros(2, device="cuda"),
    lambda: rnnbp.tensor([1.0], device="cuda"),
    lambda: rnnbp.randn(2, device="cuda"),
    lambda: rnnbp.ones(2).new_zeros(2, device="cuda"),
    lambda: rnnbp.ones(2).to("mps"),
    lambda: rnnbp.Generator(device="cuda"),
], ids=[".cuda()", "device(cuda)", "device(cuda:1)", "device(0)", "to(cuda)", "to(device=cuda)", "to(cuda,dtype)",
        "zeros(device=cuda)", "tensor(device=cuda)", "randn(device=cuda)", "new_zeros(device=cuda)", "to(mps)",
        "Generator(cuda)"])
def test_gpu_requests_raise_a_device_error(request_cuda):
    with pytest.raises(rnnbp.DeviceError, match="rnnbp runs on the CPU"):
        request_cuda()
    assert issubclass(rnnbp.DeviceError, RuntimeError)


# ------------------------------------------------------------------ generators
def test_generator_manual_seed_is_reproducible_and_accepted_everywhere():
    g = rnnbp.Generator()
    assert g.manual_seed(3) is g and g.initial_seed() == 3
    first = rnnbp.randn(5, generator=g).numpy().copy()
    assert not np.array_equal(first, rnnbp.randn(5, generator=g).numpy())  # the stream moves on
    g.manual_seed(3)
    np.testing.assert_array_equal(first, rnnbp.randn(5, generator=g).numpy())  # and restarts
    # A new generator starts from torch's fixed default seed, so it is reproducible unseeded too.
    assert rnnbp.Generator().initial_seed() == 67280421310721
    np.testing.assert_array_equal(rnnbp.rand(3, generator=rnnbp.Generator()).numpy(),
                                  rnnbp.rand(3, generator=rnnbp.Generator()).numpy())

    draws = [
        lambda g: rnnbp.randn(4, generator=g),
        lambda g: rnnbp.rand(4, generator=g),
        lambda g: rnnbp.randint(0, 1000, (4,), generator=g),
        lambda g: rnnbp.randperm(20, generator=g),
        lambda g: rnnbp.multinomial(rnnbp.ones(50), 4, generator=g),
        lambda g: rnnbp.bernoulli(rnnbp.full((30,), 0.5), generator=g),
        lambda g: rnnbp.empty(4).uniform_(generator=g),
        lambda g: rnnbp.empty(4).normal_(generator=g),
    ]
    for draw in draws:
        a = draw(rnnbp.Generator().manual_seed(1)).numpy()
        np.testing.assert_array_equal(a, draw(rnnbp.Generator().manual_seed(1)).numpy())
        assert not np.array_equal(a, draw(rnnbp.Generator().manual_seed(2)).numpy())


def test_manual_seed_makes_the_default_stream_reproducible():
    rnnbp.manual_seed(123)
    a = [rnnbp.randn(3).numpy().copy(), rnnbp.randint(10, (5,)).numpy().copy(),
         rnnbp.multinomial(rnnbp.ones(10), 3).numpy().copy()]
    rnnbp.manual_seed(123)
    b = [rnnbp.randn(3).numpy(), rnnbp.randint(10, (5,)).numpy(), rnnbp.multinomial(rnnbp.ones(10), 3).numpy()]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(TypeError, match="generator must be"):
        rnnbp.randn(2, generator=42)


def test_flip_is_a_copy_and_names_bad_dims():
    x = rnnbp.arange(6).reshape(2, 3)
    y = rnnbp.flip(x, (0, 1))
    assert y.tolist() == [[5, 4, 3], [2, 1, 0]]
    y[0, 0] = 100  # a copy, as in PyTorch: x keeps its values
    assert x.tolist() == [[0, 1, 2], [3, 4, 5]]
    with pytest.raises(IndexError, match=r"flip: dim 2 is out of range for a tensor of shape \(2, 3\)"):
        x.flip(2)
    with pytest.raises(ValueError, match=r"flip: dims \(0, -2\) name a dim more than once"):
        x.flip(0, -2)
    assert rnnbp.flip(x, dims=[1]).tolist() == x.flip(dims=(1,)).tolist() == [[2, 1, 0], [5, 4, 3]]
    assert rnnbp.flip(x, ()).tolist() == x.tolist()  # no dims listed: a copy, as torch.flip(x, ())
    with pytest.raises(TypeError, match="flip: missing the dims"):
        x.flip()


def test_pad_refuses_what_it_does_not_do():
    F = rnnbp.nn.functional
    x = rnnbp.ones(2, 3)
    with pytest.raises(ValueError, match="pad: mode 'reflect' is not supported on rnnbp; only 'constant'"):
        F.pad(x, (1, 1), mode="reflect")
    with pytest.raises(ValueError, match="pad: negative widths"):
        F.pad(x, (-1, 0))
    with pytest.raises(ValueError, match=r"pad: expected pairs of widths for at most 2 dims"):
        F.pad(x, (1, 1, 1))


def test_einsum_refuses_what_it_does_not_do():
    a = rnnbp.ones(2, 2)
    with pytest.raises(ValueError, match=r"einsum: '\.\.\.' \(ellipsis\) is not supported"):
        rnnbp.einsum("...i->i", a)
    with pytest.raises(ValueError, match=r"einsum: a letter repeated within one operand \('ii', a diagonal\)"):
        rnnbp.einsum("ii->i", a)
    with pytest.raises(ValueError, match=r"einsum: 'ij,jk->ik' names 2 operands, got 1"):
        rnnbp.einsum("ij,jk->ik", a)
    with pytest.raises(ValueError, match=r"einsum: subscripts 'ijk' name 3 dims for an operand of shape \(2, 2\)"):
        rnnbp.einsum("ijk->i", a)
