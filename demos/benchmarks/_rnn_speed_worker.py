"""Worker for rnn_speed.py: time ONE implementation of one recurrent cell, print one JSON line.

rnn_speed.py starts one of these per implementation and round, each in a fresh
process with its thread count fixed in the environment (OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS, MKL_NUM_THREADS) and again here, so that no other
library's thread pool is alive in the process being timed. It can also be run
by hand:

    OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 MKL_NUM_THREADS=2 \\
        python demos/benchmarks/_rnn_speed_worker.py --impl torch --cell gru --dims 50 32 32 64 --threads 2

Implementations (``--impl``):

* fused     - rnnbp layer with its fused kernel
* composed  - rnnbp layer unrolled from its cell on the tape (``fused=False``)
* gemm      - only the matrix products of the same work, in NumPy (a lower bound)
* torch     - torch.nn, same configuration (rnnbp is not imported in this process)

``--variant`` (rnnbp fused or composed, training step only): 'plain' (default), or one of the
regularisations inside the layer at rate ``VARIANT_RATE``: input_dropout, recurrent_dropout,
zoneout, weight_dropout (``nn.recurrent.regularization``); masks are drawn at every step, as in
training from zero states.

The work (the same for all four): one training step -- the layer over a
(T, B, I) float32 sequence, a linear head H -> I on every step, cross-entropy on
every step, backward to every parameter -- or, with ``--streaming``, one
time step per call under no_grad with the state carried, x_t of shape (1, B, I).

Timing: untimed warm-up (at least ``--warmup`` calls and ``--warmup-time``
seconds: caches, numba's compiled loops, the allocator), then at least
``--repeats`` timed samples and at least ``--min-time`` seconds of them. A
sample is one training step, or one block of ``--block`` streaming calls
divided by ``--block``. Printed: {"impl", "cell", "dims", "streaming",
"seconds" (per step, one per sample), "median", "blas_threads",
"torch_threads"}.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
IMPLS = ("fused", "composed", "gemm", "torch")
VARIANTS = ("plain", "input_dropout", "recurrent_dropout", "zoneout", "weight_dropout")
VARIANT_RATE = 0.25


# ---------------------------------------------------------------- training step


class Step:
    """One training step of a recurrent layer plus a linear head, rnnbp."""

    def __init__(self, cell: str, T, B, I, H, fused: bool, seed: int = 0, variant: str = "plain"):
        import rnnbp
        from rnnbp import nn
        from rnnbp.nn import functional as F

        self.F = F
        rnnbp.manual_seed(seed)
        rates = {} if variant == "plain" else {variant: VARIANT_RATE}
        self.layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](I, H, fused=fused, **rates)
        self.head = nn.Linear(H, I)
        rng = np.random.default_rng(seed)
        self.x = rnnbp.Tensor(rng.standard_normal((T, B, I)).astype(np.float32))
        self.y = rng.integers(0, I, (T * B,))
        self.params = list(self.layer.parameters()) + list(self.head.parameters())

    def __call__(self) -> float:
        for p in self.params:
            p.grad = None
        out, _ = self.layer(self.x)                                  # (T, B, H)
        logits = self.head(out).reshape(-1, self.x.shape[2])          # (T*B, I)
        loss = self.F.cross_entropy(logits, self.y)
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
    """The same training step in PyTorch."""

    def __init__(self, torch, cell: str, T, B, I, H, seed: int = 0):
        self.torch = torch
        torch.manual_seed(seed)
        self.layer = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](I, H)
        self.head = torch.nn.Linear(H, I)
        rng = np.random.default_rng(seed)
        self.x = torch.from_numpy(rng.standard_normal((T, B, I)).astype(np.float32))
        self.y = torch.from_numpy(rng.integers(0, I, (T * B,)))
        self.params = list(self.layer.parameters()) + list(self.head.parameters())

    def __call__(self) -> float:
        for p in self.params:
            p.grad = None
        out, _ = self.layer(self.x)
        loss = self.torch.nn.functional.cross_entropy(self.head(out).reshape(-1, self.x.shape[2]), self.y)
        loss.backward()
        return loss.item()


# ------------------------------------------------------------------- streaming

_STREAM_INPUTS = 64  # distinct x_t cycled through, so that no call sees a constant input


class StreamStep:
    """One time step per call under no_grad, state carried: ``out, state = layer(x_t, state)``, rnnbp."""

    def __init__(self, cell: str, T, B, I, H, fused: bool, seed: int = 0):
        import rnnbp
        from rnnbp import nn

        self.rnnbp = rnnbp
        rnnbp.manual_seed(seed)
        self.layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](I, H, fused=fused)
        rng = np.random.default_rng(seed)
        self.xs = [rnnbp.Tensor(rng.standard_normal((1, B, I)).astype(np.float32)) for _ in range(_STREAM_INPUTS)]
        self.state, self.t = None, 0

    def __call__(self) -> None:
        with self.rnnbp.no_grad():
            _, self.state = self.layer(self.xs[self.t % _STREAM_INPUTS], self.state)
        self.t += 1


class TorchStreamStep:
    """The same streaming call in PyTorch, under torch.no_grad()."""

    def __init__(self, torch, cell: str, T, B, I, H, seed: int = 0):
        self.torch = torch
        torch.manual_seed(seed)
        self.layer = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](I, H)
        rng = np.random.default_rng(seed)
        self.xs = [torch.from_numpy(rng.standard_normal((1, B, I)).astype(np.float32)) for _ in range(_STREAM_INPUTS)]
        self.state, self.t = None, 0

    def __call__(self) -> None:
        with self.torch.no_grad():
            _, self.state = self.layer(self.xs[self.t % _STREAM_INPUTS], self.state)
        self.t += 1


class StreamGemmBound:
    """Just the two matrix products of one streaming step, x_t @ W_ih^T and h @ W_hh^T, in NumPy."""

    def __init__(self, cell: str, T, B, I, H, seed: int = 0):
        rng = np.random.default_rng(seed)
        G = GATES[cell] * H
        f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
        self.x, self.h, self.w_ih, self.w_hh = f32(B, I), f32(B, H), f32(G, I), f32(G, H)
        self.gi, self.gh = np.empty((B, G), np.float32), np.empty((B, G), np.float32)

    def __call__(self) -> None:
        np.matmul(self.x, self.w_ih.T, out=self.gi)
        np.matmul(self.h, self.w_hh.T, out=self.gh)


# ---------------------------------------------------------------------- worker


def build(impl: str, cell: str, dims, streaming: bool, threads: int, variant: str = "plain"):
    """The callable to time, and the torch module if this process uses it (else None)."""
    if variant != "plain" and (streaming or impl not in ("fused", "composed")):
        raise SystemExit(f"_rnn_speed_worker: --variant {variant} is for rnnbp's training step (fused or composed)")
    if impl == "torch":
        import torch

        torch.set_num_threads(threads)
        cls = TorchStreamStep if streaming else TorchStep
        return cls(torch, cell, *dims), torch
    _limit_blas(threads)
    if impl == "gemm":
        return (StreamGemmBound if streaming else GemmBound)(cell, *dims), None
    if streaming:
        return StreamStep(cell, *dims, fused=impl == "fused"), None
    return Step(cell, *dims, fused=impl == "fused", variant=variant), None


def _limit_blas(threads: int) -> None:
    """Belt and braces over the environment: cap NumPy's BLAS pool (threadpoolctl, when present)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=threads, user_api="blas")


