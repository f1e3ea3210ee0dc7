"""Matrix products callable from numba-compiled loops: SciPy's BLAS ``sgemm``/``dgemm``, row-major.

The compiled recurrences (``compiled_*``) run a whole sequence in one compiled
function, and each step's product with the recurrent weights must not return to
Python. ``scipy.linalg.cython_blas`` exports the Fortran BLAS as C function
pointers; numba calls them through ctypes prototypes (all arguments by
reference, as Fortran wants).

Row-major to column-major: a C-ordered (m, k) array with row stride lda is the
Fortran (k, m) matrix A^T with leading dimension lda, so ``C = A B`` is computed
as the Fortran ``C^T = B^T A^T`` with the operands swapped and no transposes.

    gemm(a, b, c, alpha, beta)     c = alpha * a @ b + beta * c
    gemm_tn(a, b, c, alpha, beta)  c = alpha * a.T @ b + beta * c   (weight gradients)

a (m, k), b (k, n), c (m, n): float32 or float64 (all three alike), each with unit
stride along its rows' elements and any row stride (views of gate blocks are fine).
The dtype picks sgemm or dgemm when the calling loop is compiled. Nothing is
checked at run time: the callers own the shapes.
"""
from __future__ import annotations

import ctypes

import numpy as np


def _blas_function(name: str):
    """A ctypes function for ``scipy.linalg.cython_blas``'s ``name`` (13 pointer arguments: ?gemm)."""
    from scipy.linalg import cython_blas

    capsule = cython_blas.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    address = get_pointer(capsule, get_name(capsule))
    return ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * 13))(address)


def _define():
    from numba import types
    from numba.extending import overload

    sgemm, dgemm = _blas_function("sgemm"), _blas_function("dgemm")
    N, T = ord("N"), ord("T")

    def make(blas, dtype, trans_b):
        def call(a, b, c, alpha, beta):
            # Fortran view: C^T (n, m) = op(B^T) (n, k) @ A^T (k, m)
            m, n = c.shape
            k = a.shape[0] if trans_b else a.shape[1]
            item = c.itemsize
            ints = np.empty(6, np.int32)
            ints[0], ints[1], ints[2] = n, m, k
            ints[3], ints[4], ints[5] = b.strides[0] // item, a.strides[0] // item, c.strides[0] // item
            scalars = np.empty(2, dtype)
            scalars[0], scalars[1] = alpha, beta
            flags = np.empty(2, np.uint8)
            flags[0] = N
            flags[1] = T if trans_b else N
            # gemm_tn (c = a^T b) is the Fortran C^T = B^T A: the second operand transposed
            blas(flags.ctypes.data, flags[1:].ctypes.data, ints.ctypes.data, ints[1:].ctypes.data,
                 ints[2:].ctypes.data, scalars.ctypes.data, b.ctypes.data, ints[3:].ctypes.data,
                 a.ctypes.data, ints[4:].ctypes.data, scalars[1:].ctypes.data, c.ctypes.data, ints[5:].ctypes.data)
        return call

    s_nn, d_nn = make(sgemm, np.float32, False), make(dgemm, np.float64, False)
    s_tn, d_tn = make(sgemm, np.float32, True), make(dgemm, np.float64, True)

    def gemm(a, b, c, alpha, beta):
        raise NotImplementedError("blas.gemm runs inside numba-compiled code only")

    def gemm_tn(a, b, c, alpha, beta):
        raise NotImplementedError("blas.gemm_tn runs inside numba-compiled code only")

    def pick(float32, float64):
        def typer(a, b, c, alpha, beta):
            if c.dtype == types.float32:
                return float32
            if c.dtype == types.float64:
                return float64
            return None
        return typer

    overload(gemm)(pick(s_nn, d_nn))
    overload(gemm_tn)(pick(s_tn, d_tn))
    return gemm, gemm_tn


_functions = None


def functions():
    """(gemm, gemm_tn), defined on first use (importing numba costs about half a second)."""
    global _functions
    if _functions is None:
        _functions = _define()
    return _functions
