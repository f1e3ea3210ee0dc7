"""Benchmark: where one streamed LSTM step's time goes (B=1, I=40, H=128, float32, under no_grad).

Four layers of the same step, each timed alone in this process, best of 5 x 20 000 calls:
the compiled inference loop called directly, ``lstm_inference`` (the kernel's Python entry),
the driver's way (``StackedRecurrence.forward``: reshaping, checks, sorting, stacking), and
the layer call ``lstm(x_t, state)``, which takes the streamed step's short way
(``nn.recurrent.inference.plain_forward``). Above them, a floor: a compiled loop that only
reads the step's weights once (W_ih and W_hh, 344 KB in float32), as any implementation of
the step must; at the 50 GB/s a core streams from its L2 cache that alone is some 6 us.
``rnn_speed.py --streaming`` gives the layer call against PyTorch, each in its own process.

    OPENBLAS_NUM_THREADS=1 python demos/benchmarks/streaming_parts.py
"""
import time

import numba
import numpy as np

import rnnbp
from rnnbp import nn
from rnnbp.nn.recurrent.driver import StackedRecurrence
from rnnbp.nn.recurrent.kernels import compiled_lstm
from rnnbp.nn.recurrent.kernels.lstm import lstm_inference


@numba.njit(nogil=True, fastmath=True)
def read_once(w_ih, w_hh) -> float:
    """Sum every weight: the memory traffic of one step, with no arithmetic to speak of."""
    total = np.float32(0)
    for w in (w_ih.ravel(), w_hh.ravel()):
        for i in range(w.size):
            total += w[i]
    return total


def best_us(fn, calls: int = 20000) -> float:
    for _ in range(500):
        fn()
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t) / calls)
    return best * 1e6


def main():
    rnnbp.manual_seed(0)
    lstm = nn.LSTM(40, 128).eval()
    w_ih, w_hh, b_ih, b_hh = (p._data for p in lstm.parameters())
    loop = compiled_lstm.loops()["inference"]
    args = compiled_lstm.weights(w_ih, w_hh, b_ih, b_hh, None, np.dtype(np.float32))
    x = np.random.default_rng(0).standard_normal((1, 1, 40)).astype(np.float32)
    h, c, out = np.zeros((1, 128), np.float32), np.zeros((1, 128), np.float32), np.empty((1, 1, 128), np.float32)
    no_copy = compiled_lstm.transposed(w_hh, 1)
    state = (rnnbp.zeros(1, 1, 128), rnnbp.zeros(1, 1, 128))
    x_t = rnnbp.Tensor(x)
    with rnnbp.no_grad():
        rows = [("weights read once", lambda: read_once(w_ih, w_hh)),
                ("compiled loop alone", lambda: loop(x.reshape(1, 40), *args, compiled_lstm.ALL_ROWS, h, c, out, 1,
                                                      no_copy)),
                ("lstm_inference", lambda: lstm_inference(x, h, c, w_ih, w_hh, b_ih, b_hh, None)),
                ("driver's way", lambda: StackedRecurrence.forward(lstm, x_t, state)),
                ("layer call", lambda: lstm(x_t, state))]
        for name, fn in rows:
            print(f"{name:22s} {best_us(fn):7.2f} us per step")


if __name__ == "__main__":
    main()
