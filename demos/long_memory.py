"""Long memory: Elman RNN, LSTM and GRU on the adding problem and copy memory, and TBPTT's k2 against the lag.

    python demos/long_memory.py                      # full run (about 5 minutes on 2 cores)
    python demos/long_memory.py --quick              # seconds, for smoke tests
    python demos/long_memory.py --experiments adding --cells rnn lstm --lengths 25 100
    python demos/long_memory.py --experiments truncation --trunc-length 100 --trunc-lag 50 \\
        --trunc-gaps 0 25 --trunc-ks 10 25 50 100

Four experiments, each printed as a table (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016):

* ``adding``: the adding problem at increasing sequence lengths T (the first marker
  sits T/2+1..T steps before the answer) for each cell, full BPTT. The answer is read
  from a linear head on the last step; the memoryless baseline, always answering 1,
  scores MSE 1/6 ~ 0.167. A run *solves* the task when its test MSE is below
  ``solved_mse`` (0.01, a sixteenth of the baseline).
* ``truncation``: one cell (LSTM) on the adding problem with an exact dependency
  length (``adding_problem(lag=...)``: the first marker exactly ``lag`` steps from
  the end), trained with chunked TBPTT, k1 = k2 = k, for k below and above the lag.
  The loss sits on the last step only, so the backward pass reaches back k steps and,
  with k < lag, never reaches the first marker. Two placements of the second marker:
  anywhere after the first (the library's task), and at least gap + 1 steps from the
  end (the task on the first T - gap steps, then gap unmarked steps). In the first, a
  window often holds the second marker, and the weights that learn there to add a
  marked value into memory and hold it are the same weights that act at the first
  marker: k < lag can still solve the task. In the second, no window with k <= gap
  holds a marker, and the runs stay at the baseline until k reaches the lag.
* ``copy``: copy memory (10 symbols out of 8, recalled after a delay) for each cell,
  full BPTT, against the memoryless baseline 10 log 8 / (delay + 20) nats per step.
  The default budget is short for this task: the gated cells leave the baseline and
  recall part of the symbols, the Elman RNN stays on it.
* ``grads``: ||dL/dh_t|| over t with the loss on the last step only (the engine's
  ``diagnostics=True``), for each cell at initialisation and after training on the
  adding problem; with matplotlib installed, a log-scale plot of both is saved as
  ``<out>/grad_norms.png``. At initialisation all three cells lose the gradient at a
  similar rate per step (their gates start half open); after training the gated cells
  have learnt to carry it back to the first marker, and the Elman RNN has not.

Every update draws a fresh batch from a seeded generator (the same stream for every
cell); validation and test sets are fixed. Validation is scored every ``eval_every``
updates and a run stops early once it is below ``stop_mse`` (``stop_acc`` for copy).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

import rnnbp
import rnnbp.plot
from rnnbp import nn, optim
from rnnbp.bptt import TBPTT, sequence_cross_entropy, sequence_mse
from rnnbp.data import ADDING_BASELINE_MSE, adding_problem, copy_memory, copy_memory_baseline

CELLS = {"rnn": "Elman RNN", "lstm": "LSTM", "gru": "GRU"}
EXPERIMENTS = ("adding", "truncation", "copy", "grads")


@dataclass
class Config:
    experiments: tuple = EXPERIMENTS     # which experiments to run, in this order
    cells: tuple = ("rnn", "lstm", "gru")  # recurrent cells compared (keys of CELLS)
    hidden: int = 64                     # hidden units of the one recurrent layer
    batch_size: int = 64                 # fresh sequences per update
    lr: float = 3e-3                     # Adam learning rate
    clip_norm: float = 1.0               # global gradient-norm clip
    updates: int = 2000                  # update budget per run (adding and truncation)
    eval_every: int = 100                # updates between validation scores
    n_val: int = 500                     # fixed validation sequences (early stopping)
    n_test: int = 2000                   # fixed test sequences (the reported numbers)
    solved_mse: float = 0.01             # adding: test MSE below this counts as solved
    stuck_frac: float = 0.9              # adding: test MSE above this fraction of the baseline counts as stuck
    stop_mse: float = 0.003              # adding: stop once validation MSE is below this
    lengths: tuple = (10, 25, 50, 100)   # adding: sequence lengths T (lags T/2+1..T)
    trunc_cell: str = "lstm"             # truncation: the cell trained with TBPTT
    trunc_length: int = 40               # truncation: sequence length T (a multiple of every k)
    trunc_lag: int = 20                  # truncation: exact steps from the first marker to the end
    trunc_ks: tuple = (5, 10, 20, 40)    # truncation: k1 = k2 = k, below and above the lag
    trunc_gaps: tuple = (0, 10)          # truncation: second marker >= gap+1 steps back (0: anywhere after t1)
    copy_delay: int = 10                 # copy: steps from the last symbol to the delimiter
    copy_updates: int = 3000             # copy: update budget per run
    stop_acc: float = 0.99               # copy: stop once validation accuracy on recalled symbols reaches this
    diag_length: int = 100               # grads: sequence length of the adding problem probed
    diag_updates: int = 1000             # grads: updates to train a cell the adding run did not train at diag_length
    blas_threads: int = 1                # BLAS threads (0: as set): per-step products are small; more threads
                                         # spin-wait, ten times slower on a busy 2-core machine
    seed: int = 0                        # seeds initialisation, the training stream and the fixed sets
    out: str = "runs/long_memory"        # folder for grad_norms.png
    quiet: bool = False                  # no per-run progress lines


# ------------------------------------------------------------------ model
class SeqModel(nn.Module):
    """One recurrent layer and a linear head on every step, called as the TBPTT engine calls models.

    Shape: x (L, N, H_in) -> output (L, N, n_out), and the layer's final state.
    """

    def __init__(self, cell: str, n_in: int, n_out: int, hidden: int):
        super().__init__()
        layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = layer(n_in, hidden)
        self.head = nn.Linear(hidden, n_out)

    def forward(self, x, hx=None, lengths=None):
        out, hx = self.rnn(x, hx, lengths=lengths)  # (L, N, H)
        return self.head(out), hx


# ------------------------------------------------------------------ tasks
@dataclass
class Adding:
    """The adding problem as the engine sees it: a target and a loss weight on the last step only."""

    length: int
    lag: int | None = None  # None: the standard task (lags length//2+1..length)
    gap: int = 0            # with lag: the second marker lies at least gap + 1 steps before the end
    baseline: float = ADDING_BASELINE_MSE
    n_in: int = 2
    n_out: int = 1
    loss_fn = staticmethod(sequence_mse)

    def batch(self, n: int, rng: np.random.Generator):
        if self.gap:  # the task on the first length - gap steps, then gap unmarked steps
            x, y = adding_problem(n, self.length - self.gap, rng, lag=self.lag - self.gap)
            tail = np.zeros((self.gap, n, 2), dtype=np.float32)
            tail[..., 0] = rng.random((self.gap, n), dtype=np.float32)
            x = np.concatenate([x, tail])
        else:
            x, y = adding_problem(n, self.length, rng, lag=self.lag)  # (L, N, 2), (N,)
        target = np.zeros((self.length, n, 1), dtype=np.float32)
        target[-1, :, 0] = y
        mask = np.zeros((self.length, n))
        mask[-1] = 1.0
        return x, target, mask

    @rnnbp.no_grad()
    def score(self, model, data) -> dict:
        x, target, _ = data
        out, _ = model(rnnbp.Tensor(x))
        return {"mse": float(np.mean((out.numpy()[-1, :, 0] - target[-1, :, 0]) ** 2))}

    def done(self, score: dict, cfg: Config) -> bool:
        return score["mse"] < cfg.stop_mse


@dataclass
class Copy:
    """Copy memory: cross-entropy on every step (the baseline's convention), accuracy on the recalled symbols."""

    delay: int
    n_symbols: int = 8
    recall: int = 10
    loss_fn = staticmethod(sequence_cross_entropy)

    @property
    def n_in(self) -> int:
        return self.n_symbols + 2

    @property
    def n_out(self) -> int:
        return self.n_symbols + 1

    @property
    def baseline(self) -> float:
        return copy_memory_baseline(self.delay, self.n_symbols, self.recall)

    def batch(self, n: int, rng: np.random.Generator):
        x, y = copy_memory(n, self.delay, self.n_symbols, self.recall, rng)  # (T, N, 10), (T, N)
        return x, y, None

    @rnnbp.no_grad()
    def score(self, model, data) -> dict:
        x, y, _ = data
        logits = model(rnnbp.Tensor(x))[0].numpy().astype(np.float64)  # (T, N, 9)
        z = logits - logits.max(axis=2, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=2, keepdims=True))
        ce = -np.take_along_axis(logp, y[..., None], axis=2).mean()
        acc = (logits[-self.recall:].argmax(axis=2) == y[-self.recall:]).mean()
        return {"ce": float(ce), "acc": float(acc)}

    def done(self, score: dict, cfg: Config) -> bool:
        return score["acc"] >= cfg.stop_acc


