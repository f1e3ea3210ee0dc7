"""The fit loop: :class:`Trainer` (epochs, validation, schedules, early stopping, exact-resume
checkpoints, Ctrl-C, metrics file, progress bar), :class:`Callback` hooks into it, and
:class:`StreamCarry`, the TBPTT carry of a stream kept in its checkpoints, and :class:`GradFlowFile`,
||dL/dh_t|| of some TBPTT updates kept for the gradient-flow picture (``rnnbp.plot``).

tqdm is imported only when ``fit`` shows a progress bar, so importing this package is cheap.
"""
from .callbacks import Callback
from .grad_flow_file import GradFlowFile
from .monitor import Monitor
from .stream import StreamCarry
from .trainer import Trainer

__all__ = ["Callback", "GradFlowFile", "Monitor", "StreamCarry", "Trainer"]
