"""Expression trees: a Tree-LSTM and a sequential LSTM learn arithmetic mod 10, then meet deeper trees.

    python demos/tree_expressions.py                          # full run (about 5 minutes on 2 cores)
    python demos/tree_expressions.py --quick                  # seconds, for smoke tests
    python demos/tree_expressions.py --models tree --epochs 10 --hidden 64 --train-size 5000

Backpropagation through structure (Goller & Kuechler 1996) against backpropagation through
time, on one task. Each example is a random expression over the digits 0-9 with ``+``, ``-``
and ``*`` taken mod 10, such as ``((3*4)-(7+(9*9)))``, and the answer is its value mod 10
(here 4): one of 10 classes. Both models are trained on expressions of depth 1 to 4 (operators
on the longest root-to-leaf path) and tested on depths 5, 6, 7 and 8, deeper than anything
they saw (``rnnbp.data.expression_splits``; the labels are balanced at every depth, so chance
and the majority answer are both about 10 %).

* ``tree``: a binary (N-ary, N = 2) Tree-LSTM (Tai et al. 2015) over the expression tree
  itself (``rnnbp.structure.TreeBatch``, ``nn.TreeLSTM``): a digit's embedding is the input
  at a leaf, an operator's at an internal node; a linear head on the root's h gives the 10
  logits. The same weights combine two children at every node, so it has one function to
  learn -- (op, left value, right value) -> value -- whatever the depth.
* ``lstm``: an ``nn.LSTM`` over the fully parenthesised infix tokens (an embedding of the 15
  tokens, ``lengths`` for the padding), the head on each expression's last valid state. It
  must discover the brackets' structure from the string and keep a stack of pending partial
  results in its state; deeper trees need a deeper stack than training ever asked for.

Both get the same hidden size, the same embedding size, the same Adam with the same
learning-rate schedule (a cosine over all updates) and gradient clipping, and the same
batches in the same order: the same number of updates. Each is trained by
``rnnbp.train.Trainer``, validated after every epoch, and ends with the weights of its epoch
of lowest validation loss. Reported, as a table: the accuracy at each training depth on the
validation set and at each held-out depth on its test set, the seconds each model took, and
the majority baseline (the training set's most common value, scored on each set; with
balanced labels every value ties, and it is 10 %).

Validation expressions come from their own fifth of the expression space
(``rnnbp.data.in_validation_part``), so none of them was seen in training, not even at depth 1.

Two choices made for the LSTM's sake, measured with seed 0. The training set is large, 60,000
expressions seen 10 times, rather than 20,000 seen 30 times (the same updates): on 20,000
(``--train-size 20000 --epochs 30``) the LSTM memorised them (training loss 0.33 against 1.87
on validation at the end; 45 % on validation at its best epoch, 18 % at depth 8), and even the
Tree-LSTM generalised less far (82 % at depth 8). And the gap is not the parameter count (the
Tree-LSTM's gates read both children, so at the same H it has about twice the LSTM's): an LSTM
with as many (``--models lstm --hidden 192``, 176,000) reached 65 % on validation and 20 % at
depth 8, one with two layers (``--lstm-layers 2``, 217,000) 83 % and 15 %.

Threads: BLAS is kept to one thread (``--blas-threads 1``), as in the other demos: the
products are small (one level of a batch of trees, or one step of 64 sequences), and the
README's measurements on a shared 2-core machine found one thread faster than two there.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace

import numpy as np

import rnnbp
from rnnbp import nn, optim
from rnnbp.data import EXPRESSION_TOKENS, ExpressionSet, expression_splits
from rnnbp.nn import functional as F
from rnnbp.structure import Tree, TreeBatch
from rnnbp.train import Trainer

MODELS = {"tree": "Tree-LSTM", "lstm": "LSTM"}
CLASSES = 10

# Node values of a Tree.from_nested expression tree are int digits and operator strings.
NODE_ID = {**{d: d for d in range(10)}, **{t: i for i, t in enumerate(EXPRESSION_TOKENS) if not t.isdigit()}}


@dataclass
class Config:
    models: tuple = ("tree", "lstm")   # which models to train (keys of MODELS), in this order
    hidden: int = 128                  # hidden units of the Tree-LSTM and of each LSTM layer
    embed: int = 32                    # token embedding size (digits and operators; brackets for the LSTM)
    lstm_layers: int = 1               # stacked layers of the sequential LSTM
    batch_size: int = 64               # expressions per update
    epochs: int = 10                   # passes over the training set (the same updates for both models)
    lr: float = 3e-3                   # Adam learning rate, annealed to 0 by a cosine over all updates
    clip_norm: float = 1.0             # global gradient-norm clip
    train_size: int = 60_000           # training expressions, a quarter at each depth 1..4
    val_size: int = 2_000              # validation expressions, same depths, none seen in training
    test_size: int = 1_000             # test expressions per held-out depth
    train_depth: tuple = (1, 4)        # depths of training and validation (both included)
    test_depths: tuple = (5, 6, 7, 8)  # held-out depths, each its own test set
    balance: bool = True               # every value equally frequent at every depth
    eval_batch: int = 100              # expressions per forward pass when scoring (the LSTM's buffers grow with it)
    seed: int = 0                      # seeds the data, the initialisation and the batch order
    blas_threads: int = 1              # BLAS threads (0: leave as is)
    progress: bool = False             # a progress bar per epoch
    quiet: bool = False                # the table only, no per-epoch lines


# ------------------------------------------------------------------ models
class TreeModel(nn.Module):
    """Embedding -> binary Tree-LSTM over the expression tree -> linear head on the root.

    Forward: ``logits = model(batch, ids)``, batch a TreeBatch of B expression trees, ids
    (batch.num_nodes,) the token id of each node (a digit at a leaf, an operator inside) -> logits (B, 10).
    """

    def __init__(self, hidden: int, embed: int):
        super().__init__()
        self.embed = nn.Embedding(len(EXPRESSION_TOKENS), embed)
        self.tree = nn.TreeLSTM(embed, hidden, num_children=2)
        self.head = nn.Linear(hidden, CLASSES)

    def forward(self, batch: TreeBatch, ids: np.ndarray) -> rnnbp.Tensor:
        _, (h_root, _) = self.tree(self.embed(ids), batch)   # (B, H)
        return self.head(h_root)


class SeqModel(nn.Module):
    """Embedding -> LSTM over the infix tokens -> linear head on each expression's last valid state.

    Forward: ``logits = model(ids, lengths)``, ids (L, B) token ids, lengths (B,) -> logits (B, 10).
    """

    def __init__(self, hidden: int, embed: int, layers: int):
        super().__init__()
        self.embed = nn.Embedding(len(EXPRESSION_TOKENS), embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers)
        self.head = nn.Linear(hidden, CLASSES)

    def forward(self, ids: np.ndarray, lengths: np.ndarray) -> rnnbp.Tensor:
        _, (h_n, _) = self.lstm(self.embed(ids), lengths=lengths)  # h_n (layers, B, H), at each length
        return self.head(h_n[-1])


class Reader:
    """Turns index arrays into a model's inputs: TreeBatches, or padded token ids and lengths."""

    def __init__(self, kind: str, data: ExpressionSet):
        self.kind, self.data = kind, data
        if kind == "tree":  # each tree and its nodes' token ids, built once
            self.trees = [Tree.from_nested(t, labelled=True) for t in data.trees]
            self.ids = [np.array([NODE_ID[v] for v in t.values]) for t in self.trees]

    def __call__(self, model: nn.Module, idx: np.ndarray) -> rnnbp.Tensor:
        """The model's logits (len(idx), 10) for the expressions ``idx`` of the set."""
        if self.kind == "tree":
            batch = TreeBatch([self.trees[i] for i in idx.tolist()])
            return model(batch, batch.concat([self.ids[i] for i in idx.tolist()]))
        return model(*self.data.token_ids(idx))