# --------------------------------------------------------------- training
@dataclass
class Run:
    """One trained model and how it got there."""

    model: SeqModel
    test: dict
    updates: int                                # updates made (fewer than the budget if it stopped early)
    curve: list = field(default_factory=list)   # (update, validation score) pairs
    seconds: float = 0.0


def _seed(cfg: Config, offset: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, offset])


def train(task, cell: str, cfg: Config, updates: int, k: int | None = None, log=print) -> Run:
    """Adam over fresh batches with TBPTT (k1 = k2 = k; None: full BPTT), early stop on validation."""
    rnnbp.manual_seed(cfg.seed)  # the same initial weights for every run of a cell
    model = SeqModel(cell, task.n_in, task.n_out, cfg.hidden)
    engine = TBPTT(model, task.loss_fn, optim.Adam(model.parameters(), lr=cfg.lr), k1=k, k2=k,
                   clip_norm=cfg.clip_norm)
    stream = _seed(cfg, 0)  # every run sees the same training sequences
    val, test = task.batch(cfg.n_val, _seed(cfg, 1)), task.batch(cfg.n_test, _seed(cfg, 2))
    start, curve, done = time.perf_counter(), [], 0
    for done in range(1, updates + 1):
        x, y, mask = task.batch(cfg.batch_size, stream)
        engine.run(x, y, loss_mask=mask)
        if done % cfg.eval_every == 0 or done == updates:
            curve.append((done, task.score(model, val)))
            if task.done(curve[-1][1], cfg):
                break
    run = Run(model, task.score(model, test), done, curve, time.perf_counter() - start)
    if not cfg.quiet:
        shown = np.unique(np.linspace(0, len(curve) - 1, min(len(curve), 8)).round().astype(int))
        trace = " ".join(f"{curve[i][0]}:{next(iter(curve[i][1].values())):.3g}" for i in shown)
        log(f"  {cell:4} {done:5d} updates {run.seconds:6.1f} s  test {_fmt(run.test)}  (validation: {trace})")
    return run


