"""Matrix products callable from numba-compiled loops, which numba can cache: NumPy's own BLAS by symbol name.

The compiled recurrences (``compiled_*``) run a whole sequence in one compiled
function, and each step's product with the recurrent weights must not return to
Python. The Fortran ``sgemm``/``dgemm`` are called through their addresses,
registered as LLVM symbols (``llvmlite.binding.add_symbol``) and called as
external functions by name: called through ctypes, numba would refuse to cache
the loops ("uses dynamic globals") and compile them again in every process,
while the cached machine code refers to the name, which is bound again in each
process when ``functions()`` first runs (before any cached loop is loaded).

Which BLAS: the one NumPy's ``@`` uses, whenever it can be found. NumPy's wheels
bundle their own OpenBLAS (``scipy-openblas64``, 64-bit integers) and SciPy's
wheels another one, each with its own thread pool. Workers of a pool spin for a
while after each product; with the per-step products in SciPy's pool and the
head, loss and weight gradients in NumPy's, the two pools' spinning threads took
each other's cores: on 2 cores, ``demos/benchmarks/rnn_speed.py --sizes small`` timed
the small LSTM, GRU and RNN steps at 8.0 ms each with SciPy's pool, and 3.6, 2.9 and
1.6 ms with this one.
So ``_numpy_blas`` looks for NumPy's bundled library among the loaded BLAS
libraries (threadpoolctl lists them) and takes ``scipy_?gemm_64_`` from it;
elsewhere (a NumPy built against the system's or conda's BLAS, which SciPy then
shares) ``scipy.linalg.cython_blas``'s ``sgemm``/``dgemm`` (32-bit integers)
are used. The choice is fixed per environment, and its integer width is part of
every compiled name, so a cached loop never calls the other library's product.

Each variant (dtype x transposes) is compiled under a name of its own: numba's
symbol names are module + qualname + argument types + a per-process counter, so
variants sharing one closure name and one signature could be confused when a loop
compiled in one process is loaded from the cache in another.

Row-major to column-major: a C-ordered (m, k) array with row stride lda is the
Fortran (k, m) matrix A^T with leading dimension lda, so ``C = A B`` is computed
as the Fortran ``C^T = B^T A^T`` with the operands swapped.

    gemm(a, b, c, alpha, beta)     c = alpha * a @ b + beta * c      a (m, k), b (k, n)
    gemm_tn(a, b, c, alpha, beta)  c = alpha * a.T @ b + beta * c    a (k, m), b (k, n)  (weight gradients)
    gemm_nt(a, b, c, alpha, beta)  c = alpha * a @ b.T + beta * c    a (m, k), b (n, k)  (x W^T, no transposed copy)

c (m, n). float32 or float64 (all three alike), each with unit stride along its
rows' elements and any row stride (views of gate blocks are fine). The dtype picks
sgemm or dgemm when the calling loop is compiled. Nothing is checked at run time:
the callers own the shapes.
"""
from __future__ import annotations

import ctypes
import os

import numpy as np


def _scipy_address(name: str) -> int:
    """The address of ``scipy.linalg.cython_blas``'s ``name`` (LP64: 32-bit integers)."""
    from scipy.linalg import cython_blas

    capsule = cython_blas.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return get_pointer(capsule, get_name(capsule))


def _numpy_blas() -> dict | None:
    """{"sgemm": address, "dgemm": address} of NumPy's bundled ILP64 OpenBLAS, or None if NumPy has none."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    for lib in threadpool_info():
        path = lib.get("filepath") or ""
        if lib.get("user_api") != "blas" or not os.path.basename(path).startswith("libscipy_openblas64_"):
            continue
        try:
            handle = ctypes.CDLL(path)
            return {name: ctypes.cast(getattr(handle, f"scipy_{name}_64_"), ctypes.c_void_p).value
                    for name in ("sgemm", "dgemm")}
        except (OSError, AttributeError):
            return None
    return None


def _library() -> tuple[str, dict, type]:
    """(tag, {"sgemm": address, "dgemm": address}, integer type) of the BLAS the loops call."""
    numpy_blas = _numpy_blas()
    if numpy_blas is not None:
        return "ilp64", numpy_blas, np.int64
    return "lp64", {name: _scipy_address(name) for name in ("sgemm", "dgemm")}, np.int32


def _define():
    from llvmlite import binding
    from numba import types
    from numba.extending import overload

    tag, addresses, int_type = _library()
    external = {}
    for name in ("sgemm", "dgemm"):  # ?gemm: 13 arguments, all by reference (Fortran)
        symbol = f"rnnbp_{tag}_{name}"
        binding.add_symbol(symbol, addresses[name])
        # Loops cached by an earlier version (numba checks the age of their own source file only)
        # name SciPy's product so; binding it keeps them runnable.
        binding.add_symbol(f"rnnbp_scipy_{name}", _scipy_address(name))
        external[name] = types.ExternalFunction(symbol, types.void(*([types.voidptr] * 13)))
    N, T = ord("N"), ord("T")

    def make(blas, dtype, trans_a, trans_b):
        def call(a, b, c, alpha, beta):
            # Fortran view: C^T (n, m) = op(B^T) (n, k) @ op(A^T) (k, m)
            m, n = c.shape
            k = a.shape[0] if trans_a else a.shape[1]
            item = c.itemsize
            ints = np.empty(6, int_type)
            ints[0], ints[1], ints[2] = n, m, k
            # Leading dimensions. An operand with one row may carry any row stride (NumPy's relaxed
            # strides) while BLAS wants ld >= its row length: the stride does not matter then.
            ints[3] = max(b.strides[0] // item, b.shape[1], 1)
            ints[4] = max(a.strides[0] // item, a.shape[1], 1)
            ints[5] = max(c.strides[0] // item, c.shape[1], 1)
            scalars = np.empty(2, dtype)
            scalars[0], scalars[1] = alpha, beta
            flags = np.empty(2, np.uint8)
            flags[0] = T if trans_b else N
            flags[1] = T if trans_a else N
            blas(flags.ctypes, flags[1:].ctypes, ints.ctypes, ints[1:].ctypes, ints[2:].ctypes, scalars.ctypes,
                 b.ctypes, ints[3:].ctypes, a.ctypes, ints[4:].ctypes, scalars[1:].ctypes, c.ctypes, ints[5:].ctypes)
        call.__name__ = call.__qualname__ = (f"rnnbp_{tag}_{'d' if dtype == np.float64 else 's'}gemm_"
                                             f"{'t' if trans_a else 'n'}{'t' if trans_b else 'n'}")
        return call

    def pick(float32, float64):
        def typer(a, b, c, alpha, beta):
            if c.dtype == types.float32:
                return float32
            if c.dtype == types.float64:
                return float64
            return None
        return typer

    def declare(name, trans_a, trans_b):
        def stub(a, b, c, alpha, beta):
            raise NotImplementedError(f"blas.{name} runs inside numba-compiled code only")
        stub.__name__ = stub.__qualname__ = name
        overload(stub)(pick(make(external["sgemm"], np.float32, trans_a, trans_b),
                            make(external["dgemm"], np.float64, trans_a, trans_b)))
        return stub

    return declare("gemm", False, False), declare("gemm_tn", True, False), declare("gemm_nt", False, True)


_functions = None


def functions(nt: bool = False):
    """(gemm, gemm_tn), or (gemm, gemm_tn, gemm_nt) with ``nt``; defined on first use (importing
    numba costs about half a second)."""
    global _functions
    if _functions is None:
        _functions = _define()
    return _functions if nt else _functions[:2]
