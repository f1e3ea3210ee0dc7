"""Benchmark: the char-LM training step on 2 MPI ranks x 1 thread against 1 process x 2 threads.

The step is ``demos/char_lm.py``'s: ``CharRNN`` (embedding -> GRU/LSTM -> linear head) over a chunk
of k1 = seq_len characters of B parallel streams, ``TBPTT(k1)`` with AdamW and gradient-norm
clipping, one update per step, float32, the hidden state carried from step to step. The ids are
random (the vocabulary of tiny-shakespeare, 65 characters): the time of a step does not depend
on the text.

* ``1x2``: one process with 2 BLAS threads runs the whole batch of B streams;
* ``2x1``: ``mpiexec -n 2``, one BLAS thread per rank, each rank runs B/2 streams and the
  gradients are averaged over the ranks (one allreduce per update, inside the engine). Rank 0
  reports; every step ends at the allreduce, so its step time is the slower rank's. The time
  spent in ``average_gradients`` (pack, allreduce, unpack) is reported beside it.

Both do the same work per update (B * k1 characters) and give the same update. Each
configuration runs in fresh processes, launched in alternating rounds (1x2, 2x1, 1x2, ...),
so both sample the same stretch of machine noise; each process warms up, times ``--steps``
steps (a fixed count: the ranks must agree on it) and reports their median; the table gives
the median over the rounds of these medians and their spread [min-max].

Commands (the figures are only as quiet as the machine: on a shared one, say so)::

    python demos/benchmarks/mpi_speed.py                           # the demo's default model, 5 rounds
    python demos/benchmarks/mpi_speed.py --size small --rounds 3   # H=128, one layer: quicker
    python demos/benchmarks/mpi_speed.py --with-1x1                # and 1 process x 1 thread, a baseline

Needs ``pip install 'rnnbp[mpi]'`` (mpi4py and the mpich wheel, whose mpiexec sits beside python).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
CHAR_LM = HERE.parents[1] / "char_lm.py"
SIZES = {  # overrides of char_lm.Config
    "default": {},  # the demo's model: 2-layer GRU, H=384, E=64, B=64, k1=64
    "small": {"hidden": 128, "layers": 1},
}
VOCAB = 65


def _char_lm():
    spec = importlib.util.spec_from_file_location("char_lm", CHAR_LM)
    module = importlib.util.module_from_spec(spec)
    sys.modules["char_lm"] = module
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------- worker
def worker(args) -> None:
    """Time the step in this process (one rank of several, or alone); rank 0 prints a JSON line."""
    import rnnbp
    import rnnbp.distributed as dist
    from rnnbp import optim
    from rnnbp.bptt import TBPTT, sequence_cross_entropy
    from rnnbp.distributed import mpi as dist_mpi

    rnnbp.set_num_threads(args.threads)
    dist.init_process_group()
    K, rank = dist.get_world_size(), dist.get_rank()
    char_lm = _char_lm()
    cfg = char_lm.Config(**SIZES[args.size], dropout=0.0)
    if cfg.batch_size % K:
        raise SystemExit(f"mpi_speed: batch size {cfg.batch_size} does not split over {K} ranks")
    rnnbp.manual_seed(0)
    model = char_lm.CharRNN(VOCAB, cfg)
    opt = optim.AdamW(model.parameters(), lr=cfg.lr)
    engine = TBPTT(model, sequence_cross_entropy, opt, k1=cfg.seq_len, clip_norm=cfg.clip_norm)
    rng = np.random.default_rng(1)
    n_steps = args.warmup + args.steps
    ids = rng.integers(0, VOCAB, (n_steps * cfg.seq_len + 1, cfg.batch_size))[:, rank::K]  # (T, B / K)

    spent = []  # seconds in average_gradients, per call
    averaging = dist_mpi.average_gradients

    def timed_average(*a, **kw):
        t0 = time.perf_counter()
        out = averaging(*a, **kw)
        spent.append(time.perf_counter() - t0)
        return out

    dist_mpi.average_gradients = timed_average
    carry, times = None, []
    for s in range(n_steps):
        x = ids[s * cfg.seq_len:(s + 1) * cfg.seq_len]
        y = ids[s * cfg.seq_len + 1:(s + 1) * cfg.seq_len + 1]
        t0 = time.perf_counter()
        result = engine.run(x, y, carry=carry)
        times.append(time.perf_counter() - t0)
        carry = result.carry
    from threadpoolctl import threadpool_info

    blas = max((p.get("num_threads", 0) for p in threadpool_info() if p.get("user_api") == "blas"), default=None)
    if rank == 0:
        timed = times[args.warmup:]
        print(json.dumps({"median": float(np.median(timed)), "steps": timed, "world": K, "blas_threads": blas,
                          "allreduce": float(np.median(spent[args.warmup:])) if len(spent) > args.warmup else 0.0,
                          "params": int(sum(p.numpy().size for p in model.parameters())),
                          "batch": cfg.batch_size, "seq_len": cfg.seq_len}), flush=True)


# ----------------------------------------------------------------- parent
def _env(threads: int) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    root = str(HERE.parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


CONFIGS = {"1x2": (1, 2), "2x1": (2, 1), "1x1": (1, 1)}  # ranks, BLAS threads per rank


def run(config: str, args, mpiexec: str | None) -> dict:
    ranks, threads = CONFIGS[config]
    cmd = [sys.executable, str(HERE), "--worker", "--size", args.size, "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--threads", str(threads)]
    if ranks > 1:
        cmd = [mpiexec, "-n", str(ranks), *cmd]
    proc = subprocess.run(cmd, env=_env(threads), capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"mpi_speed: {config} failed (exit {proc.returncode}):\n{proc.stderr.strip()[-2000:]}")
    result = json.loads(lines[-1])
    if result["blas_threads"] is not None and result["blas_threads"] > threads:
        print(f"  note: {config} ran with {result['blas_threads']} BLAS threads (asked for {threads})")
    return result


def _text(values, scale=1e3) -> str:
    v = scale * np.asarray(values)
    return f"{np.median(v):7.1f} [{v.min():.1f}-{v.max():.1f}]"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="default")
    parser.add_argument("--rounds", type=int, default=5, help="processes per configuration, alternating")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (numba, caches)")
    parser.add_argument("--with-1x1", action="store_true", help="also time 1 process x 1 thread (a baseline)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return {}
    from rnnbp.distributed import find_mpiexec

    mpiexec = find_mpiexec()
    if mpiexec is None or importlib.util.find_spec("mpi4py") is None:
        raise SystemExit("mpi_speed: needs mpi4py and mpiexec: pip install 'rnnbp[mpi]'")
    configs = ["1x2", "2x1"] + (["1x1"] if args.with_1x1 else [])
    medians = {c: [] for c in configs}
    allreduce, info = [], None
    for _ in range(args.rounds):
        for config in configs:  # alternating, so all see the same noise
            result = run(config, args, mpiexec)
            medians[config].append(result["median"])
            if config == "2x1":
                allreduce.append(result["allreduce"])
            info = result
    chars = info["batch"] * info["seq_len"]
    print(f"mpi_speed: char-LM step ({args.size}: {info['params']:,} parameters, B={info['batch']}, "
          f"k1={info['seq_len']}, {chars:,} characters per update), float32; {args.rounds} alternating rounds, "
          f"{args.steps} timed steps per process after {args.warmup} warm-up; median over rounds [min-max]")
    print(f"  1 process x 2 threads : {_text(medians['1x2'])} ms/step")
    print(f"  2 ranks x 1 thread    : {_text(medians['2x1'])} ms/step  "
          f"(of which average_gradients {_text(allreduce)} ms)")
    if args.with_1x1:
        print(f"  1 process x 1 thread  : {_text(medians['1x1'])} ms/step")
    ratio = float(np.median(medians["1x2"]) / np.median(medians["2x1"]))
    print(f"  speed-up of 2x1 over 1x2: {ratio:.2f}x  (time 1x2 / time 2x1)")
    return {**medians, "allreduce": allreduce, "ratio": ratio}


if __name__ == "__main__":
    main()
