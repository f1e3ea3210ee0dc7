"""Adadelta, Adamax, NAdam, RAdam and LBFGS: trajectories against references written here from the
published rules, against torch.optim (float64), the pure update functions on their own, the line
search, and the API contract (state dicts, dtypes, errors)."""
import numpy as np
import pytest

from rnnbp.autograd.grad_mode import no_grad
from rnnbp.autograd.tensor import Tensor
from rnnbp.nn.parameter import Parameter
from rnnbp.optim import (
    LBFGS, SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, NAdam, RAdam, RMSprop, adadelta_update, adamax_update,
    lbfgs_direction, lbfgs_remember, nadam_update, radam_update,
)
from rnnbp.optim.line_search import cubic_interpolate, strong_wolfe

N_STEPS = 40


# ---------------------------------------------------------------------------- the problem
class NoisyQuadratic:
    """grad_i(theta, t) = A_i theta_i - b_i + noise_{t,i}: gradients depend on the trajectory."""

    shapes = [(3,), (2, 2)]

    def __init__(self, seed=0, n_steps=N_STEPS):
        rng = np.random.default_rng(seed)
        self.A, self.b = [], []
        for shape in self.shapes:
            n = int(np.prod(shape))
            q = rng.standard_normal((n, n))
            self.A.append(q @ q.T / n + 0.5 * np.eye(n))
            self.b.append(rng.standard_normal(n))
        self.noise = [[0.3 * rng.standard_normal(s) for s in self.shapes] for _ in range(n_steps)]
        self.x0 = [rng.standard_normal(s) for s in self.shapes]

    def grad(self, i, theta, t):
        flat = self.A[i] @ theta.reshape(-1) - self.b[i]
        return flat.reshape(theta.shape) + self.noise[t][i]


def run_rnnbp(cls, kwargs, problem, n_steps=N_STEPS, dtype=np.float64):
    params = [Parameter(x.astype(dtype)) for x in problem.x0]
    opt = cls(params, **kwargs)
    traj = []
    for t in range(n_steps):
        for i, p in enumerate(params):
            p.grad = problem.grad(i, p.numpy(), t).astype(dtype)
        opt.step()
        traj.append([p.numpy().copy() for p in params])
    return traj


# ---------------------------------------------------------------------------- references
# Plain loops written from the papers (and PyTorch's documented algorithm boxes where PyTorch
# departs from the paper, as noted); they share no code with rnnbp.optim.
def _start(problem):
    return [x.copy() for x in problem.x0], [np.zeros_like(x) for x in problem.x0], [np.zeros_like(x) for x in problem.x0]


def ref_adadelta(problem, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    # Zeiler (2012), algorithm 1: accumulate E[g^2], compute the update from RMS ratios, accumulate E[dx^2].
    # PyTorch multiplies the update by lr (lr = 1 is the paper).
    theta, Eg2, Edx2 = _start(problem)
    traj = []
    for t in range(N_STEPS):
        for i in range(len(theta)):
            g = problem.grad(i, theta[i], t)
            if maximize:
                g = -g
            g = g + weight_decay * theta[i]
            Eg2[i] = rho * Eg2[i] + (1 - rho) * g ** 2
            dx = -(np.sqrt(Edx2[i] + eps) / np.sqrt(Eg2[i] + eps)) * g
            Edx2[i] = rho * Edx2[i] + (1 - rho) * dx ** 2
            theta[i] = theta[i] + lr * dx
        traj.append([x.copy() for x in theta])
    return traj


def ref_adamax(problem, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False):
    # Kingma & Ba (2015), section 7.1, algorithm 2; PyTorch puts eps inside the max: u = max(b2 u, |g| + eps).
    b1, b2 = betas
    theta, m, u = _start(problem)
    traj = []
    for t in range(1, N_STEPS + 1):
        for i in range(len(theta)):
            g = problem.grad(i, theta[i], t - 1)
            if maximize:
                g = -g
            g = g + weight_decay * theta[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            u[i] = np.maximum(b2 * u[i], np.abs(g) + eps)
            theta[i] = theta[i] - (lr / (1 - b1 ** t)) * m[i] / u[i]
        traj.append([x.copy() for x in theta])
    return traj


def ref_nadam(problem, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3,
              decoupled_weight_decay=False, maximize=False, mu_dtype=np.float64):
    """Dozat (2016) as in PyTorch's NAdam algorithm box, with momentum decay psi:

        mu_t = b1 (1 - 0.5 * 0.96**(t psi))
        m_hat = mu_{t+1} m_t / (1 - prod_{i<=t+1} mu_i) + (1 - mu_t) g_t / (1 - prod_{i<=t} mu_i)
        theta = theta - lr m_hat / (sqrt(v_t / (1 - b2**t)) + eps)

    ``mu_dtype`` is the precision prod_{i<=t} mu_i is kept in: torch keeps it in a float32 tensor.
    """
    b1, b2 = betas
    theta, m, v = _start(problem)
    prods = [1.0] * len(theta)
    traj = []
    mu = lambda t: b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))  # noqa: E731
    for t in range(1, N_STEPS + 1):
        for i in range(len(theta)):
            g = problem.grad(i, theta[i], t - 1)
            if maximize:
                g = -g
            if decoupled_weight_decay:
                theta[i] = theta[i] - lr * weight_decay * theta[i]
            else:
                g = g + weight_decay * theta[i]
            prods[i] = float(mu_dtype(prods[i]) * mu_dtype(mu(t)))
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g ** 2
            m_hat = mu(t + 1) * m[i] / (1 - prods[i] * mu(t + 1)) + (1 - mu(t)) * g / (1 - prods[i])
            theta[i] = theta[i] - lr * m_hat / (np.sqrt(v[i] / (1 - b2 ** t)) + eps)
        traj.append([x.copy() for x in theta])
    return traj


def ref_radam(problem, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False,
              maximize=False):
    # Liu et al. (2019), algorithm 2 (eps added to sqrt(v), as PyTorch does).
    b1, b2 = betas
    theta, m, v = _start(problem)
    rho_inf = 2 / (1 - b2) - 1
    traj = []
    for t in range(1, N_STEPS + 1):
        for i in range(len(theta)):
            g = problem.grad(i, theta[i], t - 1)
            if maximize:
                g = -g
            if decoupled_weight_decay:
                theta[i] = theta[i] - lr * weight_decay * theta[i]
            else:
                g = g + weight_decay * theta[i]
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g ** 2
            m_hat = m[i] / (1 - b1 ** t)
            rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
            if rho_t > 5:
                l_t = np.sqrt(1 - b2 ** t) / (np.sqrt(v[i]) + eps)
                r_t = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                theta[i] = theta[i] - lr * m_hat * r_t * l_t
            else:
                theta[i] = theta[i] - lr * m_hat
        traj.append([x.copy() for x in theta])
    return traj


def ref_nadam_torch(problem, **kw):
    return ref_nadam(problem, mu_dtype=np.float32, **kw)


CASES = [
    (Adadelta, ref_adadelta, dict()),
    (Adadelta, ref_adadelta, dict(lr=0.5, rho=0.7)),
    (Adadelta, ref_adadelta, dict(eps=1e-3, weight_decay=0.1)),
    (Adadelta, ref_adadelta, dict(lr=2.0, weight_decay=0.1, maximize=True)),
    (Adamax, ref_adamax, dict(lr=0.05)),
    (Adamax, ref_adamax, dict(lr=0.05, betas=(0.7, 0.9), eps=1e-2)),
    (Adamax, ref_adamax, dict(lr=0.05, weight_decay=0.2)),
    (Adamax, ref_adamax, dict(lr=0.02, weight_decay=0.2, maximize=True)),
    (NAdam, ref_nadam_torch, dict(lr=0.05)),
    (NAdam, ref_nadam_torch, dict(lr=0.05, momentum_decay=0.05, betas=(0.8, 0.99))),
    (NAdam, ref_nadam_torch, dict(lr=0.05, weight_decay=0.2)),
    (NAdam, ref_nadam_torch, dict(lr=0.05, weight_decay=0.2, decoupled_weight_decay=True)),
    (NAdam, ref_nadam_torch, dict(lr=0.02, weight_decay=0.1, maximize=True, eps=1e-3)),
    (RAdam, ref_radam, dict(lr=0.05)),
    (RAdam, ref_radam, dict(lr=0.05, betas=(0.8, 0.9))),
    (RAdam, ref_radam, dict(lr=0.05, weight_decay=0.2)),
    (RAdam, ref_radam, dict(lr=0.05, weight_decay=0.2, decoupled_weight_decay=True)),
    (RAdam, ref_radam, dict(lr=0.02, betas=(0.9, 0.95), eps=1e-3, weight_decay=0.1, maximize=True)),
]
IDS = [f"{c.__name__}-" + ",".join(f"{k}={v}" for k, v in kw.items()) for c, _, kw in CASES]


