"""Callback: hooks into :class:`~rnnbp.train.Trainer`'s loop, for what the loop itself does not do."""
from __future__ import annotations


class Callback:
    """Base class of the Trainer's hooks; override the ones you need (each does nothing here).

    The epoch number ``epoch`` counts from 1; ``batch_index`` counts the batches of the running
    epoch from 0. A hook may set ``trainer.stop_training = True`` (or call ``trainer.request_stop()``):
    the Trainer then stops at the next batch boundary, or after the checkpoint of the epoch that is
    ending, and the checkpoint records where it stopped, so ``fit(..., resume=True)`` continues
    exactly from there.

    A callback's own state is not saved in checkpoints; give the Trainer an object with
    ``state_dict()``/``load_state_dict()`` through its ``stateful`` argument if it must be.
    """

    def on_fit_start(self, trainer) -> None:
        """Before the first epoch of ``fit`` (after a resume has restored the state)."""

    def on_epoch_start(self, trainer, epoch: int) -> None:
        """Before the first batch of ``epoch``; on a resume in mid-epoch too, with ``trainer.position > 0``."""

    def on_batch_end(self, trainer, batch_index: int, metrics: dict) -> None:
        """After ``train_step`` of batch ``batch_index`` and its bookkeeping (and per-update scheduler step).

        ``metrics`` is what ``train_step`` returned.
        """

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        """After validation and the scheduler step, before the checkpoint is written.

        ``logs`` is the epoch's entry of ``trainer.history``; keys added here are kept in the history,
        the checkpoint and the metrics file.
        """

    def on_fit_end(self, trainer) -> None:
        """When ``fit`` ends without an exception (all epochs done, early stop, or a requested stop)."""


__all__ = ["Callback"]
