"""Connectionist temporal classification: the loss and the decoders.

* ``loss``        ``ctc_loss`` (``nn.functional.ctc_loss``) and ``CTCLoss`` (``nn.CTCLoss``), PyTorch's
                  signatures and semantics, one autograd node with the alpha-beta backward
* ``recursions``  the log-space alpha and beta recursions over a batch (NumPy, and numba compiled)
* ``decode``      ``greedy_decode`` (best path) and ``prefix_beam_search``
* ``inputs``      the argument checks the loss and the decoders share
"""
from .decode import greedy_decode, prefix_beam_search
from .loss import CTCLoss, ctc_loss

__all__ = ["CTCLoss", "ctc_loss", "greedy_decode", "prefix_beam_search"]
