"""Benchmark: any cell through nn.Recurrent, replayed (``fused=True``) or on the tape, against the fused nn.LSTM.

The training step of ``rnn_speed.py``: the layer over a (T, B, I) float32
sequence, a linear head H -> I on every step, cross-entropy on every step,
backward to every parameter. Implementations:

* lstm_fused        - nn.LSTM, the hand-fused kernel (the reference of the ratios)
* layernorm_fused   - nn.LayerNormLSTM, the layer-norm LSTM's hand-written fused kernel
* layernorm_recurrent - nn.Recurrent(nn.LayerNormLSTMCell): the library cell runs its fused kernel
* layernorm_traced  - nn.Recurrent of a subclass of nn.LayerNormLSTMCell (the same ops, but not the
                      library's own class): recorded once and replayed, as any user's cell
* layernorm_tape    - the same with fused=False: the cell unrolled op by op on the autograd tape
* user_gru_traced   - nn.Recurrent of a GRU-like cell written from rnnbp ops (``UserGRU`` below)
* user_gru_tape     - the same on the tape

Each implementation runs in its own process (``--worker``) with the thread count
fixed in its environment; rounds alternate the implementations so that all sample
the same machine noise; each process warms up (compiling the replay's loops) and
reports the median of its timed steps. The table gives the median over rounds, the
spread [min-max] over rounds and the ratio of medians to lstm_fused.

    python demos/benchmarks/traced_cells_speed.py                       # medium size, 5 rounds, 2 threads
    python demos/benchmarks/traced_cells_speed.py --rounds 3 --threads 1 --impls lstm_fused layernorm_traced
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

IMPLS = ("lstm_fused", "layernorm_fused", "layernorm_recurrent", "layernorm_traced", "layernorm_tape", "user_gru_traced", "user_gru_tape")
MEDIUM = (100, 64, 65, 256)  # T, B, I, H


def user_gru(nn):
    class UserGRU(nn.Module):
        """A GRU-like cell as a user writes it: two Linear maps, sigmoid and tanh gates, elementwise ops."""

        def __init__(self, input_size, hidden_size):
            super().__init__()
            self.x2h = nn.Linear(input_size, 3 * hidden_size)
            self.h2h = nn.Linear(hidden_size, 3 * hidden_size)

        def forward(self, x, h):
            xr, xz, xn = self.x2h(x).chunk(3, dim=1)
            hr, hz, hn = self.h2h(h).chunk(3, dim=1)
            r = (xr + hr).sigmoid()
            z = (xz + hz).sigmoid()
            n = (xn + r * hn).tanh()
            return (1 - z) * n + z * h

    return UserGRU


def worker(impl: str, dims, threads: int, repeats: int, min_time: float) -> dict:
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=threads, user_api="blas")
    except ImportError:
        pass
    import rnnbp
    from rnnbp import nn
    from rnnbp.nn import functional as F

    T, B, I, H = dims
    rnnbp.manual_seed(0)
    if impl == "lstm_fused":
        layer = nn.LSTM(I, H)
    elif impl == "layernorm_fused":
        layer = nn.LayerNormLSTM(I, H)
    elif impl == "layernorm_recurrent":
        layer = nn.Recurrent(nn.LayerNormLSTMCell, I, H)
    else:
        cell = type("UserLayerNormLSTMCell", (nn.LayerNormLSTMCell,), {}) if impl.startswith("layernorm") \
            else user_gru(nn)
        layer = nn.Recurrent(cell, I, H, fused=impl.endswith("traced"))
    head = nn.Linear(H, I)
    rng = np.random.default_rng(0)
    x = rnnbp.Tensor(rng.standard_normal((T, B, I)).astype(np.float32))
    y = rng.integers(0, I, (T * B,))
    params = list(layer.parameters()) + list(head.parameters())

    def step():
        for p in params:
            p.grad = None
        out, _ = layer(x)
        F.cross_entropy(head(out).reshape(-1, I), y).backward()

    t_end = time.perf_counter() + 0.2
    done = 0
    while done < 2 or time.perf_counter() < t_end:  # warm-up: caches, numba's compiled loops
        step()
        done += 1
    seconds = []
    t_end = time.perf_counter() + min_time
    while len(seconds) < repeats or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - t0)
    return {"impl": impl, "median": float(np.median(seconds)), "seconds": seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--dims", nargs=4, type=int, default=list(MEDIUM), metavar=("T", "B", "I", "H"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.5)
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.dims, args.threads, args.repeats, args.min_time)), flush=True)
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    medians = {impl: [] for impl in args.impls}
    for r in range(args.rounds):
        for impl in args.impls:
            cmd = [sys.executable, __file__, "--worker", impl, "--dims", *map(str, args.dims), "--threads",
                   str(args.threads), "--repeats", str(args.repeats), "--min-time", str(args.min_time)]
            result = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)
            medians[impl].append(result["median"])
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{i} {medians[i][-1] * 1e3:.0f}" for i in args.impls),
              file=sys.stderr, flush=True)
    T, B, I, H = args.dims
    print(f"training step, T={T} B={B} I={I} H={H}, float32, {args.threads} thread(s), {args.rounds} rounds "
          f"(ms per step: median over rounds [min-max]; ratio of medians to lstm_fused)")
    ref = np.median(medians["lstm_fused"]) if "lstm_fused" in medians else None
    for impl in args.impls:
        m = np.array(medians[impl]) * 1e3
        ratio = f"  {np.median(m) / (ref * 1e3):.2f}x" if ref else ""
        print(f"  {impl:18s} {np.median(m):8.1f}  [{m.min():.1f}-{m.max():.1f}]{ratio}")


if __name__ == "__main__":
    main()
