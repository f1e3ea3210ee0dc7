"""Benchmark: one training step of RNN, LSTM and GRU layers, rnnbp fused vs composed vs the GEMM bound.

The step: the layer over a (T, B, I) sequence, a linear head on every step,
cross-entropy on every step (C = I classes, as in a character model), backward
to every parameter, in float32. Printed per cell and size, from one run:

* rnnbp fused     - the layer's fused kernel (one node per layer and direction)
* rnnbp composed  - the same layer unrolled from its cell on the tape (``fused=False``)
* GEMM bound      - only the matrix products of the same step, timed alone in NumPy:
                    a lower bound for any NumPy implementation
* PyTorch         - torch.nn of the same configuration, when torch is installed
                    (optional, never a dependency), with as many threads as NumPy's BLAS

    python demos/benchmarks/rnn_speed.py [--sizes small medium large] [--cells lstm gru rnn]
                                         [--rounds 5] [--no-composed]
    python demos/benchmarks/rnn_speed.py --profile --sizes medium --cells gru   # where one step's time goes

Implementations are timed in alternating rounds; each figure is the median step
time over the rounds, and ratios are taken within the run.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import rnnbp
from rnnbp import nn
from rnnbp.nn import functional as F

SIZES = {  # T, B, I, H
    "small": (50, 32, 32, 64),
    "medium": (100, 64, 65, 256),
    "large": (100, 64, 128, 512),
}
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class Step:
    """One training step of a recurrent layer plus a linear head, rnnbp."""

    def __init__(self, cell: str, T, B, I, H, fused: bool, seed: int = 0):
        rnnbp.manual_seed(seed)
        self.layer = LAYERS[cell](I, H, fused=fused)
        self.head = nn.Linear(H, I)
        rng = np.random.default_rng(seed)
        self.x = rnnbp.Tensor(rng.standard_normal((T, B, I)).astype(np.float32))
        self.y = rng.integers(0, I, (T * B,))

    def __call__(self) -> float:
        for p in list(self.layer.parameters()) + list(self.head.parameters()):
            p.grad = None
        out, _ = self.layer(self.x)
        logits = self.head(out).reshape(-1, self.x.shape[2])
        loss = F.cross_entropy(logits, self.y)
        loss.backward()
        return loss.item()


class GemmBound:
    """Just the matrix products of the same step (forward and backward), in NumPy float32."""

    def __init__(self, cell: str, T, B, I, H, seed: int = 0):
        rng = np.random.default_rng(seed)
        G = GATES[cell] * H
        f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
        self.T = T
        self.x, self.w_ih, self.w_hh = f32(T * B, I), f32(G, I), f32(G, H)
        self.h, self.hs, self.w_head = f32(B, H), f32(T * B, H), f32(I, H)
        self.dg, self.dgs, self.dlogits = f32(B, G), f32(T * B, G), f32(T * B, I)
        self.rec = np.empty((B, G), np.float32)
        self.dh = np.empty((B, H), np.float32)

    def __call__(self) -> None:
        self.x @ self.w_ih.T                       # input projection, all steps
        for _ in range(self.T):                    # recurrent products, forward
            np.matmul(self.h, self.w_hh.T, out=self.rec)
        self.hs @ self.w_head.T                    # head
        self.dlogits.T @ self.hs                   # head weight gradient
        self.dlogits @ self.w_head                 # gradient into the layer output
        for _ in range(self.T):                    # recurrent products, backward
            np.matmul(self.dg, self.w_hh, out=self.dh)
        self.dgs.T @ self.x                        # dW_ih
        self.dgs.T @ self.hs                       # dW_hh


class TorchStep:
    """The same step in PyTorch (only when torch is installed)."""

    def __init__(self, torch, cell: str, T, B, I, H, seed: int = 0):
        self.torch = torch
        torch.manual_seed(seed)
        self.layer = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](I, H)
        self.head = torch.nn.Linear(H, I)
        rng = np.random.default_rng(seed)
        self.x = torch.from_numpy(rng.standard_normal((T, B, I)).astype(np.float32))
        self.y = torch.from_numpy(rng.integers(0, I, (T * B,)))

    def __call__(self) -> float:
        for p in list(self.layer.parameters()) + list(self.head.parameters()):
            p.grad = None
        out, _ = self.layer(self.x)
        loss = self.torch.nn.functional.cross_entropy(self.head(out).reshape(-1, self.x.shape[2]), self.y)
        loss.backward()
        return loss.item()


def _blas_threads() -> int:
    try:
        from threadpoolctl import threadpool_info

        return max((i.get("num_threads", 1) for i in threadpool_info() if i.get("user_api") == "blas"), default=1)
    except ImportError:  # threadpoolctl comes with scikit-learn; without it, assume all cores
        import os

        return os.cpu_count() or 1


def time_round(fn, repeats: int) -> float:
    fn()  # warm: this implementation's buffers and weights back in cache
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def profile(cells, sizes, rounds: int) -> dict:
    """Median ms of each phase of the fused step: layer forward, head + loss forward, backward."""
    results = {}
    for size in sizes:
        for cell in cells:
            step = Step(cell, *SIZES[size], fused=True)
            step()
            phases = {"layer forward": [], "head+loss forward": [], "backward": []}
            for _ in range(rounds):
                for p in list(step.layer.parameters()) + list(step.head.parameters()):
                    p.grad = None
                t0 = time.perf_counter()
                out, _ = step.layer(step.x)
                t1 = time.perf_counter()
                loss = F.cross_entropy(step.head(out).reshape(-1, step.x.shape[2]), step.y)
                t2 = time.perf_counter()
                loss.backward()
                t3 = time.perf_counter()
                for name, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2)):
                    phases[name].append(dt)
            ms = {k: 1e3 * float(np.median(v)) for k, v in phases.items()}
            results[(cell, size)] = ms
            print(f"{cell:5} {size:7} " + "  ".join(f"{k} {v:7.2f} ms" for k, v in ms.items()))
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru", "rnn"], choices=list(GATES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="steps per implementation per round")
    parser.add_argument("--no-composed", action="store_true", help="skip the (slow) composed path")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument("--profile", action="store_true",
                        help="instead, split the fused step into layer forward, head forward and backward")
    args = parser.parse_args(argv)
    if args.profile:
        return profile(args.cells, args.sizes, args.rounds)

    torch = None
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(_blas_threads())
        except ImportError:
            torch = None
    results = {}
    print(f"one training step (layer + linear head + cross-entropy on every step + backward), float32, "
          f"BLAS threads {_blas_threads()}; median ms over {args.rounds} rounds")
    header = f"{'cell':5} {'size':7} {'fused':>8} {'composed':>9} {'GEMM':>8} {'torch':>8}  " \
             f"{'fused/GEMM':>10} {'composed/fused':>14} {'fused/torch':>11}"
    print(header)
    for size in args.sizes:
        T, B, I, H = SIZES[size]
        for cell in args.cells:
            impls = {"fused": Step(cell, T, B, I, H, fused=True), "gemm": GemmBound(cell, T, B, I, H)}
            if not args.no_composed:
                impls["composed"] = Step(cell, T, B, I, H, fused=False)
            if torch is not None:
                impls["torch"] = TorchStep(torch, cell, T, B, I, H)
            times = {k: [] for k in impls}
            for _ in range(args.rounds):
                for name, fn in impls.items():
                    times[name].append(time_round(fn, 1 if name == "composed" else args.repeats))
            ms = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
            results[(cell, size)] = ms
            fmt = lambda k: f"{ms[k]:8.2f}" if k in ms else f"{'-':>8}"  # noqa: E731
            ratio = lambda a, b: f"{ms[a] / ms[b]:.2f}x" if a in ms and b in ms else "-"  # noqa: E731
            print(f"{cell:5} {size:7} {fmt('fused')} {fmt('composed'):>9} {fmt('gemm')} {fmt('torch')}  "
                  f"{ratio('fused', 'gemm'):>10} {ratio('composed', 'fused'):>14} {ratio('fused', 'torch'):>11}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
