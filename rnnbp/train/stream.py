"""StreamCarry: the TBPTT carry of a stream, kept between batches and saved in checkpoints."""
from __future__ import annotations

from ..bptt.engine import Carry


class StreamCarry:
    """Holds the :class:`rnnbp.bptt.Carry` that one ``TBPTT.run`` hands to the next.

    A stream (language modelling) is trained one segment per batch, each run starting from the
    state and input history the previous run left. Give the holder to the Trainer as
    ``stateful={"stream": holder}`` so that a checkpoint taken in mid-epoch holds the carry and
    a resumed run continues the stream exactly where it stopped.

    Reset it where a stream starts (in ``train_step``, on the first segment of an epoch), not in
    ``batches``: on a resume the Trainer regenerates the epoch's batches and skips those already
    done, so code run while batches are made would also run for the skipped ones::

        holder = StreamCarry()

        def train_step(batch):
            first, x, y = batch
            if first:
                holder.reset()
            result = engine.run(x, y, carry=holder.carry)
            holder.carry = result.carry
            return {"loss": result.loss, "count": result.count, "updates": len(result.updates)}

    Attributes:
        carry : Carry or None (None: the next run starts from zeros).
    """

    def __init__(self, carry: Carry | None = None):
        self.carry = carry

    def reset(self) -> None:
        """Forget the carry: the next run starts from a zero state and no history."""
        self.carry = None

    def state_dict(self) -> dict:
        """``{"carry": Carry.state_dict() or None}``: arrays and lists only, for ``rnnbp.save``."""
        return {"carry": None if self.carry is None else self.carry.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore the carry saved by ``state_dict`` (states come back as Tensors)."""
        if not isinstance(state, dict) or "carry" not in state:
            raise ValueError(f"StreamCarry.load_state_dict: expected a dict with a 'carry' entry, got {state!r:.80}")
        saved = state["carry"]
        self.carry = None if saved is None else Carry.from_state_dict(saved)

    def __repr__(self) -> str:
        return f"StreamCarry({'empty' if self.carry is None else 'carrying'})"


__all__ = ["StreamCarry"]
