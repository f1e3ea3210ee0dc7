"""Benchmark: a hand-written recurrence that fills a preallocated output, ``out[t] = h``, as many
PyTorch programs do (seq2seq decoders, custom cells), forward and backward, with the peak memory.

    python demos/benchmarks/indexed_fill.py                 # rnnbp
    python demos/benchmarks/indexed_fill.py --torch         # the same program in PyTorch
    python demos/benchmarks/indexed_fill.py --accumulate    # out[t] += h instead
    python demos/benchmarks/indexed_fill.py --masking       # rows of a graph tensor written under no_grad

Each run is its own process (the peak resident memory is the process's). Inside a recorded graph
rnnbp writes ``out[t] = h`` into ``out``'s own array when nothing else holds it (``autograd.views
.sole_owner``); before, every step copied ``out``, so time and memory grew as T squared.
"""
import argparse
import resource
import time

import numpy as np


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch", action="store_true", help="run the program in PyTorch instead")
    parser.add_argument("--steps", type=int, default=1600)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--accumulate", action="store_true", help="out[t] += h (a view changed in place) instead of out[t] = h")
    parser.add_argument("--masking", action="store_true",
                        help="instead: y = x * 2 (steps, 256) in the graph, then y[t] = 0.5 for every row under no_grad")
    args = parser.parse_args(argv)
    if args.torch:
        import torch as lib
    else:
        import rnnbp as lib
    T, B, H = args.steps, args.batch, args.hidden
    rng = np.random.default_rng(0)
    f64 = lib.float64
    if args.masking:
        return masking(lib, T)
    x = lib.tensor(rng.standard_normal((T, B, H)), dtype=f64)
    w = lib.tensor(rng.standard_normal((H, H)) * 0.1, dtype=f64, requires_grad=True)
    out = lib.zeros(T, B, H, dtype=f64)
    h = lib.zeros(B, H, dtype=f64)
    start = time.perf_counter()
    for t in range(T):
        h = lib.tanh(x[t] @ w + h)
        if args.accumulate:
            out[t] += h
        else:
            out[t] = h
    loss = (out * out).sum()
    forward = time.perf_counter() - start
    start = time.perf_counter()
    loss.backward()
    backward = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'torch' if args.torch else 'rnnbp'}{' +=' if args.accumulate else ''}: T={T} B={B} H={H} float64  forward {forward:.3f} s  "
          f"backward {backward:.3f} s  peak RSS {peak:.0f} MB  sum of dL/dW {float(w.grad.sum()):.6f}")
    return {"forward": forward, "backward": backward, "peak_mb": peak, "grad": np.asarray(w.grad.detach().numpy())}


def masking(lib, T: int) -> dict:
    """Rows of a graph tensor overwritten one by one under ``no_grad`` (masking logits, say)."""
    x = lib.ones(T, 256, dtype=lib.float64, requires_grad=True)
    y = x * 2
    start = time.perf_counter()
    with lib.no_grad():
        for t in range(T):
            y[t] = 0.5
    seconds = time.perf_counter() - start
    print(f"{'torch' if lib.__name__ == 'torch' else 'rnnbp'} masking: {T} rows of 256 float64 under no_grad  {seconds:.3f} s")
    return {"seconds": seconds}


if __name__ == "__main__":
    main()