def _verdict(mse: float, cfg: Config) -> dict:
    """Adding problem: solved, stuck at the memoryless baseline, or partly learnt in between."""
    solved, stuck = mse < cfg.solved_mse, mse > cfg.stuck_frac * ADDING_BASELINE_MSE
    return {"solved": solved, "verdict": "solved" if solved else "stuck" if stuck else "partly"}


def _fmt(score: dict) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in score.items())


# ------------------------------------------------------------ experiments
def adding_experiment(cfg: Config, log=print) -> tuple[list, dict]:
    """Test MSE of each cell at each length, full BPTT -> (rows, {(cell, T): Run})."""
    log(f"\n== adding problem, full BPTT: MSE at the last step; baseline (answer 1) {ADDING_BASELINE_MSE:.3f}, "
        f"solved below {cfg.solved_mse}")
    rows, runs = [], {}
    for T in cfg.lengths:
        log(f" T = {T} (first marker {T - T // 2 + 1}..{T} steps before the answer)")
        for cell in cfg.cells:
            run = runs[cell, T] = train(Adding(T), cell, cfg, cfg.updates, log=log)
            rows.append({"T": T, "lag": f"{T - T // 2 + 1}-{T}", "cell": cell, "mse": run.test["mse"],
                         "updates": run.updates, **_verdict(run.test["mse"], cfg)})
    log(_table(rows, [("T", "T", "{}"), ("lag", "lag", "{}"), ("cell", "cell", "{}"), ("mse", "test MSE", "{:.4f}"),
                      ("updates", "updates", "{}"), ("verdict", "verdict", "{}")]))
    log(f"(solved: test MSE < {cfg.solved_mse}; stuck: > {cfg.stuck_frac:g} x baseline = "
        f"{cfg.stuck_frac * ADDING_BASELINE_MSE:.3f}; partly: between)")
    return rows, runs


