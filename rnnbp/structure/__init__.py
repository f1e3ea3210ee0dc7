"""Structures for backpropagation through structure: trees and DAGs, batched level by level.

* :class:`Tree`: one example's tree or DAG (ordered children, optional node values),
  built from nested tuples or a parent array.
* :class:`TreeBatch`: many trees renumbered so that each height is one contiguous
  slice of rows; recursive networks (``nn.TreeLSTM``, ``nn.RecursiveRNN``) evaluate a
  batch with one cell call per level.
"""
from .batch import Level, TreeBatch
from .gather import GatherPlan, gather_rows
from .tree import StructureError, Tree

__all__ = ["Tree", "TreeBatch", "Level", "StructureError", "GatherPlan", "gather_rows"]
