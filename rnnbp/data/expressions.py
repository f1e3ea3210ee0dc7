"""Seeded random arithmetic expression trees over the digits 0-9, evaluated mod 10.

A task for backpropagation through structure: a model reads an expression such as
``((3*4)-(7+(9*9)))`` and answers its value mod 10 (here 4, since (12 - 88) mod 10 = 4), one of 10 classes.
Every expression comes in two forms:

* the tree, as nested tuples ``(op, left, right)`` with a leaf being the ``int`` digit
  itself: what ``rnnbp.structure.Tree.from_nested(tree, labelled=True)`` takes;
* its fully parenthesised infix tokens, ``["(", "3", "*", "4", ")"]``: what a sequential
  model reads.

The operators ``+``, ``-`` and ``*`` are those of the ring of integers mod 10, so the label is
exactly Python's ``eval("".join(tokens)) % 10``: the ordinary integer value, mod 10. ``+`` and
``-`` make every leaf matter (a single changed digit changes the answer); ``*`` adds an absorbing
0 and skews the values toward 0 and the even digits (27 % of the 100 products of two digits are
0 and 75 % even; with the three operators drawn uniformly, about 21 % of trees of depth 3 or more
are worth 0, against 10 % for the other values at most). :func:`expression_set` therefore balances
the labels by default: it draws trees at each depth and keeps each value until it has its tenth of that
depth's share, so every label is equally frequent at every depth and no depth can be scored by
guessing its most common value.

The *depth* of an expression is the number of operators on its longest root-to-leaf path (a
digit alone has depth 0). A tree of exact depth d puts an operator at the root, gives one child
(left or right, by a fair coin) exact depth d - 1 and the other a depth uniform in 0..d-1, so
left-heavy, right-heavy, balanced and comb-like shapes all occur. Mean sizes: about 16 nodes
(32 tokens) at depth 4, 71 nodes (141 tokens, at most about 380) at depth 8.

:func:`expression_splits` gives the usual protocol: training and validation on depths 1-4 from
disjoint parts of the expression space, test sets at depths 5, 6, 7 and 8 (deeper than anything
seen in training), each split from its own generator derived from one seed.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..autograd import random as _random
from ..validation import check_int, check_int_range

__all__ = [
    "OPERATORS", "EXPRESSION_TOKENS", "ExpressionSet", "ExpressionSplits",
    "random_expression", "evaluate_expression", "expression_depth", "expression_size", "expression_tokens",
    "expression_set", "expression_splits", "in_validation_part",
]

OPERATORS = {
    "+": lambda a, b: (a + b) % 10,
    "-": lambda a, b: (a - b) % 10,
    "*": lambda a, b: (a * b) % 10,
}
"""Binary operators mod 10, by token. All are ring operations, so evaluation commutes with mod 10."""

EXPRESSION_TOKENS = tuple("0123456789") + tuple(OPERATORS) + ("(", ")")
"""The token vocabulary: digit ``d`` has id ``d``, then the operators, then the brackets (15 tokens)."""

_TOKEN_ID = {t: i for i, t in enumerate(EXPRESSION_TOKENS)}


# ----------------------------------------------------------- one tree
def _check_ops(where: str, ops) -> tuple[str, ...]:
    if isinstance(ops, str):
        ops = (ops,)
    ops = tuple(ops)
    bad = [o for o in ops if o not in OPERATORS]
    if not ops or bad or len(set(ops)) != len(ops):
        raise ValueError(f"{where}: ops must be distinct operators out of {list(OPERATORS)}, got {list(ops)!r}")
    return ops


def _check_tree(where: str, tree) -> None:
    """Iteratively, so that a malformed deep tree gets a message, not a RecursionError."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, tuple):
            if len(node) != 3 or node[0] not in OPERATORS:
                raise ValueError(f"{where}: expected (op, left, right) with op in {list(OPERATORS)} or a digit "
                                 f"0-9, got the node {node!r}")
            stack.extend(node[1:])
        elif isinstance(node, bool) or not isinstance(node, (int, np.integer)) or not 0 <= node <= 9:
            raise ValueError(f"{where}: a leaf must be an int digit 0-9, got {node!r}")


