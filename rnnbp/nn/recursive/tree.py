"""Recursive networks over trees and DAGs: backpropagation through structure on the autograd core.

A recursive cell computes a node's state from its own input and its children's
states; :class:`Recursive` runs a cell over a :class:`~rnnbp.structure.TreeBatch`
one level at a time, so all nodes of one height share one call (one matrix product
per weight), and the tape it leaves is the structure itself: ``loss.backward()`` is
backpropagation through structure (Goller & Kuechler 1996).

Cells (Tai, Socher & Manning 2015 for the Tree-LSTMs):

* :class:`RecursiveRNNCell`: h = act(x W_ih^T + b_ih + compose(children) + b_hh), with
  compose = (sum of the children's h) W_hh^T, or with ``num_children=N`` the N children
  concatenated in order times W_hh^T (Socher-style composition).
* :class:`ChildSumTreeLSTMCell`: any number of unordered children, one forget gate per child.
* :class:`NaryTreeLSTMCell`: at most N ordered children, each with its own weights.

Layouts follow ``nn.LSTM`` (gates i, f, g, o; ``weight_ih``, ``weight_hh``, ``bias_ih``,
``bias_hh``): on a chain (every node one child) the Child-Sum and the 1-ary cell *are*
an LSTM with the same weights, and :class:`RecursiveRNNCell` is ``nn.RNN``'s cell.

A cell's call, for M nodes with their children padded to K:
``cell(x, children) -> state``: x (M, input_size); children None (leaves) or
(M, K, H) for the RNN cell, ``(h, c)`` each (M, K, H) for the LSTMs, zero rows where a
node has fewer children (zeros contribute nothing). The state is h (M, H) or (h, c).
"""
from __future__ import annotations


from ...autograd import ops
from ...autograd.tensor import Tensor
from ...structure import Tree, TreeBatch
from ...structure.gather import GatherPlan, gather_rows
from ...validation import check_int
from .tree_kernels import ChildSumTreeLSTMLevel, NaryTreeLSTMLevel, TreeLSTMLeaves
from ..module import Module
from ..recurrent.cells import add_cell_parameters, reset_cell_parameters


class _RecursiveCell(Module):
    """Parameters, shape checks and the split into input projection + combination.

    ``input_projection(x)`` (one matrix product, which :class:`Recursive` runs once for
    every node of a batch) and ``combine(projected, children)`` together are ``forward``.
    Subclasses pass the gate rows of weight_ih and the columns of weight_hh.
    """

    has_cell_state = False

    def __init__(self, input_size: int, hidden_size: int, num_children: int | None, rows: int, hh_cols: int,
                 bias: bool, dtype, generator):
        super().__init__()
        name = type(self).__name__
        self.input_size = check_int(name, "input_size", input_size)
        self.hidden_size = check_int(name, "hidden_size", hidden_size)
        self.num_children = None if num_children is None else check_int(name, "num_children", num_children)
        self.bias = bool(bias)
        self.state_size = (self.hidden_size, self.hidden_size) if self.has_cell_state else self.hidden_size
        add_cell_parameters(self, rows, hh_cols, bias, dtype)
        self.reset_parameters(generator)

    def reset_parameters(self, generator=None) -> None:
        """Every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)), as PyTorch initialises its cells."""
        reset_cell_parameters(self, generator)

    def input_projection(self, x: Tensor) -> Tensor:
        """x W_ih^T + b_ih + b_hh for every row: (M, input_size) -> (M, rows)."""
        name = type(self).__name__
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"{name}: expected input of shape (M, {self.input_size}), got {x.shape}")
        bias = None if self.bias_ih is None else self.bias_ih + self.bias_hh
        return ops.linear(x, self.weight_ih, bias)

    def forward(self, x: Tensor, children=None):
        """The state of M nodes from their inputs x (M, input_size) and children (see the module doc)."""
        return self.combine(self.input_projection(x), children)

    def _check_children(self, projected: Tensor, children):
        """The children's state tensors as a tuple, each checked to be (M, K, H)."""
        name = type(self).__name__
        parts = children if isinstance(children, tuple) else (children,)
        expected_parts = 2 if self.has_cell_state else 1
        if len(parts) != expected_parts:
            raise ValueError(f"{name}: children should be {'(h, c)' if self.has_cell_state else 'h'}, "
                             f"got a tuple of {len(parts)}")
        m = projected.shape[0]
        k = self.num_children
        if len(parts) == 2 and parts[0].shape != parts[1].shape:
            raise ValueError(f"{name}: children h {parts[0].shape} and c {parts[1].shape} must have the same shape")
        for part in parts:
            if part.ndim != 3 or part.shape[0] != m or part.shape[2] != self.hidden_size or \
                    (k is not None and part.shape[1] != k):
                want = f"({m}, {k if k is not None else 'K'}, {self.hidden_size})"
                raise ValueError(f"{name}: expected children of shape {want}, got {part.shape}")
        return parts

    def extra_repr(self) -> str:
        kids = "" if self.num_children is None else f", num_children={self.num_children}"
        return f"{self.input_size}, {self.hidden_size}{kids}{'' if self.bias else ', bias=False'}"


