"""Trainer: the fit loop people otherwise write by hand, with checkpoints that resume exactly.

Epochs of batches, validation, a learning-rate schedule, early stopping, ``last.npz`` and
``best.npz`` checkpoints, a metrics file, a progress bar, and Ctrl-C that stops at the next batch
boundary and saves where it stopped. What a batch does (forward, backward, clipping, optimizer
step; a plain ``loss.backward()`` or a :class:`rnnbp.bptt.TBPTT` run) stays in the user's
``train_step``; the Trainer only drives it and keeps the books.

What a checkpoint holds is listed in :mod:`rnnbp.train.checkpoint`.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..bptt.checks import NonFiniteError
from ..bptt.optimizer_record import optimizer_class
from ..distributed import mpi as _dist
from ..distributed import training as _dist_training
from ..io import load, save
from ..optim.lr_scheduler import ReduceLROnPlateau
from ..validation import check_int
from .checkpoint import (
    BEST, FORMAT, LAST, VERSION, check_fits, is_stateful, load_state, rng_state, set_rng_state, state_of,
)
from .interrupt import catch_sigint
from .metrics_file import MetricsFile
from .monitor import Monitor

# Keys of the epoch's logs that the Trainer writes itself; train_step must not return them.
_OWN_KEYS = ("epoch", "lr", "time")


class Trainer:
    """Train ``model`` for a number of epochs; resumable exactly from its checkpoints.

    ``fit(epochs)`` is equivalent to this loop (``seed`` and the callables are the arguments;
    epochs count from 1)::

        for epoch in range(1, epochs + 1):
            model.train()
            for batch in batches(epoch, np.random.default_rng([seed, epoch])):
                metrics = train_step(batch)                 # forward, backward, optimizer.step()
                if scheduler_step == "update":
                    scheduler.step()
            model.eval()
            with rnnbp.no_grad():
                val = evaluate()                            # logged as "val_" + key
            model.train()
            logs = {"epoch": epoch, **mean_over_batches(metrics), **val, "lr": ..., "time": ..., "updates": ...}
            scheduler.step()                                # scheduler.step(logs[monitor]) for ReduceLROnPlateau
            improved = logs[monitor] beats the best by more than min_delta
            rnnbp.save(everything, f"{checkpoint_dir}/last.npz")
            if improved:
                rnnbp.save(everything, f"{checkpoint_dir}/best.npz")
            if patience is not None and epochs_since_improvement >= patience:
                break

    plus what makes it worth not writing by hand:

    * **exact resume**: a checkpoint holds the model, the optimizer, the scheduler, the ``stateful``
      objects, rnnbp's default random generator (dropout and initialisation draw from it), the loop's
      position (epoch, batches done in it, the epoch's running metric sums), the early-stopping state
      and the history. Batches are regenerated from ``(seed, epoch)`` and the ones already done are
      skipped, so a run stopped anywhere at a batch boundary and resumed with ``fit(epochs,
      resume=True)`` gives the same losses and weights, bit for bit, as a run never stopped. A
      checkpoint that does not fit (another seed, scheduler, ``stateful`` names or optimizer class:
      an Adam checkpoint into SGD) is refused before anything is loaded, naming each difference;
    * **Ctrl-C** (SIGINT, main thread only) stops after the running batch, writes ``last.npz`` with
      the position inside the epoch, and ``fit`` returns the history; a second Ctrl-C raises
      ``KeyboardInterrupt`` at once. The previous SIGINT handler is restored when ``fit`` returns;
    * **errors** in ``train_step`` (e.g. :class:`rnnbp.bptt.NonFiniteError`) propagate unchanged, and
      a non-finite ``"loss"`` it returns raises ``NonFiniteError`` naming the epoch and batch; since
      checkpoints are written only at consistent points and atomically (a temp file replaced over the
      old one), ``last.npz`` still holds the last good state;
    * **data-parallel** under ``mpiexec -n K`` after ``rnnbp.distributed.init_process_group()``: rank 0's
      weights are broadcast, the ranks check before each batch that all have one and stop together,
      the logs hold the means over every rank's items, and only rank 0 prints, writes the metrics
      file and the checkpoints (with each rank's ``stateful`` state inside). ``train_step`` averages
      the gradients (a TBPTT engine does; see :mod:`rnnbp.distributed`). Nothing changes in one process.

    Args:
        model : rnnbp.nn.Module. Put in training mode for each epoch and in eval mode around ``evaluate``.
        optimizer : rnnbp.optim.Optimizer (anything with ``state_dict``/``load_state_dict``) that
            ``train_step`` steps; saved in checkpoints.
        train_step : callable ``batch -> dict`` of floats (Python, NumPy or 1-element Tensors). It must
            hold ``"loss"`` (the batch's mean loss) and may hold ``"count"`` (items or tokens in the
            batch, float >= 0, default 1; weights the epoch's means and gives the items/s of the bar; a
            batch with count 0 is not averaged in) and ``"updates"`` (optimizer updates it made, int >= 0,
            default 1; a TBPTT run over a segment makes several). Other keys are averaged over the epoch
            like the loss. It does the forward, backward and optimizer step itself.
        batches : callable ``(epoch: int >= 1, generator: np.random.Generator) -> iterable`` of batches.
            It must be deterministic given its arguments: draw every random choice (shuffling, crops)
            from ``generator`` (e.g. ``rnnbp.data.batches(x, y, batch_size=32, generator=generator)``),
            never from rnnbp's default generator, and do no work per batch that changes state (reset a
            stream's carry in ``train_step``, not here): on a resume the epoch's batches are made again
            and the ones done are skipped. An iterable with ``len`` gives the progress bar a total.
        evaluate : callable ``() -> dict`` of validation metrics (e.g. ``{"loss": ...}``), called after
            each epoch's batches under ``model.eval()`` and ``rnnbp.no_grad()``; logged with the prefix
            ``"val_"``. None (default): no validation.
        scheduler : an ``rnnbp.optim.lr_scheduler`` scheduler, or None. Saved in checkpoints.
        scheduler_step : "epoch" (default): ``scheduler.step()`` after each epoch's validation
            (``ReduceLROnPlateau`` gets the monitored value); "update": after every ``train_step`` call
            (once per batch; a ``train_step`` that makes several optimizer updates should then step
            the scheduler itself, e.g. in TBPTT's ``on_update``, and this Trainer gets scheduler=None).
        monitor : str, the key of the epoch's logs that early stopping, ``best.npz``, ``restore_best``
            and ``ReduceLROnPlateau`` watch. None (default): "val_loss" if ``evaluate`` is given, else "loss".
        mode : "min" (default) or "max": whether a smaller or a larger monitored value is better.
        patience : int >= 1 or None. Stop after this many epochs in a row without improvement;
            None (default): never stop early.
        min_delta : float >= 0. An improvement must beat the best by more than this (default 0).
        restore_best : bool. When ``fit`` ends (all epochs, or early stop; not on an interrupt), load
            the best epoch's weights into ``model``. Default False: the model ends as the last epoch
            left it, as after the plain loop; ``best.npz`` holds the best weights either way.
        checkpoint_dir : str or os.PathLike or None (default). Where ``last.npz`` (every epoch, and on a
            stop in mid-epoch) and ``best.npz`` (when the monitored value improves) go; created if
            missing. Both are full checkpoints that ``fit(..., resume=path)`` continues from.
        checkpoint_every : int > 0 or None. Also write ``last.npz`` after every this many batches of an
            epoch (long epochs on machines that may die without a Ctrl-C). Default None.
        metrics_file : str or os.PathLike or None. One record per epoch (the epoch's logs): JSON lines,
            or CSV when the name ends in ``.csv``. ``fit`` first rewrites it to hold exactly the history
            so far (empty on a fresh run, the checkpoint's epochs on a resume), then appends each epoch.
        stateful : dict ``name -> object`` with ``state_dict()``/``load_state_dict(state)`` (e.g. a
            :class:`~rnnbp.train.StreamCarry`), or a ``np.random.Generator`` (its bit generator's state
            is saved), whose state goes into checkpoints too. Anything random or carried between batches
            that is not the model, the optimizer, the scheduler or rnnbp's default generator belongs here.
        callbacks : iterable of :class:`~rnnbp.train.Callback`.
        seed : int >= 0. Seeds the per-epoch batch generators ``np.random.default_rng([seed, epoch])``
            (not the model's initialisation: call ``rnnbp.manual_seed`` before building the model).
        progress : bool. A tqdm bar per epoch with the running mean loss and items/s (default True).
        check_finite : bool. Raise NonFiniteError when ``train_step`` returns a NaN/Inf loss (default True).
        log : callable ``str -> None`` for the epoch lines and the messages about checkpoints, resumes
            and stops (default ``print``); None silences them.

    Attributes:
        epoch : int, epochs completed. position : int, batches done in the running epoch (epoch + 1).
        updates : int, optimizer updates so far (the sum of ``"updates"``). history : list of dict,
        one entry (the epoch's logs) per completed epoch. monitor : Monitor (``best``, ``best_epoch``,
        ``bad_epochs``). stop_training : bool, set it (or call ``request_stop()``) to stop at the next
        batch boundary or epoch end.

    Example::

        def train_step(batch):
            x, y = batch
            loss = F.cross_entropy(model(rnnbp.Tensor(x)), y)
            opt.zero_grad(); loss.backward(); opt.step()
            return {"loss": loss.item(), "count": len(y)}

        trainer = Trainer(model, opt, train_step,
                          lambda epoch, g: rnnbp.data.batches(x_train, y_train, batch_size=32, generator=g),
                          evaluate=lambda: {"loss": F.cross_entropy(model(x_val), y_val).item()},
                          scheduler=optim.lr_scheduler.StepLR(opt, step_size=10), patience=5,
                          checkpoint_dir="runs/mlp", metrics_file="runs/mlp/metrics.jsonl")
        history = trainer.fit(50, resume=True)     # continues runs/mlp/last.npz if there is one
    """

    def __init__(self, model, optimizer, train_step: Callable, batches: Callable, *,
                 evaluate: Callable | None = None, scheduler=None, scheduler_step: str = "epoch",
                 monitor: str | None = None, mode: str = "min", patience: int | None = None,
                 min_delta: float = 0.0, restore_best: bool = False, checkpoint_dir=None,
                 checkpoint_every: int | None = None, metrics_file=None, stateful: dict | None = None,
                 callbacks: Iterable = (), seed: int = 0, progress: bool = True, check_finite: bool = True,
                 log: Callable[[str], None] | None = print):
        for name, obj in (("model", model), ("optimizer", optimizer)):
            if not (callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))):
                raise TypeError(f"Trainer: {name} must have state_dict() and load_state_dict(), "
                                f"got {type(obj).__name__}")
        for name, fn in (("train_step", train_step), ("batches", batches)):
            if not callable(fn):
                hint = (" (wrap a fixed collection as lambda epoch, generator: data)" if name == "batches" else "")
                raise TypeError(f"Trainer: {name} must be callable, got {type(fn).__name__}{hint}")
        if evaluate is not None and not callable(evaluate):
            raise TypeError(f"Trainer: evaluate must be callable or None, got {type(evaluate).__name__}")
        if scheduler_step not in ("epoch", "update"):
            raise ValueError(f"Trainer: scheduler_step must be 'epoch' or 'update', got {scheduler_step!r}")
        if isinstance(scheduler, ReduceLROnPlateau) and scheduler_step != "epoch":
            raise ValueError("Trainer: ReduceLROnPlateau steps on the monitored value once per epoch; "
                             "use scheduler_step='epoch'")
        if scheduler is not None and not callable(getattr(scheduler, "state_dict", None)):
            raise TypeError(f"Trainer: scheduler must be an lr scheduler, got {type(scheduler).__name__}")
        patience = check_int("Trainer", "patience", patience, allow_none=True)
        checkpoint_every = check_int("Trainer", "checkpoint_every", checkpoint_every, allow_none=True)
        seed = check_int("Trainer", "seed", seed, minimum=0)
        if checkpoint_dir is not None and Path(checkpoint_dir).exists() and not Path(checkpoint_dir).is_dir():
            raise ValueError(f"Trainer: checkpoint_dir {checkpoint_dir} is a file; give a folder (last.npz and "
                             "best.npz are written into it)")
        if log is not None and not callable(log):
            raise TypeError(f"Trainer: log must be callable or None, got {type(log).__name__}")
        stateful = dict(stateful or {})
        bad = [f"{name!r} ({type(obj).__name__})" for name, obj in stateful.items()
               if not isinstance(name, str) or not is_stateful(obj)]
        if bad:
            raise TypeError("Trainer: stateful must map str names to objects with state_dict() and "
                            f"load_state_dict(), or to np.random.Generators; not so: {', '.join(bad)}")
        self.callbacks = list(callbacks)
        missing_hooks = [type(c).__name__ for c in self.callbacks if not hasattr(c, "on_batch_end")]
        if missing_hooks:
            raise TypeError(f"Trainer: callbacks must be rnnbp.train.Callback objects, got {missing_hooks}")

        self.model, self.optimizer, self.train_step, self.batches = model, optimizer, train_step, batches
        self.evaluate, self.scheduler, self.scheduler_step = evaluate, scheduler, scheduler_step
        self.monitor = Monitor(monitor or ("val_loss" if evaluate is not None else "loss"), mode, min_delta)
        self.patience, self.restore_best = patience, bool(restore_best)
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.checkpoint_every = checkpoint_every
        self.metrics_file = None if metrics_file is None else MetricsFile(metrics_file)
        self.stateful, self.seed = stateful, int(seed)
        self.progress, self.check_finite, self.log = bool(progress), bool(check_finite), log

        self.epoch = 0  # epochs completed
        self.position = 0  # batches done in epoch self.epoch + 1
        self.updates = 0
        self.history: list[dict] = []
        self.stop_training = False
        self._stop_reason: str | None = None
        self._reset_epoch_sums()
        self._t0: float | None = None  # perf_counter() when this process (re)started the running epoch
        self._consistent = True  # the state is at a batch boundary (safe to checkpoint)
        self._sigints: list = []  # SIGINTs received during fit
        self._best_weights: dict | None = None  # for restore_best
        self._saved_at: str | None = None  # what last.npz holds, for messages

    # ------------------------------------------------------------------ public
    @property
    def last_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / LAST

    @property
    def best_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / BEST

    def request_stop(self, reason: str = "stop requested") -> None:
        """Stop at the next batch boundary (or after the epoch that is ending), saving where it stopped.

        What the Ctrl-C handler calls; callbacks may call it too.
        """
        self._stop_reason = reason
        self.stop_training = True

    def fit(self, epochs: int, resume=False) -> list[dict]:
        """Train until ``epochs`` epochs are done in all (counting those of a resumed checkpoint).

        Args:
            epochs : int >= 0, the epoch to end at (not how many more to run): a run resumed after
                epoch 2 with ``fit(4, resume=True)`` runs epochs 3 and 4.
            resume : False (default): continue from this Trainer's state in memory (a fresh run
                for a new Trainer). True: load ``checkpoint_dir/last.npz`` first, or start afresh
                (saying so) when there is none. A path: load that checkpoint (e.g. ``best.npz``).

        Returns:
            ``self.history``: one dict of logs per completed epoch, from epoch 1.

        Raises:
            Whatever ``train_step``, ``batches`` or ``evaluate`` raise, unchanged; NonFiniteError for
            a NaN/Inf loss; KeyboardInterrupt on a second Ctrl-C or one raised inside the loop (the
            state is saved first if it is at a batch boundary).
        """
        epochs = check_int("Trainer.fit", "epochs", epochs, minimum=0)
        if resume is not False and resume is not None:
            self._resume(resume)
        if self.epoch >= epochs:
            self._say(f"nothing to do: {self.epoch} of {epochs} epochs are done")
            return self.history
        if self._patience_ran_out():
            self._say(f"early stopping had already stopped this run after epoch {self.epoch} "
                      f"({self.monitor.bad_epochs} epochs without a better {self.monitor.name}); nothing to do")
            return self.history
        bar_class = None
        main = _dist.is_main_process()  # under mpiexec only rank 0 shows, logs and writes files
        if self.progress and main:
            from tqdm import tqdm as bar_class  # here, not at import: `import rnnbp` stays light
        if self.checkpoint_dir is not None and main:
            os.makedirs(self.checkpoint_dir, exist_ok=True)
        if self.metrics_file is not None and main:
            self.metrics_file.sync(self.history)
        _dist_training.on_fit_start(self)
        self.stop_training, self._stop_reason = False, None
        finished = False
        with catch_sigint(lambda: self.request_stop("Ctrl-C"), notice=self.log is not None) as self._sigints:
            try:
                for cb in self.callbacks:
                    cb.on_fit_start(self)
                while self.epoch < epochs:
                    if not self._run_epoch(epochs, bar_class):
                        break  # stopped in mid-epoch; said so
                    if self._patience_ran_out():
                        self._say(f"early stop after epoch {self.epoch}: no better {self.monitor.name} for "
                                  f"{self.patience} epochs (best {self.monitor.best} at epoch "
                                  f"{self.monitor.best_epoch})")
                        finished = True
                        break
                    stop = _dist_training.agree_stop(self) if _dist.active() else self.stop_training
                    if stop and self.epoch < epochs:
                        self._stopped(f"after epoch {self.epoch}", epochs, save=False)  # saved by the epoch's end
                        break
                else:
                    finished = True
            except KeyboardInterrupt:
                self._keyboard_interrupt(epochs)
                raise
        if finished and self.restore_best:
            self._restore_best_weights()
        for cb in self.callbacks:
            cb.on_fit_end(self)
        return self.history

    def state_dict(self) -> dict:
        """Everything a checkpoint holds (listed in :mod:`rnnbp.train.checkpoint`), for ``rnnbp.save``."""
        return {
            "format": FORMAT, "version": VERSION,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "optimizer_class": optimizer_class(self.optimizer),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "stateful": {name: state_of(obj) for name, obj in self.stateful.items()},
            "rng": rng_state(),
            "loop": {"seed": self.seed, "epoch": self.epoch, "position": self.position, "updates": self.updates,
                     "sums": dict(self._sums), "weights": dict(self._weights), "count": self._count,
                     "seconds": self._elapsed()},
            "monitor": self.monitor.state_dict(),
            "history": self.history,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from ``state_dict()`` (or ``rnnbp.load`` of a checkpoint), checking it fits first."""
        check_fits(state, self.seed, self.scheduler is not None, self.stateful, optimizer=self.optimizer)
        state = _dist_training.rank_view(state, self.stateful)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        for name, obj in self.stateful.items():
            load_state(obj, state["stateful"][name])
        self.monitor.load_state_dict(state["monitor"])
        loop = state["loop"]
        self.epoch, self.position, self.updates = int(loop["epoch"]), int(loop["position"]), int(loop["updates"])
        self._sums = {k: float(v) for k, v in loop["sums"].items()}
        self._weights = {k: float(v) for k, v in loop["weights"].items()}
        self._count, self._seconds = float(loop["count"]), float(loop["seconds"])
        self.history = [dict(r) for r in state["history"]]
        set_rng_state(state["rng"])
        self._t0, self._consistent = None, True

    def save_checkpoint(self, path) -> None:
        """Write ``state_dict()`` to ``path`` atomically (``rnnbp.save``).

        Under data-parallel training every rank must call it (it gathers each rank's own part);
        rank 0 writes.
        """
        state = _dist_training.checkpoint_to_write(self.state_dict()) if _dist.active() else self.state_dict()
        if state is not None:
            save(state, path)

    # --------------------------------------------------------------- the loop
    def _stop_in_epoch(self, bar, epochs: int) -> bool:
        """Stop at the current batch boundary: close the bar, save and say where; False for the caller."""
        if bar is not None:
            bar.close()
        self._stopped(f"at {self._where()}", epochs)
        return False

    def _run_epoch(self, epochs: int, bar_class) -> bool:
        """Run (or finish) epoch ``self.epoch + 1``; False when it stopped in mid-epoch."""
        e = self.epoch + 1
        source = self.batches(e, np.random.default_rng([self.seed, e]))
        total = len(source) if hasattr(source, "__len__") else None
        try:
            it = iter(source)
        except TypeError:
            raise TypeError(f"Trainer: batches(epoch, generator) must return an iterable of batches (a list, a "
                            f"generator, a DataLoader), got {type(source).__name__}") from None
        for done in range(self.position):  # a resumed epoch: skip the batches already trained on
            try:
                next(it)
            except StopIteration:
                raise ValueError(
                    f"Trainer: cannot resume epoch {e} after batch {self.position}: batches({e}, generator) now "
                    f"yields only {done} batches; the data or the batch size changed since the checkpoint") from None
        synced = _dist.active()  # several ranks: before each batch, check each has one and agree on stopping
        if synced:
            it = _dist_training.lockstep(it, self, e)
        if self.position == 0:
            self._reset_epoch_sums()
        self.model.train()
        for cb in self.callbacks:
            cb.on_epoch_start(self, e)
        bar = None if bar_class is None else bar_class(
            total=total, initial=self.position, desc=f"epoch {e}/{epochs}", unit="batch", leave=False,
            dynamic_ncols=True)
        self._t0 = time.perf_counter()
        items = 0.0
        try:
            for batch in it:
                if self.stop_training and not synced:  # asked before it (on_fit_start, on_epoch_start, a signal)
                    return self._stop_in_epoch(bar, epochs)
                index = self.position
                self._consistent = False
                metrics = self.train_step(batch)
                values, count, updates = self._check_metrics(metrics, e, index)
                if count > 0:
                    for k, v in values.items():
                        self._sums[k] = self._sums.get(k, 0.0) + v * count
                        self._weights[k] = self._weights.get(k, 0.0) + count
                    self._count += count
                self.position += 1
                self.updates += updates
                if self.scheduler is not None and self.scheduler_step == "update":
                    self.scheduler.step()
                self._consistent = True
                items += count
                for cb in self.callbacks:
                    cb.on_batch_end(self, index, metrics)
                if bar is not None:
                    rate = items / max(time.perf_counter() - self._t0, 1e-9)
                    bar.set_postfix({"loss": f"{self._mean('loss'):.4f}", "items/s": f"{rate:.4g}"}, refresh=False)
                    bar.update(1)
                if self.stop_training and not synced:
                    return self._stop_in_epoch(bar, epochs)
                if self.checkpoint_every and self.position % self.checkpoint_every == 0:
                    self._save(self.last_path)
        except _dist_training.AgreedStop:  # every rank stops at this batch boundary together
            return self._stop_in_epoch(bar, epochs)
        finally:
            if bar is not None:
                bar.close()
        self._end_epoch(e, epochs)
        return True

    def _end_epoch(self, e: int, epochs: int) -> None:
        """Validate, log, step the scheduler, track the best, checkpoint: the epoch's bookkeeping."""
        self._consistent = False
        seconds = self._elapsed()
        val = self._validate()
        if _dist.active():  # the means over every rank's items; rank 0's time and validation
            self._sums, self._weights, self._count, seconds, val = _dist_training.epoch_totals(self, seconds, val)
        train = {k: self._mean(k) for k in self._sums} if self._sums else {"loss": float("nan")}
        lrs = [float(group["lr"]) for group in self.optimizer.param_groups]
        logs = {"epoch": e, **train, **val, "lr": lrs[0]}
        logs.update({f"lr_{i}": lr for i, lr in enumerate(lrs[1:], 1)})
        logs.update(time=seconds, updates=self.updates)
        watched = self.monitor.name in logs
        if not watched and (self.patience is not None or self.restore_best or self.checkpoint_dir is not None
                            or isinstance(self.scheduler, ReduceLROnPlateau)):
            self.monitor.value(logs)  # raises, naming the keys there are
        if self.scheduler is not None and self.scheduler_step == "epoch":
            if isinstance(self.scheduler, ReduceLROnPlateau):
                self.scheduler.step(self.monitor.value(logs))
            else:
                self.scheduler.step()
        improved = watched and self.monitor.update(e, self.monitor.value(logs))
        if improved and self.restore_best:
            self._best_weights = {k: np.array(v, copy=True) for k, v in self.model.state_dict().items()}
        self.epoch, self.position = e, 0
        self._reset_epoch_sums()
        self._t0 = None
        self.history.append(logs)
        for cb in self.callbacks:
            cb.on_epoch_end(self, e, logs)
        self._save(self.last_path)
        if improved:
            self._save(self.best_path)
        self._consistent = True
        if self.metrics_file is not None and _dist.is_main_process():
            self.metrics_file.append(logs, self.history)
        shown = "  ".join(f"{k} {v:.4g}" for k, v in logs.items()
                          if k not in ("epoch", "time", "updates") and isinstance(v, (int, float)))
        self._say(f"epoch {e}/{epochs}  {shown}  {seconds:.1f} s{'  *' if improved else ''}")

    def _validate(self) -> dict:
        if self.evaluate is None:
            return {}
        was_training = self.model.training
        self.model.eval()
        try:
            with no_grad():
                out = self.evaluate()
        finally:
            self.model.train(was_training)
        if not isinstance(out, Mapping):
            raise TypeError(f"Trainer: evaluate() must return a dict of metrics, got {type(out).__name__}")
        return {f"val_{k}": _to_float(v, f"evaluate()[{k!r}]") for k, v in out.items()}

    def _check_metrics(self, metrics, e: int, index: int) -> tuple[dict, float, int]:
        """train_step's dict -> (metrics to average, count, updates), checked."""
        if not isinstance(metrics, Mapping):
            raise TypeError(f"Trainer: train_step must return a dict of floats with a 'loss' entry, "
                            f"got {type(metrics).__name__}")
        if "loss" not in metrics:
            raise ValueError(f"Trainer: train_step must return a 'loss' entry, got keys {sorted(metrics)}")
        clash = [k for k in metrics if k in _OWN_KEYS or str(k).startswith(("lr_", "val_"))]
        if clash:
            raise ValueError(f"Trainer: train_step returned {clash}, names the Trainer's logs use "
                             "(epoch, lr, lr_<i>, time, val_<metric>); rename them")
        values = {k: _to_float(v, f"train_step(...)[{k!r}]") for k, v in metrics.items() if k != "updates"}
        count = values.pop("count", 1.0)
        if not (count >= 0 and math.isfinite(count)):
            raise ValueError(f"Trainer: train_step's 'count' must be a finite number >= 0, got {count!r}")
        updates = check_int("Trainer", "train_step's 'updates'", metrics.get("updates", 1), minimum=0)
        loss = values["loss"]
        if self.check_finite and count > 0 and not math.isfinite(loss):
            raise NonFiniteError(
                f"Trainer: train_step returned a non-finite loss ({loss}) at epoch {e}, batch {index} (update "
                f"{self.updates + updates}); the model and optimizer may already hold that batch's update, so "
                f"nothing was saved; {self._saved_note()}", tensor="loss", step=None, chunk=self.updates)
        return values, count, updates

    # ---------------------------------------------------------- checkpoints
    def _save(self, path: Path | None) -> bool:
        if path is None:
            return False
        self.save_checkpoint(path)
        if path.name == LAST:
            self._saved_at = self._where()
        return True

    def _resume(self, resume) -> None:
        if resume is True:
            if self.checkpoint_dir is None:
                raise ValueError("Trainer.fit: resume=True needs checkpoint_dir (or pass a checkpoint's path as "
                                 "resume=)")
            path = self.last_path
            if not _dist.from_rank0(path.exists):  # rank 0's disk decides, and rank 0 reads
                self._say(f"no checkpoint at {path}: starting from scratch")
                return
        else:
            path = Path(resume)
        self.load_state_dict(_dist.from_rank0(load, path))
        is_last = self.last_path is not None and path.resolve() == self.last_path.resolve()
        self._saved_at = self._where() if is_last else None
        self._best_weights = None
        if self.restore_best and self.best_path is not None and _dist.from_rank0(self.best_path.exists):
            best = _dist.from_rank0(load, self.best_path)
            if best.get("monitor", {}).get("best_epoch") == self.monitor.best_epoch:
                self._best_weights = dict(best["model"])
        self._say(f"resumed from {path}: {self._where()}")

    def _restore_best_weights(self) -> None:
        if self._best_weights is None:
            self._say("restore_best: no best weights to restore (the monitored value never improved in this "
                      "process or in best.npz); the model keeps the last epoch's")
            return
        self.model.load_state_dict(self._best_weights)
        self._say(f"restored the weights of epoch {self.monitor.best_epoch} "
                  f"({self.monitor.name} {self.monitor.best:.6g})")

    # ----------------------------------------------------------- interrupts
    def _keyboard_interrupt(self, epochs: int) -> None:
        """Say what a KeyboardInterrupt left behind, saving first when the state is consistent."""
        if len(self._sigints) > 1:
            self._say(f"aborted by a second Ctrl-C; {self._saved_note()}")
        elif not self._consistent:
            self._say(f"KeyboardInterrupt in the middle of a batch or an epoch's end ({self._where()}): the "
                      f"state may be half-updated, so no checkpoint was written; {self._saved_note()}")
        elif self.last_path is not None and _dist.active():
            self._say(f"KeyboardInterrupt under data-parallel training: the ranks may stand at different batches, "
                      f"so no checkpoint was written; {self._saved_note()}")
        elif self.last_path is not None:
            self._save(self.last_path)
            self._say(f"KeyboardInterrupt at a batch boundary: saved {self.last_path} ({self._saved_at}); "
                      + self._resume_hint(epochs))
        else:
            self._say("KeyboardInterrupt: no checkpoint_dir was given, so nothing was saved")

    # -------------------------------------------------------------- helpers
    def _reset_epoch_sums(self) -> None:
        self._sums: dict[str, float] = {}  # sum of value * count per metric over the running epoch
        self._weights: dict[str, float] = {}  # sum of count per metric
        self._count = 0.0
        self._seconds = 0.0  # of the running epoch, before this process (re)started it

    def _mean(self, key: str) -> float:
        w = self._weights.get(key, 0.0)
        return self._sums[key] / w if w else float("nan")

    def _elapsed(self) -> float:
        return self._seconds + (0.0 if self._t0 is None else time.perf_counter() - self._t0)

    def _patience_ran_out(self) -> bool:
        return self.patience is not None and self.monitor.bad_epochs >= self.patience

    def _where(self) -> str:
        if self.position:
            return f"epoch {self.epoch + 1} after batch {self.position}"
        return f"the end of epoch {self.epoch}" if self.epoch else "the start"

    def _saved_note(self) -> str:
        if self.last_path is None:
            return "no checkpoint_dir was given"
        if self._saved_at is None:
            return f"{self.last_path} was not written by this run yet"
        return f"{self.last_path} still holds {self._saved_at}"

    def _stopped(self, where: str, epochs: int, save: bool = True) -> None:
        """Save (mid-epoch) and say where the run stopped and how to continue it."""
        saved = self._save(self.last_path) if save else self.last_path is not None
        self._say(f"stopped {where} ({self._stop_reason or 'stop_training set'}); "
                  + (self._resume_hint(epochs) if saved else "no checkpoint_dir was given, so nothing was saved"))

    def _resume_hint(self, epochs: int) -> str:
        return (f"saved {self.last_path} ({self._saved_at}); to continue, build the same Trainer and call "
                f"fit({epochs}, resume=True)")

    def _say(self, message: str) -> None:
        if self.log is not None and _dist.is_main_process():
            self.log(message)


# ------------------------------------------------------------------ helpers
def _to_float(value, where: str) -> float:
    if isinstance(value, Tensor):
        value = value._data
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise TypeError(f"Trainer: {where} must be a number, got an array of shape {value.shape}")
        value = value.reshape(()).item()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"Trainer: {where} must be a number, got {type(value).__name__}") from None


__all__ = ["Trainer"]
