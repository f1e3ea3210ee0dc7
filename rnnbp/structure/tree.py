"""Tree: one example's structure, a tree or DAG whose nodes have ordered children and optional values.

Backpropagation through structure (Goller & Kuechler 1996) runs a network whose graph
follows a structure given with each example: a parse tree, an expression tree, a DAG
of shared subexpressions. :class:`Tree` holds that structure and nothing else:

* ``children[i]``: the ordered ids of node ``i``'s children (empty for a leaf);
* ``values[i]``: node ``i``'s own input (a token, a feature row index, ...), or None;
* one root: the only node that is nobody's child.

A node may be the child of several nodes (a DAG); cycles are refused. Node ids are the
caller's (0 .. num_nodes-1, in any order); :meth:`topological_order` and :meth:`schedule`
give the schedules a network needs: every child before its parents.
"""
from __future__ import annotations

import operator
from typing import Any, Sequence

import numpy as np


class StructureError(ValueError):
    """A tree or DAG that cannot be evaluated: bad child ids, a cycle, no single root."""


def _child_ids(node: int, node_children) -> tuple[int, ...]:
    """A node's children as a tuple of ints; floats, strings and the like are refused, not truncated."""
    try:
        return tuple(operator.index(c) for c in node_children)
    except TypeError:
        raise StructureError(f"Tree: node {node} has children {node_children!r}; expected a sequence of "
                             "integer node ids") from None


