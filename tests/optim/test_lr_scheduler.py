"""LR schedulers: trajectories against the published closed forms (computed here), against
torch.optim.lr_scheduler, state-dict round trips and argument checks."""
import math

import numpy as np
import pytest

from rnnbp.nn.parameter import Parameter
from rnnbp.optim import SGD
from rnnbp.optim import lr_scheduler as lrs

BASE_LRS = (0.1, 0.03)


def make_optimizer(base_lrs=BASE_LRS):
    groups = [{"params": [Parameter(np.zeros(2))], "lr": lr} for lr in base_lrs]
    return SGD(groups, lr=1.0)


def trajectory(scheduler, n):
    """The lrs after construction and after each of n steps: n + 1 lists, one lr per group."""
    opt = scheduler.optimizer
    out = [scheduler.get_last_lr()]
    for _ in range(n):
        opt.step()
        scheduler.step()
        lr = scheduler.get_last_lr()
        assert lr == [g["lr"] for g in opt.param_groups]
        out.append(lr)
    return np.array(out)


def closed_form(fn, n, base_lrs=BASE_LRS):
    return np.array([[fn(t, base) for base in base_lrs] for t in range(n + 1)])


# ---------------------------------------------------------------------------- closed forms
def cosine(t, base, T, eta_min):
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / T)) / 2


def warm_restarts(t, base, T_0, T_mult, eta_min):
    T_i, T_cur = T_0, t
    while T_cur >= T_i:
        T_cur -= T_i
        T_i *= T_mult
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * T_cur / T_i)) / 2


def linear(t, base, start, end, total):
    return base * (start + (end - start) * min(t, total) / total)


