"""fast_math.tanh / fast_math.sigmoid, the scalar activations of the compiled recurrences.

float32: the error in ulp against the correctly rounded value (float64 libm, rounded to float32),
counted as the difference of the monotonic integer images of the float bits (so a subnormal step
is one ulp), over every float32 bit pattern (slow test) and over a dense sample (default run):
every 257th pattern of both signs plus contiguous windows where the approximations change regime.
Special values, exact oddness of tanh, float64 (exact libm versions) and that the calling loop is
vectorised are checked too. Speed is not tested (see the module docstring for figures)."""
import math
import platform
import re

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from rnnbp.nn.recurrent.kernels import fast_math  # noqa: E402

F32 = np.float32


def _bits(x) -> int:
    return int(np.array(x, F32).view(np.uint32))


@pytest.fixture(scope="module")
def fns():
    return fast_math.functions()


@pytest.fixture(scope="module")
def scanners(fns):
    """name -> scan(lo, hi, step): (max ulp error, an input where it occurs, count of inputs, count of
    NaN inputs whose output is not NaN) over the bit patterns lo, lo + step, ... < hi (as uint32).
    tanh is scanned over magnitudes and evaluated at x and -x against one reference value
    (patterns >= 2^31 are the negative ones); sigmoid over the patterns as given."""
    tanh, sigmoid = fns

    @numba.njit(inline="always")
    def ordered(b):
        return np.int64(b) if b >= 0 else -np.int64(b & 0x7FFFFFFF)

    @numba.njit(inline="always")
    def ulps(y, r, buf, fb):
        fb[1], fb[2] = y, r
        return abs(ordered(buf[1]) - ordered(buf[2]))

    @numba.njit
    def scan_tanh(lo, hi, step):
        buf = np.empty(3, np.int32)
        fb = buf.view(np.float32)
        worst, worst_x, count, nan_bad = np.int64(0), np.float32(0), 0, 0
        for i in range(lo, min(hi, 2 ** 31), step):
            buf[0] = i
            x = fb[0]
            yp, yn = tanh(x), tanh(-x)
            if x != x:
                nan_bad += (yp == yp) + (yn == yn)
                continue
            xd = np.float64(x)
            r = np.float32(1.0) if xd > 9.5 else np.float32(math.tanh(xd))  # 1 - tanh(9.5) < 2^-25
            count += 2
            for y, ref, arg in ((yp, r, x), (yn, -r, -x)):
                d = ulps(y, ref, buf, fb)
                if d > worst:
                    worst, worst_x = d, arg
        return worst, worst_x, count, nan_bad

    @numba.njit
    def scan_sigmoid(lo, hi, step):
        buf = np.empty(3, np.int32)
        fb = buf.view(np.float32)
        worst, worst_x, count, nan_bad = np.int64(0), np.float32(0), 0, 0
        for i in range(lo, hi, step):
            buf[0] = np.int32(i - 2 ** 32) if i >= 2 ** 31 else np.int32(i)
            x = fb[0]
            y = sigmoid(x)
            if x != x:
                nan_bad += y == y
                continue
            xd = np.float64(x)
            if xd > 17.5:  # 1 - sigmoid(17.5) < 2^-25: rounds to 1
                r = np.float32(1.0)
            elif xd < -104.0:  # sigmoid(-104) < 2^-150: rounds to 0
                r = np.float32(0.0)
            else:
                e = math.exp(-abs(xd))
                r = np.float32((1.0 if xd >= 0 else e) / (1.0 + e))
            count += 1
            d = ulps(y, r, buf, fb)
            if d > worst:
                worst, worst_x = d, x
        return worst, worst_x, count, nan_bad

    return {"tanh": scan_tanh, "sigmoid": scan_sigmoid}


BOUND = {"tanh": fast_math.TANH_MAX_ULP, "sigmoid": fast_math.SIGMOID_MAX_ULP}
NEG = 2 ** 31  # patterns from here on are negative


def _window(center: float, half: int = 1 << 15):
    """Contiguous patterns around float32 ``center`` (its sign included)."""
    b = _bits(center)
    return max(b - half, 0), b + half


