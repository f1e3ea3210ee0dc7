"""Benchmark: one training step of a 784-512-512-10 ReLU MLP, rnnbp against hand-written NumPy.

Both do the same work: forward, softmax cross-entropy (mean over the batch),
backward to every weight and bias, and an SGD update, in float32. The ratio
rnnbp / NumPy is the cost of the autograd core (graph recording, dispatch,
gradient accumulation) over code that knows its own derivatives.

    python demos/benchmarks/mlp_speed.py [--batch 128] [--rounds 10] [--block 11] [--profile]

The two are timed in one run, alternating blocks of steps (AAAA BBBB AAAA ...)
so that both see the same machine noise. Within a block each step is timed on
its own and the first step is dropped: it pays for the other implementation
having evicted this one's 2.7 MB of weights from cache, which a training loop,
running the same step back to back, never does. The medians of the remaining
(steady-state) steps are reported with their ratio. ``--profile`` then runs
rnnbp's step under cProfile and prints where its time goes (after the timing,
so it does not change the figures above).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import rnnbp
from rnnbp import nn, optim
from rnnbp.nn import functional as F

SIZES = (784, 512, 512, 10)


class NumpyMLP:
    """The same MLP with its forward and backward written out by hand."""

    def __init__(self, params: list[np.ndarray], lr: float):
        self.params, self.lr = params, lr  # [W1, b1, W2, b2, W3, b3], PyTorch layout (out, in)

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        W1, b1, W2, b2, W3, b3 = self.params
        n = x.shape[0]
        h1 = x @ W1.T
        h1 += b1
        np.maximum(h1, 0, out=h1)
        h2 = h1 @ W2.T
        h2 += b2
        np.maximum(h2, 0, out=h2)
        z = h2 @ W3.T
        z += b3
        z -= z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -logp[np.arange(n), y].mean()
        dz = np.exp(logp)
        dz[np.arange(n), y] -= 1
        dz /= n
        grads = [None] * 6
        grads[4], grads[5] = dz.T @ h2, dz.sum(axis=0)
        dh2 = dz @ W3
        dh2 *= h2 > 0
        grads[2], grads[3] = dh2.T @ h1, dh2.sum(axis=0)
        dh1 = dh2 @ W2
        dh1 *= h1 > 0
        grads[0], grads[1] = dh1.T @ x, dh1.sum(axis=0)
        for p, g in zip(self.params, grads):
            p -= self.lr * g
        return float(loss)


def build(seed: int):
    rnnbp.manual_seed(seed)
    layers = []
    for i in range(len(SIZES) - 1):
        layers.append(nn.Linear(SIZES[i], SIZES[i + 1]))
        if i < len(SIZES) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=10, help="blocks timed per implementation")
    parser.add_argument("--block", type=int, default=11, help="training steps per block (the first is dropped)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="then profile rnnbp's step with cProfile")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], args.batch)
    lr = 0.01

    model = build(0)
    opt = optim.SGD(model.parameters(), lr=lr)
    xt = rnnbp.Tensor(x)
    reference = NumpyMLP([p.numpy().copy() for p in model.parameters()], lr)

    def rnnbp_step():
        opt.zero_grad()
        loss = F.cross_entropy(model(xt), y)
        loss.backward()
        opt.step()
        return loss.item()

    # Same weights, same data: the two must agree before their times mean anything.
    l_ours, l_ref = rnnbp_step(), reference.step(x, y)
    if not np.isclose(l_ours, l_ref, rtol=1e-4):
        raise SystemExit(f"mismatch: rnnbp loss {l_ours} vs NumPy loss {l_ref}")

    for _ in range(args.warmup):
        rnnbp_step()
        reference.step(x, y)
    times = {"rnnbp": [], "numpy": []}
    for _ in range(args.rounds):
        for name, fn in (("rnnbp", rnnbp_step), ("numpy", lambda: reference.step(x, y))):
            block = []
            for _ in range(args.block):
                t0 = time.perf_counter()
                fn()
                block.append(time.perf_counter() - t0)
            times[name].extend(block[1:] if len(block) > 1 else block)
    med = {k: float(np.median(v)) for k, v in times.items()}
    ratio = med["rnnbp"] / med["numpy"]
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {args.batch}, float32, one SGD training step "
          f"(median of {len(times['rnnbp'])} steady-state steps, {args.rounds} alternating blocks):")
    print(f"  hand-written NumPy : {med['numpy'] * 1e3:8.2f} ms")
    print(f"  rnnbp autograd     : {med['rnnbp'] * 1e3:8.2f} ms")
    print(f"  ratio rnnbp/NumPy  : {ratio:8.3f}  (autograd overhead {100 * (ratio - 1):+.1f} %)")
    if args.profile:
        profile(rnnbp_step, steps=args.rounds * args.block)
    return {"numpy_ms": med["numpy"] * 1e3, "rnnbp_ms": med["rnnbp"] * 1e3, "ratio": ratio}


def profile(step, steps: int, top: int = 25) -> None:
    """Run ``step`` ``steps`` times under cProfile; print the ``top`` functions by own time."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    print(f"\nrnnbp step under cProfile ({steps} steps; the profiler inflates Python-side costs):")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(top)


if __name__ == "__main__":
    main(sys.argv[1:])