def truncation_experiment(cfg: Config, log=print) -> list:
    """Test MSE of one cell under chunked TBPTT(k, k) at each k and each gap, with an exact dependency length."""
    T, lag = cfg.trunc_length, cfg.trunc_lag
    log(f"\n== truncation: {CELLS[cfg.trunc_cell]}, adding problem T = {T}, first marker exactly {lag} steps "
        f"from the end; TBPTT k1 = k2 = k (loss on the last step: the gradient reaches back k steps)")
    rows = []
    for gap in cfg.trunc_gaps:
        where = "anywhere after the first" if gap == 0 else f"{gap + 1}..{lag - 1} steps from the end"
        for k in cfg.trunc_ks:
            if T % k:
                log(f"  k = {k} skipped: T = {T} is not a multiple of k, so the last chunk would be shorter")
                continue
            log(f" second marker {where}; k = {k} (k/lag = {k / lag:.2f})")
            run = train(Adding(T, lag=lag, gap=gap), cfg.trunc_cell, cfg, cfg.updates, k=k, log=log)
            rows.append({"gap": gap, "k": k, "mse": run.test["mse"], "updates": run.updates,
                         **_verdict(run.test["mse"], cfg)})
    log(_truncation_table(rows, cfg))
    return rows


def _truncation_table(rows: list, cfg: Config) -> str:
    """One row per k; per gap, the test MSE and whether the window [T-k, T) can hold a marker."""
    lag, gaps = cfg.trunc_lag, [g for g in cfg.trunc_gaps if any(r["gap"] == g for r in rows)]
    table = []
    for k in dict.fromkeys(r["k"] for r in rows):
        row = {"k": k, "k/lag": f"{k / lag:.2f}"}
        for g in gaps:
            r = next((r for r in rows if r["k"] == k and r["gap"] == g), None)
            marks = "t1" if k >= lag else ("t2" if k > g else "none")  # markers the window can hold
            row[g] = "-" if r is None else f"{r['mse']:.4f} {r['verdict']:6} ({marks})"
        table.append(row)
    head = lambda g: "t2 anywhere after t1" if g == 0 else f"t2 >= {g + 1} steps back"  # noqa: E731
    return (_table(table, [("k", "k", "{}"), ("k/lag", "k/lag", "{}")] + [(g, head(g), "{}") for g in gaps])
            + "\n(test MSE, verdict as above, and in brackets the markers a window [T-k, T) can hold)")