def _blas_threads() -> int | None:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return max(counts) if counts else None


def measure(fn, *, warmup: int, warmup_time: float, repeats: int, min_time: float, block: int) -> list[float]:
    """Seconds per call: one sample per block of ``block`` calls, after the warm-up."""
    t_end = time.perf_counter() + warmup_time
    done = 0
    while done < warmup or time.perf_counter() < t_end:
        fn()
        done += 1
    samples = []
    t_end = time.perf_counter() + min_time
    while len(samples) < repeats or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        for _ in range(block):
            fn()
        samples.append((time.perf_counter() - t0) / block)
    return samples


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", required=True, choices=IMPLS)
    parser.add_argument("--cell", required=True, choices=list(GATES))
    parser.add_argument("--dims", required=True, type=int, nargs=4, metavar=("T", "B", "I", "H"))
    parser.add_argument("--streaming", action="store_true", help="one time step per call under no_grad")
    parser.add_argument("--variant", default="plain", choices=VARIANTS,
                        help="regularisation inside the rnnbp layer (training step)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls, at least")
    parser.add_argument("--warmup-time", type=float, default=0.2, help="untimed seconds, at least")
    parser.add_argument("--repeats", type=int, default=5, help="timed samples, at least")
    parser.add_argument("--min-time", type=float, default=0.5, help="timed seconds, at least")
    parser.add_argument("--block", type=int, default=1, help="calls per timed sample")
    args = parser.parse_args(argv)

    fn, torch = build(args.impl, args.cell, args.dims, args.streaming, args.threads, args.variant)
    seconds = measure(fn, warmup=args.warmup, warmup_time=args.warmup_time, repeats=max(1, args.repeats),
                      min_time=args.min_time, block=max(1, args.block))
    result = {"impl": args.impl, "cell": args.cell, "dims": args.dims, "streaming": args.streaming,
              "variant": args.variant,
              "seconds": seconds, "median": float(np.median(seconds)), "blas_threads": _blas_threads(),
              "torch_threads": torch.get_num_threads() if torch is not None else None,
              "env_threads": os.environ.get("OMP_NUM_THREADS")}
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