def assert_traj_close(actual, expected, rtol, atol):
    assert len(actual) == len(expected)
    for t, (a_step, e_step) in enumerate(zip(actual, expected)):
        for i, (a, e) in enumerate(zip(a_step, e_step)):
            np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=f"step {t + 1}, param {i}")


@pytest.mark.parametrize("cls,ref,kwargs", CASES, ids=IDS)
def test_trajectory_matches_reference(cls, ref, kwargs):
    problem = NoisyQuadratic(seed=1)
    assert_traj_close(run_rnnbp(cls, kwargs, problem), ref(problem, **kwargs), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls", [Adadelta, Adamax, NAdam, RAdam])
def test_every_option_changes_the_trajectory(cls):
    # Guards the cases above: an option the test problem did not exercise would prove nothing.
    problem = NoisyQuadratic(seed=2)
    finals = [run_rnnbp(c, kw, problem)[-1] for c, _, kw in CASES if c is cls]
    flat = [np.concatenate([x.ravel() for x in f]) for f in finals]
    for i in range(len(flat)):
        for j in range(i):
            assert np.max(np.abs(flat[i] - flat[j])) > 1e-6, (i, j)


def test_radam_cases_cover_both_branches():
    # rho_t > 5 from step 6 for every beta2 the cases use: both rules run within N_STEPS.
    for b2, first_adaptive in [(0.999, 6), (0.9, 6), (0.95, 6)]:
        rho_inf = 2 / (1 - b2) - 1
        rho = [rho_inf - 2 * t * b2 ** t / (1 - b2 ** t) for t in range(1, N_STEPS + 1)]
        assert [r > 5 for r in rho].index(True) + 1 == first_adaptive


# ---------------------------------------------------------------------------- the pure functions
def _loop(update, problem, n_outputs_state, **kw):
    """Drive a pure update function over the problem (one state tuple per parameter)."""
    theta = [x.copy() for x in problem.x0]
    states = [tuple(np.zeros_like(x) for _ in range(n_outputs_state)) for x in theta]
    traj = []
    for t in range(1, N_STEPS + 1):
        for i in range(len(theta)):
            out = update(theta[i], problem.grad(i, theta[i], t - 1), states[i], t, **kw)
            theta[i], states[i] = out[0], out[1:]
        traj.append([x.copy() for x in theta])
    return traj


def test_nadam_update_with_float64_product_is_the_exact_rule():
    # The pure function, given a float64 product, follows Dozat's rule without torch's float32 rounding.
    problem = NoisyQuadratic(seed=3)
    kw = dict(lr=0.05, weight_decay=0.1, momentum_decay=0.02)
    theta = [x.copy() for x in problem.x0]
    state = [(np.zeros_like(x), np.zeros_like(x), 1.0) for x in theta]
    traj = []
    for t in range(1, N_STEPS + 1):
        for i in range(len(theta)):
            m, v, prod = state[i]
            theta[i], m, v, prod = nadam_update(theta[i], problem.grad(i, theta[i], t - 1), m, v, prod, t, **kw)
            state[i] = (m, v, prod)
        traj.append([x.copy() for x in theta])
    exact = ref_nadam(problem, **kw)
    assert_traj_close(traj, exact, rtol=1e-12, atol=1e-14)
    # and the float32 product torch keeps makes a visible difference (so the classes' parity is meaningful)
    rounded = ref_nadam(problem, mu_dtype=np.float32, **kw)
    assert max(np.abs(a - b).max() for a, b in zip(exact[-1], rounded[-1])) > 1e-11


def test_adadelta_update_by_hand():
    param, grad = np.array([1.0, -2.0]), np.array([0.5, -4.0])
    rho, eps = 0.9, 1e-6
    new, sq, acc = adadelta_update(param, grad, np.zeros(2), np.zeros(2), lr=1.0, rho=rho, eps=eps)
    np.testing.assert_allclose(sq, 0.1 * grad ** 2)
    delta = np.sqrt(eps) / np.sqrt(0.1 * grad ** 2 + eps) * grad
    np.testing.assert_allclose(acc, 0.1 * delta ** 2)
    np.testing.assert_allclose(new, param - delta, rtol=1e-14)
    up, _, _ = adadelta_update(param, grad, np.zeros(2), np.zeros(2), lr=1.0, maximize=True)
    np.testing.assert_allclose(up, param + delta, rtol=1e-14)


def test_adamax_update_first_step_moves_each_coordinate_by_lr():
    # u_1 = |g| + eps and m_1 / (1 - b1) = g, so the first step is lr * g / (|g| + eps) ~ lr * sign(g).
    param, grad = np.array([0.0, 1.0, -1.0]), np.array([3.0, -0.2, 1e-3])
    new, m, u = adamax_update(param, grad, np.zeros(3), np.zeros(3), 1, lr=0.1, eps=0.0)
    np.testing.assert_allclose(new, param - 0.1 * np.sign(grad), rtol=1e-12)
    np.testing.assert_allclose(u, np.abs(grad))
    # second step: u keeps the decayed maximum when the new gradient is smaller
    _, _, u2 = adamax_update(new, grad / 10, m, u, 2, lr=0.1, beta2=0.5, eps=0.0)
    np.testing.assert_allclose(u2, np.maximum(0.5 * np.abs(grad), np.abs(grad) / 10))


def test_nadam_update_first_step_by_hand():
    b1, b2, psi, lr = 0.9, 0.999, 4e-3, 0.1
    param, grad = np.array([1.0, -1.0]), np.array([2.0, 0.5])
    new, m, v, prod = nadam_update(param, grad, np.zeros(2), np.zeros(2), 1.0, 1, lr=lr, eps=0.0)
    mu1, mu2 = b1 * (1 - 0.5 * 0.96 ** psi), b1 * (1 - 0.5 * 0.96 ** (2 * psi))
    assert prod == mu1
    denom = np.abs(grad)  # sqrt(v_1 / (1 - b2)) = |g|
    expected = param - lr * (1 - mu1) / (1 - mu1) * grad / denom - lr * mu2 / (1 - mu1 * mu2) * (1 - b1) * grad / denom
    np.testing.assert_allclose(new, expected, rtol=1e-14)
    _, _, _, prod32 = nadam_update(param, grad, m, v, prod, 2, lr=lr, mu_product_dtype=np.float32)
    assert prod32 == float(np.float32(prod) * np.float32(mu2)) and prod32 != prod * mu2


def test_radam_update_is_momentum_sgd_until_rho_exceeds_5():
    param, grad = np.array([1.0, -1.0]), np.array([2.0, 0.5])
    m, v, p = np.zeros(2), np.zeros(2), param
    for t in range(1, 6):
        p_new, m, v = radam_update(p, grad, m, v, t, lr=0.1)
        np.testing.assert_allclose(p_new, p - 0.1 * m / (1 - 0.9 ** t), rtol=1e-14)  # = p - 0.1 g (constant g)
        p = p_new
    p_new, m, v = radam_update(p, grad, m, v, 6, lr=0.1, eps=0.0)
    assert not np.allclose(p_new, p - 0.1 * m / (1 - 0.9 ** 6))  # the adaptive rule took over


PURE_CALLS = [
    lambda p, g: adadelta_update(p, g, np.ones_like(p), np.ones_like(p), lr=np.float64(0.5), rho=np.float64(0.9),
                                 eps=np.float64(1e-6), weight_decay=np.float64(0.1)),
    lambda p, g: adamax_update(p, g, np.ones_like(p), np.ones_like(p), np.int64(3), lr=np.float64(0.1),
                               beta1=np.float64(0.9), beta2=np.float64(0.99), weight_decay=np.float64(0.1)),
    lambda p, g: nadam_update(p, g, np.ones_like(p), np.ones_like(p), np.float64(0.5), np.int64(3),
                              lr=np.float64(0.1), weight_decay=np.float64(0.1), momentum_decay=np.float64(0.01)),
    lambda p, g: nadam_update(p, g, np.ones_like(p), np.ones_like(p), 0.5, 3, lr=0.1, weight_decay=0.1,
                              decoupled_weight_decay=True),
    lambda p, g: radam_update(p, g, np.ones_like(p), np.ones_like(p), np.int64(9), lr=np.float64(0.1),
                              beta2=np.float64(0.99), weight_decay=np.float64(0.1)),
    lambda p, g: radam_update(p, g, np.ones_like(p), np.ones_like(p), 2, lr=0.1, weight_decay=0.1,
                              decoupled_weight_decay=True),
]


@pytest.mark.parametrize("call", PURE_CALLS, ids=["adadelta", "adamax", "nadam", "nadamw", "radam", "radam-sgd"])
def test_pure_functions_keep_float32_and_do_not_modify_inputs(call):
    rng = np.random.default_rng(6)
    p = rng.standard_normal((4, 3)).astype(np.float32)
    g = rng.standard_normal((4, 3)).astype(np.float32)
    p0, g0 = p.copy(), g.copy()
    out = call(p, g)
    arrays = [a for a in out if isinstance(a, np.ndarray)]
    assert len(arrays) == 3 and all(a.dtype == np.float32 and a.shape == (4, 3) for a in arrays)
    np.testing.assert_array_equal(p, p0)
    np.testing.assert_array_equal(g, g0)
    assert not np.array_equal(out[0], p0)


@pytest.mark.parametrize("update", [adamax_update, radam_update])
def test_pure_functions_refuse_step_zero(update):
    with pytest.raises(ValueError, match="step counts from 1, got 0"):
        update(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2), 0, lr=0.1)
    with pytest.raises(ValueError, match="nadam_update: step counts from 1, got 0"):
        nadam_update(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2), 1.0, 0)


