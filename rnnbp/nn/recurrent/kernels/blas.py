"""Matrix products callable from numba-compiled loops, which numba can cache: SciPy's BLAS by symbol name.

The compiled recurrences (``compiled_*``) run a whole sequence in one compiled
function, and each step's product with the recurrent weights must not return to
Python. ``scipy.linalg.cython_blas`` exports the Fortran ``sgemm``/``dgemm`` as C
function pointers. Called through ctypes, numba would refuse to cache the loops
("uses dynamic globals") and compile them again in every process; so the two
addresses are registered as LLVM symbols (``llvmlite.binding.add_symbol``) and
called as external functions by name: the cached machine code refers to the
name, which is bound again in each process when ``functions()`` first runs
(before any cached loop is loaded).

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

import numpy as np


def _address(name: str) -> int:
    """The address of ``scipy.linalg.cython_blas``'s ``name``."""
    from scipy.linalg import cython_blas

    capsule = cython_blas.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return get_pointer(capsule, get_name(capsule))


def _define():
    from llvmlite import binding
    from numba import types
    from numba.extending import overload

    external = {}
    for name in ("sgemm", "dgemm"):  # ?gemm: 13 arguments, all by reference (Fortran)
        symbol = f"rnnbp_scipy_{name}"
        binding.add_symbol(symbol, _address(name))
        external[name] = types.ExternalFunction(symbol, types.void(*([types.voidptr] * 13)))
    N, T = ord("N"), ord("T")

    def make(blas, dtype, trans_a, trans_b):
        def call(a, b, c, alpha, beta):
            # Fortran view: C^T (n, m) = op(B^T) (n, k) @ op(A^T) (k, m)
            m, n = c.shape
            k = a.shape[0] if trans_a else a.shape[1]
            item = c.itemsize
            ints = np.empty(6, np.int32)
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
        call.__name__ = call.__qualname__ = (f"rnnbp_{'d' if dtype == np.float64 else 's'}gemm_"
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
