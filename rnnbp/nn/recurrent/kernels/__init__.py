"""Fused recurrent layers: one autograd node per layer and direction, with hand-written BPTT backwards.

``lstm``, ``gru``, ``elman``: the layers (Functions over a whole sequence); ``common``: what they
share (active rows, projections, workspaces); ``numpy_steps`` / ``numba_steps``: the per-step gate
arithmetic (NumPy reference, numba compiled) and ``backends``: which one runs; ``reorder``:
permuting the batch and reversing within lengths.
"""
