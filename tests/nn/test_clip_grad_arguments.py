"""clip_grad_norm_ / clip_grad_value_ name a bad argument (#13 item 8); the strings torch takes still work."""
import math

import numpy as np
import pytest

from rnnbp import nn
from rnnbp.nn.utils import clip_grad_norm_, clip_grad_value_
from rnnbp.validation import ArgumentTypeError


def _param(grad):
    p = nn.Parameter(np.zeros(len(grad), np.float32))
    p._grad = np.asarray(grad, np.float32)
    return p


@pytest.mark.parametrize("norm_type", ["fro", "nuc", None, [2]])
def test_a_norm_type_that_is_not_a_number_is_named_with_what_to_give(norm_type):
    p = _param([3.0, 4.0])
    with pytest.raises(ArgumentTypeError, match=r"^clip_grad_norm_: norm_type must be a number, the p of the global "
                                                r"p-norm: 2.0 for the Euclidean norm \('fro' of a vector\), math.inf "
                                                r"for the largest absolute entry; got "):
        clip_grad_norm_([p], max_norm=1, norm_type=norm_type)
    np.testing.assert_array_equal(p._grad, [3.0, 4.0])  # refused before anything was scaled


@pytest.mark.parametrize("norm_type, expected", [("2", 5.0), ("inf", 4.0), (2, 5.0), (math.inf, 4.0)])
def test_numbers_and_the_strings_torch_parses_still_work(norm_type, expected):
    assert clip_grad_norm_([_param([3.0, 4.0])], max_norm=100, norm_type=norm_type).item() == pytest.approx(expected)


def test_max_norm_and_clip_value_name_themselves():
    with pytest.raises(ArgumentTypeError, match=r"^clip_grad_norm_: max_norm must be a number, the largest allowed "
                                                r"norm; got str 'one'"):
        clip_grad_norm_([_param([1.0])], max_norm="one")
    with pytest.raises(ArgumentTypeError, match=r"^clip_grad_value_: clip_value must be a number.*got NoneType None"):
        clip_grad_value_([_param([1.0])], clip_value=None)


@pytest.mark.parametrize("fn", [lambda ps: clip_grad_norm_(ps, 1.0), lambda ps: clip_grad_value_(ps, 1.0)])
def test_parameters_that_are_not_tensors_are_named(fn):
    with pytest.raises(TypeError, match=r"clip_grad_(norm|value)_: parameters must be a Tensor or an iterable of "
                                        r"Tensors \(model.parameters\(\)\), got NoneType"):
        fn(None)
    with pytest.raises(TypeError, match=r"clip_grad_(norm|value)_: parameters\[1\] is ndarray, not a Tensor"):
        fn([_param([1.0]), np.ones(2)])
    fn(p for p in [_param([1.0])])  # a generator, as model.parameters() gives, still works