# ---------------------------------------------------------------------------- against torch
TORCH_NAMES = {Adadelta: "Adadelta", Adamax: "Adamax", NAdam: "NAdam", RAdam: "RAdam"}


def run_torch(torch, cls, kwargs, problem, n_steps=N_STEPS):
    params = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in problem.x0]
    opt = getattr(torch.optim, TORCH_NAMES[cls])(params, foreach=False, **kwargs)
    traj = []
    for t in range(n_steps):
        for i, p in enumerate(params):
            p.grad = torch.from_numpy(problem.grad(i, p.detach().numpy(), t))
        opt.step()
        traj.append([p.detach().numpy().copy() for p in params])
    return traj, opt


@pytest.mark.parametrize("cls,ref,kwargs", CASES, ids=IDS)
def test_trajectory_and_state_match_torch(cls, ref, kwargs):
    torch = pytest.importorskip("torch")
    problem = NoisyQuadratic(seed=4)
    expected, topt = run_torch(torch, cls, kwargs, problem)
    params = [Parameter(x.copy()) for x in problem.x0]
    opt = cls(params, **kwargs)
    actual = []
    for t in range(N_STEPS):
        for i, p in enumerate(params):
            p.grad = problem.grad(i, p.numpy(), t)
        opt.step()
        actual.append([p.numpy().copy() for p in params])
    assert_traj_close(actual, expected, rtol=1e-12, atol=1e-13)

    ours, theirs = opt.state_dict(), topt.state_dict()
    assert set(ours["state"]) == set(theirs["state"])
    for idx, tstate in theirs["state"].items():
        state = ours["state"][idx]
        assert set(state) == set(tstate)
        for key, value in tstate.items():
            if value.ndim == 0:  # step, NAdam's mu_product
                assert state[key] == value.item(), key
            else:
                np.testing.assert_allclose(state[key], value.numpy(), rtol=1e-12, atol=1e-14, err_msg=key)
    for group, tgroup in zip(ours["param_groups"], theirs["param_groups"]):
        for key, value in group.items():
            assert tgroup[key] == value, key


def _torch_state_to_numpy(tsd):
    def conv(v):
        if hasattr(v, "detach"):
            return v.detach().numpy().copy()
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v
    return {"state": {k: {n: conv(v) for n, v in s.items()} for k, s in tsd["state"].items()},
            "param_groups": tsd["param_groups"]}


def test_nadam_loads_a_torch_state_dict_and_continues_as_torch():
    torch = pytest.importorskip("torch")
    problem = NoisyQuadratic(seed=5)
    kwargs = dict(lr=0.05, weight_decay=0.1, momentum_decay=0.01)
    tparams = [torch.tensor(x, requires_grad=True) for x in problem.x0]
    topt = torch.optim.NAdam(tparams, foreach=False, **kwargs)
    for t in range(N_STEPS):
        if t == 5:
            params = [Parameter(p.detach().numpy().copy()) for p in tparams]
            opt = NAdam(params, lr=1.0)
            opt.load_state_dict(_torch_state_to_numpy(topt.state_dict()))
            assert opt.param_groups[0]["momentum_decay"] == 0.01
            assert type(opt.state[params[0]]["mu_product"]) is float
        for i, p in enumerate(tparams):
            p.grad = torch.from_numpy(problem.grad(i, p.detach().numpy(), t))
        topt.step()
        if t >= 5:
            for i, p in enumerate(params):
                p.grad = problem.grad(i, p.numpy(), t)
            opt.step()
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-12, atol=1e-13)


# ---------------------------------------------------------------------------- the Optimizer API
ROUND_TRIP = [
    (Adadelta, dict(lr=0.5, weight_decay=0.01)),
    (Adamax, dict(lr=0.05)),
    (NAdam, dict(lr=0.05, decoupled_weight_decay=True, weight_decay=0.1)),
    (RAdam, dict(lr=0.05, weight_decay=0.01)),
]
STATE_KEYS = {
    Adadelta: {"step", "square_avg", "acc_delta"},
    Adamax: {"step", "exp_avg", "exp_inf"},
    NAdam: {"step", "mu_product", "exp_avg", "exp_avg_sq"},
    RAdam: {"step", "exp_avg", "exp_avg_sq"},
}


def _steps(opt, params, problem, ts):
    for t in ts:
        for i, p in enumerate(params):
            p.grad = problem.grad(i, p.numpy(), t)
        opt.step()


@pytest.mark.parametrize("cls,kwargs", ROUND_TRIP, ids=[c.__name__ for c, _ in ROUND_TRIP])
def test_state_dict_round_trip_continues_identically(cls, kwargs):
    problem = NoisyQuadratic(seed=7)
    ref_params = [Parameter(x.copy()) for x in problem.x0]
    _steps(cls(ref_params, **kwargs), ref_params, problem, range(10))

    params = [Parameter(x.copy()) for x in problem.x0]
    opt = cls(params, **kwargs)
    _steps(opt, params, problem, range(5))
    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1]
    assert all(set(s) == STATE_KEYS[cls] for s in sd["state"].values())
    assert sd["state"][0]["step"] == 5
    fresh = [Parameter(p.numpy().copy()) for p in params]
    _steps(opt, params, problem, range(5, 7))  # later steps must not change the saved dict
    fresh_opt = cls(fresh, lr=123.0)  # the loaded groups must override this
    fresh_opt.load_state_dict(sd)
    _steps(fresh_opt, fresh, problem, range(5, 10))
    for a, b in zip(fresh, ref_params):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("cls,kwargs", ROUND_TRIP, ids=[c.__name__ for c, _ in ROUND_TRIP])
