"""The package's one argument-checking helper: each error names the owner, the argument and the value."""
import math

import numpy as np
import pytest

from rnnbp.validation import ArgumentTypeError, check_int, check_int_range, check_number, check_probability


@pytest.mark.parametrize("value, error, words", [
    (0, ValueError, "Linear: in_features must be a positive integer, got 0"),
    (-3, ValueError, "must be a positive integer, got -3"),
    (2.0, ArgumentTypeError, "must be a positive integer, got 2.0"),
    (True, ArgumentTypeError, "got True"),
    ("4", ArgumentTypeError, "got str '4'"),
])
def test_check_int_refuses_with_a_message_naming_everything(value, error, words):
    with pytest.raises(error, match=words):
        check_int("Linear", "in_features", value)


def test_check_int_ranges_and_none():
    assert check_int("f", "n", np.int64(3)) == 3 and type(check_int("f", "n", np.int64(3))) is int
    assert check_int("f", "n", 0, minimum=0) == 0
    assert check_int("f", "n", None, allow_none=True) is None
    with pytest.raises(ValueError, match=r"f: n must be an integer in \[2, 5\], got 6"):
        check_int("f", "n", 6, minimum=2, maximum=5)
    with pytest.raises(ValueError, match="f: n must be an integer >= 2, got 1"):
        check_int("f", "n", 1, minimum=2)


def test_wrong_types_are_both_type_and_value_errors():
    with pytest.raises(TypeError):
        check_number("SGD", "lr", "0.1")
    with pytest.raises(ValueError, match="SGD: lr must be a number, got str '0.1'"):
        check_number("SGD", "lr", "0.1")


@pytest.mark.parametrize("kwargs, value, words", [
    ({"low": 0.0, "low_open": True}, 0.0, r"must be in \(0, inf\), got 0.0"),
    ({"low": 0.0, "high": 1.0, "high_open": True}, 1.0, r"must be in \[0, 1\), got 1.0"),
    ({}, math.nan, "must be a finite number, got nan"),
    ({}, math.inf, "must be a finite number, got inf"),
])
def test_check_number_intervals(kwargs, value, words):
    with pytest.raises(ValueError, match=words):
        check_number("f", "x", value, **kwargs)


def test_check_number_accepts_and_normalises():
    assert check_number("f", "x", np.float32(0.5), 0.0, 1.0) == 0.5
    assert type(check_number("f", "x", 3, 0.0)) is float
    assert check_number("f", "x", math.inf, finite=False) == math.inf
    assert check_number("f", "x", None, allow_none=True) is None


def test_check_probability_and_int_range():
    assert check_probability("Dropout", "p", 1) == 1.0
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\], got 1.5"):
        check_probability("Dropout", "p", 1.5)
    assert check_int_range("f", "lag", 4) == (4, 4) and check_int_range("f", "lag", (2, 9)) == (2, 9)
    with pytest.raises(ValueError, match="lag must be an int or a pair"):
        check_int_range("f", "lag", (1, 2, 3))