class RecursiveRNNCell(_RecursiveCell):
    """Elman-style recursive composition.

    h = act(x W_ih^T + b_ih + b_hh + s W_hh^T), where s is the sum of the children's h
    (``num_children=None``; weight_hh (H, H)) or the N children's h concatenated in
    order (``num_children=N``; weight_hh (H, N*H)); s = 0 for a leaf. act: tanh or relu.

    Shape: x (M, input_size); children None or (M, K, H) -> h (M, H).
    """

    def __init__(self, input_size: int, hidden_size: int, num_children: int | None = None,
                 nonlinearity: str = "tanh", bias: bool = True, dtype=None, generator=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RecursiveRNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        h = check_int("RecursiveRNNCell", "hidden_size", hidden_size)
        n = None if num_children is None else check_int("RecursiveRNNCell", "num_children", num_children)
        super().__init__(input_size, h, n, h, h * (n or 1), bias, dtype, generator)
        self.nonlinearity = nonlinearity

    def combine(self, projected: Tensor, children=None) -> Tensor:
        pre = projected
        if children is not None:
            (h,) = self._check_children(projected, children)
            m = h.shape[0]
            s = h.sum(dim=1) if self.num_children is None else h.reshape(m, -1)
            pre = pre + ops.linear(s, self.weight_hh)
        return pre.tanh() if self.nonlinearity == "tanh" else pre.relu()

    def extra_repr(self) -> str:
        extra = "" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}"
        return super().extra_repr() + extra


class ChildSumTreeLSTMCell(_RecursiveCell):
    """Child-Sum Tree-LSTM (Tai et al. 2015, eqs. 2-8): any number of unordered children.

    With h~ the sum of the children's h, and gates in ``nn.LSTM``'s order i, f, g, o::

        i, g, o = sigma/tanh/sigma(x W_{i,g,o}^T + h~ U_{i,g,o}^T + b)
        f_k     = sigma(x W_f^T + h_k U_f^T + b_f)          one forget gate per child k
        c = i * g + sum_k f_k * c_k,   h = o * tanh(c)

    weight_ih (4H, input_size), weight_hh (4H, H) with rows [i, f, g, o]; biases (4H,).
    On a chain this is exactly ``nn.LSTMCell`` with the same weights. ``fused=True`` runs
    each level as one node with a hand-written backward (:mod:`rnnbp.nn.recursive.tree_kernels`);
    ``fused=False`` composes it from primitive ops (the reference it is tested against).

    Shape: x (M, input_size); children None or (h, c) each (M, K, H) -> (h, c) each (M, H).
    """

    has_cell_state = True

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, fused: bool = True, dtype=None,
                 generator=None):
        super().__init__(input_size, hidden_size, None, 4 * hidden_size, hidden_size, bias, dtype, generator)
        self.fused = bool(fused)

    def combine(self, projected: Tensor, children=None):
        if self.fused:
            if children is None:
                return TreeLSTMLeaves.apply(projected, hidden_size=self.hidden_size)
            return ChildSumTreeLSTMLevel.apply(projected, *self._check_children(projected, children), self.weight_hh)
        if children is None:
            i, _, g, o = projected.chunk(4, dim=1)
            c = i.sigmoid() * g.tanh()
            return o.sigmoid() * c.tanh(), c
        h_kids, c_kids = self._check_children(projected, children)
        hsz = self.hidden_size
        gates = projected + ops.linear(h_kids.sum(dim=1), self.weight_hh)
        i, f_x, g, o = gates.chunk(4, dim=1)
        # f_x holds x W_f^T + b_f + h~ U_f^T; each child's gate needs h_k U_f^T instead of h~ U_f^T.
        f_x = projected[:, hsz:2 * hsz]
        f = (f_x.unsqueeze(1) + ops.linear(h_kids, self.weight_hh[hsz:2 * hsz])).sigmoid()
        c = i.sigmoid() * g.tanh() + (f * c_kids).sum(dim=1)
        return o.sigmoid() * c.tanh(), c


