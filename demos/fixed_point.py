"""A fixed-point network trained by recurrent backpropagation, against full BPTT through its iterations.

    python demos/fixed_point.py             # full run (about 25 s on 2 cores)
    python demos/fixed_point.py --quick     # seconds, for smoke tests

Classifies scikit-learn's 8x8 digits (offline) with one equilibrium layer and a linear head:
the hidden state is the fixed point of Pineda's relaxing network

    h* = h* + step * (tanh(x W_ih^T + b_ih + h* W_hh^T + b_hh) - h*),

i.e. h* = tanh(x W_ih^T + b_ih + h* W_hh^T + b_hh), reached by Euler steps of dh/dt = -h + tanh(...)
(``step`` < 1 relaxes slowly, as a continuous-time network would, and sets how many iterations a
tolerance takes). W_hh is kept contractive by ``nn.FixedPointRNNCell``. Training runs ``nn.FixedPoint``
with the Almeida-Pineda (Neumann) adjoint, and again with BPTT from the same initialisation. Then,
on the trained model and one batch, for tolerances that need more and more iterations, it
measures forward + backward with recurrent backpropagation ("neumann", "gmres") and with BPTT
through every iteration ("bptt"): peak memory (tracemalloc), time per training step, and how far
apart the gradients are, as ratios measured in the same run.
"""
from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from dataclasses import dataclass, replace

import numpy as np

import rnnbp
from rnnbp import nn, optim
from rnnbp.data import batches, load_ocr_digits
from rnnbp.nn import functional as F


@dataclass
class Config:
    hidden: int = 128              # units of the equilibrium layer
    step: float = 0.2              # Euler step of the relaxation; 1 would iterate the tanh cell itself
    max_norm: float = 0.9          # cap on each row's absolute sum in W_hh (keeps the map contractive)
    tol: float = 1e-4              # forward tolerance while training (max |h_k+1 - h_k|)
    backward: str = "neumann"      # adjoint solver while training
    train_bptt: bool = True        # also train the same initial network with BPTT, for its accuracy and time
    lr: float = 3e-3               # Adam learning rate, cosine-annealed to 0 over the epochs
    batch_size: int = 64
    epochs: int = 30
    compare_tols: tuple = (1e-2, 1e-4, 1e-6)  # tolerances of the RBP-vs-BPTT comparison
    compare_batch: int = 64        # batch size of the comparison
    repeats: int = 5               # timed repetitions per measurement (the median is reported)
    blas_threads: int = 1          # BLAS threads, 0: leave as is
    seed: int = 0                  # seeds the data split, the initialisation and the batch order


class RelaxedCell(nn.Module):
    """One Euler step of dh/dt = -h + cell(x, h): h' = h + step * (cell(x, h) - h).

    Same fixed points as ``cell``; contraction rate 1 - step * (1 - rate of the cell), so
    the iteration and the adjoint need about 1/step times more steps.
    Shape: x (N, 64), h (N, H) -> (N, H).
    """

    def __init__(self, cell: nn.Module, step: float):
        super().__init__()
        self.cell, self.step = cell, float(step)
        self.state_size = cell.state_size

    def forward(self, x, h):
        return h + (self.cell(x, h) - h) * self.step


class FixedPointNet(nn.Module):
    """x (N, 64) -> h* (N, H) by ``nn.FixedPoint`` -> logits (N, 10) by a linear head."""

    def __init__(self, cfg: Config):
        super().__init__()
        cell = nn.FixedPointRNNCell(64, cfg.hidden, max_norm=cfg.max_norm)
        self.equilibrium = nn.FixedPoint(RelaxedCell(cell, cfg.step), tol=cfg.tol, max_iter=2000,
                                         backward=cfg.backward)
        self.head = nn.Linear(cfg.hidden, 10)

    def forward(self, x):
        return self.head(self.equilibrium(x))


def standardizer(x_train: np.ndarray):
    """Per-pixel (x - mean) / (std + 0.1) with training-set statistics, as float32 tensors."""
    mean, scale = x_train.mean(axis=0), (x_train.std(axis=0) + 0.1).astype(np.float32)
    return lambda x: rnnbp.Tensor(((x - mean) / scale).astype(np.float32))


