"""Messages a user can act on (#13 item 8): optimizer hyperparameters of the wrong type, scheduler
metrics, factors and lambdas, state dicts of another class, and MultiplicativeLR against torch."""
import math

import numpy as np
import pytest

import rnnbp
from rnnbp import nn, optim
from rnnbp.optim import lr_scheduler as lrs
from rnnbp.validation import ArgumentTypeError


def _params():
    return [nn.Parameter(np.zeros(3, np.float32))]


def _sgd(lrs_=(0.1,)):
    return optim.SGD([{"params": _params(), "lr": lr} for lr in lrs_], lr=1.0)


# ----------------------------------------------------------------- optimizer hyperparameters
@pytest.mark.parametrize("cls, kwargs, name", [
    (optim.SGD, {"lr": "0.1"}, "lr"), (optim.SGD, {"lr": 0.1, "momentum": "0.9"}, "momentum"),
    (optim.Adam, {"eps": "1e-8"}, "eps"), (optim.AdamW, {"weight_decay": "0.01"}, "weight_decay"),
    (optim.RMSprop, {"alpha": "0.99"}, "alpha"), (optim.Adagrad, {"lr_decay": "0"}, "lr_decay"),
    (optim.Adadelta, {"rho": "0.9"}, "rho"), (optim.Adamax, {"lr": "2e-3"}, "lr"),
    (optim.NAdam, {"momentum_decay": "4e-3"}, "momentum_decay"), (optim.RAdam, {"lr": b"1"}, "lr"),
    (optim.LBFGS, {"tolerance_grad": "1e-7"}, "tolerance_grad"), (optim.SGD, {"lr": None}, "lr"),
])
def test_a_hyperparameter_that_is_not_a_number_is_named(cls, kwargs, name):
    with pytest.raises(ArgumentTypeError, match=rf"^{cls.__name__}: {name} must be a number, got "):
        cls(_params(), **kwargs)


def test_a_string_in_a_param_group_or_in_betas_is_named():
    opt = optim.SGD(_params(), lr=0.1)
    with pytest.raises(TypeError, match=r"SGD: lr must be a number, got str '0.01'"):
        opt.add_param_group({"params": _params(), "lr": "0.01"})
    with pytest.raises(TypeError, match=r"Adam: betas\[1\] must be a number, got str '0.999'"):
        optim.Adam(_params(), betas=(0.9, "0.999"))
    with pytest.raises(TypeError, match=r"Adam: betas must be a pair of numbers \(beta1, beta2\), got str '0.9'"):
        optim.Adam(_params(), betas="0.9")


def test_numbers_of_every_kind_are_still_accepted_and_ranges_keep_torchs_words():
    assert optim.SGD(_params(), lr=np.float32(0.5)).param_groups[0]["lr"] == 0.5
    assert optim.Adam(_params(), betas=[0.8, 0.9], lr=1).defaults["betas"] == (0.8, 0.9)
    with pytest.raises(TypeError, match=r"NAdam: betas must be a pair of numbers \(beta1, beta2\), got float 0.9"):
        optim.NAdam(_params(), betas=0.9)
    optim.SGD(_params(), lr=rnnbp.tensor(0.1))  # a one-element Tensor lr, as torch accepts
    with pytest.raises(ValueError, match=r"^Invalid learning rate: -0.1$"):
        optim.SGD(_params(), lr=-0.1)


def test_step_refuses_a_closure_that_is_not_callable():
    with pytest.raises(TypeError, match=r"SGD.step: closure must be callable .* got float"):
        _sgd().step(0.5)


@pytest.mark.parametrize("source, target, words", [
    (lambda p: optim.Adam(p), lambda p: optim.SGD(p, lr=0.1), r"saved from an optimizer such as Adam, not SGD"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=0.9), lambda p: optim.Adam(p),
     r"saved from an optimizer such as SGD, not Adam: its param_groups hold \['dampening', 'momentum', 'nesterov'\]"),
    (lambda p: optim.RMSprop(p), lambda p: optim.Adagrad(p), r"saved from an optimizer such as RMSprop, not Adagrad"),
])
def test_an_optimizer_state_of_another_class_is_refused_naming_both(source, target, words):
    p = nn.Parameter(np.ones(3, np.float32))
    p._grad = np.ones(3, np.float32)
    saved = source([p])
    saved.step()
    opt = target([p])
    groups, state = [dict(g) for g in opt.param_groups], {p: dict(s) for p, s in opt.state.items()}
    with pytest.raises(ValueError, match=words):
        opt.load_state_dict(saved.state_dict())
    assert [dict(g) for g in opt.param_groups] == groups and opt.state.keys() == state.keys()


