"""Networks that recur over structure rather than time: tree-structured cells and fixed points.

* ``tree``                 Recursive, RecursiveRNN(Cell), TreeLSTM, Child-Sum and N-ary Tree-LSTM cells
* ``tree_kernels``         the Tree-LSTM levels as fused nodes with hand-written backwards
* ``fixed_point``          FixedPoint and FixedPointRNNCell (implicit differentiation)
* ``fixed_point_solvers``  the solvers behind them
"""
from .fixed_point import FixedPoint, FixedPointError, FixedPointRNNCell, NotConvergedError
from .tree import ChildSumTreeLSTMCell, NaryTreeLSTMCell, Recursive, RecursiveRNN, RecursiveRNNCell, TreeLSTM

__all__ = ["ChildSumTreeLSTMCell", "FixedPoint", "FixedPointError", "FixedPointRNNCell", "NaryTreeLSTMCell",
           "NotConvergedError", "Recursive", "RecursiveRNN", "RecursiveRNNCell", "TreeLSTM"]