@rnnbp.no_grad()
def accuracy(model: nn.Module, x: rnnbp.Tensor, y: np.ndarray) -> float:
    return float((model(x).argmax(dim=1).numpy() == y).mean())


def train(cfg: Config, data, standardize, log=print) -> tuple[FixedPointNet, dict]:
    """Adam on cross-entropy for ``cfg.epochs``; returns the model and its accuracies and time."""
    rnnbp.manual_seed(cfg.seed)
    model = FixedPointNet(cfg)
    opt = optim.Adam(model.parameters(), lr=cfg.lr)
    schedule = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    x_val = standardize(data.x_val)
    start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        losses, forward_iters, backward_iters = [], [], []
        for xb, yb in batches(data.x_train, data.y_train, batch_size=cfg.batch_size):
            opt.zero_grad()
            loss = F.cross_entropy(model(standardize(xb)), yb)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            forward_iters.append(model.equilibrium.last_forward.iterations)
            if model.equilibrium.last_backward is not None:
                backward_iters.append(model.equilibrium.last_backward.iterations)
        schedule.step()
        adjoint = f", adjoint {np.mean(backward_iters):5.1f}" if backward_iters else ""
        log(f"epoch {epoch:3d}  loss {np.mean(losses):.4f}  val acc {100 * accuracy(model, x_val, data.y_val):6.2f} %"
            f"  iterations: forward {np.mean(forward_iters):5.1f}{adjoint}")
    seconds = time.perf_counter() - start
    return model, {"train_seconds": seconds, "val_acc": accuracy(model, x_val, data.y_val),
                   "test_acc": accuracy(model, standardize(data.x_test), data.y_test)}


def _training_step(model: FixedPointNet, x: rnnbp.Tensor, y: np.ndarray) -> None:
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()


def _gradients(model: FixedPointNet) -> np.ndarray:
    return np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])