def copy_experiment(cfg: Config, log=print) -> list:
    """Cross-entropy per step and recall accuracy of each cell on copy memory, full BPTT."""
    task = Copy(cfg.copy_delay)
    log(f"\n== copy memory, delay {task.delay} ({task.delay + 2 * task.recall} steps): cross-entropy per step, "
        f"baseline {task.baseline:.4f} nats; accuracy on the {task.recall} recalled symbols, chance 1/8")
    rows = []
    for cell in cfg.cells:
        run = train(task, cell, cfg, cfg.copy_updates, log=log)
        rows.append({"cell": cell, "ce": run.test["ce"], "ce/baseline": run.test["ce"] / task.baseline,
                     "acc": run.test["acc"], "updates": run.updates})
    log(_table(rows, [("cell", "cell", "{}"), ("ce", "test CE", "{:.4f}"), ("ce/baseline", "CE/baseline", "{:.3f}"),
                      ("acc", "recall acc", "{:.3f}"), ("updates", "updates", "{}")]))
    return rows


def state_grad_norms(model: SeqModel, task: Adding, data) -> np.ndarray:
    """||dL/dh_t|| for t = 0..T-1, the loss (MSE at the last step) averaged over the batch; no update."""
    seen = []
    x, y, mask = data
    TBPTT(model, task.loss_fn, None, diagnostics=True, on_update=lambda e, u: seen.append(u)).run(
        x, y, loss_mask=mask)
    return seen[0].state_grad_norms["rnn", 0, 0]


