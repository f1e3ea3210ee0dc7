"""Memory formats (``torch.contiguous_format``, ``preserve_format``, ``channels_last``): clone, contiguous
and is_contiguous lay out and test memory as PyTorch's do, and never change values or gradients."""
import numpy as np
import pytest

import rnnbp


def _layout_facts(lib):
    x = lib.tensor(np.arange(24.0).reshape(4, 2, 3).copy()).permute(1, 2, 0)  # not row-major
    images = lib.tensor(np.arange(48.0).reshape(2, 3, 2, 4))
    last = images.contiguous(memory_format=lib.channels_last)
    facts = [x.clone().is_contiguous(), x.clone(memory_format=lib.contiguous_format).is_contiguous(),
             x.contiguous().is_contiguous(), last.is_contiguous(),
             last.is_contiguous(memory_format=lib.channels_last), bool((last == images).all()),
             images.clone(memory_format=lib.channels_last).is_contiguous(memory_format=lib.channels_last)]
    for refused in (lambda: x.clone(memory_format=lib.channels_last),  # rank 3
                    lambda: x.contiguous(memory_format=lib.preserve_format)):
        with pytest.raises(RuntimeError):
            refused()
    return facts


def test_layouts():
    assert _layout_facts(rnnbp) == [False, True, True, False, True, True, True]


def test_layouts_like_pytorch():
    torch = pytest.importorskip("torch")
    assert _layout_facts(rnnbp) == _layout_facts(torch)


def test_a_channels_last_clone_gradchecks_and_keeps_its_values():
    from rnnbp.autograd import gradcheck

    x = rnnbp.tensor(np.random.default_rng(0).standard_normal((2, 3, 2, 2)), dtype=rnnbp.float64, requires_grad=True)
    weights = rnnbp.tensor(np.arange(24.0).reshape(2, 3, 2, 2), dtype=rnnbp.float64)
    assert gradcheck(lambda x: (x.clone(memory_format=rnnbp.channels_last) * weights).sum(), [x])
    np.testing.assert_array_equal(x.clone(memory_format=rnnbp.channels_last).detach().numpy(), x.detach().numpy())
    with pytest.raises(TypeError, match="memory_format must be"):
        x.clone(memory_format="channels_last")
