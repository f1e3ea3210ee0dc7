"""Benchmark: can a second core run half of a batch's LSTM recurrence? Not beside OpenBLAS's pool.

Each row of a batch is its own recurrence, so the compiled forward loop (``compiled_lstm.forward``)
run on two half-batches in two threads (the loops release the GIL) needs no synchronisation
between steps. This times, for the small LSTM of ``rnn_speed.py`` (T=50, B=32, I=32, H=64,
float32, the forward loop alone):

    one thread        the whole batch in the calling thread, BLAS as set (two threads)
    two threads       each half in a thread of its own, BLAS on one thread per call
    after a product   the same two threads right after a NumPy product on two BLAS threads, as
                      in a training step, where the head's products run just before the layer

OpenBLAS's worker threads keep spinning for a while after each product they share, so in a
training step one of them holds a core whenever the layer starts; the two threads then
share the other. Median and [min-max] over ``--repeats`` calls, all in this process:

    python demos/benchmarks/row_threads.py [--repeats 200]
"""
from __future__ import annotations

import argparse
import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

from rnnbp.nn.recurrent.kernels import compiled_lstm

T, B, I, H = 50, 32, 32, 64


def forward_args(x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, bias: np.ndarray) -> tuple:
    """The arguments of ``compiled_lstm.forward`` for the rows of x (T, b, I), with buffers of their own."""
    steps, b, _ = x.shape
    f32, empty = np.float32, compiled_lstm.EMPTY
    no_mask = empty[3][np.dtype(bool)]
    return (np.ascontiguousarray(x).reshape(steps * b, I), w_ih, w_hh, bias, bias, empty[2][np.dtype(f32)],
            np.full(steps, b, np.int64), np.empty((steps, b, 4 * H), f32), np.zeros((steps + 1, b, H), f32),
            np.zeros((steps + 1, b, H), f32), np.empty((steps, b, H), f32), empty[3][np.dtype(f32)],
            empty[2][np.dtype(f32)], no_mask, no_mask, compiled_lstm.stacked_weights(w_ih, w_hh),
            np.empty((steps, b, I + H), f32))


def timed(run, before=None, repeats: int = 200) -> list[float]:
    """Milliseconds of each call of ``run``, ``before`` (untimed) ahead of each."""
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main(argv=None) -> dict:
    """Print the three timings; return {name: [ms per call, ...]}."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    w_ih = (rng.standard_normal((4 * H, I)) * 0.1).astype(np.float32)
    w_hh = (rng.standard_normal((4 * H, H)) * 0.1).astype(np.float32)
    bias = np.zeros(4 * H, np.float32)
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    loop = compiled_lstm.loops()["forward"]
    whole = forward_args(x, w_ih, w_hh, bias)
    halves = [forward_args(x[:, :B // 2], w_ih, w_hh, bias), forward_args(x[:, B // 2:], w_ih, w_hh, bias)]
    a = rng.standard_normal((256, 256)).astype(np.float32)

    def one_thread():
        loop(*whole)

    def two_threads():
        other = threading.Thread(target=loop, args=halves[1])
        other.start()
        loop(*halves[0])
        other.join()

    def wake_blas_pool():
        with threadpool_limits(limits=2, user_api="blas"):
            a @ a

    one_thread(), two_threads()  # compile (or load) and warm up
    with threadpool_limits(limits=2, user_api="blas"):
        rows = [("one thread", timed(one_thread, repeats=args.repeats))]
    with threadpool_limits(limits=1, user_api="blas"):
        rows.append(("two threads", timed(two_threads, repeats=args.repeats)))
        rows.append(("after a product", timed(two_threads, wake_blas_pool, args.repeats)))
    whole_out, half_out = whole[8], np.concatenate([halves[0][8], halves[1][8]], axis=1)
    assert np.allclose(whole_out, half_out, atol=1e-5), "the halves' states differ from the whole batch's"
    print(f"LSTM forward loop, T={T} B={B} I={I} H={H} float32: ms per call, median [min-max] of {args.repeats}")
    for name, times in rows:
        print(f"{name:18s} {np.median(times):6.3f} [{min(times):.3f}-{max(times):.3f}]")
    return dict(rows)


if __name__ == "__main__":
    main()