# (name, constructor(optimizer), closed form (t, base) -> lr, steps)
CASES = [
    ("LambdaLR", lambda o: lrs.LambdaLR(o, lambda e: 1 / (1 + e)), lambda t, b: b / (1 + t), 30),
    ("LambdaLR-list", lambda o: lrs.LambdaLR(o, [lambda e: 0.9 ** e, lambda e: 1 / (1 + e)]), None, 30),
    ("StepLR", lambda o: lrs.StepLR(o, step_size=3, gamma=0.5), lambda t, b: b * 0.5 ** (t // 3), 30),
    ("MultiStepLR", lambda o: lrs.MultiStepLR(o, milestones=[4, 9, 9, 15], gamma=0.3),
     lambda t, b: b * 0.3 ** sum(m <= t for m in [4, 9, 9, 15]), 30),
    ("ExponentialLR", lambda o: lrs.ExponentialLR(o, gamma=0.9), lambda t, b: b * 0.9 ** t, 30),
    ("CosineAnnealingLR", lambda o: lrs.CosineAnnealingLR(o, T_max=10),
     lambda t, b: cosine(t, b, 10, 0.0), 35),
    ("CosineAnnealingLR-eta_min", lambda o: lrs.CosineAnnealingLR(o, T_max=7, eta_min=0.01),
     lambda t, b: cosine(t, b, 7, 0.01), 30),
    ("CosineAnnealingWarmRestarts", lambda o: lrs.CosineAnnealingWarmRestarts(o, T_0=5),
     lambda t, b: warm_restarts(t, b, 5, 1, 0.0), 30),
    ("CosineAnnealingWarmRestarts-T_mult", lambda o: lrs.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001),
     lambda t, b: warm_restarts(t, b, 3, 2, 0.001), 50),
    ("LinearLR", lambda o: lrs.LinearLR(o, start_factor=0.1, total_iters=8),
     lambda t, b: linear(t, b, 0.1, 1.0, 8), 20),
    ("LinearLR-decay", lambda o: lrs.LinearLR(o, start_factor=1.0, end_factor=0.25, total_iters=6),
     lambda t, b: linear(t, b, 1.0, 0.25, 6), 20),
    ("SequentialLR", lambda o: lrs.SequentialLR(
        o, [lrs.LinearLR(o, start_factor=0.2, total_iters=4), lrs.CosineAnnealingLR(o, T_max=12, eta_min=0.002)],
        milestones=[5]),
     lambda t, b: linear(t, b, 0.2, 1.0, 4) if t < 5 else cosine(t - 5, b, 12, 0.002), 40),
    ("SequentialLR-3", lambda o: lrs.SequentialLR(
        o, [lrs.LinearLR(o, start_factor=0.5, total_iters=2),
            lrs.ExponentialLR(o, gamma=0.8), lrs.StepLR(o, step_size=2, gamma=0.5)],
        milestones=[3, 8]),
     lambda t, b: (linear(t, b, 0.5, 1.0, 2) if t < 3 else b * 0.8 ** (t - 3) if t < 8 else b * 0.5 ** ((t - 8) // 2)),
     20),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,make,formula,n", CASES, ids=IDS)
def test_trajectory_matches_closed_form(name, make, formula, n):
    if formula is None:  # LambdaLR with one lambda per group
        expected = np.array([[BASE_LRS[0] * 0.9 ** t, BASE_LRS[1] / (1 + t)] for t in range(n + 1)])
    else:
        expected = closed_form(formula, n)
    np.testing.assert_allclose(trajectory(make(make_optimizer()), n), expected, rtol=1e-10, atol=1e-14)


def test_cosine_matches_closed_form_over_several_periods_with_a_long_period():
    # The recursive form must not drift from the closed form, through minima and maxima.
    opt = make_optimizer()
    got = trajectory(lrs.CosineAnnealingLR(opt, T_max=50, eta_min=1e-4), 250)
    np.testing.assert_allclose(got, closed_form(lambda t, b: cosine(t, b, 50, 1e-4), 250), rtol=1e-9, atol=1e-14)


def _torch_version(torch, name, topt):
    S = torch.optim.lr_scheduler
    table = {
        "LambdaLR": lambda: S.LambdaLR(topt, lambda e: 1 / (1 + e)),
        "LambdaLR-list": lambda: S.LambdaLR(topt, [lambda e: 0.9 ** e, lambda e: 1 / (1 + e)]),
        "StepLR": lambda: S.StepLR(topt, step_size=3, gamma=0.5),
        "MultiStepLR": lambda: S.MultiStepLR(topt, milestones=[4, 9, 9, 15], gamma=0.3),
        "ExponentialLR": lambda: S.ExponentialLR(topt, gamma=0.9),
        "CosineAnnealingLR": lambda: S.CosineAnnealingLR(topt, T_max=10),
        "CosineAnnealingLR-eta_min": lambda: S.CosineAnnealingLR(topt, T_max=7, eta_min=0.01),
        "CosineAnnealingWarmRestarts": lambda: S.CosineAnnealingWarmRestarts(topt, T_0=5),
        "CosineAnnealingWarmRestarts-T_mult": lambda: S.CosineAnnealingWarmRestarts(topt, T_0=3, T_mult=2, eta_min=0.001),
        "LinearLR": lambda: S.LinearLR(topt, start_factor=0.1, total_iters=8),
        "LinearLR-decay": lambda: S.LinearLR(topt, start_factor=1.0, end_factor=0.25, total_iters=6),
        "SequentialLR": lambda: S.SequentialLR(
            topt, [S.LinearLR(topt, start_factor=0.2, total_iters=4), S.CosineAnnealingLR(topt, T_max=12, eta_min=0.002)],
            milestones=[5]),
        "SequentialLR-3": lambda: S.SequentialLR(
            topt, [S.LinearLR(topt, start_factor=0.5, total_iters=2), S.ExponentialLR(topt, gamma=0.8),
                   S.StepLR(topt, step_size=2, gamma=0.5)], milestones=[3, 8]),
    }
    return table[name]()


def _torch_optimizer(torch, base_lrs=BASE_LRS):
    groups = [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in base_lrs]
    return torch.optim.SGD(groups, lr=1.0)


@pytest.mark.parametrize("name,make,formula,n", CASES, ids=IDS)
def test_trajectory_matches_torch(name, make, formula, n):
    torch = pytest.importorskip("torch")
    topt = _torch_optimizer(torch)
    tsched = _torch_version(torch, name, topt)
    expected = [tsched.get_last_lr()]
    for _ in range(n):
        topt.step()
        tsched.step()
        expected.append(tsched.get_last_lr())
    np.testing.assert_allclose(trajectory(make(make_optimizer()), n), np.array(expected), rtol=1e-13, atol=1e-16)


def test_cosine_long_run_matches_torch():
    torch = pytest.importorskip("torch")
    topt = _torch_optimizer(torch)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=50, eta_min=1e-4)
    expected = [tsched.get_last_lr()]
    for _ in range(250):
        topt.step()
        tsched.step()
        expected.append(tsched.get_last_lr())
    got = trajectory(lrs.CosineAnnealingLR(make_optimizer(), T_max=50, eta_min=1e-4), 250)
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-13, atol=1e-16)


def test_warm_restarts_fractional_epochs_match_torch():
    torch = pytest.importorskip("torch")
    epochs = [0.25, 0.5, 1.75, 3.0, 4.5, 7.2, 9.0, 15.5, 20.0, 2.0]
    topt = _torch_optimizer(torch)
    tsched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(topt, T_0=3, T_mult=2, eta_min=0.001)
    opt = make_optimizer()
    sched = lrs.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.001)
    for e in epochs:
        topt.step()
        tsched.step(e)
        sched.step(e)
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-13, err_msg=str(e))
        # independent check against the formula at integer epochs
        if float(e).is_integer():
            expected = [warm_restarts(int(e), b, 3, 2, 0.001) for b in BASE_LRS]
            np.testing.assert_allclose(sched.get_last_lr(), expected, rtol=1e-12)


