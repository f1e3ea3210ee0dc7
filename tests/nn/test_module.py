"""Module mechanics: registration, traversal, modes, state dicts, dtype casts."""
import numpy as np
import pytest

import rnnbp
from rnnbp import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 6), nn.Tanh())
        self.heads = nn.ModuleList([nn.Linear(6, 2), nn.Linear(6, 3, bias=False)])
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))
        self.register_buffer("running", np.zeros(2, dtype=np.float32))
        self.register_buffer("scratch", np.zeros(5, dtype=np.float32), persistent=False)
        self.not_a_param = np.ones(3)

    def forward(self, x):
        h = self.encoder(x)
        return self.heads[0](h) * self.scale, self.heads[1](h)


def test_registration_and_pytorch_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale", "encoder.0.weight", "encoder.0.bias", "heads.0.weight", "heads.0.bias",
                     "heads.1.weight"]
    assert list(net.state_dict()) == names[:1] + ["running"] + names[1:]
    assert "scratch" not in net.state_dict()
    assert net.heads[1].bias is None and "bias" in net.heads[1]._parameters
    assert len(list(net.modules())) == 7 and len(list(net.children())) == 2


def test_shared_parameter_listed_once():
    lin = nn.Linear(3, 3)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2


def test_assigning_wrong_type_to_parameter_slot_raises():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="weight"):
        lin.weight = np.zeros((2, 2))
    lin.bias = None
    assert lin.bias is None and len(list(lin.parameters())) == 1


def test_train_eval_propagates():
    net = Net()
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_zero_grad_set_to_none_and_zero():
    net = Net()
    a, b = net(rnnbp.randn(5, 4))
    (a.sum() + b.sum()).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_round_trip_into_fresh_module():
    rnnbp.manual_seed(1)
    src = Net()
    src.running[...] = [3, 4]
    rnnbp.manual_seed(2)
    dst = Net()
    assert not np.allclose(src.encoder[0].weight.data, dst.encoder[0].weight.data)
    result = dst.load_state_dict(src.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (k, v), (k2, v2) in zip(src.state_dict().items(), dst.state_dict().items()):
        assert k == k2 and np.array_equal(v, v2) and v is not v2
    x = rnnbp.randn(3, 4)
    for a, b in zip(src(x), dst(x)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_state_dict_values_are_detached_tensors_sharing_memory_as_in_torch():
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    sd = net.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
                        "1.num_batches_tracked"]
    w = sd["0.weight"]
    assert isinstance(w, rnnbp.Tensor) and not w.requires_grad and w.size() == (2, 3)
    w.mul_(0)  # in place on the state dict's tensor: the module's weight changes, as in PyTorch
    assert np.all(net[0].weight.numpy() == 0)
    kept = net.state_dict(keep_vars=True)
    assert kept["0.weight"] is net[0].weight and kept["0.weight"].requires_grad
    filled = {}
    assert net.state_dict(destination=filled, prefix="model.") is filled and "model.1.running_var" in filled


def test_load_state_dict_result_prints_as_torch():
    net = nn.Linear(2, 2)
    assert repr(net.load_state_dict(nn.Linear(2, 2).state_dict())) == "<All keys matched successfully>"
    result = net.load_state_dict({"weight": np.zeros((2, 2), np.float32)}, strict=False)
    assert result.missing_keys == ["bias"] and "missing_keys=['bias']" in repr(result)


def test_state_dict_leaves_plain_buffers_as_the_module_holds_them():
    m = nn.Module()
    m.register_buffer("count", 3)
    m.register_buffer("table", np.arange(4.0))
    sd = m.state_dict()
    assert sd["count"].item() == 3 and type(m.count) is int
    assert np.shares_memory(sd["table"].numpy(), m.table)


class _MaskedLinear(nn.Linear):
    """A subclass whose weight is a property over the registered parameter (as masking defines it)."""

    @property
    def weight(self):
        return self._parameters["weight"] * 0.0


def test_linear_subclass_with_a_weight_property_is_used():
    lin = _MaskedLinear(3, 2)
    out = lin(rnnbp.randn(4, 3))
    np.testing.assert_array_equal(out.numpy(), np.broadcast_to(lin.bias.numpy(), (4, 2)))


def test_load_state_dict_reports_every_problem_at_once():
    net = Net()
    state = dict(net.state_dict())
    del state["heads.0.bias"]
    state["extra.weight"] = np.zeros(1)
    state["encoder.0.weight"] = np.zeros((6, 5))
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(state)
    msg = str(info.value)
    assert '"heads.0.bias"' in msg and '"extra.weight"' in msg
    assert "size mismatch for encoder.0.weight" in msg and "(6, 5)" in msg and "(6, 4)" in msg


def test_load_state_dict_non_strict_still_checks_shapes():
    net = Net()
    state = {"scale": np.full(1, 7.0), "nope": np.zeros(1)}
    result = net.load_state_dict(state, strict=False)
    assert net.scale.data[0] == 7.0 and result.unexpected_keys == ["nope"]
    assert "heads.0.bias" in result.missing_keys
    with pytest.raises(RuntimeError, match="size mismatch for scale"):
        net.load_state_dict({"scale": np.zeros(2)}, strict=False)


def test_to_dtype_casts_parameters_and_buffers_in_place():
    net = Net()
    params = list(net.parameters())
    net.to(np.float64)
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.running.dtype == np.float64
    a, _ = net(rnnbp.randn(2, 4, dtype=np.float64))
    assert a.dtype == np.float64
    net.float()
    assert all(p.dtype == np.float32 for p in net.parameters())
    with pytest.raises(TypeError):
        net.to(np.int32)


def test_manual_seed_makes_init_reproducible():
    rnnbp.manual_seed(123)
    a = Net().state_dict()
    rnnbp.manual_seed(123)
    b = Net().state_dict()
    rnnbp.manual_seed(124)
    c = Net().state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["encoder.0.weight"], c["encoder.0.weight"])


def test_containers_index_and_mutate():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and len(seq[:2]) == 2
    seq.append(nn.Sigmoid())
    assert list(seq._modules) == ["0", "1", "2", "3"]
    ml = nn.ModuleList([nn.Linear(1, 1)])
    ml.insert(0, nn.Linear(2, 2))
    assert [m.in_features for m in ml] == [2, 1] and list(ml._modules) == ["0", "1"]
    del ml[0]
    assert len(ml) == 1 and ml[0].in_features == 1


def test_repr_is_pytorch_like():
    assert repr(nn.Linear(3, 2)) == "Linear(in_features=3, out_features=2, bias=True)"
    assert "(0): Linear(in_features=3, out_features=2, bias=True)" in repr(nn.Sequential(nn.Linear(3, 2)))


def test_linear_rejects_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match=r"linear.*\(5, 7\).*\(2, 3\)"):
        nn.Linear(3, 2)(rnnbp.randn(5, 7))


@pytest.mark.parametrize("bad", [np.array([1j, 2j, 3j, 4j]), np.array(["a", "b", "c", "d"])], ids=["complex", "str"])
def test_load_state_dict_is_all_or_nothing(bad):
    """A right-shaped value that cannot be cast names its key, and no parameter was overwritten."""
    net = rnnbp.nn.Sequential(rnnbp.nn.Linear(4, 4), rnnbp.nn.Linear(4, 4))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = {k: np.full_like(v, 7.0) for k, v in before.items()}
    state["1.bias"] = bad
    with pytest.raises(RuntimeError, match=r"dtype mismatch for 1\.bias"):
        net.load_state_dict(state)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