# Contiguous windows where the approximations change regime (in addition to the strided sample).
WINDOWS = {
    "tanh": [(0, 1 << 16),  # zero and subnormals (tanh(x) = x)
             _window(2.0 ** -12), _window(0.5), _window(1.0), _window(3.1), _window(7.0),
             _window(8.03), _window(9.0109134)],  # where x P/Q crosses 1; the input clamp
    "sigmoid": [(0, 1 << 16), (NEG, NEG + (1 << 16)),  # +-0 and subnormal inputs
                _window(0.5), _window(-0.5), _window(-1.1), _window(0.3465736), _window(-0.3465736),
                _window(16.6), _window(17.33),  # where the result reaches 1
                _window(-87.33), _window(-88.72),  # results leave the normal range (2^-126)
                _window(-103.28), _window(-103.97), _window(-104.0)],  # last subnormal results; floor
}


def _check(scanners, name, ranges):
    worst, worst_x, total = 0, 0.0, 0
    for lo, hi, step in ranges:
        w, wx, count, nan_bad = scanners[name](lo, hi, step)
        assert nan_bad == 0, f"{name}: {nan_bad} NaN inputs in patterns [{lo:#x}, {hi:#x}) gave a number"
        total += count
        if w > worst:
            worst, worst_x = w, float(wx)
    assert worst <= BOUND[name], (f"{name}: {worst} ulp at x = {worst_x!r} (float32 bits "
                                  f"{_bits(worst_x):#010x}), bound {BOUND[name]} ({total} inputs)")
    return worst, total


def test_bounds_are_set():
    assert 1 <= fast_math.TANH_MAX_ULP <= 8 and 1 <= fast_math.SIGMOID_MAX_ULP <= 8


def test_tanh_ulp_error_on_a_dense_sample(scanners):
    # every 257th magnitude, evaluated with both signs, and the windows
    ranges = [(1, NEG, 257)] + [(lo, hi, 1) for lo, hi in WINDOWS["tanh"]]
    worst, total = _check(scanners, "tanh", ranges)
    assert total > 1.6e7


def test_sigmoid_ulp_error_on_a_dense_sample(scanners):
    ranges = [(1, 2 ** 32, 257)] + [(lo, hi, 1) for lo, hi in WINDOWS["sigmoid"]]
    worst, total = _check(scanners, "sigmoid", ranges)
    assert total > 1.6e7


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_ulp_error_over_every_float32(scanners, name):
    """All 2^32 patterns: tanh over the 2^31 magnitudes at both signs, sigmoid over all (one to a
    few minutes each on one core, mostly in the float64 libm references)."""
    hi = NEG if name == "tanh" else 2 ** 32
    worst, total = _check(scanners, name, [(0, hi, 1)])
    assert total == 2 ** 32 - 2 * (2 ** 23 - 1)  # all but the NaNs
    assert worst == BOUND[name]  # the bound is the measured maximum, not a loose one


# ---- special values and float64 ----

@pytest.fixture(scope="module")
def vector_calls(fns):
    tanh, sigmoid = fns

    @numba.njit
    def apply(which, x, out):
        for j in range(x.size):
            out[j] = tanh(x[j]) if which == 0 else sigmoid(x[j])

    def call(name, x):
        x = np.asarray(x)
        out = np.empty_like(x)
        apply(0 if name == "tanh" else 1, x, out)
        return out
    return call


def test_tanh_special_values(vector_calls):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 9.02, 9.5, -9.5, 1e-45, -1e-45,
                  2.0 ** -126, 0.5], F32)
    y = vector_calls("tanh", x)
    assert np.isnan(y[0])
    np.testing.assert_array_equal(y[1:3], [1, -1])
    assert y[3] == 0 and not np.signbit(y[3]) and y[4] == 0 and np.signbit(y[4])  # -0.0 -> -0.0
    np.testing.assert_array_equal(y[5:11], [1, -1, 1, 1, -1, F32(1e-45)])
    assert y[11] == -F32(1e-45) and y[12] == F32(2.0 ** -126)
    assert y.dtype == F32