def test_an_optimizer_state_with_torchs_flags_and_a_schedulers_initial_lr_still_loads():
    p = nn.Parameter(np.ones(3, np.float32))
    state = optim.Adam([p], lr=0.1).state_dict()
    state["param_groups"][0].update(foreach=None, fused=None, capturable=False, differentiable=False,
                                    initial_lr=0.1, name="encoder")
    opt = optim.Adam([p], lr=0.3)
    opt.load_state_dict(state)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["name"] == "encoder"


# ----------------------------------------------------------------- ReduceLROnPlateau
@pytest.mark.parametrize("metric, got", [
    ("abc", r"got str 'abc'"), ("0.5", r"got str '0.5'"), (None, r"got NoneType None"),
    (rnnbp.ones(3), r"got a Tensor of shape \(3,\)"), (np.ones((2, 2)), r"got a ndarray of shape \(2, 2\)"),
    (True, r"got bool True"),
])
def test_plateau_step_names_a_metric_that_is_not_one_number(metric, got):
    sched = lrs.ReduceLROnPlateau(_sgd())
    with pytest.raises(ArgumentTypeError, match=r"^ReduceLROnPlateau.step: metrics must be one number.*" + got):
        sched.step(metric)
    assert sched.last_epoch == 0 and sched.num_bad_epochs == 0  # nothing was counted


@pytest.mark.parametrize("metric", [0.5, 1, np.float32(0.5), rnnbp.tensor(0.5), np.array([0.5]), rnnbp.tensor([0.5])])
def test_plateau_step_takes_every_kind_of_single_number(metric):
    sched = lrs.ReduceLROnPlateau(_sgd())
    sched.step(metric)
    assert sched.best == pytest.approx(0.5 if metric != 1 else 1.0)


@pytest.mark.parametrize("factor", [0, 0.0, -0.5, 1.0, 1.5, math.nan])
def test_plateau_factor_must_lie_in_the_open_unit_interval(factor):
    with pytest.raises(ValueError, match=r"^ReduceLROnPlateau: factor must be in \(0, 1\), got "):
        lrs.ReduceLROnPlateau(_sgd(), factor=factor)


# ----------------------------------------------------------------- lambdas
@pytest.mark.parametrize("cls", [lrs.LambdaLR, lrs.MultiplicativeLR])
@pytest.mark.parametrize("value, shown", [(-1.0, "-1.0"), (math.nan, "nan"), (math.inf, "inf"), (None, "None"),
                                          ("0.5", "'0.5'")])
def test_a_lambda_giving_a_bad_factor_is_refused_naming_epoch_and_value(cls, value, shown):
    opt = _sgd((0.1, 0.2))
    sched = cls(opt, [lambda e: 0.5, lambda e: value if e >= 3 else 0.9])
    for _ in range(2):
        sched.step()
    lrs_before, epoch_before = [g["lr"] for g in opt.param_groups], sched.last_epoch
    with pytest.raises(ValueError, match=rf"^{cls.__name__}: lr_lambda returned {shown} at epoch 3 \(param group 1\); "
                                         "it must return a finite number >= 0"):
        sched.step()
    # Refused before anything changed: the optimizer keeps its lrs, the scheduler its epoch.
    assert [g["lr"] for g in opt.param_groups] == lrs_before and sched.last_epoch == epoch_before
    assert sched._step_count == 3


def test_a_lambda_giving_a_bad_factor_at_construction_is_refused():
    with pytest.raises(ValueError, match=r"LambdaLR: lr_lambda returned -2 at epoch 0 \(param group 0\)"):
        lrs.LambdaLR(_sgd(), lambda e: -2)


@pytest.mark.parametrize("make, words", [
    (lambda o: lrs.ExponentialLR(o, gamma=-0.5), r"ExponentialLR: the learning rate of param group 0 at epoch 1 would be -0.05"),
    (lambda o: lrs.MultiStepLR(o, [1], gamma=-2.0), r"MultiStepLR: the learning rate of param group 0 at epoch 1 would be -0.2"),
    (lambda o: lrs.CosineAnnealingLR(o, T_max=2, eta_min=-1.0), r"CosineAnnealingLR: the learning rate .* at epoch 1 would be -0.4"),
])
def test_any_schedule_reaching_a_negative_or_nan_lr_is_refused(make, words):
    sched = make(_sgd())
    with pytest.raises(ValueError, match=words):
        sched.step()


