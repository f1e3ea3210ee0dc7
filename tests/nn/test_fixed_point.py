"""nn.FixedPoint: recurrent-backprop gradients against central differences and full BPTT through the
iterations, memory flat in the number of iterations, and the errors of both solves."""
from __future__ import annotations

import math
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse.linalg  # noqa: F401  (imported up front so its import is not measured as memory)

import rnnbp
from rnnbp import nn
from rnnbp.autograd import Tensor, gradcheck
from rnnbp.autograd.engine import _toposort
from rnnbp.nn import FixedPoint, FixedPointError, FixedPointRNNCell, NotConvergedError
from rnnbp.nn.recursive.fixed_point_solvers import SolveInfo

RBP_METHODS = ("neumann", "gmres", "bicgstab")


def _cell(max_norm=0.9, inputs=3, hidden=5, dtype="float64", seed=0):
    rnnbp.manual_seed(seed)
    return FixedPointRNNCell(inputs, hidden, max_norm=max_norm, dtype=dtype)


def _slow_cell(c: float, inputs=8, hidden=32, seed=0) -> nn.RNNCell:
    """A plain RNNCell (any cell is an f) contracting slowly: W_hh ~ c/H (positive rows, spectral radius ~ c)."""
    rnnbp.manual_seed(seed)
    cell = nn.RNNCell(inputs, hidden, dtype="float64")
    rng = np.random.default_rng(seed)
    cell.weight_hh.data[...] = c / hidden * (1 + 0.1 * rng.standard_normal((hidden, hidden)))
    cell.weight_ih.data *= 0.3
    return cell


def _x(shape, seed=1, dtype=np.float64, requires_grad=False):
    return Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=requires_grad)


def _all_grads(layer, x, weights):
    """dL/d(x, params) of L = sum(weights * layer(x)), concatenated."""
    for p in layer.parameters():
        p.grad = None
    x.grad = None
    (layer(x) * Tensor(weights)).sum().backward()
    return np.concatenate([x.grad.numpy().ravel()] + [p.grad.numpy().ravel() for p in layer.parameters()])


# ------------------------------------------------------------------ gradients
@pytest.mark.parametrize("method", RBP_METHODS + ("bptt",))
def test_gradcheck_of_the_fixed_point_node(method):
    cell = _cell(max_norm=0.6)
    layer = FixedPoint(cell, tol=1e-13, max_iter=500, backward=method, backward_tol=1e-12)
    x = _x((2, 3), requires_grad=True)
    assert gradcheck(lambda x, *params: layer(x), [x, *cell.parameters()], atol=1e-7, rtol=1e-5)
    assert layer.last_forward.converged and layer.last_forward.iterations > 5


def test_gradcheck_of_the_contractive_cell_with_rows_above_and_below_max_norm():
    cell = _cell(max_norm=0.9, hidden=4)
    signs = np.sign(np.random.default_rng(2).standard_normal((4, 4)))
    # Row 0 sums to 0.4 (kept as is), the others to 1.2, 2 and 2.8 (rescaled to 0.9).
    cell.weight_hh.data[...] = signs * np.array([[0.1], [0.3], [0.5], [0.7]]) * np.array([0.7, 0.9, 1.1, 1.3])
    sums = np.abs(cell.weight_hh.data).sum(axis=1)
    assert sums[0] < 0.9 < sums[1:].min()
    x, h = _x((2, 3), requires_grad=True), _x((2, 4), seed=3, requires_grad=True)
    assert gradcheck(lambda x, h, *params: cell(x, h), [x, h, *cell.parameters()])
    assert np.abs(cell.effective_weight_hh().data).sum(axis=1).max() == pytest.approx(0.9)