# ---------------------------------------------------------------------------- ReduceLROnPlateau
def test_plateau_reduces_after_patience_bad_epochs():
    opt = make_optimizer((1.0,))
    sched = lrs.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    lrs_seen = []
    for metric in [10, 9, 9, 9, 9, 8, 8, 8, 8, 8, 8, 8]:
        sched.step(metric)
        lrs_seen.append(sched.get_last_lr()[0])
    # bad epochs: 9,9 (2 = patience, no cut), third 9 -> cut; then 9 is bad 1, 8 improves, 8,8 bad, 8 -> cut ...
    assert lrs_seen == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]


def test_plateau_cooldown_min_lr_and_max_mode():
    opt = make_optimizer((1.0, 0.3))
    sched = lrs.ReduceLROnPlateau(opt, mode="max", factor=0.1, patience=0, cooldown=2, min_lr=[0.05, 0.01],
                                  threshold=0.1, threshold_mode="abs")
    seen = []
    for metric in [1.0, 1.05, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0]:
        sched.step(metric)
        seen.append(sched.get_last_lr())
    # 1.05 is not better than 1.0 + 0.1 -> bad -> cut (patience 0), then 2 epochs of cooldown.
    expected = [[1.0, 0.3], [0.1, 0.03], [0.1, 0.03], [0.1, 0.03], [0.05, 0.01], [0.05, 0.01],
                [0.05, 0.01], [0.05, 0.01], [0.05, 0.01]]
    np.testing.assert_allclose(seen, expected, rtol=1e-12)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(mode="max", patience=1),
    dict(threshold_mode="abs", threshold=0.05, patience=2, factor=0.5),
    dict(mode="max", threshold_mode="abs", threshold=0.02, cooldown=2, patience=0, min_lr=0.01),
    dict(patience=1, cooldown=1, min_lr=[0.02, 0.001], factor=0.3, eps=1e-3),
])
def test_plateau_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    metrics = np.round(np.cumsum(rng.standard_normal(80)) * 0.1, 2)
    topt = _torch_optimizer(torch)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kwargs)
    sched = lrs.ReduceLROnPlateau(make_optimizer(), **kwargs)
    n_changes = 0
    for m in metrics:
        before = sched.get_last_lr()
        tsched.step(float(m))
        sched.step(m)
        assert sched.get_last_lr() == tsched.get_last_lr()
        n_changes += sched.get_last_lr() != before
    assert n_changes > 0  # the metrics must actually exercise a reduction


# ---------------------------------------------------------------------------- state dicts
@pytest.mark.parametrize("name,make,formula,n", CASES, ids=IDS)
def test_state_dict_round_trip(name, make, formula, n):
    opt = make_optimizer()
    sched = make(opt)
    full = trajectory(sched, n)

    opt2 = make_optimizer()
    sched2 = make(opt2)
    trajectory(sched2, 7)
    opt_sd, sched_sd = opt2.state_dict(), sched2.state_dict()
    assert "optimizer" not in sched_sd

    opt3 = make_optimizer()
    sched3 = make(opt3)
    sched3.load_state_dict(sched_sd)
    opt3.load_state_dict(opt_sd)
    assert sched3.get_last_lr() == list(full[7])
    np.testing.assert_array_equal(trajectory(sched3, n - 7), full[7:])


def test_plateau_state_dict_round_trip():
    metrics = [5, 4, 4, 4, 4, 3, 3, 3, 3, 3]
    opt = make_optimizer()
    sched = lrs.ReduceLROnPlateau(opt, patience=1, mode="min", factor=0.5)
    full = []
    for m in metrics:
        sched.step(m)
        full.append(sched.get_last_lr())
    opt2 = make_optimizer()
    sched2 = lrs.ReduceLROnPlateau(opt2, patience=1, factor=0.5)
    for m in metrics[:4]:
        sched2.step(m)
    opt3 = make_optimizer()
    sched3 = lrs.ReduceLROnPlateau(opt3, patience=1, factor=0.5)
    sched3.load_state_dict(sched2.state_dict())
    opt3.load_state_dict(opt2.state_dict())
    rest = []
    for m in metrics[4:]:
        sched3.step(m)
        rest.append(sched3.get_last_lr())
    assert rest == full[4:]


def test_lambda_state_dict_saves_callable_objects_not_functions():
    class Schedule:
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, epoch):
            return self.rate ** epoch

    opt = make_optimizer((1.0,))
    sched = lrs.LambdaLR(opt, Schedule(0.5))
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [{"rate": 0.5}]
    other = lrs.LambdaLR(make_optimizer((1.0,)), Schedule(0.9))
    other.load_state_dict(sd)
    assert other.lr_lambdas[0].rate == 0.5
    assert lrs.LambdaLR(make_optimizer((1.0,)), lambda e: 1.0).state_dict()["lr_lambdas"] == [None]