def test_gamma_and_eta_min_must_be_numbers():
    with pytest.raises(TypeError, match=r"StepLR: gamma must be a number, got str '0.5'"):
        lrs.StepLR(_sgd(), 2, gamma="0.5")
    with pytest.raises(TypeError, match=r"CosineAnnealingLR: eta_min must be a number, got None"):
        lrs.CosineAnnealingLR(_sgd(), 3, eta_min=None)


def test_multiplicative_lr_matches_torch():
    torch = pytest.importorskip("torch")
    factors = [lambda e: 0.9, lambda e: 1.0 / (1 + 0.1 * e)]
    opt = _sgd((0.1, 0.03))
    sched = lrs.MultiplicativeLR(opt, factors)
    tparams = [torch.nn.Parameter(torch.zeros(3)) for _ in range(2)]
    topt = torch.optim.SGD([{"params": [tp], "lr": lr} for tp, lr in zip(tparams, (0.1, 0.03))], lr=1.0)
    tsched = torch.optim.lr_scheduler.MultiplicativeLR(topt, factors)
    assert sched.get_last_lr() == tsched.get_last_lr()
    for _ in range(15):
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-15)
    fresh = lrs.MultiplicativeLR(_sgd((0.1, 0.03)), factors)
    fresh.load_state_dict(sched.state_dict())
    assert fresh.last_epoch == 15


# ----------------------------------------------------------------- state dicts of another scheduler
@pytest.mark.parametrize("source, target, saved, ours", [
    (lambda o: lrs.StepLR(o, 3), lambda o: lrs.CosineAnnealingLR(o, 10), "StepLR", "CosineAnnealingLR"),
    (lambda o: lrs.LambdaLR(o, lambda e: 1.0), lambda o: lrs.MultiplicativeLR(o, lambda e: 1.0), "LambdaLR",
     "MultiplicativeLR"),
    (lambda o: lrs.ReduceLROnPlateau(o), lambda o: lrs.ExponentialLR(o, 0.9), "ReduceLROnPlateau", "ExponentialLR"),
    (lambda o: lrs.SequentialLR(o, [lrs.StepLR(o, 2), lrs.StepLR(o, 3)], [2]), lambda o: lrs.StepLR(o, 3),
     "SequentialLR", "StepLR"),
])
def test_a_scheduler_state_of_another_class_is_refused_naming_both(source, target, saved, ours):
    opt = _sgd()
    state = source(opt).state_dict()
    sched = target(opt)
    before = dict(vars(sched))
    with pytest.raises(ValueError, match=rf"^{ours}.load_state_dict: this state dict was saved from a {saved}, not a {ours}"):
        sched.load_state_dict(state)
    assert vars(sched).keys() == before.keys()


def test_a_user_subclass_records_the_rnnbp_class_it_extends():
    class Warm(lrs.StepLR):
        pass

    opt = _sgd()
    assert Warm(opt, 2).state_dict()["_scheduler_class"] == "StepLR"
    lrs.StepLR(opt, 2).load_state_dict(Warm(opt, 2).state_dict())


def test_a_sequential_lr_checks_its_schedulers_before_writing():
    opt = _sgd()
    state = lrs.SequentialLR(opt, [lrs.StepLR(opt, 2), lrs.StepLR(opt, 3)], [2]).state_dict()
    other = lrs.SequentialLR(opt, [lrs.StepLR(opt, 2), lrs.ExponentialLR(opt, 0.5)], [2])
    with pytest.raises(ValueError, match=r"ExponentialLR.load_state_dict: this state dict was saved from a StepLR"):
        other.load_state_dict(state)


def test_torch_made_scheduler_states_load_into_their_class_and_are_refused_by_others():
    torch = pytest.importorskip("torch")
    topt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(3))], lr=0.1)
    tstep = torch.optim.lr_scheduler.StepLR(topt, 3, gamma=0.5)
    for _ in range(4):
        topt.step()
        tstep.step()
    step = lrs.StepLR(_sgd(), 3, gamma=0.5)
    step.load_state_dict(tstep.state_dict())  # no class recorded; its entries are a StepLR's
    assert step.last_epoch == 4 and step.get_last_lr() == pytest.approx(tstep.get_last_lr())
    with pytest.raises(ValueError, match=r"^CosineAnnealingLR.load_state_dict: this state dict is not a "
                                         r"CosineAnnealingLR's: it has entries \['gamma', 'step_size'\] a "
                                         r"CosineAnnealingLR does not and lacks \['T_max', 'eta_min'\]"):
        lrs.CosineAnnealingLR(_sgd(), 10).load_state_dict(tstep.state_dict())
    with pytest.raises(TypeError, match=r"StepLR.load_state_dict: expected a dict made by StepLR.state_dict\(\), got list"):
        step.load_state_dict([1, 2])
