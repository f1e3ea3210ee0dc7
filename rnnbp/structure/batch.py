"""TreeBatch: differently shaped trees merged into one level-by-level schedule.

Rows. A batch's nodes are numbered in *node order*: tree 0's nodes by their ids, then
tree 1's, and so on (the trees' concatenation, as in DGL or PyTorch Geometric).
Inputs to a recursive network and its outputs use that order, so per-node data
is simply concatenated tree after tree.

Schedule. Internally the nodes are regrouped in *level order*: every node of height
0 (all the leaves) first, then every node of height 1, and so on. Level ``l`` is one
contiguous block, all its children sit in earlier levels, and a recursive network
evaluates the whole batch with one cell call (one matrix product per weight) per
level instead of one per node: the cost grows with the deepest tree, not the node
count. :class:`GatherPlan` s move rows between the two orders inside the graph.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .gather import GatherPlan
from .tree import StructureError, Tree


@dataclass(frozen=True)
class Level:
    """One height of the batch: rows ``start:stop`` of the level order.

    ``children`` is (M, K): the level-order rows of each node's children in order, -1
    where a node has fewer than K (K = the most children any node here has; 0 for the
    leaves). ``plan`` gathers the M*K child rows from the earlier levels' outputs.
    """

    start: int
    stop: int
    children: np.ndarray
    num_children: np.ndarray
    plan: GatherPlan

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def max_children(self) -> int:
        return self.children.shape[1]


def _unique(rows: np.ndarray) -> bool:
    return len(np.unique(rows)) == len(rows)


class TreeBatch:
    """A batch of :class:`Tree` structures scheduled level by level.

    Args:
        trees : the structures (trees or DAGs), each with one root.

    Attributes (node order: the trees' nodes concatenated, each tree's by id):
        num_trees (B), num_nodes (N), values (list of N node values), roots (int array
        (B,): each tree's root), tree_index (int array (N,): the tree of each node),
        offsets (int array (B + 1,): tree i's nodes are ``offsets[i]:offsets[i+1]``),
        height, max_children.

    The schedule: ``levels`` (list of :class:`Level`, in level order) and the plans that move rows between node and level order (``to_levels``,
    ``from_levels``, ``roots_from_levels``), used by :class:`rnnbp.nn.Recursive`.
    """

    def __init__(self, trees: Sequence[Tree]):
        trees = list(trees)
        if not trees:
            raise StructureError("TreeBatch: needs at least one tree")
        for i, tree in enumerate(trees):
            if not isinstance(tree, Tree):
                raise TypeError(f"TreeBatch: item {i} is a {type(tree).__name__}, expected a rnnbp.structure.Tree "
                                "(build one with Tree.from_nested or Tree.from_parents)")
        self.trees = trees
        sizes = np.array([t.num_nodes for t in trees])
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.tree_index = np.repeat(np.arange(len(trees)), sizes)
        self.roots = self.offsets[:-1] + np.array([t.root for t in trees])
        self.values = [v for t in trees for v in t.values]
        heights = np.concatenate([t.heights for t in trees])
        # Level order: by height, then by node order (a stable sort).
        level_order = np.argsort(heights, kind="stable")          # level row -> node
        row_of_node = np.empty_like(level_order)
        row_of_node[level_order] = np.arange(len(level_order))   # node -> level row
        self.levels = self._build_levels(heights[level_order], level_order, row_of_node)
        n = len(level_order)
        self.to_levels = GatherPlan(n, (0,), (np.arange(n),), (level_order,), (True,))
        self.from_levels = self._plan(row_of_node, self.levels)
        self.roots_from_levels = self._plan(row_of_node[self.roots], self.levels)

    def _build_levels(self, sorted_heights, level_order, row_of_node) -> list[Level]:
        bounds = np.searchsorted(sorted_heights, np.arange(sorted_heights[-1] + 2))
        levels: list[Level] = []
        for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            kid_lists = []
            for node in level_order[start:stop].tolist():
                t = self.tree_index[node]
                base = self.offsets[t]
                kid_lists.append([row_of_node[base + c] for c in self.trees[t].children[node - base]])
            num_children = np.array([len(k) for k in kid_lists], dtype=np.int64)
            width = int(num_children.max())
            children = np.full((stop - start, width), -1, dtype=np.int64)
            for row, kids in enumerate(kid_lists):
                children[row, :len(kids)] = kids
            levels.append(Level(start, stop, children, num_children, self._plan(children.reshape(-1), levels)))
        return levels

    @staticmethod
    def _plan(wanted: np.ndarray, levels: list[Level]) -> GatherPlan:
        """Gather the level-order rows ``wanted`` (-1: a zero row) from per-level tensors."""
        sources, dest, rows, unique = [], [], [], []
        present = np.flatnonzero(wanted >= 0)
        if len(present):
            starts = np.array([level.start for level in levels])
            source_of = np.searchsorted(starts, wanted[present], side="right") - 1
            for k in np.unique(source_of).tolist():
                hit = present[source_of == k]
                r = wanted[hit] - levels[k].start
                sources.append(k)
                dest.append(hit)
                rows.append(r)
                unique.append(_unique(r))
        return GatherPlan(len(wanted), tuple(sources), tuple(dest), tuple(rows), tuple(unique))

    @property
    def num_trees(self) -> int:
        return len(self.trees)

    @property
    def num_nodes(self) -> int:
        return int(self.offsets[-1])

    @property
    def height(self) -> int:
        return len(self.levels) - 1

    @property
    def max_children(self) -> int:
        return max(level.max_children for level in self.levels)

    @property
    def level_sizes(self) -> list[int]:
        return [level.size for level in self.levels]

    def positions(self, tree: int) -> np.ndarray:
        """The rows of tree ``tree``'s nodes, indexed by the tree's node ids."""
        return np.arange(self.offsets[tree], self.offsets[tree + 1])

    def concat(self, per_tree: Sequence[Sequence[Any]]) -> np.ndarray:
        """Per-node data given per tree (indexed by node id), checked and concatenated: (N, ...)."""
        if len(per_tree) != self.num_trees:
            raise ValueError(f"TreeBatch.concat: got data for {len(per_tree)} trees, the batch has {self.num_trees}")
        for i, (data, tree) in enumerate(zip(per_tree, self.trees)):
            if len(data) != tree.num_nodes:
                raise ValueError(f"TreeBatch.concat: tree {i} has {tree.num_nodes} nodes, got {len(data)} items")
        return np.concatenate([np.asarray(d) for d in per_tree])

    def __repr__(self) -> str:
        return f"TreeBatch(num_trees={self.num_trees}, num_nodes={self.num_nodes}, height={self.height})"