def random_expression(depth: int, generator: np.random.Generator | None = None,
                      ops: Sequence[str] = tuple(OPERATORS)):
    """One random expression tree of exactly the given depth.

    The root is an operator (uniform over ``ops``); one child, left or right with equal
    probability, has exact depth ``depth - 1``, the other a depth uniform in ``0..depth-1``;
    leaves are digits uniform over 0-9.

    Args:
        depth : int >= 0. Operators on the longest root-to-leaf path (0: a single digit). The
            generator recurses once per level, so depths near Python's recursion limit (1000) fail;
            the functions that read trees do not recurse.
        generator : np.random.Generator or None (the default generator ``rnnbp.manual_seed`` seeds).
        ops : operators to draw from, a subset of :data:`OPERATORS`.

    Returns:
        tree : ``int`` (a digit, at depth 0) or ``(op, left, right)`` of such.
    """
    depth = check_int("random_expression", "depth", depth, 0)
    ops = _check_ops("random_expression", ops)
    return _grow(depth, _random.get_generator(generator), ops)


def _grow(depth: int, rng: np.random.Generator, ops: tuple[str, ...]):
    if depth == 0:
        return int(rng.integers(10))
    op = ops[int(rng.integers(len(ops)))]
    deep = _grow(depth - 1, rng, ops)
    other = _grow(int(rng.integers(depth)), rng, ops)
    return (op, deep, other) if rng.integers(2) == 0 else (op, other, deep)


def _post_order(tree) -> list:
    """The nodes of ``tree`` children first (left, right, then the node), without recursion."""
    out, stack = [], [(tree, False)]
    while stack:
        node, expanded = stack.pop()
        if isinstance(node, tuple) and not expanded:
            stack.append((node, True))
            stack.append((node[2], False))
            stack.append((node[1], False))
        else:
            out.append(node)
    return out


def _fold(tree, leaf, internal):
    """Combine bottom-up: ``leaf(digit)`` at the leaves, ``internal(op, left_result, right_result)`` above."""
    values = []
    for node in _post_order(tree):
        if isinstance(node, tuple):
            right = values.pop()
            left = values.pop()
            values.append(internal(node[0], left, right))
        else:
            values.append(leaf(node))
    return values[0]


def _value(tree) -> int:
    return _fold(tree, int, lambda op, a, b: OPERATORS[op](a, b))


def evaluate_expression(tree) -> int:
    """The value of ``tree`` mod 10, an int in 0..9."""
    _check_tree("evaluate_expression", tree)
    return _value(tree)


def expression_depth(tree) -> int:
    """Operators on the longest root-to-leaf path (0 for a digit)."""
    _check_tree("expression_depth", tree)
    return _fold(tree, lambda _: 0, lambda _, a, b: 1 + max(a, b))


def expression_size(tree) -> int:
    """Nodes in the tree: digits plus operators."""
    _check_tree("expression_size", tree)
    return _fold(tree, lambda _: 1, lambda _, a, b: 1 + a + b)


def expression_tokens(tree) -> list[str]:
    """Fully parenthesised infix tokens: ``("*", 3, ("+", 4, 5))`` -> ``( 3 * ( 4 + 5 ) )``; a lone digit has none."""
    _check_tree("expression_tokens", tree)
    return _fold(tree, lambda d: [str(d)], lambda op, a, b: ["(", *a, op, *b, ")"])


