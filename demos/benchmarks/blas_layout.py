"""Benchmark: which layout BLAS multiplies a recurrent weight fastest in, called from numba as the kernels do.

Per step the recurrences compute h W^T (forward) and dg W (backward), W (G, H) = (4H, H) for
the LSTM. Each can use W as it is (BLAS transposes it) or a row-major copy of W^T. This times
all four products alone, each in a compiled loop through ``kernels.blas`` (the BLAS the kernels
call), best of 5, at three (B, H) sizes; ``compiled_gru.SMALL_WEIGHTS`` and
``compiled_lstm.transposed`` follow what it shows. Run it once per thread count:

    OPENBLAS_NUM_THREADS=1 python demos/benchmarks/blas_layout.py
    OPENBLAS_NUM_THREADS=2 python demos/benchmarks/blas_layout.py
"""
from __future__ import annotations

import time

import numba
import numpy as np

from rnnbp.nn.recurrent.kernels import blas

gemm, gemm_tn, gemm_nt = blas.functions(nt=True)


@numba.njit
def forward_with_w(h, w, g, n):
    for _ in range(n):
        gemm_nt(h, w, g, 1.0, 1.0)


@numba.njit
def forward_with_copy(h, w_t, g, n):
    for _ in range(n):
        gemm(h, w_t, g, 1.0, 1.0)


@numba.njit
def backward_with_w(dg, w, dh, n):
    for _ in range(n):
        gemm(dg, w, dh, 1.0, 0.0)


@numba.njit
def backward_with_copy(dg, w_t, dh, n):
    for _ in range(n):
        gemm_nt(dg, w_t, dh, 1.0, 0.0)


def main():
    rng = np.random.default_rng(0)
    print("microseconds per product (best of 5), float32, G = 4H")
    for B, H in [(32, 64), (64, 256), (64, 512)]:
        G = 4 * H
        h, w = rng.random((B, H), dtype=np.float32), rng.random((G, H), dtype=np.float32)
        w_t = np.ascontiguousarray(w.T)
        g, dg, dh = np.zeros((B, G), np.float32), rng.random((B, G), dtype=np.float32), np.zeros((B, H), np.float32)
        n = max(20, int(2e8 // (B * H * G)))
        row = {}
        for name, fn, args in [("h W^T from W", forward_with_w, (h, w, g)), ("h W^T from copy", forward_with_copy, (h, w_t, g)),
                               ("dg W from W", backward_with_w, (dg, w, dh)), ("dg W from copy", backward_with_copy, (dg, w_t, dh))]:
            fn(*args, 2)
            best = float("inf")
            for _ in range(5):
                t = time.perf_counter()
                fn(*args, n)
                best = min(best, (time.perf_counter() - t) / n)
            row[name] = best * 1e6
        print(f"B={B:3d} H={H:4d}  " + "  ".join(f"{k}: {v:8.1f}" for k, v in row.items()))


if __name__ == "__main__":
    main()