def test_float32_stays_float32_in_place(cls, kwargs):
    rng = np.random.default_rng(8)
    p = Parameter(rng.standard_normal((3, 2)).astype(np.float32))
    data = p.numpy()
    kwargs = {k: (np.float64(v) if isinstance(v, float) else v) for k, v in kwargs.items()}
    opt = cls([p], **kwargs)
    for _ in range(8):
        p._grad = rng.standard_normal((3, 2))  # float64: must not promote the float32 parameter
        opt.step()
    assert p.numpy() is data and p.numpy().dtype == np.float32
    arrays = [v for v in opt.state[p].values() if isinstance(v, np.ndarray)]
    assert len(arrays) == len(STATE_KEYS[cls]) - 1 - (cls is NAdam)
    assert all(a.dtype == np.float32 for a in arrays)


def test_nadam_keeps_mu_product_a_float32_value():
    p = Parameter(np.ones(2))
    opt = NAdam([p], lr=0.01)
    for _ in range(4):
        p.grad = np.ones(2)
        opt.step()
        mu_product = opt.state[p]["mu_product"]
        assert type(mu_product) is float and float(np.float32(mu_product)) == mu_product


@pytest.mark.parametrize("cls,kwargs,message,torch_too", [
    (Adadelta, dict(lr=-1), "Invalid learning rate: -1", True),
    (Adadelta, dict(rho=1.5), "Invalid rho value: 1.5", True),
    (Adadelta, dict(rho=-0.1), "Invalid rho value: -0.1", True),
    (Adadelta, dict(eps=-1e-6), "Invalid epsilon value: -1e-06", True),
    (Adadelta, dict(weight_decay=-0.5), "Invalid weight_decay value: -0.5", True),
    (Adamax, dict(lr=-0.1), "Invalid learning rate: -0.1", True),
    (Adamax, dict(betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0", True),
    (Adamax, dict(eps=-1), "Invalid epsilon value: -1", True),
    (NAdam, dict(betas=(0.9, 1.2)), "Invalid beta parameter at index 1: 1.2", True),
    (NAdam, dict(momentum_decay=-0.1), "Invalid momentum_decay value: -0.1", True),
    (NAdam, dict(weight_decay=-2), "Invalid weight_decay value: -2", True),
    (RAdam, dict(lr=-1e-3), "Invalid learning rate: -0.001", True),
    (RAdam, dict(betas=(-0.1, 0.9)), "Invalid beta parameter at index 0: -0.1", True),
    (RAdam, dict(betas=(0.9,)), r"Invalid betas: expected two values", False),
    (LBFGS, dict(lr=-1), "Invalid learning rate: -1", True),
    (LBFGS, dict(max_iter=0), "Invalid max_iter value: 0", False),
    (LBFGS, dict(max_iter=2.5), "Invalid max_iter value: 2.5", False),
    (LBFGS, dict(max_eval=0), "Invalid max_eval value: 0", False),
    (LBFGS, dict(history_size=0), "Invalid history_size value: 0", False),
    (LBFGS, dict(history_size=10.0), "Invalid history_size value: 10.0", False),
    (LBFGS, dict(tolerance_grad=-1), "Invalid tolerance_grad value: -1", False),
    (LBFGS, dict(tolerance_change=-1e-9), "Invalid tolerance_change value: -1e-09", False),
    (LBFGS, dict(line_search_fn="armijo"), "Invalid line_search_fn: 'armijo'", False),
    (Adadelta, dict(capturable=True), "Adadelta: capturable=True", False),
    (NAdam, dict(differentiable=True), "NAdam: differentiable=True", False),
])
def test_bad_arguments_raise_naming_the_value(cls, kwargs, message, torch_too):
    with pytest.raises(ValueError, match=message):
        cls([Parameter(np.zeros(2))], **kwargs)
    if torch_too:  # the same message as torch.optim gives
        torch = pytest.importorskip("torch")
        with pytest.raises(ValueError, match=message):
            getattr(torch.optim, cls.__name__)([torch.zeros(2, requires_grad=True)], **kwargs)


def test_signatures_accept_torch_flags_and_positional_order():
    p = Parameter(np.zeros(2))
    assert Adadelta([p], 0.5, 0.8, 1e-5, 0.1, None, maximize=True).param_groups[0]["rho"] == 0.8
    assert Adamax([p], 0.01, (0.8, 0.9), 1e-5, 0.1, False).param_groups[0]["betas"] == (0.8, 0.9)
    g = NAdam([p], 0.01, (0.8, 0.9), 1e-5, 0.1, 0.01, True, foreach=True).param_groups[0]
    assert g["momentum_decay"] == 0.01 and g["decoupled_weight_decay"] is True
    assert RAdam([p], 0.01, (0.8, 0.9), 1e-5, 0.1, True, foreach=False).param_groups[0]["decoupled_weight_decay"]
    lb = LBFGS([p], 0.5, 7).param_groups[0]
    assert lb["max_eval"] == 8 and lb["history_size"] == 100 and lb["line_search_fn"] is None
    assert lb["tolerance_grad"] == 1e-7 and lb["tolerance_change"] == 1e-9
    assert Adadelta([p]).defaults == dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False)
    assert Adamax([p]).defaults["lr"] == 2e-3 and NAdam([p]).defaults["lr"] == 2e-3
    assert RAdam([p]).defaults["lr"] == 1e-3 and LBFGS([p]).defaults["lr"] == 1


# ============================================================================ LBFGS
def quartic(A, b, c):
    """f(x) = x'Ax/2 - b'x + c sum(x^4)/4: smooth, strictly convex, not quadratic."""
    def fun(x):
        return 0.5 * x @ A @ x - b @ x + 0.25 * c * np.sum(x ** 4), A @ x - b + c * x ** 3
    return fun


def rosenbrock(x):
    f = np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    g = np.zeros_like(x)
    g[:-1] = -400.0 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200.0 * (x[1:] - x[:-1] ** 2)
    return f, g


def _split(x):
    """The flat vector as two parameters of different shapes: 7 -> (3,), (2, 2); 4 -> (2,), (2, 1)."""
    k = 3 if len(x) == 7 else len(x) // 2
    return [x[:k].copy(), x[k:].reshape(2, -1).copy()]


def make_closure(fun, params, log=None, raw_grad=False):
    """A closure setting the grads from fun(flat params); logs each point it is evaluated at.

    ``raw_grad`` writes the float64 gradient into ``p._grad`` whatever the parameter's dtype.
    """
    def closure():
        x = np.concatenate([p.numpy().reshape(-1) for p in params]).astype(np.float64)
        if log is not None:
            log.append(x)
        f, g = fun(x)
        for p, gp in zip(params, _split(g)):
            if raw_grad:
                p._grad = gp
            else:
                p.grad = gp
        return f
    return closure


def ref_lbfgs_fixed_step(fun, x0, lr, m, n_points):
    """Nocedal & Wright, "Numerical Optimization" (2006), alg. 7.5 with the two-loop recursion of
    alg. 7.4 and H0 = gamma I, gamma = s'y / y'y of the newest pair (eq. 7.20); a pair is kept only
    if s'y > 1e-10. Fixed step length lr, except min(1, 1/|g_0|_1) * lr for the very first step
    (PyTorch's first guess). Returns the first n_points iterates x_0, x_1, ... and the pairs kept."""
    x = x0.copy()
    f, g = fun(x)
    pairs, gamma = [], 1.0
    points = [x.copy()]
    x_prev = g_prev = None
    for k in range(n_points - 1):
        if k > 0:
            s, y = x - x_prev, g - g_prev
            if s @ y > 1e-10:
                pairs = (pairs + [(s, y)])[-m:]
                gamma = (s @ y) / (y @ y)
        q = g.copy()
        alphas = []
        for s_i, y_i in reversed(pairs):
            a = (s_i @ q) / (y_i @ s_i)
            alphas.append(a)
            q = q - a * y_i
        r = gamma * q
        for (s_i, y_i), a in zip(pairs, reversed(alphas)):
            beta = (y_i @ r) / (y_i @ s_i)
            r = r + s_i * (a - beta)
        p = -r
        alpha = min(1.0, 1.0 / np.abs(g).sum()) * lr if k == 0 else lr
        x_prev, g_prev = x, g
        x = x + alpha * p
        f, g = fun(x)
        points.append(x.copy())
    return points, len(pairs)


@pytest.mark.parametrize("lr,max_iter,history_size,n_steps", [(0.3, 8, 3, 4), (0.6, 5, 100, 6), (1.0, 1, 2, 24)])
def test_lbfgs_matches_the_textbook_iteration(lr, max_iter, history_size, n_steps):
    # Without a line search every closure call is at the next iterate, across step() calls too.
    rng = np.random.default_rng(10)
    q = rng.standard_normal((7, 7))
    fun = quartic(q @ q.T / 7 + 0.3 * np.eye(7), rng.standard_normal(7), 0.2)
    x0 = rng.standard_normal(7)
    params = [Parameter(a) for a in _split(x0)]
    opt = LBFGS(params, lr=lr, max_iter=max_iter, history_size=history_size,
                tolerance_grad=0.0, tolerance_change=0.0)
    log = []
    closure = make_closure(fun, params, log)
    for _ in range(n_steps):
        opt.step(closure)
    expected, n_pairs = ref_lbfgs_fixed_step(fun, x0, lr, history_size, len(log))
    assert len(log) == n_steps * max_iter  # no early stop: every iteration compared
    for k, (a, e) in enumerate(zip(log, expected)):
        np.testing.assert_allclose(a, e, rtol=1e-11, atol=1e-13, err_msg=f"iterate {k}")
    state = opt.state[params[0]]
    assert len(state["old_dirs"]) == n_pairs and 0 < n_pairs <= history_size
    assert state["func_evals"] == state["n_iter"] == len(log)  # one evaluation per iteration


def test_lbfgs_direction_equals_the_dense_bfgs_inverse_hessian():
    # The two-loop recursion must give -H g, H from the BFGS update applied pair by pair to gamma I.
    rng = np.random.default_rng(11)
    n = 6
    q = rng.standard_normal((n, n))
    B = q @ q.T + np.eye(n)
    S = [rng.standard_normal(n) for _ in range(4)]
    Y = [B @ s for s in S]
    gamma = S[-1] @ Y[-1] / (Y[-1] @ Y[-1])
    H = gamma * np.eye(n)
    for s, y in zip(S, Y):
        rho = 1 / (y @ s)
        V = np.eye(n) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    g = rng.standard_normal(n)
    d, al = lbfgs_direction(g, Y, S, [1 / (y @ s) for s, y in zip(S, Y)], gamma)
    np.testing.assert_allclose(d, -H @ g, rtol=1e-10)
    assert len(al) == 4
    d0, al0 = lbfgs_direction(g, [], [], [], 1)
    np.testing.assert_array_equal(d0, -g)
    assert al0 == []


def test_lbfgs_remember_keeps_curvature_pairs_only_and_drops_the_oldest():
    s1, y1 = np.array([1.0, 0.0]), np.array([2.0, 0.0])
    dirs, stps, ro, h = lbfgs_remember(y1, s1, [], [], [], 1, history_size=2)
    assert ro == [0.5] and h == 0.5 and dirs[0] is y1 and stps[0] is s1
    same = lbfgs_remember(-y1, s1, dirs, stps, ro, h, history_size=2)  # s'y < 0: ignored
    assert same == (dirs, stps, ro, h) and same[0] is not dirs
    tiny = lbfgs_remember(np.array([1e-11, 0]), s1, dirs, stps, ro, h, history_size=2)  # s'y = 1e-11
    assert len(tiny[0]) == 1
    s2, y2, s3, y3 = np.array([0.0, 1.0]), np.array([0.0, 4.0]), np.array([1.0, 1.0]), np.array([1.0, 3.0])
    dirs, stps, ro, h = lbfgs_remember(y2, s2, dirs, stps, ro, h, history_size=2)
    dirs3, stps3, ro3, h3 = lbfgs_remember(y3, s3, dirs, stps, ro, h, history_size=2)
    assert [list(s) for s in stps3] == [[0.0, 1.0], [1.0, 1.0]] and ro3 == [0.25, 0.25] and h3 == 0.4
    assert len(dirs) == 2 and dirs[0] is y1  # the inputs were not modified


def _torch_lbfgs_run(torch, fun, x0, kwargs, n_steps, split=True):
    parts = _split(x0) if split else [x0.copy()]
    tparams = [torch.tensor(a, requires_grad=True) for a in parts]
    topt = torch.optim.LBFGS(tparams, **kwargs)

    def tclosure():
        x = np.concatenate([p.detach().numpy().reshape(-1) for p in tparams])
        f, g = fun(x)
        for p, gp in zip(tparams, _split(g) if split else [g]):
            p.grad = torch.from_numpy(gp)
        return torch.tensor(f)

    traj, losses = [], []
    for _ in range(n_steps):
        losses.append(topt.step(tclosure).item())
        traj.append(np.concatenate([p.detach().numpy().reshape(-1) for p in tparams]))
    return traj, losses, topt, tparams, tclosure


def _rnnbp_lbfgs_run(fun, x0, kwargs, n_steps, split=True):
    params = [Parameter(a) for a in (_split(x0) if split else [x0.copy()])]
    opt = LBFGS(params, **kwargs)
    closure = make_closure(fun, params) if split else _single_closure(fun, params[0])
    traj, losses = [], []
    for _ in range(n_steps):
        losses.append(opt.step(closure))
        traj.append(np.concatenate([p.numpy().reshape(-1) for p in params]))
    return traj, losses, opt, params


def _single_closure(fun, p):
    def closure():
        f, g = fun(p.numpy())
        p.grad = g
        return f
    return closure


def _assert_lbfgs_state_matches_torch(state, tstate, rtol=1e-9, atol=1e-12):
    """Same keys, counts and list lengths as torch; values to the tolerances (arrays and scalars)."""
    assert set(state) == set(tstate)
    for key, value in tstate.items():
        mine = state[key]
        if key in ("old_dirs", "old_stps"):
            assert len(mine) == len(value), key
            for a, b in zip(mine, value):
                np.testing.assert_allclose(a, b.numpy(), rtol=rtol, atol=atol, err_msg=key)
        elif key in ("ro", "al"):
            assert len(mine) == len(value) and [a is None for a in mine] == [b is None for b in value], key
            # near convergence al_i = rho_i s_i . q sums terms that nearly cancel: compared loosely
            a = np.array([a for a in mine if a is not None])
            b = np.array([float(b) for b in value if b is not None])
            tol = max(1e-6, rtol) if key == "al" else rtol
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max(initial=0), err_msg=key)
        elif hasattr(value, "numpy") and value.ndim == 1:
            np.testing.assert_allclose(mine, value.numpy(), rtol=rtol, atol=atol, err_msg=key)
        elif key in ("func_evals", "n_iter"):
            assert mine == value, key
        else:  # t, H_diag, prev_loss
            np.testing.assert_allclose(mine, float(value), rtol=rtol, atol=1e-14, err_msg=key)