class NaryTreeLSTMCell(_RecursiveCell):
    """N-ary Tree-LSTM (Tai et al. 2015, eqs. 9-14): at most N ordered children, each with its own weights.

    With s the N children's h concatenated in order (zeros for missing ones) and gates
    [i, f_1 .. f_N, g, o]::

        gates = x W_ih^T + b_ih + b_hh + s W_hh^T
        c = sigma(i) * tanh(g) + sum_k sigma(f_k) * c_k,   h = sigma(o) * tanh(c)

    weight_ih ((N+3)H, input_size), weight_hh ((N+3)H, N*H), biases ((N+3)H,). Every
    forget gate sees every child (Tai's U^(f)_{kl}); unlike Tai's shared W^(f), each
    f_k has its own input weights, so that N=1 is exactly ``nn.LSTMCell``. ``fused`` as in
    :class:`ChildSumTreeLSTMCell`. At the same H it has (N+3)/4 times ``nn.LSTM``'s input
    weights and N(N+3)/4 times its recurrent ones (N=2: 1.25x and 2.5x).

    Shape: x (M, input_size); children None or (h, c) each (M, N, H) -> (h, c) each (M, H).
    """

    has_cell_state = True

    def __init__(self, input_size: int, hidden_size: int, num_children: int = 2, bias: bool = True,
                 fused: bool = True, dtype=None, generator=None):
        n = check_int("NaryTreeLSTMCell", "num_children", num_children)
        h = check_int("NaryTreeLSTMCell", "hidden_size", hidden_size)
        super().__init__(input_size, h, n, (n + 3) * h, n * h, bias, dtype, generator)
        self.fused = bool(fused)

    def combine(self, projected: Tensor, children=None):
        hsz, n = self.hidden_size, self.num_children
        if self.fused:
            if children is None:
                return TreeLSTMLeaves.apply(projected, hidden_size=hsz)
            return NaryTreeLSTMLevel.apply(projected, *self._check_children(projected, children), self.weight_hh)
        if children is None:
            i, _, g, o = projected.split([hsz, n * hsz, hsz, hsz], dim=1)
            c = i.sigmoid() * g.tanh()
            return o.sigmoid() * c.tanh(), c
        h_kids, c_kids = self._check_children(projected, children)
        m = h_kids.shape[0]
        gates = projected + ops.linear(h_kids.reshape(m, n * hsz), self.weight_hh)
        i, f, g, o = gates.split([hsz, n * hsz, hsz, hsz], dim=1)
        c = i.sigmoid() * g.tanh() + (f.reshape(m, n, hsz).sigmoid() * c_kids).sum(dim=1)
        return o.sigmoid() * c.tanh(), c


