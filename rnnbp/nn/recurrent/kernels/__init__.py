"""Fused recurrent layers: one autograd node per layer and direction, with hand-written BPTT backwards.

* ``lstm``, ``gru``, ``elman``   the layers (Functions over a whole sequence) and their lean
                                 ``*_inference`` forwards (no graph, memory for the state only)
* ``compiled_lstm``, ``compiled_gru``, ``compiled_elman``
                                 the same recurrences as numba loops over the whole sequence,
                                 forward and backward, gate arithmetic fused with the steps' products
* ``layernorm_lstm``, ``layernorm_gru``
                                 the layer-norm LSTM/GRU layers and their ``*_inference`` forwards
* ``layernorm_compiled``         their whole-sequence numba loops; ``layernorm``: the row-wise
                                 layer norm they share
* ``blas``                       NumPy's (else SciPy's) sgemm/dgemm callable (and cacheable) from those loops
* ``fast_math``                  float32 tanh and sigmoid that vectorise inside them
* ``numpy_steps``                the per-step NumPy reference (``backend='numpy'``)
* ``numba_steps``, ``backends``  per-step compiled gate arithmetic (the gradient probe's path), and
                                 which implementation runs
* ``common``                     what they share: active rows, projections, workspaces
* ``reorder``                    permuting the batch and reversing within lengths
"""