@pytest.mark.parametrize("method", ["neumann", "gmres"])
def test_rbp_equals_bptt_through_the_converged_iterations_within_a_multiple_of_tol(method):
    """|g_rbp - g_bptt|_inf <= C tol |g_bptt|_inf with C = 4 / (1 - rate) = 20 for this map's contraction
    rate 0.8, at tol 1e-4 and 1e-8 (backward_tol = tol); measured: C ~ 7 and ~ 14.

    Both differ from the exact implicit gradient g* (solved to 1e-14) by O(tol / (1 - rate)): BPTT
    sums the Neumann series only over the iterations that ran, along iterates not yet at h*; RBP
    stops its own series at backward_tol and is the closer of the two (|g_rbp - g*| <= 2 tol / (1 - rate)
    |g*|, measured ~ 1.7 tol). A wrong adjoint (a missing J^T term, say) would be off by O(1).
    """
    cell = _slow_cell(0.8, inputs=4, hidden=12)
    x = _x((6, 4), requires_grad=True)
    weights = np.random.default_rng(5).standard_normal((6, 12))
    exact = _all_grads(FixedPoint(cell, tol=1e-15, max_iter=1000, backward="gmres", backward_tol=1e-14), x, weights)
    scale = np.abs(exact).max()
    errors = []
    for tol in (1e-4, 1e-8):
        reference = _all_grads(FixedPoint(cell, tol=tol, backward="bptt"), x, weights)
        layer = FixedPoint(cell, tol=tol, backward=method)
        rbp = _all_grads(layer, x, weights)
        assert layer.last_forward.iterations >= 20 and layer.last_backward.converged
        errors.append(np.abs(rbp - reference).max() / np.abs(reference).max())
        assert errors[-1] <= 20 * tol, (method, tol, errors[-1])
        assert np.abs(rbp - exact).max() / scale <= 10 * tol
    assert errors[1] < errors[0] / 100


def test_unstable_fixed_point_gmres_solves_what_neumann_cannot():
    """h* = 0 of h = tanh(a h + x) at x = 0 with a = 2: J = 2, so the Neumann series diverges while
    (1 - J) v = g is solvable: dh*/dx = 1 / (1 - a) = -1 and dh*/da = h* / (1 - a) = 0."""

    class Scalar(nn.Module):
        state_size = 1

        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(np.array([2.0]))

        def forward(self, x, h):
            return (h * self.a + x).tanh()

    x = Tensor(np.zeros((3, 1)), requires_grad=True)
    layer = FixedPoint(Scalar(), tol=1e-12, backward="gmres", backward_tol=1e-12)
    layer(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), -np.ones((3, 1)), atol=1e-10)
    assert layer.last_forward.iterations == 1 and layer.last_backward.converged

    x.grad = None
    layer = FixedPoint(Scalar(), tol=1e-12, backward="neumann", backward_max_iter=60)
    out = layer(x).sum()
    with pytest.raises(NotConvergedError, match=r"backward \(neumann\).*after 60 .*spectral radius >= 1") as err:
        out.backward()
    assert err.value.stage == "backward" and err.value.info.residual > 1e10
    assert layer.last_backward is err.value.info and not layer.last_backward.converged


# -------------------------------------------------------------------- memory
def _peak_bytes(layer, x):
    """Peak traced allocation of forward + backward, above what was allocated before."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        out = layer(x)
        nodes = len(_toposort([out._node]))
        (out * out).sum().backward()
        return tracemalloc.get_traced_memory()[1] - base, nodes
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("method", ["neumann", "gmres"])
def test_memory_does_not_grow_with_the_iterations_for_rbp_but_does_for_bptt(method):
    """10x the iterations (tolerance 1e-2 -> 1e-11 on a slowly contracting map): RBP's peak stays
    within 1.25x and its graph one node; BPTT's peak grows over 5x, its graph with the iterations."""
    cell = _slow_cell(0.9)
    x = _x((64, 8))
    peaks, nodes, iterations = {}, {}, {}
    for backward in (method, "bptt"):
        for tol in (1e-2, 1e-11):
            layer = FixedPoint(cell, tol=tol, max_iter=1000, backward=backward)
            _peak_bytes(layer, x)  # warm-up: first-call caches are not the layer's memory
            peaks[backward, tol], nodes[backward, tol] = _peak_bytes(layer, x)
            iterations[backward, tol] = layer.last_forward.iterations
    assert iterations[method, 1e-11] >= 10 * iterations[method, 1e-2]
    assert peaks[method, 1e-11] <= 1.25 * peaks[method, 1e-2], peaks
    assert peaks["bptt", 1e-11] >= 5 * peaks["bptt", 1e-2], peaks
    assert peaks["bptt", 1e-11] >= 10 * peaks[method, 1e-11], peaks
    assert nodes[method, 1e-2] == nodes[method, 1e-11] == 1
    assert nodes["bptt", 1e-11] >= 3 * iterations["bptt", 1e-11]


# -------------------------------------------------------------------- errors
def test_forward_not_converging_raises_with_the_numbers_and_a_hint():
    layer = FixedPoint(_slow_cell(0.99), tol=1e-12, max_iter=5)
    with pytest.raises(NotConvergedError, match=r"forward did not converge.*after 5 iterations \(max_iter=5\), "
                                                r"tol=1e-12; .*lower the norm.*max_iter") as err:
        layer(_x((4, 8)))
    assert err.value.stage == "forward" and err.value.info.iterations == 5
    assert err.value.info.residual > 1e-12 and layer.last_forward is err.value.info