def test_tanh_is_odd_and_bounded(vector_calls):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(100_000) * 4, rng.uniform(7.5, 9.5, 100_000)]).astype(F32)
    y = vector_calls("tanh", x)
    np.testing.assert_array_equal(vector_calls("tanh", -x), -y)
    assert np.abs(y).max() <= 1  # never above 1, so 1 - tanh^2 >= 0
    noise = 2 * fast_math.TANH_MAX_ULP * 2.0 ** -24
    assert np.diff(y[np.argsort(x)]).min() >= -noise  # monotone up to the rounding errors


def test_sigmoid_special_values(vector_calls):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 17.5, -104.0, -200.0, 1e-45, -1e-45], F32)
    y = vector_calls("sigmoid", x)
    assert np.isnan(y[0])
    np.testing.assert_array_equal(y[1:], [1, 0, 0.5, 0.5, 1, 0, 1, 0, 0, 0.5, 0.5])
    assert y.dtype == F32


def test_sigmoid_keeps_relative_accuracy_for_tiny_results(vector_calls):
    x = np.array([-20, -40, -60, -80, -87, -87.3], F32)  # results 2e-9 ... 1.2e-38, all normal
    y = vector_calls("sigmoid", x).astype(np.float64)
    expect = np.exp(x.astype(np.float64)) / (1 + np.exp(x.astype(np.float64)))
    np.testing.assert_allclose(y, expect, rtol=fast_math.SIGMOID_MAX_ULP * 2.0 ** -23)
    sub = vector_calls("sigmoid", np.array([-95.0, -100.0, -103.0], F32))  # subnormal results
    np.testing.assert_allclose(sub.astype(np.float64), np.exp([-95.0, -100.0, -103.0]),
                               rtol=0, atol=fast_math.SIGMOID_MAX_ULP * 2.0 ** -149)


def test_float64_is_libm(vector_calls):
    """float64 is the exact path: tanh is math.tanh; sigmoid matches 1 / (1 + exp(-x)) without
    overflow at either end (the callers compare float64 kernels with NumPy to 1e-10)."""
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(10_000) * 10, [0.0, -0.0, 40.0, -40.0, 700.0, -700.0, 800.0,
                                                           -800.0, 1e300, -1e300]])
    t = vector_calls("tanh", x)
    assert t.dtype == np.float64
    np.testing.assert_array_equal(t, [math.tanh(v) for v in x])
    s = vector_calls("sigmoid", x)
    e = np.exp(-np.abs(x))
    expect = np.where(x >= 0, 1.0, e) / (1.0 + e)
    np.testing.assert_allclose(s, expect, rtol=1e-15, atol=0)
    np.testing.assert_allclose(s[:10_000], 1 / (1 + np.exp(-x[:10_000])), rtol=1e-14, atol=0)
    assert s[-1] == 0.0 and s[-2] == 1.0


def test_outside_compiled_code_and_unsupported_types_raise(fns):
    tanh, sigmoid = fns
    for f in (tanh, sigmoid):
        with pytest.raises(NotImplementedError, match="numba-compiled code only"):
            f(0.5)

    @numba.njit
    def on_int(n):
        return tanh(n)

    with pytest.raises(numba.core.errors.TypingError):
        on_int(3)


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="checks x86 assembly")
def test_float32_loop_is_vectorised(fns):
    """The calling loop compiles to packed float32 arithmetic (a stray check or libm call would
    leave only scalar ``ss`` instructions), with the default error model of the caller."""
    tanh, sigmoid = fns

    @numba.njit
    def loop(x, out):
        for j in range(x.size):
            out[j] = tanh(x[j]) + sigmoid(x[j])

    x = np.linspace(-5, 5, 64).astype(F32)
    loop(x, np.empty_like(x))
    asm = loop.inspect_asm(loop.signatures[0])
    assert re.search(r"\bv?divps\b", asm) and re.search(r"\bv?mulps\b", asm), "no packed float32 division"
    assert "tanhf" not in asm and "expf" not in asm
