"""The fit loop: :class:`Trainer` (epochs, validation, schedules, early stopping, exact-resume
checkpoints, Ctrl-C, metrics file, progress bar), :class:`Callback` hooks into it, and
:class:`StreamCarry`, the TBPTT carry of a stream kept in its checkpoints.

tqdm is imported only when ``fit`` shows a progress bar, so importing this package is cheap.
"""
from .callbacks import Callback
from .monitor import Monitor
from .stream import StreamCarry
from .trainer import Trainer

__all__ = ["Callback", "Monitor", "StreamCarry", "Trainer"]
