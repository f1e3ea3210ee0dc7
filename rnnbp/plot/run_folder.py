"""Every picture a run folder has data for: ``python -m rnnbp.plot runs/NAME/`` and :func:`plot_run`.

A run folder (``Trainer(checkpoint_dir=..., metrics_file=...)``'s, and what a demo saves
beside it) may hold

* ``metrics.jsonl`` or ``metrics.csv``: the per-epoch logs -> ``curves.png``;
* ``grad_flow.jsonl``: ||dL/dh_t|| of some TBPTT updates -> ``gradient_flow.png``;
* a ``.npz`` file saved by ``rnnbp.save`` holding a ``"confusion"`` entry (counts (C, C);
  optionally ``"confusion_labels"``), such as the spoken-digit demo's ``model.npz`` ->
  ``confusion.png`` (``confusion_<file>.png`` when several files hold one). The Trainer's
  checkpoints ``last.npz`` and ``best.npz`` are not read.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..train.checkpoint import BEST, LAST
from .confusion import confusion_matrix
from .grad_flow import gradient_flow, read_grad_flow
from .training_curves import curves, read_metrics

METRICS_FILES = ("metrics.jsonl", "metrics.csv")
GRAD_FLOW_FILE = "grad_flow.jsonl"


@dataclass
class PlotReport:
    """What :func:`plot_run` did: ``written`` [(path, what it shows)] and ``skipped`` [(picture, why)]."""

    written: list = field(default_factory=list)
    skipped: list = field(default_factory=list)

    def lines(self) -> list[str]:
        return ([f"wrote {path}  ({what})" for path, what in self.written]
                + [f"skipped {picture}: {why}" for picture, why in self.skipped])


def plot_run(run_dir, out_dir=None) -> PlotReport:
    """Write the PNG of every picture ``run_dir`` has data for into ``out_dir`` (default: ``run_dir``).

    Args:
        run_dir : str or os.PathLike, a run's folder (see the module docstring for what is read).
        out_dir : str or os.PathLike or None; created if missing.

    Returns:
        :class:`PlotReport`: the files written and the pictures skipped, each with the reason.

    Raises:
        NotADirectoryError: ``run_dir`` is not a folder.
        ImportError: matplotlib is not installed (``pip install rnnbp[plot]``) and there is something to draw.
    """
    run = Path(os.fspath(run_dir))
    if not run.is_dir():
        raise NotADirectoryError(f"rnnbp.plot: {run} is not a folder (give a run's folder, e.g. runs/NAME/)")
    out = run if out_dir is None else Path(os.fspath(out_dir))
    report = PlotReport()
    _curves(run, out, report)
    _gradient_flow(run, out, report)
    _confusions(run, out, report)
    return report


def _curves(run: Path, out: Path, report: PlotReport) -> None:
    source = next((run / n for n in METRICS_FILES if (run / n).is_file()), None)
    if source is None:
        below = sorted(d.name for d in run.iterdir() if d.is_dir() and any((d / n).is_file() for n in METRICS_FILES))
        hint = (f"; its subfolders {', '.join(d + '/' for d in below)} have one (python -m rnnbp.plot "
                f"{run / below[0]})" if below else "")
        report.skipped.append(("curves", f"no {' or '.join(METRICS_FILES)} in {run}{hint}"))
        return
    records = read_metrics(source)
    if not records:
        report.skipped.append(("curves", f"{source} holds no finished epoch yet"))
        return
    path = curves(source, out / "curves.png")
    report.written.append((path, f"training and validation curves: {len(records)} epochs from {source.name}"))


def _gradient_flow(run: Path, out: Path, report: PlotReport) -> None:
    source = run / GRAD_FLOW_FILE
    if not source.is_file():
        report.skipped.append(("gradient flow", f"no {GRAD_FLOW_FILE} in {run} (write one while training: flow = "
                               f"rnnbp.train.GradFlowFile('{GRAD_FLOW_FILE}'); TBPTT(..., diagnostics=flow.wanted, "
                               "on_update=flow))"))
        return
    records = [r for r in read_grad_flow(source) if r["state_grad_norms"]]
    if not records:
        report.skipped.append(("gradient flow", f"{source} holds no update with state-gradient norms"))
        return
    path = gradient_flow(records, out / "gradient_flow.png")
    report.written.append((path, f"||dL/dh_t|| over the window's steps: {min(len(records), 6)} of "
                                 f"{len(records)} recorded updates from {source.name}"))


def _confusions(run: Path, out: Path, report: PlotReport) -> None:
    from ..io import CheckpointError, load

    found, unreadable = [], []
    for path in sorted(run.glob("*.npz")):
        if path.name in (LAST, BEST):
            continue
        try:
            saved = load(path)
        except (CheckpointError, OSError, ValueError) as exc:
            unreadable.append(f"{path.name} ({str(exc).splitlines()[0][:100]})")
            continue
        if isinstance(saved, dict) and saved.get("confusion") is not None:
            found.append((path, saved["confusion"], saved.get("confusion_labels")))
    for path, counts, labels in found:
        name = "confusion.png" if len(found) == 1 else f"confusion_{path.stem}.png"
        total = counts.sum()
        title = f"{path.name}: {100 * counts.trace() / max(total, 1):.1f} % correct ({total:g} items)"
        written = confusion_matrix(counts, labels, out / name, title=title)
        report.written.append((written, f"confusion matrix from {path.name}: {len(counts)} classes"))
    if not found:
        why = f"no .npz file in {run} holds a 'confusion' entry (Trainer checkpoints are not read)"
        if unreadable:
            why += f"; could not read {', '.join(unreadable)}"
        report.skipped.append(("confusion matrix", why))


__all__ = ["PlotReport", "plot_run", "METRICS_FILES", "GRAD_FLOW_FILE"]
