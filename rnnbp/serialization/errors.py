"""The two errors a checkpoint can raise on load: damaged or foreign files, and classes not allowed."""
from __future__ import annotations

import pickle  # for its exception class only: scripts catch pickle.UnpicklingError around torch.load

__all__ = ["CheckpointError", "UnsafeGlobalError"]


class CheckpointError(ValueError):
    """A file is not a readable rnnbp checkpoint (truncated, corrupt, or written by something else).

    The message names the file and, where one is to blame, the entry: an array by its key and
    its place in the saved object (``array 'a3' (obj['model']['rnn.weight_ih_l0'])``), the
    skeleton, or the zip directory.
    """


class UnsafeGlobalError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint names a class or function that is neither rnnbp's nor allowed by the program.

    Also a ``pickle.UnpicklingError``, the error PyTorch raises in this case, so scripts that
    catch it keep working.
    """