@pytest.mark.parametrize("kwargs", [
    dict(line_search_fn="strong_wolfe", max_iter=3, history_size=5),
    dict(line_search_fn="strong_wolfe"),
    dict(lr=0.02, max_iter=4, history_size=4),
], ids=["wolfe-short", "wolfe-defaults", "fixed-step"])
def test_lbfgs_matches_torch_on_rosenbrock(kwargs):
    torch = pytest.importorskip("torch")
    x0 = np.array([-1.2, 1.0, -1.2, 1.0])  # the classic start, twice
    expected, tlosses, topt, tparams, _ = _torch_lbfgs_run(torch, rosenbrock, x0, kwargs, 25)
    actual, losses, opt, params = _rnnbp_lbfgs_run(rosenbrock, x0, kwargs, 25)
    for k, (a, e) in enumerate(zip(actual, expected)):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-11, err_msg=f"step {k}")
    np.testing.assert_allclose(losses, tlosses, rtol=1e-10, atol=1e-14)
    state, tstate = opt.state[params[0]], topt.state[tparams[0]]
    assert state["func_evals"] == tstate["func_evals"] and state["n_iter"] == tstate["n_iter"]
    assert state["func_evals"] > 60  # a long run, many line searches
    # y = g_new - g_old cancels: Rosenbrock's curvature (~1e3) turns 1e-12 in x into 1e-9 in y
    _assert_lbfgs_state_matches_torch(state, tstate, rtol=1e-8, atol=1e-9)
    if kwargs == dict(line_search_fn="strong_wolfe"):
        np.testing.assert_allclose(actual[-1], np.ones(4), atol=1e-4)  # the line search finds the minimum


