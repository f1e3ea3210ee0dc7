"""blas.gemm / gemm_tn / gemm_nt (NumPy's or SciPy's sgemm/dgemm called from numba-compiled code) against
NumPy: both dtypes, row-strided views for every operand, alpha and beta, and nothing written outside c;
which library is called, and the SciPy fallback computing the same products."""
import numpy as np
import pytest

pytest.importorskip("numba")
pytest.importorskip("scipy")

import numba  # noqa: E402

from rnnbp.nn.recurrent.kernels import blas  # noqa: E402

SHAPES = [(3, 4, 5), (1, 1, 1), (7, 1, 3), (2, 6, 1), (1, 5, 4), (17, 33, 9)]  # (m, k, n)
SCALARS = [(1.0, 0.0), (0.5, 2.0), (-1.5, 1.0), (0.0, 0.75)]  # (alpha, beta)
TOL = {np.float32: 2e-5, np.float64: 1e-13}


@pytest.fixture(scope="module")
def calls():
    """kind -> a function compiled once per dtype, for any row strides (layout 'A' signatures)."""
    gemm, gemm_tn, gemm_nt = blas.functions(nt=True)

    def nn(a, b, c, alpha, beta):
        gemm(a, b, c, alpha, beta)

    def tn(a, b, c, alpha, beta):
        gemm_tn(a, b, c, alpha, beta)

    def nt(a, b, c, alpha, beta):
        gemm_nt(a, b, c, alpha, beta)

    signatures = ["void({t}[:, :], {t}[:, :], {t}[:, :], float64, float64)".format(t=t)
                  for t in ("float32", "float64")]
    return {"nn": numba.njit(signatures)(nn), "tn": numba.njit(signatures)(tn), "nt": numba.njit(signatures)(nt)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_nt_and_operands_of_one_row_with_any_row_stride(calls, dtype):
    """NumPy lets a one-row array carry any row stride (a transposed (n, 1) array has strides[0] ==
    itemsize); BLAS would refuse such a leading dimension and leave c untouched."""
    rng = np.random.default_rng(3)
    a = np.ascontiguousarray(rng.standard_normal((5, 1)).astype(dtype)).T  # (1, 5), strides[0] == itemsize
    b = rng.standard_normal((5, 4)).astype(dtype)
    c = np.full((1, 4), np.nan, dtype)
    calls["nn"](a, b, c, 1.0, 0.0)
    np.testing.assert_allclose(c, a @ b, rtol=1e-5)
    w = rng.standard_normal((3, 5)).astype(dtype)
    c = np.zeros((1, 3), dtype)
    calls["nt"](a, w, c, 1.0, 0.0)
    np.testing.assert_allclose(c, a @ w.T, rtol=1e-5)


def _view(rng, shape, dtype, pad):
    """A (rows, cols) view with row stride cols + pad, starting one row and one column into a
    larger buffer (a gate block of a wider row); returns (view, buffer)."""
    rows, cols = shape
    buf = rng.standard_normal((rows + 2, cols + pad + 1)).astype(dtype)
    view = buf[1:1 + rows, 1:1 + cols]
    assert view.strides[1] == buf.itemsize and view.strides[0] == buf.strides[0]
    return view, buf


def _expect(kind, a, b, c0, alpha, beta):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    product = a64 @ b64 if kind == "nn" else a64.T @ b64
    return alpha * product + (beta * c0.astype(np.float64) if beta != 0 else 0.0)


@pytest.mark.parametrize("kind", ["nn", "tn"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "row-strided"])
def test_gemm_matches_numpy(calls, kind, dtype, strided):
    rng = np.random.default_rng(0)
    for m, k, n in SHAPES:
        a_shape = (m, k) if kind == "nn" else (k, m)
        for alpha, beta in SCALARS:
            if strided:
                a, _ = _view(rng, a_shape, dtype, pad=3)
                b, _ = _view(rng, (k, n), dtype, pad=2)
                c, _ = _view(rng, (m, n), dtype, pad=5)
            else:
                a = rng.standard_normal(a_shape).astype(dtype)
                b = rng.standard_normal((k, n)).astype(dtype)
                c = rng.standard_normal((m, n)).astype(dtype)
            a_copy, b_copy, c0 = a.copy(), b.copy(), c.copy()
            calls[kind](a, b, c, alpha, beta)
            expect = _expect(kind, a, b, c0, alpha, beta)
            scale = np.abs(a_copy).max() * np.abs(b_copy).max() * k + np.abs(c0).max() * abs(beta) + 1
            err = np.abs(c - expect).max() / scale
            assert c.dtype == dtype
            assert err < TOL[dtype], f"gemm {kind} {dtype.__name__} (m, k, n)={(m, k, n)} alpha={alpha} " \
                                     f"beta={beta} strided={strided}: error {err:.2e}"
            np.testing.assert_array_equal(a, a_copy)  # operands untouched
            np.testing.assert_array_equal(b, b_copy)


@pytest.mark.parametrize("kind", ["nn", "tn"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_writes_only_inside_c(calls, kind, dtype):
    """c is a block in the middle of a larger buffer whose rows are longer than c's: the gaps
    between c's rows, the rows above and below and the columns on either side keep their values."""
    rng = np.random.default_rng(1)
    m, k, n = 5, 4, 3
    a = rng.standard_normal((m, k) if kind == "nn" else (k, m)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    for alpha, beta in SCALARS:
        c, buf = _view(rng, (m, n), dtype, pad=4)
        before = buf.copy()
        c0 = c.copy()
        calls[kind](a, b, c, alpha, beta)
        outside = np.ones(buf.shape, bool)
        outside[1:1 + m, 1:1 + n] = False
        np.testing.assert_array_equal(buf[outside], before[outside])
        np.testing.assert_allclose(c, _expect(kind, a, b, c0, alpha, beta), rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("kind", ["nn", "tn"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_with_beta_zero_ignores_c(calls, kind, dtype):
    """beta = 0 does not read c (BLAS semantics): a fresh np.empty workspace may hold NaN."""
    rng = np.random.default_rng(2)
    m, k, n = 4, 3, 6
    a = rng.standard_normal((m, k) if kind == "nn" else (k, m)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c = np.full((m, n), np.nan, dtype)
    calls[kind](a, b, c, 2.0, 0.0)
    expect = 2.0 * (a.astype(np.float64) @ b if kind == "nn" else a.astype(np.float64).T @ b)
    np.testing.assert_allclose(c, expect, rtol=TOL[dtype], atol=TOL[dtype])


def test_gemm_outside_compiled_code_raises():
    gemm, gemm_tn = blas.functions()
    a = np.ones((2, 2))
    for f in (gemm, gemm_tn):
        with pytest.raises(NotImplementedError, match="numba-compiled code only"):
            f(a, a, a.copy(), 1.0, 0.0)


def test_the_loops_call_numpys_own_blas_when_numpy_bundles_one():
    """One thread pool for the whole step: NumPy's wheels bundle an ILP64 OpenBLAS, and the compiled
    loops must call that one (not SciPy's second OpenBLAS, whose spinning threads fight NumPy's)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    bundled = [lib["filepath"] for lib in threadpoolctl.threadpool_info()
               if lib.get("user_api") == "blas" and "libscipy_openblas64_" in lib.get("filepath", "")]
    tag, addresses, int_type = blas._library()
    if not bundled:
        assert (tag, int_type) == ("lp64", np.int32)
        pytest.skip("this NumPy does not bundle scipy-openblas64; the loops call SciPy's BLAS")
    import ctypes
    handle = ctypes.CDLL(bundled[0])
    assert (tag, int_type) == ("ilp64", np.int64)
    assert addresses["sgemm"] == ctypes.cast(handle.scipy_sgemm_64_, ctypes.c_void_p).value
    assert addresses["dgemm"] == ctypes.cast(handle.scipy_dgemm_64_, ctypes.c_void_p).value


def test_scipy_fallback_computes_the_same_products():
    """Where NumPy's BLAS cannot be reached the loops call SciPy's (32-bit integers): checked in a fresh
    process with the lookup disabled, so that the fallback's compiled names are exercised too."""
    import subprocess
    import sys
    import textwrap
    code = textwrap.dedent("""
        import numpy as np, numba
        from rnnbp.nn.recurrent.kernels import blas
        blas._numpy_blas = lambda: None
        gemm, gemm_tn, gemm_nt = blas.functions(nt=True)
        assert blas._library()[0] == "lp64"

        @numba.njit
        def run(a, b, c, d, e):
            gemm(a, b, c, 1.0, 0.0)
            gemm_nt(a, e, d, 2.0, 0.0)

        for dtype in (np.float32, np.float64):
            rng = np.random.default_rng(0)
            a, b, e = (rng.standard_normal(s).astype(dtype) for s in ((5, 7), (7, 3), (4, 7)))
            c, d = np.zeros((5, 3), dtype), np.zeros((5, 4), dtype)
            run(a, b, c, d, e)
            np.testing.assert_allclose(c, a @ b, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(d, 2 * a @ e.T, rtol=1e-5, atol=1e-5)
        print("ok")
    """)
    env = dict(__import__("os").environ, NUMBA_CACHE_DIR=str(__import__("tempfile").mkdtemp()))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