class Tree:
    """A tree or DAG with ordered children and optional node values.

    Args:
        children : one sequence of child ids per node; ``children[i]`` are node i's
            children in order (their order matters to N-ary cells).
        values : one value per node (None where a node has no input); default all None.

    Attributes:
        num_nodes, children (tuple of tuples), values (list), root (int),
        heights (int array (num_nodes,): 0 for leaves, 1 + the highest child otherwise),
        height (the root's height), max_children.

    Example::

        t = Tree.from_nested(("+", ("*", 3, 4), 7), labelled=True)
        t.values  # [3, 4, '*', 7, '+']  (post-order: children before parents, root last)
    """

    __slots__ = ("children", "values", "root", "heights")

    def __init__(self, children: Sequence[Sequence[int]], values: Sequence[Any] | None = None):
        n = len(children)
        if n == 0:
            raise StructureError("Tree: a structure needs at least one node")
        kids = tuple(_child_ids(node, node_children) for node, node_children in enumerate(children))
        if values is None:
            values = [None] * n
        elif len(values) != n:
            raise StructureError(f"Tree: {len(values)} values for {n} nodes")
        is_child = np.zeros(n, dtype=bool)
        for node, node_children in enumerate(kids):
            for c in node_children:
                if not 0 <= c < n:
                    raise StructureError(f"Tree: node {node} has child {c}, outside 0..{n - 1}")
                if c == node:
                    raise StructureError(f"Tree: node {node} is its own child")
                is_child[c] = True
        roots = np.flatnonzero(~is_child)
        if len(roots) != 1:
            what = "no root (every node is someone's child: there is a cycle)" if len(roots) == 0 else \
                f"{len(roots)} roots (nodes {roots[:8].tolist()}{'...' if len(roots) > 8 else ''} are nobody's child)"
            raise StructureError(f"Tree: a structure needs exactly one root, this one has {what}")
        self.children = kids
        self.values = list(values)
        self.root = int(roots[0])
        self.heights = self._compute_heights()

    def _compute_heights(self) -> np.ndarray:
        """Heights by Kahn's algorithm from the leaves up; raises on a cycle."""
        n = len(self.children)
        parents: list[list[int]] = [[] for _ in range(n)]
        pending = np.zeros(n, dtype=np.int64)  # children not yet given a height
        for node, node_children in enumerate(self.children):
            pending[node] = len(node_children)
            for c in node_children:
                parents[c].append(node)
        heights = np.zeros(n, dtype=np.int64)
        ready = [node for node in range(n) if pending[node] == 0]
        done = 0
        while ready:
            node = ready.pop()
            done += 1
            for p in parents[node]:
                heights[p] = max(heights[p], heights[node] + 1)
                pending[p] -= 1
                if pending[p] == 0:
                    ready.append(p)
        if done != n:
            stuck = np.flatnonzero(pending > 0)
            raise StructureError(f"Tree: the children links contain a cycle through nodes {stuck[:8].tolist()}")
        return heights

    # ----------------------------------------------------------------- builders
    @classmethod
    def from_nested(cls, nested, labelled: bool = False) -> "Tree":
        """A tree from nested tuples, numbered in post-order (children first, root last).

        With ``labelled=False`` a tuple is an internal node whose elements are its
        children (value None) and anything else is a leaf whose value is itself:
        ``(("the", "cat"), "sat")``. With ``labelled=True`` a tuple is
        ``(value, child, child, ...)``: ``("+", ("*", 3, 4), 7)``. Only tuples nest;
        lists and arrays are values. Depth is not limited by Python's recursion limit.
        """
        children: list[tuple[int, ...]] = []
        values: list[Any] = []
        # Iterative post-order: each stack entry is (item, ids of the children built so far).
        stack = [(nested, [])]
        while stack:
            item, built = stack[-1]
            if isinstance(item, tuple):
                if labelled and len(item) == 0:
                    raise StructureError("Tree.from_nested: an empty tuple has no value (labelled=True expects "
                                         "(value, child, ...))")
                kids = item[1:] if labelled else item
                if not labelled and len(kids) == 0:
                    raise StructureError("Tree.from_nested: an empty tuple is neither a leaf nor an internal node")
                if len(built) < len(kids):
                    stack.append((kids[len(built)], []))
                    continue
                value = item[0] if labelled else None
            else:
                value = item
            stack.pop()
            node = len(children)
            children.append(tuple(built))
            values.append(value)
            if stack:
                stack[-1][1].append(node)
        return cls(children, values)

    @classmethod
    def from_parents(cls, parents: Sequence[int], values: Sequence[Any] | None = None) -> "Tree":
        """A tree from a parent array: ``parents[i]`` is node i's parent (0-based), -1 for the root.

        Children are ordered by id. (Treebanks such as SST number from 1 with 0 as the
        root: subtract 1.)
        """
        parents = np.asarray(parents)
        if parents.ndim != 1 or not np.issubdtype(parents.dtype, np.integer):
            raise StructureError(f"Tree.from_parents: expected a 1-D integer array of parent ids, got "
                                 f"shape {parents.shape} and dtype {parents.dtype}")
        n = len(parents)
        bad = np.flatnonzero((parents < -1) | (parents >= n))
        if len(bad):
            raise StructureError(f"Tree.from_parents: node {bad[0]} has parent {parents[bad[0]]}, outside -1..{n - 1}")
        children: list[list[int]] = [[] for _ in range(n)]
        for node, p in enumerate(parents.tolist()):
            if p >= 0:
                children[p].append(node)
        return cls(children, values)

    # ---------------------------------------------------------------- schedules
    @property
    def num_nodes(self) -> int:
        return len(self.children)

    @property
    def height(self) -> int:
        return int(self.heights[self.root])

    @property
    def max_children(self) -> int:
        return max(len(c) for c in self.children)

    def schedule(self) -> list[np.ndarray]:
        """Node ids grouped by height: level 0 holds the leaves, each level only needs earlier ones."""
        order = np.argsort(self.heights, kind="stable")
        bounds = np.searchsorted(self.heights[order], np.arange(self.height + 2))
        return [order[bounds[k]:bounds[k + 1]] for k in range(self.height + 1)]

    def topological_order(self) -> np.ndarray:
        """Every node id once, each after all of its children (level by level)."""
        return np.argsort(self.heights, kind="stable")

    def to_nested(self, labelled: bool = False):
        """The inverse of :meth:`from_nested` (a DAG's shared nodes are written out once per use)."""
        built: dict[int, Any] = {}
        for node in self.topological_order().tolist():
            kids = tuple(built[c] for c in self.children[node])
            if not kids:
                built[node] = (self.values[node],) if labelled and isinstance(self.values[node], tuple) \
                    else self.values[node]
            else:
                built[node] = (self.values[node],) + kids if labelled else kids
        return built[self.root]

    def __repr__(self) -> str:
        return f"Tree(num_nodes={self.num_nodes}, height={self.height}, root={self.root})"