def test_lbfgs_takes_torchs_decisions_on_a_hard_rosenbrock():
    # From this start the ulp-level differences between NumPy's and torch's BLAS dot products
    # (summation order) and torch's fused multiply-add in add_(alpha=) grow through the
    # ill-conditioned valley to ~1e-8 after 25 steps; every decision (line-search evaluations per
    # step, iterations) must still be torch's.
    torch = pytest.importorskip("torch")
    x0 = np.array([-1.2, 1.0, -0.5, 0.8, 1.3, -0.3, 0.1])
    kwargs = dict(line_search_fn="strong_wolfe", max_iter=3, history_size=5)
    tparts = [torch.tensor(a, requires_grad=True) for a in _split(x0)]
    topt = torch.optim.LBFGS(tparts, **kwargs)
    params = [Parameter(a) for a in _split(x0)]
    opt = LBFGS(params, **kwargs)
    closure = make_closure(rosenbrock, params)

    def tclosure():
        f, g = rosenbrock(np.concatenate([p.detach().numpy().reshape(-1) for p in tparts]))
        for p, gp in zip(tparts, _split(g)):
            p.grad = torch.from_numpy(gp)
        return torch.tensor(f)

    for k in range(25):
        loss, tloss = opt.step(closure), topt.step(tclosure).item()
        assert opt.state[params[0]]["func_evals"] == topt.state[tparts[0]]["func_evals"], k
        assert opt.state[params[0]]["n_iter"] == topt.state[tparts[0]]["n_iter"], k
        np.testing.assert_allclose(loss, tloss, rtol=1e-7)
        x = np.concatenate([p.numpy().reshape(-1) for p in params])
        np.testing.assert_allclose(x, np.concatenate([p.detach().numpy().reshape(-1) for p in tparts]),
                                   rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_least_squares_with_autograd_matches_torch(line_search_fn):
    # The closure a PyTorch script writes: zero_grad, forward, backward, return the loss Tensor.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    X, y = rng.standard_normal((30, 6)), rng.standard_normal(30)
    w0, b0 = 0.1 * rng.standard_normal(6), np.array([0.0])
    kwargs = dict(lr=0.5 if line_search_fn is None else 1.0, max_iter=2, max_eval=6, history_size=3,
                  line_search_fn=line_search_fn)

    w, b = Parameter(w0.copy()), Parameter(b0.copy())
    opt = LBFGS([w, b], **kwargs)
    Xt, yt = Tensor(X), Tensor(y)

    def closure():
        opt.zero_grad()
        loss = ((Xt @ w + b - yt) ** 2).mean() + 0.01 * (w * w).sum()
        loss.backward()
        return loss

    tw, tb = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    topt = torch.optim.LBFGS([tw, tb], **kwargs)
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)

    def tclosure():
        topt.zero_grad()
        loss = ((tX @ tw + tb - ty) ** 2).mean() + 0.01 * (tw * tw).sum()
        loss.backward()
        return loss

    for k in range(20):
        with no_grad():  # a step under no_grad still gets gradients: the closure runs with grad on
            loss = opt.step(closure)
        tloss = topt.step(tclosure)
        assert isinstance(loss, Tensor)
        np.testing.assert_allclose(float(loss), tloss.item(), rtol=1e-10, err_msg=f"step {k}")
        np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=f"step {k}")
        np.testing.assert_allclose(b.numpy(), tb.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=f"step {k}")
    assert opt.state[w]["func_evals"] == topt.state[tw]["func_evals"]
    _assert_lbfgs_state_matches_torch(opt.state[w], topt.state[tw])