# ------------------------------------------------------------- data sets
@dataclass
class ExpressionSet:
    """Expressions with their values and depths; both the tree and the token forms.

    Attributes:
        trees : list of N nested tuples (see :func:`random_expression`).
        values : np.ndarray [shape=(N,), dtype=int64], each tree's value mod 10 (the class label).
        depths : np.ndarray [shape=(N,), dtype=int64].
    """

    trees: list
    values: np.ndarray
    depths: np.ndarray
    _tokens: list | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.trees)

    @property
    def tokens(self) -> list[list[str]]:
        """The infix tokens of each tree (computed once)."""
        if self._tokens is None:
            self._tokens = [expression_tokens(t) for t in self.trees]
        return self._tokens

    def subset(self, index) -> "ExpressionSet":
        """The expressions at ``index`` (integer indices, a boolean mask or a slice), in that order."""
        idx = np.arange(len(self))[index]
        tokens = None if self._tokens is None else [self._tokens[i] for i in idx]
        return ExpressionSet([self.trees[i] for i in idx], self.values[idx], self.depths[idx], tokens)

    def token_ids(self, index=None) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of the chosen expressions, zero-padded, time-major, for ``nn.Embedding`` and ``nn.LSTM``.

        Args:
            index : integer indices, a boolean mask or a slice; None for all.

        Returns:
            ids : np.ndarray [shape=(L, B), dtype=int64], ids into :data:`EXPRESSION_TOKENS`;
                L is the longest chosen expression; padding is 0 (the digit 0: masked by ``lengths``).
            lengths : np.ndarray [shape=(B,), dtype=int64].
        """
        idx = np.arange(len(self)) if index is None else np.arange(len(self))[index]
        seqs = [self.tokens[i] for i in idx]
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        ids = np.zeros((int(lengths.max(initial=0)), len(seqs)), dtype=np.int64)
        for b, s in enumerate(seqs):  # building the batch, not computing on it: one short loop of lookups
            ids[:len(s), b] = [_TOKEN_ID[t] for t in s]
        return ids, lengths

    def majority(self) -> tuple[int, float]:
        """The most common value and its frequency: the accuracy of always answering it here."""
        counts = np.bincount(self.values, minlength=10)
        return int(counts.argmax()), float(counts.max() / max(len(self), 1))


def _depth_range(where: str, depth) -> tuple[int, int]:
    lo, hi = check_int_range(where, "depth", depth)
    if not 0 <= lo <= hi:
        raise ValueError(f"{where}: depth must be an int >= 0 or (low, high) with 0 <= low <= high, got {depth!r}")
    return int(lo), int(hi)


def expression_set(n: int, depth: int | tuple[int, int], generator: np.random.Generator | None = None, *,
                   ops: Sequence[str] = tuple(OPERATORS), balance: bool = True, unique: bool = False,
                   exclude: Iterable = (), keep: Callable[[Any], bool] | None = None,
                   max_draws: int | None = None) -> ExpressionSet:
    """``n`` random expressions, equally many at each depth of a range, optionally label-balanced.

    The ``n`` expressions are shared out over the depths ``low..high`` (the first
    ``n % (high - low + 1)`` depths get one more), and ordered by depth. With ``balance``, each
    depth's share is further shared out over the 10 values, and trees are drawn at that depth until
    every value has its count (rejection sampling: a tree whose value is full is dropped), so every
    label is equally frequent at every depth. Trees in ``exclude``, and with ``unique`` trees
    already taken, are dropped too.

    Args:
        n : int >= 1.
        depth : int >= 0, or (low, high) with 0 <= low <= high: the depths, both included.
        generator : np.random.Generator or None (the default generator).
        ops : operators, a subset of :data:`OPERATORS`.
        balance : equal counts of every value at every depth (default True).
        unique : no expression twice (default False: i.i.d. draws).
        exclude : trees (nested tuples) never to return, e.g. a training set's.
        keep : a predicate on trees, or None; trees it rejects are never returned (how
            :func:`expression_splits` gives validation a part of the expression space of its own).
        max_draws : int >= 1 or None. Give up with ``RuntimeError`` after this many trees drawn at one
            depth (default ``1000 * share + 10_000``): asking for more distinct depth-1 trees than exist,
            for instance, would otherwise never end.

    Returns:
        ExpressionSet of n expressions.
    """
    n = check_int("expression_set", "n", n, 1)
    lo, hi = _depth_range("expression_set", depth)
    ops = _check_ops("expression_set", ops)
    if max_draws is not None:
        max_draws = check_int("expression_set", "max_draws", max_draws, 1)
    rng = _random.get_generator(generator)
    try:
        excluded = set(exclude)
    except TypeError:
        raise ValueError("expression_set: exclude must hold trees as nested tuples (hashable), "
                         f"got {type(exclude).__name__} of unhashable items") from None
    n_excluded = len(excluded)
    depths = np.arange(lo, hi + 1)
    per_depth = np.full(len(depths), n // len(depths)) + (np.arange(len(depths)) < n % len(depths))
    trees, values, tree_depths = [], [], []
    for d, share in zip(depths, per_depth):
        if share == 0:
            continue
        quota = (np.full(10, share // 10) + (rng.permutation(10) < share % 10)) if balance else None
        budget = max_draws if max_draws is not None else 1000 * int(share) + 10_000
        taken, draws = 0, 0
        while taken < share:
            if draws == budget:
                raise RuntimeError(
                    f"expression_set: drew {draws} trees of depth {d} and kept only {taken} of {share}; too few "
                    f"distinct expressions of this depth{' with the missing values' if balance else ''} "
                    f"(unique={unique}, {n_excluded} excluded). Ask for fewer, or allow repeats (unique=False)")
            draws += 1
            tree = _grow(int(d), rng, ops)
            if tree in excluded or (keep is not None and not keep(tree)):
                continue
            value = _value(tree)
            if quota is not None:
                if quota[value] == 0:
                    continue
                quota[value] -= 1
            if unique:
                excluded.add(tree)
            trees.append(tree)
            values.append(value)
            tree_depths.append(int(d))
            taken += 1
    return ExpressionSet(trees, np.array(values, dtype=np.int64), np.array(tree_depths, dtype=np.int64))


@dataclass
class ExpressionSplits:
    """Training and validation sets on shallow trees, test sets on deeper ones.

    Attributes:
        train, val : ExpressionSet on the training depths.
        test : dict ``depth -> ExpressionSet`` for each held-out depth.
    """

    train: ExpressionSet
    val: ExpressionSet
    test: dict


VALIDATION_SHARE = 5
"""One expression in VALIDATION_SHARE belongs to validation, by a fixed hash of its tokens."""


def in_validation_part(tree) -> bool:
    """Whether ``tree`` belongs to the validation part of the expression space (a fixed fifth of it).

    Splitting the space, not the draws, keeps validation disjoint from training even where
    few expressions exist: there are only 300 of depth 1 with three operators, and a training
    set drawn i.i.d. would otherwise contain every one of them.
    """
    return zlib.crc32("".join(expression_tokens(tree)).encode()) % VALIDATION_SHARE == 0


def expression_splits(n_train: int, n_val: int, n_test: int, *, train_depth: tuple[int, int] = (1, 4),
                      test_depths: Sequence[int] = (5, 6, 7, 8), seed: int = 0,
                      ops: Sequence[str] = tuple(OPERATORS), balance: bool = True) -> ExpressionSplits:
    """The generalisation-to-depth protocol: train and validate on shallow trees, test on deeper ones.

    * ``train``: ``n_train`` i.i.d. expressions, equally many at each depth of ``train_depth``,
      from the four fifths of the expression space outside :func:`in_validation_part`;
    * ``val``: ``n_val`` expressions of the same depths from the other fifth, so none of them is
      in ``train`` (at depth 1 they repeat: that fifth holds about 60 distinct ones);
    * ``test[d]``: ``n_test`` distinct expressions of depth d for each d in ``test_depths``, all
      deeper than ``train_depth``, so none is in ``train`` or ``val``.

    Each split draws from its own generator, ``np.random.default_rng([seed, k])``, so changing one
    size leaves the other splits as they were.

    Args:
        n_train, n_val, n_test : int >= 1.
        train_depth : (low, high) or int, the training and validation depths.
        test_depths : depths of the test sets, each above ``train_depth``'s high end.
        seed : int >= 0.
        ops, balance : as in :func:`expression_set`.

    Returns:
        ExpressionSplits (train, val, test).
    """
    where = "expression_splits"
    for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        check_int(where, name, value, 1)
    seed = check_int(where, "seed", seed, 0)
    lo, hi = _depth_range(where, train_depth)
    if isinstance(test_depths, (int, np.integer)):
        test_depths = (test_depths,)
    try:
        test_depths = [check_int(where, "each test depth", d, 0) for d in test_depths]
    except TypeError:
        raise ValueError(f"{where}: test_depths must be a sequence of ints, got {test_depths!r}") from None
    if len(set(test_depths)) != len(test_depths):
        raise ValueError(f"{where}: test_depths must be distinct, got {test_depths}")
    if test_depths and min(test_depths) <= hi:
        raise ValueError(f"{where}: test_depths must all be deeper than the training depths {lo}-{hi}, got "
                         f"{test_depths}; for a test at the training depths use expression_set(..., exclude=...)")
    train = expression_set(n_train, (lo, hi), np.random.default_rng([seed, 0]), ops=ops, balance=balance,
                           keep=lambda tree: not in_validation_part(tree))
    val = expression_set(n_val, (lo, hi), np.random.default_rng([seed, 1]), ops=ops, balance=balance,
                         keep=in_validation_part)
    test = {d: expression_set(n_test, d, np.random.default_rng([seed, 2, d]), ops=ops, balance=balance, unique=True)
            for d in test_depths}
    return ExpressionSplits(train, val, test)
