"""Benchmark: RNN, LSTM and GRU layers, rnnbp fused vs composed vs PyTorch vs the GEMM bound, each in its own process.

The training step: the layer over a (T, B, I) float32 sequence, a linear head
on every step, cross-entropy on every step (C = I classes, as in a character
model), backward to every parameter. Implementations:

* fused     - rnnbp's fused kernel (one node per layer and direction)
* composed  - the same rnnbp layer unrolled from its cell on the tape (``fused=False``)
* GEMM      - only the matrix products of the same step, in NumPy: a lower
              bound for any NumPy implementation
* torch     - torch.nn of the same configuration, when torch is installed
              (optional, never a dependency of rnnbp)

Sizes (T, B, I, H): tiny (100, 1, 4, 4) measures the fixed cost of a time step
and is printed in microseconds per time step (step time / T, forward +
backward); small (50, 32, 32, 64), medium (100, 64, 65, 256) and large
(100, 64, 128, 512) are printed in milliseconds per training step.

``--streaming`` times inference one time step per call instead: B = 1, I = 40,
H = 128, ``with rnnbp.no_grad(): out, state = layer(x_t, state)`` with x_t of
shape (1, 1, 40) and the state carried from call to call (torch: the same
under ``torch.no_grad()``), printed in microseconds per call.

How the comparison is kept fair:

* Each implementation is timed in its OWN fresh process (``_rnn_speed_worker.py``):
  no other library's thread pool exists in the process being timed. (Timing
  PyTorch right after rnnbp in one process made torch's pool and OpenBLAS's
  spin against each other: a small GRU took 24 ms there and 9-12 ms alone.)
* Every process gets the same thread count (``--threads``, default 2):
  OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS in its
  environment, plus ``torch.set_num_threads`` / threadpoolctl inside; each
  worker reports the counts it actually ran with, and a mismatch is printed.
* Processes are launched in alternating rounds (fused, composed, GEMM, torch,
  fused, composed, ...), ``--rounds`` of them, so that every implementation
  samples the same stretch of machine noise.
* Each process warms up (at least 2 steps and 0.2 s: caches, numba's compiled
  loops, the allocator), then times at least ``--repeats`` steps and at least
  ``--min-time`` seconds, and reports the median of its steps.
* The table gives, per implementation, the median over the rounds of these
  per-process medians and their spread [min-max over the rounds]; ratios are
  quotients of the medians of this one run. Parent does no work while a worker runs.

Commands (the figures are only as quiet as the machine; run them when nothing else is):

    python demos/benchmarks/rnn_speed.py                                  # all cells, all sizes, 5 rounds
    python demos/benchmarks/rnn_speed.py --sizes tiny small --cells lstm --rounds 2
    python demos/benchmarks/rnn_speed.py --streaming [--cells lstm gru rnn] [--rounds 5]
    python demos/benchmarks/rnn_speed.py --no-composed --no-torch --threads 1
    python demos/benchmarks/rnn_speed.py --profile --sizes medium --cells gru   # where one fused step's time goes

``--variants`` times the regularised fused layers instead (``nn.recurrent.regularization``,
each at rate 0.25, masks drawn at every step): one process per variant, alternating rounds as
above, and each variant's ratio to the plain fused step (the target is <= 1.15x at medium):

    python demos/benchmarks/rnn_speed.py --sizes medium --variants plain input_dropout recurrent_dropout \\
        zoneout weight_dropout

``--profile`` runs in this process (rnnbp only): the fused step split into
layer forward, head + loss forward and backward, then cProfile's top functions
of one step.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np

SIZES = {  # T, B, I, H
    "tiny": (100, 1, 4, 4),
    "small": (50, 32, 32, 64),
    "medium": (100, 64, 65, 256),
    "large": (100, 64, 128, 512),
}
STREAMING = (1, 1, 40, 128)  # T (one step per call), B, I, H
CELLS = ("lstm", "gru", "rnn")
PER_TIME_STEP = {"tiny"}  # sizes printed in us per time step rather than ms per training step
WORKER = Path(__file__).resolve().with_name("_rnn_speed_worker.py")
COLUMNS = {"fused": "fused", "composed": "composed", "gemm": "GEMM", "torch": "torch"}


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _child_env(threads: int) -> dict:
    """The parent's environment with the thread counts fixed, and this rnnbp first on the path."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    spec = importlib.util.find_spec("rnnbp")  # finds, does not import
    if spec is not None and spec.origin:
        root = str(Path(spec.origin).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def run_worker(impl: str, cell: str, dims, *, streaming: bool, args, env: dict, variant: str = "plain") -> dict:
    """One fresh process timing one implementation; its JSON result."""
    cmd = [sys.executable, str(WORKER), "--impl", impl, "--cell", cell, "--dims", *map(str, dims),
           "--threads", str(args.threads), "--repeats", str(args.repeats), "--min-time", str(args.min_time)]
    if variant != "plain":
        cmd += ["--variant", variant]
    if streaming:
        cmd += ["--streaming", "--block", str(args.block)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"rnn_speed: worker {impl} {cell} {list(dims)} failed (exit {proc.returncode}):\n"
                           f"{proc.stderr.strip()[-2000:]}")
    result = json.loads(lines[-1])
    blas, tt = result.get("blas_threads"), result.get("torch_threads")
    if (blas is not None and blas > args.threads) or (tt is not None and tt != args.threads):
        print(f"  note: worker {impl} ran with BLAS threads {blas}, torch threads {tt} "
              f"(asked for {args.threads})")
    return result


def _cell_text(values, scale: float) -> str:
    if not values:
        return "-"
    v = scale * np.asarray(values)
    return f"{np.median(v):.3g} [{v.min():.3g}-{v.max():.3g}]"


def _ratio(med: dict, a: str, b: str) -> str:
    return f"{med[a] / med[b]:.2f}x" if a in med and b in med else "-"


def _header(args, impls, torch_version) -> None:
    what = ("streaming inference: one time step per call under no_grad, state carried, "
            f"B={STREAMING[1]} I={STREAMING[2]} H={STREAMING[3]}" if args.streaming else
            "one training step: layer over (T,B,I) + linear head + cross-entropy on every step + backward")
    numba = _version("numba")
    print(f"rnn_speed: {what}, float32")
    print(f"each implementation runs in its own process, launched in alternating rounds "
          f"({', '.join(COLUMNS[i] for i in impls)}, ...) x {args.rounds}")
    print(f"threads: {args.threads} per process (OMP/OPENBLAS/MKL_NUM_THREADS={args.threads}"
          f"{', torch.set_num_threads(%d)' % args.threads if torch_version else ''}); "
          f"numpy {np.__version__}, torch {torch_version or 'not installed / skipped'}, "
          f"numba {numba or 'not installed'}; python {sys.version.split()[0]}")
    per = (f"blocks of {args.block} calls" if args.streaming else "steps")
    print(f"per process: warm-up, then >= {args.repeats} timed {per} and >= {args.min_time:g} s, median; "
          f"table: median over the {args.rounds} processes [min-max]")
    if args.streaming:
        print("unit: microseconds per call (one time step)")
    else:
        print("unit: tiny in microseconds per time step (step / T, forward + backward); "
              "other sizes in milliseconds per training step")


def benchmark(args) -> dict:
    """Run the table; {(cell, size): {impl: median ms per step}} (size 'streaming' with --streaming)."""
    torch_version = None if args.no_torch else _version("torch")
    if torch_version is not None and importlib.util.find_spec("torch") is None:
        torch_version = None
    impls = ["fused"] + ([] if args.no_composed else ["composed"]) + ["gemm"] + (["torch"] if torch_version else [])
    env = _child_env(args.threads)
    _header(args, impls, torch_version)
    width = 24
    print(f"{'cell':5} {'size':9} {'unit':9} " + " ".join(f"{COLUMNS[i]:>{width}}" for i in COLUMNS)
          + f"  {'fused/torch':>11} {'composed/torch':>14} {'composed/fused':>14} {'fused/GEMM':>10}")
    sizes = ["streaming"] if args.streaming else args.sizes
    results = {}
    for size in sizes:
        dims = STREAMING if args.streaming else SIZES[size]
        if args.streaming:
            unit, scale = "us/call", 1e6
        elif size in PER_TIME_STEP:
            unit, scale = "us/tstep", 1e6 / dims[0]
        else:
            unit, scale = "ms/step", 1e3
        for cell in args.cells:
            per_process = {i: [] for i in impls}
            for _ in range(args.rounds):
                for impl in impls:  # A, B, C, A, B, C, ...
                    per_process[impl].append(
                        run_worker(impl, cell, dims, streaming=args.streaming, args=args, env=env)["median"])
            med = {i: float(np.median(v)) for i, v in per_process.items()}
            results[(cell, size)] = {i: 1e3 * m for i, m in med.items()}
            print(f"{cell:5} {size:9} {unit:9} "
                  + "  ".join(f"{_cell_text(per_process.get(i), scale):>{width}}" for i in COLUMNS)
                  + f"  {_ratio(med, 'fused', 'torch'):>11} {_ratio(med, 'composed', 'torch'):>14}"
                  f" {_ratio(med, 'composed', 'fused'):>14} {_ratio(med, 'fused', 'gemm'):>10}", flush=True)
    return results


def benchmark_variants(args) -> dict:
    """The regularised fused layers against the plain one: {(cell, size): {variant: median ms per step}}."""
    env = _child_env(args.threads)
    variants = list(dict.fromkeys(["plain"] + list(args.variants)))
    print("rnn_speed: one fused training step (layer + linear head + cross-entropy + backward), float32, "
          "regularised inside the layer at rate 0.25, masks drawn every step")
    print(f"each variant in its own process, alternating rounds x {args.rounds}; threads {args.threads} per process; "
          "ms per step, median over processes [min-max], and the ratio to plain")
    width = 22
    print(f"{'cell':5} {'size':7} " + " ".join(f"{v:>{width}}" for v in variants))
    results = {}
    for size in args.sizes:
        dims = SIZES[size]
        scale = 1e6 / dims[0] if size in PER_TIME_STEP else 1e3
        for cell in args.cells:
            per_process = {v: [] for v in variants}
            for _ in range(args.rounds):
                for v in variants:
                    per_process[v].append(run_worker("fused", cell, dims, streaming=False, args=args, env=env,
                                                     variant=v)["median"])
            med = {v: float(np.median(t)) for v, t in per_process.items()}
            results[(cell, size)] = {v: 1e3 * m for v, m in med.items()}
            texts = [_cell_text(per_process[v], scale) + ("" if v == "plain" else f" {med[v] / med['plain']:.2f}x")
                     for v in variants]
            print(f"{cell:5} {size:7} " + " ".join(f"{t:>{width}}" for t in texts), flush=True)
    return results


def _load_worker():
    """The worker module (Step lives there), loaded by path: demos/ is not a package."""
    name = "_rnn_speed_worker"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, WORKER)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def profile(cells, sizes, rounds: int, threads: int, top: int = 12) -> dict:
    """Median ms of each phase of the fused step: layer forward, head + loss forward, backward.

    Then cProfile's ``top`` functions (by own time) of one more step. In this
    process, rnnbp only, BLAS limited to ``threads`` for the duration.
    """
    import cProfile
    import pstats

    import rnnbp
    from rnnbp.nn import functional as F

    worker = _load_worker()
    results = {}
    with rnnbp.blas_threads(threads):
        for size in sizes:
            for cell in cells:
                step = worker.Step(cell, *SIZES[size], fused=True)
                step()
                phases = {"layer forward": [], "head+loss forward": [], "backward": []}
                for _ in range(rounds):
                    for p in step.params:
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
                prof = cProfile.Profile()
                prof.runcall(step)
                pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(top)
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--rounds", type=int, default=5, help="processes per implementation, alternating")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps (or blocks) per process, at least")
    parser.add_argument("--min-time", type=float, default=0.5, help="timed seconds per process, at least")
    parser.add_argument("--threads", type=int, default=2, help="threads per process, for every implementation")
    parser.add_argument("--streaming", action="store_true",
                        help="instead, time one time step per call under no_grad (B=1, I=40, H=128)")
    parser.add_argument("--block", type=int, default=100, help="streaming calls per timed sample")
    parser.add_argument("--no-composed", action="store_true", help="skip the (slow) composed path")
    parser.add_argument("--variants", nargs="+", default=None,
                        choices=["plain", "input_dropout", "recurrent_dropout", "zoneout", "weight_dropout"],
                        help="instead, time the fused layer with each regularisation against the plain one")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument("--profile", action="store_true",
                        help="instead, split the fused step into layer forward, head forward and backward, "
                             "and cProfile one step")
    args = parser.parse_args(argv)
    for flag in ("rounds", "repeats", "threads", "block"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    if args.profile:
        return profile(args.cells, args.sizes, args.rounds, args.threads)
    if args.variants:
        return benchmark_variants(args)
    return benchmark(args)


if __name__ == "__main__":
    main(sys.argv[1:])