@pytest.mark.parametrize("kwargs", [
    dict(tolerance_change=1e-4, max_iter=50),  # stops when the loss change falls below tolerance_change
    dict(lr=1e-4, tolerance_change=1e-3, max_iter=10),  # stops when max |t d| <= tolerance_change
    dict(lr=0.2, tolerance_change=1e-2, max_iter=10, line_search_fn="strong_wolfe"),
], ids=["loss-change", "step-size", "wolfe"])
def test_lbfgs_stopping_rules_match_torch(kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(14)
    q = rng.standard_normal((7, 7))
    fun = quartic(q @ q.T / 7 + 0.3 * np.eye(7), rng.standard_normal(7), 0.2)
    x0 = rng.standard_normal(7)
    _, _, topt, tparams, tclosure = _torch_lbfgs_run(torch, fun, x0, kwargs, 0)
    params = [Parameter(a) for a in _split(x0)]
    opt = LBFGS(params, **kwargs)
    closure = make_closure(fun, params)
    iterations = []
    for k in range(5):
        before = opt.state.get(params[0], {}).get("n_iter", 0)
        opt.step(closure)
        topt.step(tclosure)
        state, tstate = opt.state[params[0]], topt.state[tparams[0]]
        assert (state["n_iter"], state["func_evals"]) == (tstate["n_iter"], tstate["func_evals"]), k
        iterations.append(state["n_iter"] - before)
        x = np.concatenate([p.numpy().reshape(-1) for p in params])
        tx = np.concatenate([p.detach().numpy().reshape(-1) for p in tparams])
        np.testing.assert_allclose(x, tx, rtol=1e-12, atol=1e-14)
    assert 0 < min(iterations) < kwargs["max_iter"]  # a tolerance, not max_iter, ended some step


def test_lbfgs_parameter_without_grad_counts_as_zero_gradient():
    a, b = Parameter(np.array([3.0, -1.0])), Parameter(np.array([5.0, 7.0, 9.0]))
    opt = LBFGS([a, b], max_iter=6)

    def closure():
        a.grad = 2 * a.numpy()  # b takes no part in the loss: its grad stays None
        return float(np.sum(a.numpy() ** 2))

    opt.step(closure)
    np.testing.assert_array_equal(b.numpy(), [5.0, 7.0, 9.0])
    assert np.abs(a.numpy()).max() < 1e-6 and opt.state[a]["d"].shape == (5,)
    b._grad = np.zeros(2)
    with pytest.raises(ValueError, match=r"LBFGS.step: params\[1\] has shape \(3,\) but its grad has shape \(2,\)"):
        opt.step(closure)


def test_lbfgs_loads_a_torch_state_dict_and_continues_as_torch():
    torch = pytest.importorskip("torch")
    x0 = np.array([-1.2, 1.0, -0.5, 0.8, 1.3, -0.3, 0.1])
    kwargs = dict(line_search_fn="strong_wolfe", max_iter=3, history_size=4)
    _, _, topt, tparams, tclosure = _torch_lbfgs_run(torch, rosenbrock, x0, kwargs, 4)
    params = [Parameter(p.detach().numpy().copy()) for p in tparams]
    opt = LBFGS(params, lr=0.1)
    opt.load_state_dict(_torch_state_to_numpy(topt.state_dict()))
    assert opt.param_groups[0]["lr"] == 1 and opt.param_groups[0]["history_size"] == 4
    _assert_lbfgs_state_matches_torch(opt.state[params[0]], topt.state[tparams[0]])
    closure = make_closure(rosenbrock, params)
    for k in range(6):
        opt.step(closure)
        topt.step(tclosure)
        x = np.concatenate([p.numpy().reshape(-1) for p in params])
        tx = np.concatenate([p.detach().numpy().reshape(-1) for p in tparams])
        np.testing.assert_allclose(x, tx, rtol=1e-10, atol=1e-12, err_msg=f"step {k}")


def test_lbfgs_state_dict_round_trip_continues_identically():
    x0 = np.array([-1.2, 1.0, -0.5, 0.8, 1.3, -0.3, 0.1])
    kwargs = dict(line_search_fn="strong_wolfe", max_iter=2, history_size=3)
    ref, _, _, _ = _rnnbp_lbfgs_run(rosenbrock, x0, kwargs, 8)

    params = [Parameter(a) for a in _split(x0)]
    opt = LBFGS(params, **kwargs)
    closure = make_closure(rosenbrock, params)
    for _ in range(4):
        opt.step(closure)
    sd = opt.state_dict()
    assert list(sd["state"]) == [0] and sd["param_groups"][0]["params"] == [0, 1]
    assert set(sd["state"][0]) == {"func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "H_diag",
                                   "prev_flat_grad", "prev_loss", "al"}
    saved_dirs = [a.copy() for a in sd["state"][0]["old_dirs"]]
    fresh = [Parameter(p.numpy().copy()) for p in params]
    opt.step(closure)  # must not change the saved dict (its lists are copies)
    assert len(sd["state"][0]["old_dirs"]) == len(saved_dirs)
    for a, b in zip(sd["state"][0]["old_dirs"], saved_dirs):
        np.testing.assert_array_equal(a, b)
    fresh_opt = LBFGS(fresh, lr=123.0)
    fresh_opt.load_state_dict(sd)
    fresh_closure = make_closure(rosenbrock, fresh)
    for k in range(4, 8):
        fresh_opt.step(fresh_closure)
        np.testing.assert_array_equal(np.concatenate([p.numpy().reshape(-1) for p in fresh]), ref[k])


def test_lbfgs_load_state_dict_reports_wrong_sizes():
    params = [Parameter(a) for a in _split(np.ones(7))]
    opt = LBFGS(params, max_iter=3)
    opt.step(make_closure(rosenbrock, params))
    sd = opt.state_dict()
    sd["state"][0]["d"] = np.zeros(5)
    sd["state"][0]["old_dirs"] = [np.zeros(7), np.zeros(9)]
    with pytest.raises(ValueError, match=r"state\[0\]\['d'\] has 5 elements, the parameters have 7.*"
                                         r"state\[0\]\['old_dirs'\]\[1\] has 9 elements"):
        opt.load_state_dict(sd)
    with pytest.raises(ValueError, match="1 params in the state dict, 2 in the optimizer"):
        opt.load_state_dict({"state": {}, "param_groups": [dict(sd["param_groups"][0], params=[0])]})


def test_lbfgs_float32_stays_float32():
    rng = np.random.default_rng(13)
    q = rng.standard_normal((7, 7))
    fun = quartic(q @ q.T / 7 + 0.3 * np.eye(7), rng.standard_normal(7), 0.2)
    for line_search_fn in (None, "strong_wolfe"):
        params = [Parameter(a.astype(np.float32)) for a in _split(rng.standard_normal(7))]
        datas = [p.numpy() for p in params]
        opt = LBFGS(params, lr=np.float64(0.5), max_iter=4, line_search_fn=line_search_fn)
        closure = make_closure(fun, params, raw_grad=True)  # float64 gradients
        first = closure()
        for _ in range(3):
            opt.step(closure)
        assert all(p.numpy() is d and d.dtype == np.float32 for p, d in zip(params, datas))
        state = opt.state[params[0]]
        arrays = [state["d"], state["prev_flat_grad"], *state["old_dirs"], *state["old_stps"]]
        assert all(a.dtype == np.float32 for a in arrays) and len(arrays) > 4
        assert closure() < first  # and it did optimise


def test_lbfgs_step_returns_the_first_loss_and_counts_evaluations():
    p = Parameter(np.array([3.0, -2.0]))
    returned = []

    def closure():
        value = Tensor(np.array(float(np.sum(p.numpy() ** 2))))
        p.grad = 2 * p.numpy()
        returned.append(value)
        return value

    opt = LBFGS([p], max_iter=5)
    assert opt.step(closure) is returned[0]
    state = opt.state[p]
    assert state["func_evals"] == len(returned) and state["n_iter"] <= 5
    # at the minimum the first evaluation shows max|g| <= tolerance_grad: one call, nothing moves
    p._data[...] = 0.0
    before = (len(returned), state["n_iter"])
    assert opt.step(closure) is returned[-1]
    assert len(returned) == before[0] + 1 and state["n_iter"] == before[1]


def test_lbfgs_stops_at_max_eval():
    params = [Parameter(a) for a in _split(np.array([-1.2, 1.0, -0.5, 0.8, 1.3, -0.3, 0.1]))]
    log = []
    opt = LBFGS(params, max_iter=50, max_eval=7, line_search_fn="strong_wolfe")
    opt.step(make_closure(rosenbrock, params, log))
    assert len(log) == 7


def test_lbfgs_history_is_bounded():
    params = [Parameter(a) for a in _split(np.array([-1.2, 1.0, -0.5, 0.8, 1.3, -0.3, 0.1]))]
    opt = LBFGS(params, max_iter=30, history_size=4, line_search_fn="strong_wolfe")
    opt.step(make_closure(rosenbrock, params))
    state = opt.state[params[0]]
    assert len(state["old_dirs"]) == len(state["old_stps"]) == len(state["ro"]) == 4
    assert len(state["al"]) == 4 and state["n_iter"] > 10


def test_lbfgs_bad_use_raises():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(3))
    with pytest.raises(ValueError, match="LBFGS doesn't support per-parameter options"):
        LBFGS([{"params": [a]}, {"params": [b], "lr": 0.1}])
    opt = LBFGS([a])
    with pytest.raises(ValueError, match="LBFGS doesn't support per-parameter options"):
        opt.add_param_group({"params": [b]})
    with pytest.raises(TypeError, match="LBFGS.step needs a closure"):
        opt.step(None)
    with pytest.raises(TypeError):
        opt.step()


# ---------------------------------------------------------------------------- the line search
@pytest.mark.parametrize("x1,x2", [(0.0, 2.0), (2.0, 0.0), (-0.5, 3.0)])
def test_cubic_interpolate_finds_the_minimum_of_a_cubic(x1, x2):
    p = lambda x: x ** 3 - 3 * x  # noqa: E731  local minimum at x = 1
    dp = lambda x: 3 * x ** 2 - 3  # noqa: E731
    assert cubic_interpolate(x1, p(x1), dp(x1), x2, p(x2), dp(x2)) == pytest.approx(1.0, abs=1e-14)
    # clipped to the bounds given
    assert cubic_interpolate(x1, p(x1), dp(x1), x2, p(x2), dp(x2), bounds=(1.5, 4.0)) == 1.5


def test_cubic_interpolate_without_a_minimum_bisects():
    p = lambda x: x ** 3 + x  # noqa: E731  strictly increasing: no critical point
    dp = lambda x: 3 * x ** 2 + 1  # noqa: E731
    assert cubic_interpolate(-1.0, p(-1.0), dp(-1.0), 1.0, p(1.0), dp(1.0)) == 0.0
    assert cubic_interpolate(-1.0, p(-1.0), dp(-1.0), 1.0, p(1.0), dp(1.0), bounds=(2.0, 6.0)) == 4.0


def test_cubic_interpolate_rounds_as_torch_on_a_straight_line():
    # Two points of phi(t) = -t: the cubic degenerates and d2^2 = d1^2 - g1 g2 is 0 up to rounding,
    # so its sign (midpoint or bound) depends on how d1 was rounded. torch computes the secant as
    # 3 (f1 - f2) * (1 / (t1 - t2)) when the t's are tensors (rnnbp: NumPy scalars) and divides
    # directly when they are Python floats; both forms must land where torch's do.
    torch = pytest.importorskip("torch")
    torch_cubic = getattr(pytest.importorskip("torch.optim.lbfgs"), "_cubic_interpolate", None)
    if torch_cubic is None:
        pytest.skip("this torch has no torch.optim.lbfgs._cubic_interpolate")
    t1, t2 = 430.30978468451656, 4303.097846845166
    bounds = (t2 + 0.01 * (t2 - t1), t2 * 10)
    T = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    as_tensors = torch_cubic(T(t1), -t1, T(-1.0), T(t2), -t2, T(-1.0), bounds=tuple(T(b) for b in bounds))
    mine = cubic_interpolate(np.float64(t1), -t1, np.float64(-1.0), np.float64(t2), -t2, np.float64(-1.0),
                             bounds=tuple(np.float64(b) for b in bounds))
    assert float(mine) == float(as_tensors) == sum(bounds) / 2  # the midpoint
    as_floats = torch_cubic(t1, -t1, T(-1.0), t2, -t2, T(-1.0), bounds=bounds)
    mine = cubic_interpolate(t1, -t1, np.float64(-1.0), t2, -t2, np.float64(-1.0), bounds=bounds)
    assert float(mine) == float(as_floats)


