"""Checkpoints: ``save`` / ``load`` like ``torch.save`` / ``torch.load``, as one ``.npz`` file, never pickling.

The implementation lives in :mod:`rnnbp.serialization` (the format in
:mod:`rnnbp.serialization.checkpoint`); this module keeps the names other code imports from
``rnnbp.io``: ``save``, ``load``, ``CheckpointError``, ``UnsafeGlobalError``, and
``_atomic_write`` (a temporary file beside the target, fsync, ``os.replace``; used by the
metrics file and the feature cache).
"""
from .serialization.checkpoint import FORMAT, VERSION, load, save
from .serialization.errors import CheckpointError, UnsafeGlobalError
from .serialization.files import atomic_write as _atomic_write

__all__ = ["save", "load", "CheckpointError", "UnsafeGlobalError"]