def _peak_bytes(model, x, y) -> int:
    """Peak traced allocation of one forward + backward, above what was allocated before it."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        _training_step(model, x, y)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def _seconds(model, x, y, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _training_step(model, x, y)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def compare(cfg: Config, model: FixedPointNet, x: rnnbp.Tensor, y: np.ndarray, log=print) -> list[dict]:
    """For each tolerance: RBP ("neumann", "gmres") against BPTT on the same weights and batch."""
    layer, saved = model.equilibrium, (model.equilibrium.tol, model.equilibrium.backward)
    rows = []
    try:
        for tol in cfg.compare_tols:
            measured = {}
            for method in ("bptt", "neumann", "gmres"):
                layer.tol = layer.backward_tol = tol
                layer.backward = method
                _training_step(model, x, y)  # warm-up, and the gradients compared below
                grads = _gradients(model)
                measured[method] = dict(
                    grads=grads, iterations=layer.last_forward.iterations,
                    vjps=None if layer.last_backward is None else layer.last_backward.iterations,
                    peak=_peak_bytes(model, x, y), seconds=_seconds(model, x, y, cfg.repeats))
            bptt = measured["bptt"]
            for method in ("neumann", "gmres"):
                m = measured[method]
                rows.append(dict(
                    tol=tol, method=method, iterations=m["iterations"], vjps=m["vjps"],
                    peak_rbp=m["peak"], peak_bptt=bptt["peak"], memory_ratio=bptt["peak"] / m["peak"],
                    seconds_rbp=m["seconds"], seconds_bptt=bptt["seconds"],
                    time_ratio=bptt["seconds"] / m["seconds"],
                    grad_diff=float(np.abs(m["grads"] - bptt["grads"]).max() / np.abs(bptt["grads"]).max())))
    finally:
        layer.tol = layer.backward_tol = saved[0]
        layer.backward = saved[1]
    log(f"\nRBP against BPTT through the iterations, one training step on a batch of {len(y)} "
        f"(peak memory by tracemalloc, time the median of {cfg.repeats}):")
    log(f"{'tol':>7} {'iters':>5} {'method':>8} {'VJPs':>5} {'peak RBP':>9} {'peak BPTT':>9} {'BPTT/RBP':>8}"
        f" {'ms RBP':>7} {'ms BPTT':>7} {'BPTT/RBP':>8} {'|g_rbp - g_bptt|/|g|':>21}")
    for r in rows:
        log(f"{r['tol']:7.0e} {r['iterations']:5d} {r['method']:>8} {r['vjps']:5d} {r['peak_rbp'] / 1e6:7.2f}MB "
            f"{r['peak_bptt'] / 1e6:7.2f}MB {r['memory_ratio']:7.1f}x {1e3 * r['seconds_rbp']:7.1f} "
            f"{1e3 * r['seconds_bptt']:7.1f} {r['time_ratio']:7.2f}x {r['grad_diff']:21.1e}")
    return rows


def run(cfg: Config, log=print) -> dict:
    start = time.perf_counter()
    with rnnbp.blas_threads(cfg.blas_threads):
        data = load_ocr_digits(seed=cfg.seed)
        standardize = standardizer(data.x_train)
        log(f"training with recurrent backprop ({cfg.backward} adjoint), forward tol {cfg.tol:g}:")
        model, result = train(cfg, data, standardize, log)
        log(f"test acc {100 * result['test_acc']:.2f} % ({len(data.y_test)} images), val acc "
            f"{100 * result['val_acc']:.2f} %, in {result['train_seconds']:.1f} s")
        if cfg.train_bptt:
            log("\nthe same network from the same initialisation, trained with BPTT through the iterations:")
            _, result["bptt"] = train(replace(cfg, backward="bptt"), data, standardize, log)
            log(f"test acc {100 * result['bptt']['test_acc']:.2f} %, val acc {100 * result['bptt']['val_acc']:.2f} %, "
                f"in {result['bptt']['train_seconds']:.1f} s")
        n = cfg.compare_batch
        result["comparison"] = compare(cfg, model, standardize(data.x_train[:n]), data.y_train[:n], log)
    result.update(config=cfg, model=model, seconds=time.perf_counter() - start)
    log(f"\ntotal {result['seconds']:.0f} s")
    return result


def quick_config(**overrides) -> Config:
    """A budget of seconds: a small layer, two epochs, two tolerances, one timed repetition."""
    return Config(**{**dict(hidden=32, epochs=2, compare_tols=(1e-2, 1e-5), compare_batch=32, repeats=1),
                     **overrides})


def main(argv=None) -> dict:
    d = Config()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help=f"training epochs ({d.epochs})")
    parser.add_argument("--hidden", type=int, default=None, help=f"units of the equilibrium layer ({d.hidden})")
    parser.add_argument("--step", type=float, default=None, help=f"Euler step of the relaxation, in (0, 1] ({d.step})")
    parser.add_argument("--max-norm", type=float, default=None, help=f"row-sum cap on W_hh, < 1 ({d.max_norm})")
    parser.add_argument("--tol", type=float, default=None, help=f"forward tolerance while training ({d.tol})")
    parser.add_argument("--backward", choices=["neumann", "gmres", "bicgstab"], default=None,
                        help=f"adjoint solver while training ({d.backward})")
    parser.add_argument("--lr", type=float, default=None, help=f"Adam learning rate ({d.lr})")
    parser.add_argument("--compare-tols", nargs="+", type=float, default=None,
                        help=f"tolerances of the RBP-vs-BPTT comparison {d.compare_tols}")
    parser.add_argument("--no-bptt-training", dest="train_bptt", action="store_const", const=False, default=None,
                        help="skip training the BPTT twin (the per-step comparison still runs)")
    parser.add_argument("--repeats", type=int, default=None, help=f"timed repetitions ({d.repeats})")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help=f"BLAS threads, 0: leave as is ({d.blas_threads})")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and budgets, for smoke tests")
    args = vars(parser.parse_args(argv))
    quick = args.pop("quick")
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items() if v is not None}
    cfg = quick_config(**overrides) if quick else replace(d, **overrides)
    if not 0 < cfg.step <= 1:
        parser.error(f"--step {cfg.step} must be in (0, 1]")
    if not 0 < cfg.max_norm < 1:
        parser.error(f"--max-norm {cfg.max_norm} must be in (0, 1) for the layer to be a contraction")
    return run(cfg)


if __name__ == "__main__":
    main(sys.argv[1:])
