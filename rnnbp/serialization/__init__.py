"""rnnbp's checkpoints and PyTorch's ``torch.serialization`` API: ``save``, ``load`` and the allow-list.

``rnnbp.save`` / ``rnnbp.load`` (also ``rnnbp.io.save`` / ``load``) write and read one ``.npz``
file, never pickling (:mod:`.checkpoint` describes the format). The package is split by job:

* :mod:`.checkpoint`: ``save`` and ``load``, putting the parts below together;
* :mod:`.encoder` / :mod:`.decoder`: an object to its skeleton tree and arrays, and back;
* :mod:`.skeleton`: the skeleton's JSON document (format, version, records), at any depth allowed;
* :mod:`.archive`: the zip of ``.npy`` members, written and read with every byte checked;
* :mod:`.files`: atomic writes to a path, and removing the leftovers of killed saves;
* :mod:`.allowlist`: which classes a file may name (``add_safe_globals``, ``safe_globals``, ...);
* :mod:`.objects`: an object's state, and rebuilding an object from it;
* :mod:`.walk`: walking deep objects without recursion, naming places lazily;
* :mod:`.errors`: :class:`CheckpointError` and :class:`UnsafeGlobalError`.

Loading rebuilds only rnnbp's own classes and those the program allows, for classes it
trusts (its own models)::

    rnnbp.serialization.add_safe_globals([RNNModel])      # for the rest of the program
    with rnnbp.serialization.safe_globals([RNNModel]):    # for one block
        model = rnnbp.load("model.pt")
"""
from .allowlist import add_safe_globals, clear_safe_globals, get_safe_globals, safe_globals
from .checkpoint import get_unsafe_globals_in_checkpoint, load, save
from .errors import CheckpointError, UnsafeGlobalError

__all__ = [
    "add_safe_globals", "get_safe_globals", "clear_safe_globals", "safe_globals",
    "get_unsafe_globals_in_checkpoint", "save", "load", "CheckpointError", "UnsafeGlobalError",
]
