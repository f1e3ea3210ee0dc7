"""TreeBatch: differently shaped trees merged into one level-by-level schedule.

A batch renumbers every node of every tree into *batch order*: all nodes of height 0
(the leaves of every tree) first, then all nodes of height 1, and so on; within a
level, by tree and then by the tree's own node id. Level ``l`` is then one contiguous
slice of rows, all its children sit in earlier levels, and a recursive network
evaluates the whole batch with one cell call (one matrix product per weight) per
level instead of one per node: the cost grows with the deepest tree, not the node count.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .gather import GatherPlan
from .tree import StructureError, Tree


@dataclass(frozen=True)
class Level:
    """One height of the batch: rows ``start:stop`` in batch order.

    ``children`` is (M, K): the batch positions of each node's children in order, -1
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


class TreeBatch:
    """A batch of :class:`Tree` structures scheduled level by level.

    Args:
        trees : the structures (trees or DAGs), each with one root.

    Attributes:
        num_trees (B), num_nodes (N, all trees together), levels (list of :class:`Level`),
        values (list of N node values in batch order), roots (int array (B,): each
        tree's root in batch order), tree_index (int array (N,): the tree of each row),
        node_id (int array (N,): the row's id within its tree), max_children.

    Use :meth:`positions` to find a tree's nodes among the rows and :meth:`concat` to
    lay out per-node data (labels, features) given per tree in batch order.
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
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        heights = np.concatenate([t.heights for t in trees])
        # Batch order: by height, then tree, then node id (a stable sort of the concatenation).
        self._order = np.argsort(heights, kind="stable")
        self._position = np.empty_like(self._order)
        self._position[self._order] = np.arange(len(self._order))
        self._offsets = offsets
        self.tree_index = np.repeat(np.arange(len(trees)), sizes)[self._order]
        self.node_id = (self._order - offsets[:-1][self.tree_index])
        self.roots = self._position[offsets[:-1] + np.array([t.root for t in trees])]
        flat_values = [v for t in trees for v in t.values]
        self.values = [flat_values[i] for i in self._order.tolist()]
        self.levels = self._build_levels(heights[self._order])

    def _build_levels(self, sorted_heights: np.ndarray) -> list[Level]:
        bounds = np.searchsorted(sorted_heights, np.arange(sorted_heights[-1] + 2))
        levels: list[Level] = []
        for start, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            kid_lists = []
            for t, local in zip(self.tree_index[start:stop].tolist(), self.node_id[start:stop].tolist()):
                base = self._offsets[t]
                kid_lists.append([self._position[base + c] for c in self.trees[t].children[local]])
            num_children = np.array([len(k) for k in kid_lists], dtype=np.int64)
            width = int(num_children.max()) if len(num_children) else 0
            children = np.full((stop - start, width), -1, dtype=np.int64)
            for row, kids in enumerate(kid_lists):
                children[row, :len(kids)] = kids
            levels.append(Level(start, stop, children, num_children, self._plan(children, levels)))
        return levels

    @staticmethod
    def _plan(children: np.ndarray, earlier: list[Level]) -> GatherPlan:
        flat = children.reshape(-1)
        sources, dest, rows, unique = [], [], [], []
        present = np.flatnonzero(flat >= 0)
        if len(present):
            starts = np.array([level.start for level in earlier])
            source_of = np.searchsorted(starts, flat[present], side="right") - 1
            for k in np.unique(source_of).tolist():
                hit = present[source_of == k]
                r = flat[hit] - earlier[k].start
                sources.append(k)
                dest.append(hit)
                rows.append(r)
                unique.append(len(np.unique(r)) == len(r))
        return GatherPlan(len(flat), tuple(sources), tuple(dest), tuple(rows), tuple(unique))

    @property
    def num_trees(self) -> int:
        return len(self.trees)

    @property
    def num_nodes(self) -> int:
        return len(self._order)

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
        """The batch positions of tree ``tree``'s nodes, indexed by the tree's node ids."""
        n = self.trees[tree].num_nodes
        return self._position[self._offsets[tree]:self._offsets[tree] + n]

    def concat(self, per_tree: Sequence[Sequence[Any]]) -> np.ndarray:
        """Per-node data given per tree (indexed by node id) as one array in batch order.

        E.g. node labels ``[labels_of_tree_0, labels_of_tree_1, ...]`` -> (N,) aligned
        with the rows of a recursive network's output.
        """
        if len(per_tree) != self.num_trees:
            raise ValueError(f"TreeBatch.concat: got data for {len(per_tree)} trees, the batch has {self.num_trees}")
        for i, (data, tree) in enumerate(zip(per_tree, self.trees)):
            if len(data) != tree.num_nodes:
                raise ValueError(f"TreeBatch.concat: tree {i} has {tree.num_nodes} nodes, got {len(data)} items")
        flat = np.concatenate([np.asarray(d) for d in per_tree])
        return flat[self._order]

    def __repr__(self) -> str:
        return f"TreeBatch(num_trees={self.num_trees}, num_nodes={self.num_nodes}, height={self.height})"