def test_forward_not_converging_warns_with_strict_false_and_still_trains():
    layer = FixedPoint(_slow_cell(0.99), tol=1e-12, max_iter=5, strict=False, backward_tol=1e-6,
                       backward_max_iter=2000)
    x = _x((4, 8), requires_grad=True)
    with pytest.warns(RuntimeWarning, match="forward did not converge"):
        out = layer(x)
    out.sum().backward()
    assert not layer.last_forward.converged and layer.last_backward.converged
    assert np.all(np.isfinite(x.grad.numpy())) and np.abs(x.grad.numpy()).max() > 0


@pytest.mark.parametrize("method", ["gmres", "bicgstab", "neumann"])
def test_backward_not_converging_within_its_budget_raises(method):
    layer = FixedPoint(_slow_cell(0.9), tol=1e-10, backward=method, backward_tol=1e-12, backward_max_iter=4)
    out = layer(_x((4, 8))).sum()
    with pytest.raises(NotConvergedError, match=rf"backward \({method}\) did not converge.*backward_tol=1e-12"):
        out.backward()
    assert layer.last_backward.stage == "backward" and not layer.last_backward.converged
    assert layer.last_backward.iterations <= 4


@pytest.mark.parametrize("method", RBP_METHODS)
@pytest.mark.parametrize("budget", [5, 23, 30, 200])
def test_backward_keeps_to_its_budget_of_products(method, budget):
    """The Krylov solvers' restarts and residual checks count against backward_max_iter too."""
    layer = FixedPoint(_slow_cell(0.99), tol=1e-12, max_iter=5000, backward=method, backward_tol=1e-30,
                       backward_max_iter=budget, strict=False)
    out = layer(_x((4, 8))).sum()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the solve stops at its budget or stagnates
        out.backward()
    assert layer.last_backward.iterations <= budget


def test_numpy_scalars_are_accepted_as_tolerances():
    layer = FixedPoint(_cell(), tol=np.float32(1e-5), backward_tol=np.float64(1e-6))
    assert layer.tol == pytest.approx(1e-5) and layer.backward_tol == 1e-6


def test_nan_in_the_forward_iteration_names_the_forward_and_the_iteration():
    x = _x((4, 3))
    x.numpy()[2, 1] = np.nan
    with pytest.raises(FixedPointError, match=r"forward: f\(x, h\) produced NaN or Inf at iteration 1 of 200"):
        FixedPoint(_cell())(x)


def test_nan_gradient_arriving_at_the_fixed_point_is_named():
    layer = FixedPoint(_cell())
    out = layer(_x((4, 3), requires_grad=True))
    with pytest.raises(FixedPointError, match="incoming gradient dL/dh\\* holds NaN"):
        (out * Tensor(np.full(out.shape, np.nan))).sum().backward()


def test_adjoint_overflowing_in_float32_raises_naming_the_backward():
    class Doubling(nn.Module):
        state_size = 2

        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(np.array([2.0], dtype=np.float32))

        def forward(self, x, h):
            return (h * self.a + x).tanh()

    layer = FixedPoint(Doubling(), tol=1e-6, backward_max_iter=500)
    out = layer(Tensor(np.zeros((3, 2), dtype=np.float32)))
    with pytest.raises(FixedPointError, match=r"backward \(neumann\): the adjoint v became NaN or Inf"):
        out.sum().backward()