def _line(fun, x, d):
    calls = []

    def evaluate(t):
        calls.append(t)
        return fun(x + t * d)
    return evaluate, calls


@pytest.mark.parametrize("t0", [1e-4, 1.0, 30.0])
def test_strong_wolfe_returns_a_point_meeting_both_conditions(t0):
    x = np.array([-1.2, 1.0, 0.5])
    f0, g0 = rosenbrock(x)
    d = -g0 / np.abs(g0).max()
    gtd = g0 @ d
    evaluate, calls = _line(rosenbrock, x, d)
    f, g, t, n_evals = strong_wolfe(evaluate, d, t0, f0, g0, gtd)
    assert n_evals == len(calls) and n_evals >= 2
    f_t, g_t = rosenbrock(x + t * d)
    assert f == f_t
    np.testing.assert_array_equal(g, g_t)
    assert f <= f0 + 1e-4 * t * gtd  # sufficient decrease
    assert abs(g @ d) <= 0.9 * abs(gtd)  # curvature


LINE_FUNCTIONS = {  # f(x) and its gradient; each bends away from a cubic in its own way
    "wiggly": lambda x: (np.sum(np.sin(3 * x) + 0.1 * x ** 2 + 0.05 * x ** 4),
                         3 * np.cos(3 * x) + 0.2 * x + 0.2 * x ** 3),
    "sharp": lambda x: (np.sum(np.sqrt(1e-4 + x ** 2)), x / np.sqrt(1e-4 + x ** 2)),
    "sixth": lambda x: (np.sum(x ** 6 + x), 6 * x ** 5 + 1),
    "steep": lambda x: (np.sum(np.exp(4 * x) - 2 * x), 4 * np.exp(4 * x) - 2),
}


@pytest.mark.parametrize("name", sorted(LINE_FUNCTIONS))
def test_strong_wolfe_matches_torch(name):
    # torch's private _strong_wolfe, over starts, first steps, c2, tolerances and max_ls that
    # between them take every branch: bracketing, zooming, the near-end correction, the tolerance
    # stop and running out of evaluations.
    torch = pytest.importorskip("torch")
    torch_strong_wolfe = getattr(pytest.importorskip("torch.optim.lbfgs"), "_strong_wolfe", None)
    if torch_strong_wolfe is None:
        pytest.skip("this torch has no torch.optim.lbfgs._strong_wolfe")
    fun = LINE_FUNCTIONS[name]
    for seed in range(4):
        x = np.random.default_rng(seed).standard_normal(2)
        f0, g0 = fun(x)
        f0, d = float(f0), -g0
        for t0 in (1e-3, 1.0, 40.0):
            for c2, tolerance_change, max_ls in [(0.9, 1e-9, 25), (0.1, 1e-9, 25), (1e-4, 1e-9, 25),
                                                 (1e-4, 0.05, 25), (1e-4, 1e-9, 3)]:
                def evaluate(t):
                    f, g = fun(x + t * d)
                    return float(f), g

                def obj_func(_, t, __):
                    f, g = evaluate(float(t))
                    return f, torch.from_numpy(g)

                f, g, t, n = strong_wolfe(evaluate, d, t0, f0, g0, g0 @ d, c2=c2,
                                          tolerance_change=tolerance_change, max_ls=max_ls)
                tg0, td = torch.from_numpy(g0), torch.from_numpy(d)
                tf, tgr, tt, tn = torch_strong_wolfe(obj_func, None, t0, td, f0, tg0, tg0.dot(td), c2=c2,
                                                     tolerance_change=tolerance_change, max_ls=max_ls)
                where = f"{name} seed={seed} t0={t0} c2={c2} tol={tolerance_change} max_ls={max_ls}"
                assert n == tn, where
                assert float(t) == pytest.approx(float(tt), rel=1e-12, abs=1e-15), where
                assert float(f) == pytest.approx(float(tf), rel=1e-12, abs=1e-15), where
                np.testing.assert_allclose(g, tgr.numpy(), rtol=1e-10, atol=1e-13, err_msg=where)


def test_strong_wolfe_extrapolates_past_a_bump_and_on_straight_lines():
    # phi(t) = -t + 9.5 exp(-2 (t - 10)^2) + 0.001 t^2: a straight descent up to a bump at t = 10.
    # From t0 = 1 the cubic through two points of a straight line has its minimum at infinity, so
    # the next trial is 10 t0 = 10, on the bump: higher than t0 but still sufficiently low and
    # still descending, so the search goes on extrapolating (it brackets only from the third
    # trial on, when the loss rises). Exactly the trials torch makes.
    fun = lambda x: (np.sum(-x + 9.5 * np.exp(-2 * (x - 10) ** 2) + 0.001 * x ** 2),  # noqa: E731
                     -1 - 38 * (x - 10) * np.exp(-2 * (x - 10) ** 2) + 0.002 * x)
    x = np.zeros(1)
    f0, g0 = fun(x)
    evaluate, calls = _line(fun, x, -g0)
    f, g, t, n_evals = strong_wolfe(evaluate, -g0, 1.0, float(f0), g0, g0 @ -g0)
    assert calls[:3] == [1.0, 10.0, 10.09] and n_evals == 6
    assert t == pytest.approx(142.02145865809837, rel=1e-12) and f < f0 + 1e-4 * t * (g0 @ -g0)
    torch = pytest.importorskip("torch")
    torch_strong_wolfe = getattr(pytest.importorskip("torch.optim.lbfgs"), "_strong_wolfe", None)
    if torch_strong_wolfe is None:
        pytest.skip("this torch has no torch.optim.lbfgs._strong_wolfe")
    torch_calls = []

    def obj_func(_, t, __):
        torch_calls.append(float(t))
        value, grad = fun(x - float(t) * g0)
        return float(value), torch.from_numpy(grad)

    tg0 = torch.from_numpy(g0)
    _, _, tt, tn = torch_strong_wolfe(obj_func, None, 1.0, -tg0, float(f0), tg0, tg0.dot(-tg0))
    assert torch_calls == calls and float(tt) == t and tn == n_evals


def test_strong_wolfe_accepts_a_good_first_step_with_one_evaluation():
    fun = lambda x: (0.5 * x @ x, x.copy())  # noqa: E731
    x = np.array([1.0, -2.0])
    f0, g0 = fun(x)
    evaluate, calls = _line(fun, x, -x)
    f, g, t, n_evals = strong_wolfe(evaluate, -x, 1.0, f0, g0, g0 @ -x)
    assert (t, n_evals, f) == (1.0, 1, 0.0) and calls == [1.0]


def test_strong_wolfe_respects_max_ls():
    x = np.array([-1.2, 1.0, 0.5])
    f0, g0 = rosenbrock(x)
    d = -g0 / np.abs(g0).max()
    evaluate, calls = _line(rosenbrock, x, d)
    f, g, t, n_evals = strong_wolfe(evaluate, d, 1e-6, f0, g0, g0 @ d, max_ls=2)
    assert n_evals == len(calls) == 3
    assert f <= f0  # the better end of what was tried


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop, Adagrad])
def test_older_optimizers_take_torchs_implementation_flags(cls):
    """foreach/fused are accepted (one implementation here); differentiable=True is refused by name."""
    p = [Parameter(np.zeros(2))]
    kwargs = {"lr": 0.1} if cls is SGD else {}
    cls(p, foreach=False, **kwargs)
    with pytest.raises(ValueError, match=f"{cls.__name__}: differentiable=True"):
        cls(p, differentiable=True, **kwargs)