# ---------------------------------------------------------------------------- construction
def test_construction_sets_initial_lr_and_last_epoch():
    opt = make_optimizer()
    sched = lrs.StepLR(opt, step_size=2)
    assert [g["initial_lr"] for g in opt.param_groups] == list(BASE_LRS)
    assert sched.base_lrs == list(BASE_LRS) and sched.last_epoch == 0
    with pytest.raises(KeyError, match="initial_lr"):
        lrs.StepLR(make_optimizer(), step_size=2, last_epoch=3)


def test_resuming_with_last_epoch_matches_torch():
    # Resuming keeps the optimizer's current lr at construction and then continues recursively.
    torch = pytest.importorskip("torch")
    topt = _torch_optimizer(torch)
    first = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=10)
    opt = make_optimizer()
    ours = lrs.CosineAnnealingLR(opt, T_max=10)
    for _ in range(4):
        topt.step()
        first.step()
        ours.step()
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=10, last_epoch=first.last_epoch)
    sched = lrs.CosineAnnealingLR(opt, T_max=10, last_epoch=ours.last_epoch)
    assert sched.last_epoch == tsched.last_epoch
    for _ in range(12):
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-13)
        topt.step()
        tsched.step()
        sched.step()


@pytest.mark.parametrize("make,exc,message", [
    (lambda o: lrs.StepLR(o, step_size=0), ValueError, "step_size must be a positive integer, got 0"),
    (lambda o: lrs.CosineAnnealingLR(o, T_max=0), ValueError, "T_max must be a positive integer, got 0"),
    (lambda o: lrs.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, "positive integer T_0, but got 0"),
    (lambda o: lrs.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0), ValueError, "T_mult >= 1, but got 0"),
    (lambda o: lrs.LinearLR(o, start_factor=0), ValueError, "start_factor .* got 0"),
    (lambda o: lrs.LinearLR(o, end_factor=1.5), ValueError, "end_factor .* got 1.5"),
    (lambda o: lrs.LinearLR(o, total_iters=0), ValueError, "total_iters must be a positive integer, got 0"),
    (lambda o: lrs.ReduceLROnPlateau(o, factor=1.0), ValueError, r"ReduceLROnPlateau: factor must be in \(0, 1\), got 1.0"),
    (lambda o: lrs.ReduceLROnPlateau(o, mode="lowest"), ValueError, "mode must be 'min' or 'max', got 'lowest'"),
    (lambda o: lrs.ReduceLROnPlateau(o, threshold_mode="x"), ValueError, "threshold_mode .* got 'x'"),
    (lambda o: lrs.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError, "expected 2 min_lrs, got 1"),
    (lambda o: lrs.LambdaLR(o, [lambda e: 1.0]), ValueError, "expected 2 lr_lambdas, but got 1"),
    (lambda o: lrs.SequentialLR(o, [lrs.StepLR(o, 2), lrs.StepLR(o, 3)], milestones=[]), ValueError,
     "number of schedulers 2 and the number of milestones to be equal to 0"),
    (lambda o: lrs.SequentialLR(o, [lrs.StepLR(make_optimizer(), 2)], milestones=[]), ValueError,
     "same optimizer"),
    (lambda o: lrs.SequentialLR(o, [lrs.ReduceLROnPlateau(o)], milestones=[]), ValueError,
     "does not support ReduceLROnPlateau"),
    (lambda o: lrs.StepLR(object(), 2), TypeError, "expected an rnnbp.optim.Optimizer, got object"),
])
def test_bad_arguments_raise(make, exc, message):
    with pytest.raises(exc, match=message):
        make(make_optimizer())


def test_multisteplr_survives_save_and_load(tmp_path):
    """Milestones are a Counter; after rnnbp.save/load they come back as a dict and must still work."""
    import rnnbp
    from rnnbp.optim.lr_scheduler import MultiStepLR, SequentialLR, LinearLR

    def build():
        p = Parameter(np.zeros(1, dtype=np.float32))
        opt = SGD([p], lr=1.0)
        return opt, SequentialLR(opt, [LinearLR(opt, 0.5, total_iters=2), MultiStepLR(opt, [3, 5], 0.1)], [2])

    opt, sched = build()
    sched.step()  # saved before SequentialLR's milestone, which evaluates MultiStepLR's closed form
    rnnbp.save({"optim": opt.state_dict(), "sched": sched.state_dict()}, tmp_path / "s.npz")
    opt2, sched2 = build()
    state = rnnbp.load(tmp_path / "s.npz")
    opt2.load_state_dict(state["optim"])
    sched2.load_state_dict(state["sched"])
    for _ in range(6):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == pytest.approx(sched.get_last_lr())
