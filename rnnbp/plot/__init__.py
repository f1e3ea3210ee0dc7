"""Pictures of training runs as PNG files: curves, gradient flow, confusion matrices (extra ``.[plot]``).

* :func:`curves`: training and validation curves from a run's metrics file (or ``Trainer.history``);
* :func:`gradient_flow`: ||dL/dh_t|| over the steps of a TBPTT window at several points in
  training, on a log scale: where gradients vanish (or explode);
* :func:`confusion_matrix`: a classifier's confusions;
* :func:`plot_run` and ``python -m rnnbp.plot runs/NAME/ [--out DIR]``: every picture the run's
  folder has data for, saying which it wrote and which it skipped and why.

Drawn with matplotlib's Agg canvas (no pyplot, no display, no global backend). matplotlib is
imported only when a picture is drawn: importing this package does not need it, and a call
without it raises ``ImportError`` saying ``pip install rnnbp[plot]``.
"""
from .confusion import confusion_matrix
from .grad_flow import gradient_flow, read_grad_flow
from .run_folder import PlotReport, plot_run
from .training_curves import curves, read_metrics

__all__ = ["curves", "gradient_flow", "confusion_matrix", "plot_run", "PlotReport", "read_metrics",
           "read_grad_flow"]
