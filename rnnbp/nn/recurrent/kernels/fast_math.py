"""tanh and sigmoid on one scalar, for numba-compiled loops; vectorisable in float32.

A compiled recurrence that calls ``math.tanh`` on float32 gets one scalar libm call per
item (numba has no SIMD libm without Intel's SVML), about 50 times slower than NumPy's
float32 ``np.tanh``. These versions are pure arithmetic with no branches, so LLVM
vectorises the calling loop (8 floats per AVX2 instruction) and inlines them into it:

    tanh, sigmoid = fast_math.functions()      # inside the function that compiles the loops

    @numba.njit
    def gates(p, out):                         # p, out: float32 (b, n)
        for row in range(p.shape[0]):
            pr, orow = p[row], out[row]
            for j in range(p.shape[1]):
                orow[j] = sigmoid(pr[j])

The argument's type picks the version when the loop is compiled:

float32, ``tanh``: the odd rational x P(x^2) / Q(x^2), degrees 9 and 8, a minimax fit of
    relative error on [0, 9.02] with float32 coefficients, evaluated by Horner in float32 on
    x clamped to +-9.0109138 (beyond which tanh rounds to +-1 in float32), the result clamped
    to [-1, 1]. At most TANH_MAX_ULP = 6 ulp from the correctly rounded tanh over every
    float32 (all 2^32 inputs checked; under 0.1% are more than 2 ulp off): a relative error below
    6 * 2^-23 = 7.2e-7; exactly odd (tanh(-x) = -tanh(x), -0.0 -> -0.0), never above 1 in
    magnitude, +-inf -> +-1, NaN -> NaN.
float32, ``sigmoid``: 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0, with e = exp(-|x|)
    in float32 (Cody-Waite reduction, a degree-6 polynomial, 2^k built in the exponent bits),
    so nothing overflows and tiny results keep their relative accuracy. At most
    SIGMOID_MAX_ULP = 2 ulp from the correctly rounded value over every float32 (all 2^32
    checked), counting a subnormal step (2^-149) as one ulp: a relative error below
    2 * 2^-23 = 2.4e-7 wherever the result is a normal float (>= 2^-126, x >= -87.33), an
    absolute error of at most 2^-148 below that. 0.5 at +-0, 1 at +inf, 0 at -inf, NaN -> NaN.
float64: ``math.tanh`` and the same overflow-free sigmoid with ``math.exp``, a few ulp of
    float64 (these are libm calls, not vectorised; they match NumPy to about 1e-16).

The bounds hold for the operations as written: the calling loop must not be compiled with
``fastmath`` (which lets LLVM reassociate and contract them); numba's default is fine.
The float32 versions are compiled with ``error_model="numpy"``: numba's default checks
every division for zero (they never divide by zero) and that check stops vectorisation.
Keep float32 arithmetic in float32 around them (``np.float32`` constants): a Python float
constant promotes the argument to float64 and picks the float64 version.

``tanh`` and ``sigmoid`` below are the names compiled code calls; ``functions()`` gives
them their numba implementations on first use (importing numba costs about half a
second, and a layer that never compiles should not pay it) and returns them. A kernel
module may also import them by name at its top (``from .fast_math import tanh, sigmoid``)
if the function that compiles its loops calls ``functions()`` first. Called from Python
they raise.
A numba on-disk cache (``cache=True``) of a caller keys on the caller's file only: after
editing this file, clear the callers' caches (``__pycache__/*.nbi``, ``*.nbc``).
"""
from __future__ import annotations

import math

import numpy as np

# Maximum ulp errors measured over all 2^32 float32 inputs (tests/nn/test_fast_math.py, the slow test
# asserts them exactly: change the coefficients, run it and update these).
TANH_MAX_ULP = 6
SIGMOID_MAX_ULP = 2

# tanh(x) ~ x P(s) / Q(s), s = x^2 (coefficients of s^0, s^1, ...: float32, P(0) = Q(0) = 1)
_TANH_P = (1.0, 0.13382646441459656, 0.003497409401461482, 2.063501779048238e-05,
           1.3383194108484986e-08)
_TANH_Q = (1.0, 0.4671596884727478, 0.025884177535772324, 0.0003288437728770077,
           7.7897936989757e-07)
# Inputs are clamped to +-_TANH_CLAMP: the first float32 above 9.0109133 (where tanh starts to
# round to 1) at which x P / Q (in float32) is >= 1. Outputs are clamped to [-1, 1]: rounding
# puts x P / Q up to 2 ulp above 1 here and there on [8, 9].
_TANH_CLAMP = 9.010913848876953