def test_shape_and_dtype_mismatch_between_h_and_f_name_both():
    class Widening(nn.Module):
        def forward(self, x, h):
            return rnnbp.cat([h, h], dim=1)

    with pytest.raises(ValueError, match=r"f\(x, h\) must return a state like h, got shape \(4, 6\) and dtype "
                                         r"float64 for h of shape \(4, 3\)"):
        FixedPoint(Widening())(_x((4, 3)), h0=np.zeros((4, 3)))
    class Promoting(nn.Module):
        def forward(self, x, h):
            return h.double()

    with pytest.raises(ValueError, match=r"got shape \(4, 3\) and dtype float64 for h of shape \(4, 3\) and dtype "
                                         r"float32"):
        FixedPoint(Promoting())(_x((4, 3)), h0=np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="pass h0.*Widening has no integer state_size"):
        FixedPoint(Widening())(_x((4, 3)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(backward="adam"), r"backward must be one of \('neumann', 'gmres', 'bicgstab', 'bptt'\), got 'adam'"),
    (dict(tol=-1.0), "tol must be a finite number >= 0, got -1.0"),
    (dict(tol=True), "tol must be a finite number >= 0, got True"),
    (dict(backward_tol=0.0), r"backward_tol must be > 0; a relative"),
    (dict(tol=0.0), r"backward_tol must be > 0 \(it defaults to tol, which is 0: pass backward_tol\)"),
    (dict(max_iter=0), "max_iter must be a positive integer, got 0"),
    (dict(backward_max_iter=2.5), "backward_max_iter must be a positive integer, got 2.5"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FixedPoint(_cell(), **kwargs)
    with pytest.raises(TypeError, match="f must be a Module"):
        FixedPoint(lambda x, h: h)


def test_parameters_updated_between_forward_and_backward_are_refused():
    layer = FixedPoint(_cell())
    out = layer(_x((2, 3)))
    layer.f.weight_hh.grad = np.ones(layer.f.weight_hh.shape)
    rnnbp.optim.SGD(layer.parameters(), lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified in place after the forward pass"):
        out.sum().backward()


# ------------------------------------------------------------- dtypes, info
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", ["neumann", "gmres", "bptt"])
def test_dtype_is_kept_through_forward_and_backward(dtype, method):
    cell = _cell(dtype=dtype)
    layer = FixedPoint(cell, tol=1e-4, backward=method)
    x = _x((4, 3), dtype=dtype, requires_grad=True)
    out = layer(x)
    out.sum().backward()
    assert out.dtype == dtype and x.grad.numpy().dtype == dtype
    assert all(p.grad.numpy().dtype == dtype for p in cell.parameters())


def test_solve_info_reports_both_solves():
    layer = FixedPoint(_slow_cell(0.8), tol=1e-6, backward="neumann", backward_tol=1e-7)
    layer(_x((4, 8), requires_grad=True)).sum().backward()
    fwd, bwd = layer.last_forward, layer.last_backward
    assert isinstance(fwd, SolveInfo) and isinstance(bwd, SolveInfo)
    assert (fwd.stage, fwd.method, fwd.tol, bwd.stage, bwd.method, bwd.tol) == (
        "forward", "iteration", 1e-6, "backward", "neumann", 1e-7)
    assert fwd.converged and fwd.residual <= 1e-6 and bwd.converged and bwd.residual <= 1e-7
    # Rate ~0.8: the number of iterations is what a geometric decay to 1e-6 needs.
    assert 30 <= fwd.iterations <= 90 and 30 <= bwd.iterations <= 90


def test_the_fixed_point_is_one_and_no_graph_is_kept_without_grad():
    cell = _cell()
    layer = FixedPoint(cell, tol=1e-12)
    x = _x((4, 3))
    h = layer(x)
    np.testing.assert_allclose(cell(x, h).data, h.numpy(), atol=1e-11)
    np.testing.assert_allclose(layer(x, h0=np.ones((4, 5))).data, h.numpy(), atol=1e-11)  # unique
    with rnnbp.no_grad():
        assert layer(x).grad_fn is None
    assert math.isclose(np.abs(cell.effective_weight_hh().data).sum(axis=1).max(), 0.9)


def test_batch_rows_equal_rows_alone_within_tolerance_and_state_dict_round_trips():
    """Rows alone stop at their own iteration count; each stays within rate / (1 - rate) tol of h*."""
    layer = FixedPoint(_slow_cell(0.8), tol=1e-6)
    x = _x((5, 8))
    batch = layer(x).data
    alone = np.concatenate([layer(x[i:i + 1]).data for i in range(5)])
    assert np.abs(batch - alone).max() <= 8e-6
    twin = FixedPoint(_slow_cell(0.8, seed=1), tol=1e-6)
    assert np.abs(twin(x).data - batch).max() > 1e-3
    twin.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(twin(x).data, batch)


class _IgnoresState(nn.Module):
    def __init__(self, lin):
        super().__init__()
        self.lin = lin

    def forward(self, x, h):
        return self.lin(x).tanh()


@pytest.mark.parametrize("method", RBP_METHODS)
def test_a_map_that_ignores_h_is_its_own_fixed_point(method):
    """J = 0: the adjoint is g itself, and the gradient is that of one call of f."""
    lin = nn.Linear(3, 4, dtype="float64")
    layer = FixedPoint(_IgnoresState(lin), tol=1e-12, backward=method)
    x = _x((2, 3), requires_grad=True)
    layer(x, h0=np.zeros((2, 4))).tanh().sum().backward()
    got = x.grad.numpy().copy()
    x.grad = None
    lin(x).tanh().tanh().sum().backward()
    np.testing.assert_allclose(got, x.grad.numpy(), rtol=1e-12)
    assert layer.last_forward.iterations == 2
