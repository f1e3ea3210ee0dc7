"""Benchmark: one training step of a Tree-LSTM over a batch of trees, level by level vs node by node.

The step: a binary (N-ary, N=2) or Child-Sum Tree-LSTM over a batch of random
expression-shaped trees, a linear head on every node, cross-entropy, backward to
every parameter, float32. Printed from one run:

* level-batched  - ``nn.TreeLSTM`` on a ``TreeBatch``: one fused node per level
*   composed     - the same, each level composed from primitive ops (``fused=False``)
* tree by tree   - the same module called once per tree (a batch of one)
* node by node   - the cell called once per node in topological order, the textbook recursion
* GEMM bound     - only the matrix products of the level-batched step, timed alone in NumPy

    python demos/benchmarks/tree_speed.py [--trees 64] [--depth 6] [--hidden 128] [--rounds 5]

Implementations are timed in alternating rounds; each figure is the median, and
ratios are taken within the run (the machine is shared and noisy).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import rnnbp
from rnnbp import nn
from rnnbp.nn import functional as F
from rnnbp.structure import Tree, TreeBatch


def random_trees(count: int, depth: int, seed: int) -> list[Tree]:
    """Binary trees of height <= depth, lopsided and full ones mixed."""
    rng = np.random.default_rng(seed)

    def grow(d):
        if d == 0 or (d < depth and rng.random() < 0.25):
            return "leaf"
        return ("op", grow(d - 1), grow(d - 1) if rng.random() < 0.5 else "leaf")

    return [Tree.from_nested(grow(depth), labelled=True) for _ in range(count)]


class LevelBatched:
    def __init__(self, model, head, trees, x_rows, labels):
        self.model, self.head = model, head
        self.batch = TreeBatch(trees)
        self.x = rnnbp.Tensor(self.batch.concat(x_rows))
        self.y = self.batch.concat(labels)

    def __call__(self):
        output, _ = self.model(self.x, self.batch)
        F.cross_entropy(self.head(output), self.y).backward()


class TreeByTree:
    def __init__(self, model, head, trees, x_rows, labels):
        self.model, self.head, self.trees = model, head, trees
        self.x = [rnnbp.Tensor(rows) for rows in x_rows]
        self.y = labels
        self.total = sum(t.num_nodes for t in trees)

    def __call__(self):
        for tree, x, y in zip(self.trees, self.x, self.y):
            output, _ = self.model(x, tree)
            (F.cross_entropy(self.head(output), y, reduction="sum") * (1.0 / self.total)).backward()


class NodeByNode:
    def __init__(self, model, head, trees, x_rows, labels):
        self.cell, self.head, self.trees = model.cell, head, trees
        self.x = [rnnbp.Tensor(rows) for rows in x_rows]
        self.y = np.concatenate(labels)
        self.lstm = getattr(self.cell, "has_cell_state", False)

    def __call__(self):
        outputs = []
        width = self.cell.num_children
        for tree, x in zip(self.trees, self.x):
            states = [None] * tree.num_nodes
            for node in tree.topological_order().tolist():
                kids = tree.children[node]
                children = None
                if kids:
                    hs = [states[k][0] for k in kids]
                    cs = [states[k][1] for k in kids]
                    pad = (width or len(kids)) - len(kids)
                    zeros = [rnnbp.zeros(1, self.cell.hidden_size)] * pad
                    children = (rnnbp.stack(hs + zeros, dim=1), rnnbp.stack(cs + zeros, dim=1))
                states[node] = self.cell(x[node:node + 1], children)
            outputs.extend(s[0] for s in states)
        F.cross_entropy(self.head(rnnbp.cat(outputs, dim=0)), self.y).backward()


class GemmBound:
    """The level-batched step's matrix products alone: projections, per-level recurrences, head, and backward."""

    def __init__(self, model, head, trees, x_rows, labels):
        batch = TreeBatch(trees)
        cell = model.cell
        rng = np.random.default_rng(0)
        f32 = np.float32
        self.w_ih, self.w_hh, self.w_head = cell.weight_ih.numpy(), cell.weight_hh.numpy(), head.weight.numpy()
        self.x = np.concatenate(x_rows)
        width = cell.num_children
        hsz = cell.hidden_size
        # Per level, (rows, weight) pairs: the N-ary cell multiplies the concatenated children
        # by weight_hh; the Child-Sum cell their sum by the i, g, o rows and each child by U_f.
        self.products = []
        for level in batch.levels[1:]:
            if width:
                kids = rng.standard_normal((level.size, width * hsz)).astype(f32)
                self.products.append((kids, self.w_hh))
            else:
                w_igo = np.concatenate([self.w_hh[:hsz], self.w_hh[2 * hsz:]])
                self.products.append((rng.standard_normal((level.size, hsz)).astype(f32), w_igo))
                kids = rng.standard_normal((level.size * level.max_children, hsz)).astype(f32)
                self.products.append((kids, self.w_hh[hsz:2 * hsz]))
        self.h = rng.standard_normal((batch.num_nodes, hsz)).astype(f32)

    def __call__(self):
        gates = self.x @ self.w_ih.T
        logits = self.h @ self.w_head.T
        for rows, weight in self.products:
            g = rows @ weight.T
            g @ weight          # d rows
            rows.T @ g          # d weight
        logits @ self.w_head
        logits.T @ self.h
        gates @ self.w_ih
        gates.T @ self.x


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=64)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--kinds", nargs="+", default=["2ary", "childsum"], choices=["2ary", "childsum"])
    args = parser.parse_args(argv)
    trees = random_trees(args.trees, args.depth, seed=0)
    rng = np.random.default_rng(1)
    x_rows = [rng.standard_normal((t.num_nodes, args.hidden)).astype(np.float32) for t in trees]
    labels = [rng.integers(0, 10, t.num_nodes) for t in trees]
    nodes = sum(t.num_nodes for t in trees)
    print(f"{args.trees} trees, {nodes} nodes, height <= {args.depth}, H = {args.hidden}, float32, "
          f"median of {args.rounds} rounds")
    results = {}
    for kind in args.kinds:
        rnnbp.manual_seed(0)
        width = 2 if kind == "2ary" else None
        model = nn.TreeLSTM(args.hidden, args.hidden, num_children=width)
        composed = nn.TreeLSTM(args.hidden, args.hidden, num_children=width, fused=False)
        composed.load_state_dict(model.state_dict())
        head = nn.Linear(args.hidden, 10)
        impls = {name: cls(module, head, trees, x_rows, labels) for name, cls, module in
                 [("level-batched", LevelBatched, model), ("  composed", LevelBatched, composed),
                  ("tree by tree", TreeByTree, model), ("node by node", NodeByNode, model),
                  ("GEMM bound", GemmBound, model)]}
        times = {name: [] for name in impls}
        for _ in range(args.rounds):
            for name, fn in impls.items():
                for module in (model, composed, head):
                    module.zero_grad()
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        median = {name: float(np.median(t)) for name, t in times.items()}
        base = median["level-batched"]
        print(f"\n{kind} Tree-LSTM            time / level-batched")
        for name, t in median.items():
            print(f"  {name:<16} {t / base:8.2f}x")
        disagreement = _gradient_disagreement(impls, [model, composed], head)
        print(f"  the rnnbp steps' gradients agree to {disagreement:.1e} (largest relative difference)")
        results[kind] = {"times": median, "disagreement": disagreement}
    return results


def _gradient_disagreement(impls, models, head) -> float:
    """The largest relative difference of any step's parameter gradients from the level-batched step's."""
    grads = {}
    for name, fn in impls.items():
        if name == "GEMM bound":
            continue
        for module in models + [head]:
            module.zero_grad()
        fn()
        used = next(m for m in models if m.cell.weight_hh.grad is not None)
        grads[name] = [p.grad.numpy().copy() for p in list(used.parameters()) + list(head.parameters())]
    reference = grads.pop("level-batched")
    return max(float(np.abs(g - r).max() / np.abs(r).max()) for gs in grads.values() for g, r in zip(gs, reference))


if __name__ == "__main__":
    main()
