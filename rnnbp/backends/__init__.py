"""``rnnbp.backends``: the backend checks PyTorch scripts make (``backends.mps.is_available()``,
``backends.cudnn.deterministic = True``), answered for the CPU: no MPS, no cuDNN.
"""
from . import cudnn, mps  # noqa: F401
