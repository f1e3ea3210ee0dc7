"""Module conveniences PyTorch programs use: forward hooks and pre-hooks with removable handles,
get_submodule, Sequential item assignment, a reassigned parameter keeping its place,
named_parameters(remove_duplicate=False), parameters_to_vector, optimizers over named_parameters()."""
import numpy as np
import pytest

import rnnbp
from rnnbp import nn, optim
from rnnbp.nn.utils import parameters_to_vector, vector_to_parameters


def test_forward_hooks_see_and_replace_and_go_away():
    lin = nn.Linear(2, 3)
    seen = []
    post = lin.register_forward_hook(lambda module, args, out: seen.append((module, args[0].shape, out.shape)))
    pre = lin.register_forward_pre_hook(lambda module, args: (args[0] * 0.0,))
    out = lin(rnnbp.ones(4, 2))
    assert seen == [(lin, (4, 2), (4, 3))]
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(lin.bias.numpy(), (4, 3)))  # the input was zeroed
    doubled = lin.register_forward_hook(lambda module, args, out: out * 2.0)
    np.testing.assert_allclose(lin(rnnbp.ones(1, 2)).numpy(), 2 * lin.bias.numpy()[None])
    for handle in (post, pre, doubled):
        handle.remove()
    x = rnnbp.ones(1, 2)
    np.testing.assert_allclose(lin(x).numpy(), (x.numpy() @ lin.weight.numpy().T + lin.bias.numpy()))
    assert len(seen) == 2
    with lin.register_forward_hook(lambda m, a, o: seen.append("inside")):
        lin(x)
    lin(x)
    assert seen[-1] == "inside" and len(seen) == 3


def test_hooks_on_a_submodule_record_activations_and_backward_still_works():
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    norms = []
    net[1].register_forward_hook(lambda m, a, out: norms.append(float(out.norm())))
    x = rnnbp.randn(5, 3, requires_grad=True)
    net(x).sum().backward()
    assert len(norms) == 1 and x.grad is not None


def test_missing_module_methods_say_so():
    with pytest.raises(AttributeError, match="rnnbp's Module does not have register_state_dict_pre_hook"):
        nn.Linear(2, 2).register_state_dict_pre_hook(lambda *a: None)
    with pytest.raises(AttributeError, match=r"^'Linear' object has no attribute 'no_such'$"):
        nn.Linear(2, 2).no_such