# exp(r) ~ 1 + r + r^2 E(r) on |r| <= ln(2)/2 (float32 coefficients of r^0, r^1, ...)
_EXP_E = (0.4999999403953552, 0.1666652113199234, 0.04166833311319351, 0.00836870539933443,
          0.0013814481208100915)
_LN2_HI = 0.693145751953125  # 15 significant bits: k * _LN2_HI is exact for |k| < 2^9
_LN2_LO = math.log(2.0) - _LN2_HI
_SIGMOID_FLOOR = -104.0  # exp(-104) < 2^-150 rounds to 0 (as does sigmoid(x) below it)


def tanh(x):
    """tanh(x) for a float32 or float64 scalar, in numba-compiled code only (see the module)."""
    raise NotImplementedError("fast_math.tanh runs inside numba-compiled code only; "
                              "call fast_math.functions() before compiling the loop")


def sigmoid(x):
    """1 / (1 + exp(-x)) for a float32 or float64 scalar, in numba-compiled code only."""
    raise NotImplementedError("fast_math.sigmoid runs inside numba-compiled code only; "
                              "call fast_math.functions() before compiling the loop")


def _define():
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic, overload

    f32 = np.float32
    p0, p1, p2, p3, p4 = (f32(v) for v in _TANH_P)
    q0, q1, q2, q3, q4 = (f32(v) for v in _TANH_Q)
    clamp = f32(_TANH_CLAMP)
    e0, e1, e2, e3, e4 = (f32(v) for v in _EXP_E)
    ln2_hi, ln2_lo, log2e = f32(_LN2_HI), f32(_LN2_LO), f32(1.0 / math.log(2.0))
    floor = f32(_SIGMOID_FLOOR)
    magic = f32(12582912.0)  # 1.5 * 2^23: v + magic rounds v to an integer, kept in the low bits
    zero, one, two_m64 = f32(0.0), f32(1.0), f32(2.0 ** -64)

    @intrinsic
    def _pow2_of_magic(typingctx, m):
        """2^(k + 64) from m = k + magic (k an integer in [-151, 0], so 2^(k + 64) is normal): the
        float32 whose exponent bits are k + 64 + 127, made by integer arithmetic on m's bits (not
        fptosi, which LLVM leaves undefined for NaN; a NaN m gives some float, times a NaN)."""
        if m != types.float32:
            return None

        def codegen(context, builder, signature, args):
            i32 = ir.IntType(32)
            bits = builder.bitcast(args[0], i32)  # 0x4B400000 + k
            biased = builder.add(bits, ir.Constant(i32, 127 + 64 - 0x4B400000))
            return builder.bitcast(builder.shl(biased, ir.Constant(i32, 23)), ir.FloatType())
        return types.float32(types.float32), codegen

    def tanh32(x):
        t = clamp if x > clamp else x  # NaN fails both tests and stays NaN
        t = -clamp if t < -clamp else t
        s = t * t
        p = (((p4 * s + p3) * s + p2) * s + p1) * s + p0
        q = (((q4 * s + q3) * s + q2) * s + q1) * s + q0
        y = t * p / q
        y = one if y > one else y
        return -one if y < -one else y

    def sigmoid32(x):
        y = -x if x > zero else x  # -|x|, keeping NaN
        y = floor if y < floor else y
        m = y * log2e + magic
        k = m - magic  # round(y / ln 2), an integer in [-151, 0]
        r = (y - k * ln2_hi) - k * ln2_lo  # |r| <= ln(2)/2 + tiny
        er = one + (r + r * r * ((((e4 * r + e3) * r + e2) * r + e1) * r + e0))  # exp(r)
        e = (er * _pow2_of_magic(m)) * two_m64  # exp(y): exact, then one rounding if subnormal
        return (one if x >= zero else e) / (one + e)

    def tanh64(x):
        return math.tanh(x)

    def sigmoid64(x):
        e = math.exp(-abs(x))  # in (0, 1]: no overflow
        return (1.0 if x >= 0.0 else e) / (1.0 + e)

    def pick(float32, float64):
        def typer(x):
            if x == types.float32:
                return float32
            if x == types.float64:
                return float64
            return None
        return typer

    options = {"jit_options": {"error_model": "numpy"}}
    overload(tanh, **options)(pick(tanh32, tanh64))
    overload(sigmoid, **options)(pick(sigmoid32, sigmoid64))
    return tanh, sigmoid


_functions = None


def functions():
    """(tanh, sigmoid), given their numba implementations on first use; call before compiling."""
    global _functions
    if _functions is None:
        _functions = _define()
    return _functions