def _widen(plan: GatherPlan, width: int, new_width: int) -> GatherPlan:
    """The same gather with each node's children padded to ``new_width`` slots instead of ``width``."""
    dest = tuple((d // width) * new_width + d % width for d in plan.dest)
    rows = plan.num_rows // width * new_width if width else 0
    return GatherPlan(rows, plan.sources, dest, plan.rows, plan.unique)


class Recursive(Module):
    """Runs a recursive cell over a batch of trees, level by level: backpropagation through structure.

    Args:
        cell : a recursive cell (:class:`RecursiveRNNCell`, :class:`ChildSumTreeLSTMCell`,
            :class:`NaryTreeLSTMCell`, or any Module with ``input_projection``,
            ``combine``, ``hidden_size``, ``num_children`` and ``has_cell_state``).

    Forward: ``output, root_state = module(x, batch)``
        x : (batch.num_nodes, input_size), one row per node: tree 0's nodes by id, then
            tree 1's, ... (``batch.values`` lists the nodes' values in that order; a node
            without input gets a row of zeros).
        batch : a :class:`~rnnbp.structure.TreeBatch`, or one :class:`~rnnbp.structure.Tree`.
        output : (num_nodes, H), every node's h, rows as in x.
        root_state : each tree's root, h (B, H), or (h, c) for the LSTMs.

    The input projection of all nodes is one matrix product; each level is one cell call.
    Rows move between the caller's node order and the level order of the schedule by
    :func:`~rnnbp.structure.gather_rows`, inside the graph.
    """

    def __init__(self, cell: Module):
        super().__init__()
        for attr in ("input_projection", "combine", "hidden_size"):
            if not hasattr(cell, attr):
                raise TypeError(f"Recursive: the cell {type(cell).__name__} has no {attr!r}; see the "
                                "rnnbp.nn.recursive.tree module doc for what a recursive cell provides")
        self.cell = cell

    def forward(self, x: Tensor, batch):
        if not isinstance(x, Tensor):
            x = Tensor(x)
        if isinstance(batch, Tree):
            batch = TreeBatch([batch])
        if not isinstance(batch, TreeBatch):
            raise TypeError(f"{type(self).__name__}: expected a TreeBatch (or a Tree), got {type(batch).__name__}")
        if x.ndim != 2 or x.shape[0] != batch.num_nodes:
            raise ValueError(f"{type(self).__name__}: expected x of shape ({batch.num_nodes}, "
                             f"{getattr(self.cell, 'input_size', 'I')}) (one row per node), got {x.shape}")
        return self._run(x, batch)

    def _run(self, x: Tensor, batch: TreeBatch):
        """Level by level over ``batch``; x and the output in node order, the schedule in level order."""
        cell = self.cell
        name = type(self).__name__
        fixed_width = getattr(cell, "num_children", None)
        if fixed_width is not None and batch.max_children > fixed_width:
            raise ValueError(f"{name}: a node in the batch has {batch.max_children} children but the cell takes at "
                             f"most num_children={fixed_width}")
        lstm = getattr(cell, "has_cell_state", False)
        hsz = cell.hidden_size
        projected = cell.input_projection(gather_rows([x], batch.to_levels))  # level order from here
        per_level = projected.split(batch.level_sizes, dim=0) if len(batch.levels) > 1 else (projected,)
        states: list[tuple[Tensor, ...]] = []
        for level, proj in zip(batch.levels, per_level):
            if level.max_children == 0:
                children = None
            else:
                width = fixed_width or level.max_children
                plan = level.plan if width == level.max_children else _widen(level.plan, level.max_children, width)
                parts = tuple(
                    gather_rows([s[j] for s in states], plan).reshape(level.size, width, hsz)
                    for j in range(2 if lstm else 1))
                children = parts if lstm else parts[0]
            out = cell.combine(proj, children)
            states.append(out if lstm else (out,))
        output = gather_rows([s[0] for s in states], batch.from_levels)
        root_state = tuple(gather_rows([s[j] for s in states], batch.roots_from_levels)
                           for j in range(2 if lstm else 1))
        return output, (root_state if lstm else root_state[0])


class TreeLSTM(Recursive):
    """Tree-LSTM (Tai et al. 2015) over a batch of trees.

    ``num_children=None`` builds the Child-Sum Tree-LSTM (any number of unordered
    children, e.g. dependency trees); ``num_children=N`` the N-ary Tree-LSTM (ordered
    children, e.g. binarised constituency trees or expression trees). The cell is the
    submodule ``cell``, so a state dict reads ``cell.weight_ih`` etc.

    Example::

        batch = TreeBatch([Tree.from_nested(("+", ("*", 3, 4), 7), labelled=True)])
        model = nn.TreeLSTM(16, 32, num_children=2)
        output, (h_root, c_root) = model(x, batch)   # x (batch.num_nodes, 16)
    """

    def __init__(self, input_size: int, hidden_size: int, num_children: int | None = None, bias: bool = True,
                 fused: bool = True, dtype=None, generator=None):
        if num_children is None:
            cell = ChildSumTreeLSTMCell(input_size, hidden_size, bias=bias, fused=fused, dtype=dtype,
                                        generator=generator)
        else:
            cell = NaryTreeLSTMCell(input_size, hidden_size, num_children, bias=bias, fused=fused, dtype=dtype,
                                    generator=generator)
        super().__init__(cell)


class RecursiveRNN(Recursive):
    """Elman-style recursive network (Goller & Kuechler 1996; Socher et al. 2011) over a batch of trees.

    See :class:`RecursiveRNNCell`; forward returns ``(output, h_root)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_children: int | None = None,
                 nonlinearity: str = "tanh", bias: bool = True, dtype=None, generator=None):
        super().__init__(RecursiveRNNCell(input_size, hidden_size, num_children, nonlinearity, bias, dtype, generator))