def test_a_reassigned_parameter_or_submodule_keeps_its_place():
    lin = nn.Linear(2, 3)
    lin.weight = nn.Parameter(rnnbp.zeros(3, 2))
    assert [n for n, _ in lin.named_parameters()] == ["weight", "bias"]
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    net[0] = nn.Linear(2, 2)
    assert list(net.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_get_submodule_and_duplicates():
    enc, dec = nn.Embedding(5, 3), nn.Linear(3, 5, bias=False)
    dec.weight = enc.weight  # tied
    model = nn.Sequential(enc, dec)
    assert model.get_submodule("1") is dec and model.get_submodule("") is model
    with pytest.raises(AttributeError, match="no submodule 'x'"):
        model.get_submodule("1.x")
    assert [n for n, _ in model.named_parameters()] == ["0.weight"]
    assert [n for n, _ in model.named_parameters(remove_duplicate=False)] == ["0.weight", "1.weight"]


def test_parameters_to_vector_and_back():
    lin = nn.Linear(2, 3)
    vec = parameters_to_vector(lin.parameters())
    assert vec.shape == (9,)
    np.testing.assert_array_equal(vec.numpy(), np.concatenate([lin.weight.numpy().ravel(), lin.bias.numpy()]))
    vector_to_parameters(rnnbp.arange(9.0), lin.parameters())
    np.testing.assert_array_equal(lin.bias.numpy(), [6.0, 7.0, 8.0])
    with pytest.raises(ValueError, match="the vector has 4 elements, the parameters 9"):
        vector_to_parameters(rnnbp.zeros(4), lin.parameters())


def test_optimizer_takes_named_parameters():
    lin = nn.Linear(2, 1)
    opt = optim.AdamW(lin.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    lin(rnnbp.ones(1, 2)).sum().backward()
    before = lin.bias.numpy().copy()
    opt.step()
    assert not np.array_equal(before, lin.bias.numpy())
    again = optim.AdamW(nn.Linear(2, 1).named_parameters(), lr=0.1)
    again.load_state_dict(opt.state_dict())


class _EqualsAll(nn.Module):
    """A module that defines equality (as dataclass modules do), so it is unhashable."""

    def forward(self, x):
        return x

    def __eq__(self, other):
        return isinstance(other, _EqualsAll)

    __hash__ = None


def test_hooks_belong_to_the_instance_and_travel_with_deepcopy_not_with_save(tmp_path):
    import copy

    nn.Linear(2, 2).register_forward_hook(lambda *a: None)  # a hook elsewhere changes nothing here
    a, b = _EqualsAll(), _EqualsAll()
    a.register_forward_hook(lambda m, args, out: out * 0.0)
    assert b(rnnbp.ones(2)).tolist() == [1.0, 1.0] and a(rnnbp.ones(2)).tolist() == [0.0, 0.0]
    lin, calls = nn.Linear(2, 2), []
    lin.register_forward_hook(lambda m, args, out: calls.append(m))
    twin = copy.deepcopy(lin)
    twin(rnnbp.ones(1, 2))
    assert calls == [twin]  # the copy's hook, called with the copy, as in PyTorch
    rnnbp.save(lin, tmp_path / "m.pt")
    rnnbp.load(tmp_path / "m.pt", weights_only=False)(rnnbp.ones(1, 2))
    assert len(calls) == 1  # a loaded module has no hooks: they are code, not state


def test_a_module_hooking_itself_is_still_freed():
    import gc
    import weakref

    class SelfHooked(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_forward_hook(self.hook)

        def hook(self, *args):
            return None

        def forward(self, x):
            return x

    alive = weakref.ref(SelfHooked())
    gc.collect()
    assert alive() is None


def test_shared_submodules_under_every_name():
    lin = nn.Linear(2, 2)
    net = nn.Sequential(lin, nn.ReLU(), lin)
    assert [k for k, _ in net.named_parameters()] == ["0.weight", "0.bias"]
    assert [k for k, _ in net.named_parameters(remove_duplicate=False)] == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_attention_does_not_call_its_out_proj_module():
    mha = nn.MultiheadAttention(4, 2)
    called = []
    mha.out_proj.register_forward_hook(lambda *a: called.append(1))
    x = rnnbp.randn(3, 1, 4)
    mha(x, x, x)
    assert called == []


def test_named_and_unnamed_groups_do_not_mix():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    with pytest.raises(ValueError, match="all param groups should be with names or all without"):
        optim.SGD([{"params": a.named_parameters()}, {"params": b.parameters()}], lr=0.1)
    with pytest.raises(ValueError, match="some param names are missing"):
        optim.SGD([("w", a.weight), a.bias], lr=0.1)
    named = optim.Adam(a.named_parameters())
    named.load_state_dict(optim.Adam(a.parameters()).state_dict())
    assert named.param_groups[0]["param_names"] == ["weight", "bias"]


def test_format_of_parameters_and_non_scalars():
    p = nn.Parameter(rnnbp.tensor(1.5))
    assert f"{p}" == repr(p)
    with pytest.raises(TypeError, match="unsupported format string"):
        f"{rnnbp.ones(2):>20}"


def test_module_dict_registers_by_name_in_order():
    heads = nn.ModuleDict({"cls": nn.Linear(2, 3), "reg": nn.Linear(2, 1)})
    assert list(heads) == ["cls", "reg"] and "cls" in heads and len(heads) == 2
    assert [n for n, _ in heads.named_parameters()] == ["cls.weight", "cls.bias", "reg.weight", "reg.bias"]
    heads["cls"] = nn.Linear(2, 4)  # replaced in place: the order stays
    assert list(heads.state_dict())[:2] == ["cls.weight", "cls.bias"] and heads["cls"].out_features == 4
    heads.update([("aux", nn.Linear(2, 2))])
    assert heads.pop("reg").out_features == 1 and list(heads.keys()) == ["cls", "aux"]
    with pytest.raises(KeyError, match="ModuleDict has no module 'nope'"):
        heads["nope"]
    torch = pytest.importorskip("torch")
    theirs = torch.nn.ModuleDict({"cls": torch.nn.Linear(2, 4), "aux": torch.nn.Linear(2, 2)})
    assert list(theirs.state_dict()) == list(heads.state_dict())


def test_parameter_list_and_dict_register_their_parameters():
    plist = nn.ParameterList([nn.Parameter(rnnbp.zeros(2)), rnnbp.ones(3)])  # a Tensor becomes a Parameter
    plist.append(np.full(1, 2.0, np.float32))
    assert len(plist) == 3 and isinstance(plist[1], nn.Parameter) and plist[-1].tolist() == [2.0]
    assert [n for n, _ in plist.named_parameters()] == ["0", "1", "2"]
    pdict = nn.ParameterDict({"scale": nn.Parameter(rnnbp.ones(1)), "shift": rnnbp.zeros(1)})
    pdict["scale"] = nn.Parameter(rnnbp.full((1,), 3.0))  # replaced in place
    assert list(pdict) == ["scale", "shift"] and pdict["scale"].item() == 3.0 and "shift" in pdict
    opt = optim.SGD(list(plist.parameters()) + list(pdict.parameters()), lr=1.0)
    (sum(p.sum() for p in plist) + pdict["scale"].sum()).backward()
    opt.step()
    assert plist[0].tolist() == [-1.0, -1.0] and pdict["scale"].item() == 2.0
    torch = pytest.importorskip("torch")
    theirs = torch.nn.ParameterDict({"scale": torch.nn.Parameter(torch.ones(1)), "shift": torch.zeros(1)})
    assert list(theirs.state_dict()) == list(pdict.state_dict())


def test_module_dict_refuses_what_pytorch_refuses():
    for bad, error in (({"training": nn.Linear(1, 1)}, KeyError), ({"a.b": nn.Linear(1, 1)}, KeyError),
                       ({"a": 3}, TypeError), (["ab"], TypeError)):
        with pytest.raises(error):
            nn.ModuleDict(bad)
    assert list(nn.ModuleDict({"a": None}).keys()) == ["a"]