def grads_experiment(cfg: Config, trained: dict | None = None, log=print) -> dict:
    """Per-step state-gradient norms of each cell at initialisation and after training -> {cell: {when: (T,)}}."""
    T = cfg.diag_length
    task = Adding(T)
    data = task.batch(cfg.batch_size, _seed(cfg, 3))
    log(f"\n== ||dL/dh_t|| over t, loss on the last step of the adding problem (T = {T}, {cfg.batch_size} "
        "sequences): how much of the gradient reaches each step")
    norms, rows = {}, []
    for cell in cfg.cells:
        rnnbp.manual_seed(cfg.seed)
        init = state_grad_norms(SeqModel(cell, task.n_in, task.n_out, cfg.hidden), task, data)
        run = (trained or {}).get((cell, T))
        if run is None:
            if not cfg.quiet:
                log(f"  training {cell} for the 'after' curve ({cfg.diag_updates} updates at most)")
            run = train(task, cell, cfg, cfg.diag_updates, log=log)
        after = state_grad_norms(run.model, task, data)
        norms[cell] = {"init": init, "trained": after}
        for when, n in norms[cell].items():
            rows.append({"cell": cell, "when": when, "last": n[-1], "mid": n[T // 2], "first": n[0],
                         "ratio": n[0] / n[-1], "per_step": (n[0] / n[-1]) ** (1 / (T - 1))})
    log(_table(rows, [("cell", "cell", "{}"), ("when", "model", "{}"), ("last", f"t={T - 1}", "{:.2e}"),
                      ("mid", f"t={T // 2}", "{:.2e}"), ("first", "t=0", "{:.2e}"),
                      ("ratio", "t=0 / t=T-1", "{:.1e}"), ("per_step", "per step", "{:.3f}")]))
    return {"norms": norms, "rows": rows, "plot": _plot(norms, cfg, log)}


def _plot(norms: dict, cfg: Config, log=print) -> str | None:
    """Both panels of ||dL/dh_t|| on a log scale (``rnnbp.plot.gradient_flow``); None, said, without matplotlib."""
    T = cfg.diag_length
    panels = {f"{title} (adding problem, T = {T})": {CELLS[cell]: n[when] for cell, n in norms.items()}
              for when, title in (("init", "at initialisation"), ("trained", "after training"))}
    try:
        path = rnnbp.plot.gradient_flow(panels, Path(cfg.out) / "grad_norms.png",
                                        xlabel="step t (loss on the last step)",
                                        mark=(0, T // 2 - 1, "first marker somewhere here"))
    except ImportError as exc:
        log(f"(no plot: {exc})")
        return None
    log(f"plot: {path}")
    return str(path)


def _table(rows: list, columns: list) -> str:
    """A plain text table: columns are (key, header, format)."""
    cells = [[fmt.format(r[key]) for key, _, fmt in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h, _) in enumerate(columns)]
    line = lambda items: "  ".join(s.rjust(w) for s, w in zip(items, widths))  # noqa: E731
    return "\n".join([line([h for _, h, _ in columns]), line(["-" * w for w in widths])] + [line(c) for c in cells])


# ------------------------------------------------------------------ main
def run(cfg: Config, log=print) -> dict:
    start, result, trained = time.perf_counter(), {"config": cfg}, None
    with rnnbp.blas_threads(cfg.blas_threads):
        if "adding" in cfg.experiments:
            result["adding"], trained = adding_experiment(cfg, log)
        if "truncation" in cfg.experiments:
            result["truncation"] = truncation_experiment(cfg, log)
        if "copy" in cfg.experiments:
            result["copy"] = copy_experiment(cfg, log)
        if "grads" in cfg.experiments:
            result["grads"] = grads_experiment(cfg, trained, log)
    result["seconds"] = time.perf_counter() - start
    log(f"\ntotal {result['seconds']:.0f} s")
    return result


def quick_config(**overrides) -> Config:
    """A budget of seconds: short sequences, small sets, a few hundred updates."""
    quick = dict(hidden=16, batch_size=16, updates=150, eval_every=50, n_val=64, n_test=128, lengths=(8, 30),
                 trunc_length=20, trunc_lag=10, trunc_ks=(5, 20), trunc_gaps=(0, 5), copy_delay=3, copy_updates=60,
                 diag_length=30, diag_updates=50)
    return Config(**{**quick, **overrides})


def main(argv=None) -> dict:
    d = Config()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", nargs="+", choices=EXPERIMENTS, default=None, help="which to run (all)")
    parser.add_argument("--cells", nargs="+", choices=list(CELLS), default=None, help="which cells (all)")
    parser.add_argument("--lengths", nargs="+", type=int, default=None, help=f"adding: lengths T {d.lengths}")
    parser.add_argument("--trunc-ks", nargs="+", type=int, default=None, help=f"truncation: k values {d.trunc_ks}")
    parser.add_argument("--trunc-length", type=int, default=None, help=f"truncation: T ({d.trunc_length})")
    parser.add_argument("--trunc-lag", type=int, default=None, help=f"truncation: the lag ({d.trunc_lag})")
    parser.add_argument("--trunc-gaps", nargs="+", type=int, default=None,
                        help=f"truncation: the second marker at least gap+1 steps back, 0: anywhere {d.trunc_gaps}")
    parser.add_argument("--trunc-cell", choices=list(CELLS), default=None, help=f"truncation: cell ({d.trunc_cell})")
    parser.add_argument("--copy-delay", type=int, default=None, help=f"copy: delay ({d.copy_delay})")
    parser.add_argument("--updates", type=int, default=None, help=f"update budget per run ({d.updates})")
    parser.add_argument("--copy-updates", type=int, default=None, help=f"copy: update budget ({d.copy_updates})")
    parser.add_argument("--hidden", type=int, default=None, help=f"hidden units ({d.hidden})")
    parser.add_argument("--lr", type=float, default=None, help=f"Adam learning rate ({d.lr})")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help=f"BLAS threads, 0: leave as is ({d.blas_threads})")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", default=None, help=f"output folder ({d.out})")
    parser.add_argument("--quiet", action="store_true", help="tables only, no per-run lines")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and budgets, for smoke tests")
    args = vars(parser.parse_args(argv))
    quick = args.pop("quick")
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items() if v is not None}
    cfg = quick_config(**overrides) if quick else replace(d, **overrides)
    if not 2 <= cfg.trunc_lag <= cfg.trunc_length:
        parser.error(f"--trunc-lag {cfg.trunc_lag} must be between 2 and --trunc-length {cfg.trunc_length}")
    if any(g and not 0 < g <= cfg.trunc_lag - 2 for g in cfg.trunc_gaps):
        parser.error(f"--trunc-gaps {cfg.trunc_gaps}: each gap must be 0 or between 1 and --trunc-lag - 2")
    return run(cfg)


if __name__ == "__main__":
    main(sys.argv[1:])