def build_model(kind: str, cfg: Config) -> nn.Module:
    """The Tree-LSTM ("tree") or the sequential LSTM ("lstm") of ``cfg``'s sizes."""
    if kind == "tree":
        return TreeModel(cfg.hidden, cfg.embed)
    return SeqModel(cfg.hidden, cfg.embed, cfg.lstm_layers)


def num_parameters(model: nn.Module) -> int:
    """The number of trained scalars."""
    return sum(p.numpy().size for p in model.parameters())


@rnnbp.no_grad()
def logits_of(model: nn.Module, reader: Reader, batch: int) -> np.ndarray:
    """The logits of every expression of the reader's set, (N, 10), computed in eval mode ``batch`` at a time."""
    was_training = model.training
    model.eval()
    try:
        n = len(reader.data)
        return np.concatenate([reader(model, np.arange(s, min(s + batch, n))).numpy() for s in range(0, n, batch)])
    finally:
        model.train(was_training)


def score(model: nn.Module, reader: Reader, batch: int) -> dict:
    """Mean cross-entropy ("loss", nats) and accuracy ("acc") over the reader's set, and the accuracy at each depth."""
    data = reader.data
    logits = logits_of(model, reader, batch).astype(np.float64)
    top = logits.max(axis=1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    right = logits.argmax(axis=1) == data.values
    return {"loss": float(np.mean(log_z - logits[np.arange(len(data)), data.values])), "acc": float(right.mean()),
            "by_depth": {int(d): float(right[data.depths == d].mean()) for d in np.unique(data.depths)}}


# ---------------------------------------------------------------- training
def train(kind: str, splits, cfg: Config, log=print) -> dict:
    """One model trained by Trainer on splits.train, kept at its epoch of lowest validation loss, scored on every set.

    Returns a dict: model, history (the Trainer's per-epoch logs), losses (training loss per epoch),
    val (:func:`score` on splits.val), test ({depth: score}), seconds (training with its validation
    passes), updates, best_epoch, params.
    """
    rnnbp.manual_seed(cfg.seed)  # initial weights
    model = build_model(kind, cfg)
    opt = optim.Adam(model.parameters(), lr=cfg.lr)
    n = len(splits.train)
    per_epoch = -(-n // cfg.batch_size)
    schedule = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * per_epoch)
    train_reader, val_reader = Reader(kind, splits.train), Reader(kind, splits.val)
    labels = splits.train.values

    def batches(epoch, generator):
        order = generator.permutation(n)
        return [order[s:s + cfg.batch_size] for s in range(0, n, cfg.batch_size)]

    def train_step(idx):
        loss = F.cross_entropy(train_reader(model, idx), labels[idx])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        opt.step()
        return {"loss": loss.item(), "count": len(idx)}

    def evaluate():
        result = score(model, val_reader, cfg.eval_batch)
        return {"loss": result["loss"], "acc": result["acc"]}

    trainer = Trainer(model, opt, train_step, batches, evaluate=evaluate, scheduler=schedule,
                      scheduler_step="update", monitor="val_loss", restore_best=True,
                      seed=cfg.seed, progress=cfg.progress, log=None if cfg.quiet else log)
    if not cfg.quiet:
        log(f"\n== {MODELS[kind]}: {num_parameters(model):,} parameters, {cfg.epochs} epochs of {per_epoch} updates")
    start = time.perf_counter()
    history = trainer.fit(cfg.epochs)
    seconds = time.perf_counter() - start
    val = score(model, val_reader, cfg.eval_batch)
    test = {d: score(model, Reader(kind, s), cfg.eval_batch) for d, s in splits.test.items()}
    return {"model": model, "history": history, "val": val, "test": test, "seconds": seconds,
            "updates": trainer.updates, "best_epoch": trainer.monitor.best_epoch,
            "params": num_parameters(model), "losses": [h["loss"] for h in history]}


def majority_baseline(splits) -> dict:
    """Always answering the training set's most common value: its accuracy on each set, shaped like :func:`score`."""
    value, _ = splits.train.majority()

    def acc(data: ExpressionSet) -> dict:
        right = data.values == value
        return {"acc": float(right.mean()),
                "by_depth": {int(d): float(right[data.depths == d].mean()) for d in np.unique(data.depths)}}

    return {"value": value, "val": acc(splits.val), "test": {d: acc(s) for d, s in splits.test.items()}}


def results_table(runs: dict, baseline: dict, cfg: Config) -> str:
    """Accuracy (%) by depth: validation on the training depths, test on the held-out ones."""
    train_depths = sorted(baseline["val"]["by_depth"])
    head = ["model", "params", "updates", "seconds", "val"] + [f"d={d}" for d in train_depths] + ["|"] + \
        [f"d={d}" for d in cfg.test_depths]

    def accuracies(r: dict) -> list:
        return ([f"{100 * r['val']['acc']:.1f}"] + [f"{100 * r['val']['by_depth'][d]:.1f}" for d in train_depths]
                + ["|"] + [f"{100 * r['test'][d]['acc']:.1f}" for d in cfg.test_depths])

    rows = [["majority", "-", "-", "-"] + accuracies(baseline)]
    rows += [[MODELS[kind], f"{r['params']:,}", str(r["updates"]), f"{r['seconds']:.0f}"] + accuracies(r)
             for kind, r in runs.items()]
    widths = [max(len(row[i]) for row in [head] + rows) for i in range(len(head))]

    def line(items):
        return "  ".join(s.rjust(w) if i else s.ljust(w) for i, (s, w) in enumerate(zip(items, widths)))

    lo, hi = cfg.train_depth
    return "\n".join(
        [f"accuracy (%) by depth: validation on depths {lo}-{hi} (trained) | test on deeper trees "
         f"({cfg.test_size} per depth, none in training)", line(head), line(["-" * w for w in widths])]
        + [line(r) for r in rows])


# ------------------------------------------------------------------ main
def run(cfg: Config, log=print) -> dict:
    start = time.perf_counter()
    with rnnbp.blas_threads(cfg.blas_threads):
        splits = expression_splits(cfg.train_size, cfg.val_size, cfg.test_size, train_depth=cfg.train_depth,
                                   test_depths=cfg.test_depths, seed=cfg.seed, balance=cfg.balance)
        lengths = {d: np.mean([len(t) for t in s.tokens]) for d, s in splits.test.items()}
        train_length = np.mean([len(t) for t in splits.train.tokens])
        log(f"expressions mod 10 over + - *: {len(splits.train)} training and {len(splits.val)} validation of "
            f"depth {cfg.train_depth[0]}-{cfg.train_depth[1]} (mean {train_length:.0f} tokens), "
            f"{cfg.test_size} test per depth "
            + ", ".join(f"{d} ({lengths[d]:.0f} tokens)" for d in cfg.test_depths)
            + f"; labels {'balanced' if cfg.balance else 'as drawn'}")
        baseline = majority_baseline(splits)
        runs = {kind: train(kind, splits, cfg, log) for kind in cfg.models}
    seconds = time.perf_counter() - start
    log("\n" + results_table(runs, baseline, cfg))
    majority = ("every value equally common in training, so any constant answer; 0 here" if cfg.balance
                else "the most common value in training")
    log(f"(majority: always answering {baseline['value']}, {majority}; chance 10 %; "
        f"seconds: training with validation, per model; total {seconds:.0f} s)")
    return {"config": cfg, "runs": runs, "baseline": baseline, "splits": splits, "seconds": seconds}


def quick_config(**overrides) -> Config:
    """A budget of seconds: small sets, small models, a few epochs."""
    quick = dict(hidden=64, embed=16, epochs=8, train_size=4000, val_size=200, test_size=50, test_depths=(5, 6),
                 lr=1e-2)
    return Config(**{**quick, **overrides})


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def main(argv=None) -> dict:
    d = Config()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=None, help=f"which to train {d.models}")
    parser.add_argument("--epochs", type=_positive, default=None, help=f"epochs for each model ({d.epochs})")
    parser.add_argument("--hidden", type=_positive, default=None, help=f"hidden units ({d.hidden})")
    parser.add_argument("--embed", type=_positive, default=None, help=f"embedding size ({d.embed})")
    parser.add_argument("--lstm-layers", type=_positive, default=None, help=f"LSTM layers ({d.lstm_layers})")
    parser.add_argument("--batch-size", type=_positive, default=None, help=f"expressions per update ({d.batch_size})")
    parser.add_argument("--lr", type=float, default=None, help=f"Adam learning rate ({d.lr})")
    parser.add_argument("--clip-norm", type=float, default=None, help=f"gradient-norm clip ({d.clip_norm})")
    parser.add_argument("--train-size", type=_positive, default=None, help=f"training expressions ({d.train_size})")
    parser.add_argument("--val-size", type=_positive, default=None, help=f"validation expressions ({d.val_size})")
    parser.add_argument("--test-size", type=_positive, default=None, help=f"test expressions per depth ({d.test_size})")
    parser.add_argument("--train-depth", nargs=2, type=_positive, default=None, metavar=("LOW", "HIGH"),
                        help=f"training depths, both included {d.train_depth}")
    parser.add_argument("--test-depths", nargs="+", type=_positive, default=None,
                        help=f"held-out depths {d.test_depths}")
    parser.add_argument("--no-balance", dest="balance", action="store_false", default=None,
                        help="labels as drawn (skewed toward 0) instead of balanced at every depth")
    parser.add_argument("--seed", type=int, default=None, help=f"seed ({d.seed})")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help=f"BLAS threads, 0: leave as is ({d.blas_threads})")
    parser.add_argument("--progress", action="store_true", default=None, help="a progress bar per epoch")
    parser.add_argument("--quiet", action="store_true", default=None, help="the table only")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and budgets, for smoke tests")
    args = vars(parser.parse_args(argv))
    quick = args.pop("quick")
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items() if v is not None}
    cfg = quick_config(**overrides) if quick else replace(d, **overrides)
    if not cfg.lr > 0:
        parser.error(f"--lr must be positive, got {cfg.lr}")
    if not cfg.clip_norm > 0:
        parser.error(f"--clip-norm must be positive, got {cfg.clip_norm}")
    if cfg.seed < 0:
        parser.error(f"--seed must be >= 0, got {cfg.seed}")
    if cfg.train_depth[0] > cfg.train_depth[1]:
        parser.error(f"--train-depth {cfg.train_depth}: LOW must not exceed HIGH")
    if len(set(cfg.test_depths)) != len(cfg.test_depths):
        parser.error(f"--test-depths {cfg.test_depths} must be distinct")
    return run(cfg)


if __name__ == "__main__":
    main(sys.argv[1:])
