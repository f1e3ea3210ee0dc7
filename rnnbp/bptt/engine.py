"""Truncated backpropagation through time, TBPTT(k1, k2), for any recurrent model.

Williams & Peng (1990): run the network forward and, every k1 steps,
backpropagate through the last k2 steps (k2 >= k1), then update. The loss is
taken on the newest k1 outputs; the older k2 - k1 steps of the window only pass
gradient back. k1 = k2 is the common chunked form; k1 = k2 = L is full BPTT.

:class:`TBPTT` is equivalent to this loop (``k = k2 - k1``, no lengths)::

    start_state, t0 = state, 0                    # t0: where the next window starts
    for c0 in range(0, L, k1):                    # one update per chunk of k1 new steps
        c1 = min(c0 + k1, L)
        w0 = max(0, c0 - k)                       # the window reaches k steps further back
        m = max(0, c1 - k)                        # the next window will start here
        out1, s_m = model(inputs[w0:m], start_state)
        out2, s_end = model(inputs[m:c1], s_m)
        out = cat(out1, out2)[c0 - w0:]           # the chunk's outputs
        loss = mean(loss_fn(out, targets[c0:c1]))
        optimizer.zero_grad(); loss.backward(); clip(); optimizer.step()
        start_state = detach(s_m)                 # the truncation boundary

The model is called on time-major pieces as ``model(x, hx)``, or
``model(x, hx, lengths=...)`` when lengths are given, and returns
``(output, hx')`` with ``output`` of shape (T, N, ...) — exactly how ``nn.LSTM``
and ``nn.Recurrent`` are called, so either works alone or inside a user Module.
The state may be any nesting of tuples and lists of tensors.

Under ``mpiexec -n K`` (after ``rnnbp.distributed.init_process_group()``) each rank runs its own
rows and every update first averages the gradients over the ranks, weighted by each rank's
valid loss elements (one allreduce), before the checks and clipping: K ranks make the update one
process would make on all their rows together. Every rank must pass inputs of the same length L.

Two ways to use it:

* **a long stream** (language modelling): ``run`` one segment after another with the
  :class:`Carry` it returns; the state (and, for k2 > k1, the last k2 - k1 inputs
  to re-run) crosses segment boundaries, detached, so that running a stream in
  segments equals running it in one call when segment lengths are multiples of k1;
* **a batch of separate sequences** with ``lengths``: each ``run`` starts from
  zeros (or the given state); a row whose sequence has ended keeps its final state
  through later chunks and contributes no loss, so chunks where some rows have no
  steps left work as they should. Targets past a row's length never reach ``loss_fn``
  (zeros take their place): NaN padding is as good as any other.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..autograd.tensor import Tensor
from ..distributed import mpi as _dist
from ..distributed.training import tbptt_steps
from ..nn.module import Module
from ..nn.recurrent.probes import record_state_grads
from ..nn.utils.clip_grad import _total_norm, clip_grad_norm_, clip_grad_value_
from ..validation import check_int, check_number
from .checks import NonFiniteError, first_nonfinite_step, nonfinite_arrays
from .optimizer_record import optimizer_class, optimizer_mismatch


@dataclass
class Carry:
    """What a stream carries from one ``run`` to the next.

    ``state``: the model's state at the start of the next window, detached (None: zeros).
    ``history``: the last k2 - k1 inputs before the next chunk, re-run by the next
    window (shape (h, N, ...), h <= k2 - k1; empty for k1 = k2).
    """

    state: object = None
    history: np.ndarray | None = None

    def state_dict(self) -> dict:
        """Arrays and nested lists only, for ``rnnbp.save`` (exact resume of a stream)."""
        return {"state": _tree_map(self.state, lambda t: t.numpy()), "history": self.history}

    @classmethod
    def from_state_dict(cls, d: dict) -> "Carry":
        state = _tree_map(d.get("state"), Tensor, leaf=np.ndarray)
        return cls(state=state, history=d.get("history"))


@dataclass
class Update:
    """One optimizer update: the chunk ``steps`` = (c0, c1) of new steps in the run's time axis.

    ``loss``: mean loss over the chunk's valid elements; ``count``: how many there were.
    ``grad_norm``: global gradient norm before clipping. ``clipped``: whether clipping changed it.
    ``param_grad_norms`` and ``state_grad_norms`` (diagnostics only): per-parameter gradient
    norms, and ||dL/dh_t|| for each step of the window keyed by (module, layer, direction)
    (index 0 = the window's first step ``window[0]``).
    """

    index: int
    steps: tuple[int, int]
    window: tuple[int, int]
    loss: float
    count: float
    grad_norm: float
    clipped: bool
    param_grad_norms: dict | None = None
    state_grad_norms: dict | None = None


@dataclass
class RunResult:
    """What ``run`` returns: the carry for the next segment, the loss and the updates made."""

    carry: Carry
    loss: float  # mean over every valid loss element of the run (nan if none)
    count: float
    updates: list[Update] = field(default_factory=list)


class TBPTT:
    """The unrolling engine: forward over windows, backward, clip, check, update.

    Args:
        model : Module called as ``model(x, hx[, lengths=...]) -> (output, hx')`` (time-major).
        loss_fn : ``(output (n, N, ...), target (n, N, ...)) -> loss``: either per-element
            losses of shape (n, N), which the engine masks by length (and ``loss_mask``) and
            averages, or a scalar Tensor used as it is (no masking).
        optimizer : an ``rnnbp.optim`` optimizer, or None to compute gradients only
            (``on_update`` can read them).
        k1 : int > 0, new steps per update; None with k2 None means full BPTT (one window).
        k2 : int >= k1, steps backpropagated through (default k1).
        clip_norm : clip the global gradient norm to this (``clip_grad_norm_``).
        clip_value : clamp every gradient entry into [-clip_value, clip_value].
        norm_type : the p of the global norm (2).
        diagnostics : bool, or a callable ``update index -> bool``: record per-parameter gradient
            norms and ||dL/dh_t|| at every step (``Update.param_grad_norms``, ``state_grad_norms``)
            in every update (True), or in the updates the callable picks (e.g.
            ``rnnbp.train.GradFlowFile.wanted``). Recording ||dL/dh_t|| runs the backward of
            nn.RNN/LSTM/GRU as a Python loop over the steps instead of the compiled one.
        check_finite : stop with :class:`NonFiniteError` at the first NaN/Inf in the loss, a
            gradient or a parameter, naming the step, the chunk and the tensor.
        on_update : callable ``(engine, Update) -> None`` after each backward and clipping,
            before the optimizer step (gradients are still in ``.grad``).
    """

    def __init__(self, model: Module, loss_fn: Callable, optimizer=None, k1: int | None = None,
                 k2: int | None = None, clip_norm: float | None = None, clip_value: float | None = None,
                 norm_type: float = 2.0, diagnostics: bool = False, check_finite: bool = True,
                 on_update: Callable | None = None):
        if k1 is None and k2 is not None:
            raise ValueError("TBPTT: give k1 (and optionally k2 >= k1), or neither for full BPTT")
        k1 = check_int("TBPTT", "k1", k1, allow_none=True)
        k2 = check_int("TBPTT", "k2", k2, allow_none=True)
        k2 = k1 if k2 is None else k2
        if k1 is not None and k2 < k1:
            raise ValueError(f"TBPTT: k2 must be >= k1 (backpropagate through at least the steps that "
                             f"carry the loss), got k1={k1}, k2={k2}")
        clip_norm = check_number("TBPTT", "clip_norm", clip_norm, 0.0, low_open=True, allow_none=True)
        clip_value = check_number("TBPTT", "clip_value", clip_value, 0.0, low_open=True, allow_none=True)
        norm_type = check_number("TBPTT", "norm_type", norm_type, finite=False)
        if not callable(loss_fn):
            raise TypeError(f"TBPTT: loss_fn must be callable (output, target) -> loss, got {type(loss_fn).__name__}")
        if on_update is not None and not callable(on_update):
            raise TypeError(f"TBPTT: on_update must be callable or None, got {type(on_update).__name__}")
        if not (callable(model) and callable(getattr(model, "named_parameters", None))
                and callable(getattr(model, "zero_grad", None))):
            raise TypeError(f"TBPTT: model must be an nn.Module called as model(x, hx) -> (output, hx') (the engine "
                            f"clears and checks its parameters' gradients), got {type(model).__name__}")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.k1, self.k2 = k1, k2
        self.clip_norm, self.clip_value, self.norm_type = clip_norm, clip_value, norm_type
        self.diagnostics, self.check_finite, self.on_update = diagnostics, check_finite, on_update
        self.updates_done = 0  # over the engine's life, for messages and schedules
        self._weights_synced = False  # under mpiexec: rank 0's weights broadcast at the first training run

    def state_dict(self) -> dict:
        """The engine's own progress, for checkpoints and exact resume.

        ``{"updates_done": int, "optimizer": class name, "" for none}``; the optimizer's own state
        is ``optimizer.state_dict()``, saved beside this.
        """
        return {"updates_done": self.updates_done,
                "optimizer": "" if self.optimizer is None else optimizer_class(self.optimizer)}

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()``; refuses one saved with another optimizer class (Adam into SGD).

        A state without ``"optimizer"`` (saved before the class was recorded) loads unchecked.
        """
        if not isinstance(state, dict) or "updates_done" not in state:
            raise ValueError(f"TBPTT.load_state_dict: expected a dict with an 'updates_done' entry, got "
                             f"{state!r:.80}")
        mismatch = optimizer_mismatch(state.get("optimizer"), self.optimizer)
        if mismatch:
            raise ValueError(f"TBPTT.load_state_dict: the state does not fit this engine: {mismatch}")
        self.updates_done = int(state["updates_done"])

    # ----------------------------------------------------------------- public
    def run(self, inputs, targets, carry: Carry | None = None, state=None, lengths=None,
            loss_mask=None) -> RunResult:
        """Train over one segment: one update per k1 new steps.

        Args:
            inputs : array or Tensor [shape=(L, N, ...)] (ids for an embedding, or features).
            targets : array or Tensor [shape=(L, N, ...)], what ``loss_fn`` compares with.
            carry : from the previous segment of the same stream (None: a fresh start).
            state : initial state, instead of ``carry`` (a fresh batch of sequences).
            lengths : array of ints [shape=(N,)], each row's length in this segment (0..L).
            loss_mask : array [shape=(L, N)] of weights; 0 where a step carries no loss
                (e.g. only the last step of the adding problem).
        """
        return self._go(inputs, targets, carry, state, lengths, loss_mask, train=True)

    def evaluate(self, inputs, targets, carry: Carry | None = None, state=None, lengths=None,
                 loss_mask=None) -> RunResult:
        """The loss over the same chunks of k1 steps without gradients or updates (validation of a stream).

        No window re-runs the k2 - k1 steps before its chunk: with no backward pass the carried
        state already holds them, so each step runs once. The outputs equal ``run``'s.
        """
        from ..autograd.grad_mode import no_grad

        with no_grad():
            return self._go(inputs, targets, carry, state, lengths, loss_mask, train=False)

    # --------------------------------------------------------------- the loop
    def _go(self, inputs, targets, carry, state, lengths, loss_mask, train: bool) -> RunResult:
        if carry is not None and state is not None:
            raise ValueError("TBPTT.run: give a carry (a stream) or an initial state (a batch), not both")
        xs, ys = _array(inputs), _array(targets)
        L, N = _check_time_major(xs, ys)
        if lengths is not None:
            lengths = _check_lengths(lengths, L, N)
            L_run = int(lengths.max()) if N else 0  # steps after every row has ended do nothing
        else:
            L_run = L
        if train and _dist.active():  # every rank makes the same updates: as many as the longest run needs
            L_run = tbptt_steps(self, L_run, L)
        if loss_mask is not None:
            loss_mask = np.asarray(_array(loss_mask), dtype=np.float64)
            if loss_mask.shape != (L, N):
                raise ValueError(f"TBPTT.run: loss_mask must have shape (L, N) = {(L, N)}, got {loss_mask.shape}")
        carry = carry or Carry(state=state)
        history = carry.history if carry.history is not None and len(carry.history) else None
        h = 0 if history is None else len(history)
        if history is not None:
            if history.shape[1:] != xs.shape[1:]:
                raise ValueError(f"TBPTT.run: the carry's history has shape {history.shape}, which does not "
                                 f"continue inputs of shape {xs.shape}")
            xs = np.concatenate([history, xs])
        seq_lengths = None if lengths is None else lengths + h  # in the coordinates of xs
        k1 = self.k1 or max(L_run, 1)
        # Evaluation has no backward pass to truncate: the state alone carries the past.
        back = (self.k2 - self.k1) if (self.k1 is not None and train) else 0

        start_state = carry.state
        total, count, updates = 0.0, 0.0, []
        for chunk_start in range(h, h + L_run, k1):
            c0, c1 = chunk_start, min(chunk_start + k1, h + L_run)
            # The first window starts where the carried state stands: before the carried history.
            w0 = 0 if chunk_start == h else max(0, c0 - back)
            m = max(0, c1 - back)
            update = self._window(xs, ys, start_state, seq_lengths, loss_mask, (w0, m, c0, c1), h, train)
            start_state = update.pop("next_state")
            if update["count"] > 0:
                total += update["loss"] * update["count"]
                count += update["count"]
            if "info" in update:
                updates.append(update["info"])
        next_history = xs[max(0, h + L_run - back):h + L_run] if back else None
        mean = total / count if count else float("nan")
        return RunResult(Carry(start_state, next_history), mean, count, updates)

    def _window(self, xs, ys, start_state, lengths, loss_mask, bounds, h: int, train: bool) -> dict:
        """Forward over xs[w0:c1] from ``start_state``, loss on [c0, c1), backward, update."""
        w0, m, c0, c1 = bounds
        chunk = self.updates_done
        if train and self.optimizer is not None:
            self.optimizer.zero_grad()
        elif train:
            self.model.zero_grad()
        diagnose = train and (self.diagnostics(chunk) if callable(self.diagnostics) else self.diagnostics)
        probe_ctx = record_state_grads(self.model) if diagnose else _nothing()
        with probe_ctx as probe:
            outs, next_state, state = [], start_state, start_state  # next_state: the state at m (w0 if m == w0)
            for p0, p1 in ((w0, m), (m, c1)):
                if p1 <= p0:
                    continue
                if probe is not None:
                    probe.offset = p0 - w0
                out, state = self._call(xs[p0:p1], state, lengths, p0, p1)
                outs.append(out)
                if p1 == m:
                    next_state = _detach(state)
            out = outs[0] if len(outs) == 1 else _cat_time(outs)
            out = out[c0 - w0:] if c0 > w0 else out
            loss, count, valid = self._loss(out, ys[c0 - h:c1 - h], lengths, loss_mask, c0, c1, h, chunk)
            result = {"next_state": next_state, "loss": float(loss.item()) if count else float("nan"),
                      "count": count}
            if not train or (count == 0 and not _dist.active()):
                return result
            if count:  # (with none, this rank still joins the other ranks' gradient average)
                loss.backward()
        return self._finish(result, probe, chunk, (c0 - h, c1 - h), (w0 - h, c1 - h))

    def _finish(self, result: dict, probe, chunk: int, steps: tuple, window: tuple) -> dict:
        """Average the gradients over the ranks (under mpiexec), check and clip them, report, and step."""
        if _dist.active() and _dist.average_gradients(self.model.parameters(), weight=result["count"]) == 0:
            return result  # no rank had a loss in this chunk: no rank updates
        named = [(n, p) for n, p in self.model.named_parameters() if p._grad is not None]
        grads = {n: _grad_array(p) for n, p in named}
        if self.check_finite:
            bad = nonfinite_arrays(grads)
            if bad:
                loss = result["loss"]
                said = (f"although the loss was finite ({loss:.6g})" if math.isfinite(loss)
                        else f"and the loss was {loss}")
                raise NonFiniteError(
                    f"TBPTT: non-finite gradient of {', '.join(bad)} in chunk {chunk} (steps {steps[0]}-"
                    f"{steps[1] - 1}) {said}; training stopped before the optimizer step, parameters "
                    "unchanged", tensor=bad[0], step=None, chunk=chunk)
        param_norms = {n: _global_norm([g], 2.0) for n, g in grads.items()} if probe is not None else None
        params = [p for _, p in named]
        if self.clip_norm is not None:
            norm = float(clip_grad_norm_(params, self.clip_norm, self.norm_type).item())
            clipped = norm > self.clip_norm
        else:
            norm = _global_norm(list(grads.values()), self.norm_type)
            clipped = False
            if self.clip_value is not None:
                clipped = any(np.abs(g).max() > self.clip_value for g in grads.values() if g.size)
                clip_grad_value_(params, self.clip_value)
        info = Update(index=chunk, steps=steps, window=window, loss=result["loss"], count=result["count"],
                      grad_norm=norm, clipped=bool(clipped), param_grad_norms=param_norms,
                      state_grad_norms=None if probe is None else probe.trimmed())
        if self.on_update is not None:
            self.on_update(self, info)
        if self.optimizer is not None:
            self.optimizer.step()
            if self.check_finite:
                bad = nonfinite_arrays({n: p.numpy() for n, p in self.model.named_parameters()})
                if bad:
                    raise NonFiniteError(
                        f"TBPTT: parameter {', '.join(bad)} became non-finite in the optimizer step of chunk "
                        f"{chunk} (steps {steps[0]}-{steps[1] - 1}; pre-clip gradient norm {norm:.6g}); lower "
                        "the learning rate or clip harder", tensor=bad[0], step=None, chunk=chunk)
        self.updates_done += 1
        result["info"] = info
        return result

    def _call(self, x, state, lengths, p0: int, p1: int):
        """The model over steps [p0, p1) of the run, with each row's remaining length there."""
        if lengths is None:
            out = self.model(x, state)
        else:
            piece = np.clip(lengths - p0, 0, p1 - p0)
            out = self.model(x, state, lengths=piece)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(f"TBPTT: the model must return (output, state), got {type(out).__name__}")
        return out

    def _loss(self, out, ys, lengths, loss_mask, c0: int, c1: int, h: int, chunk: int):
        """Masked mean of the per-element losses over the chunk -> (loss Tensor, count, valid mask).

        Targets at steps that carry no loss (past a row's length, or weight 0 in ``loss_mask``) are
        replaced by 0 *before* ``loss_fn`` sees them, as padded inputs never reach the model's
        arithmetic: a NaN used as padding would otherwise give ``NaN * 0 = NaN`` in the loss and in
        every gradient. Per-element losses at those steps are then dropped with ``where`` rather than
        multiplied by 0, so a non-finite output there cannot reach the loss's value either.
        """
        n, N = c1 - c0, out.shape[1]
        weights = np.ones((n, N))
        if lengths is not None:
            weights *= (np.arange(c0, c1)[:, None] < lengths[None, :])
        if loss_mask is not None:
            weights *= loss_mask[c0 - h:c1 - h]
        valid = weights > 0
        ys = _blank(ys, ~valid)
        target = Tensor(ys) if ys.dtype.kind == "f" else ys
        per = self.loss_fn(out, target)
        count = float(weights.sum())
        if per.ndim == 0:
            if self.check_finite and not np.isfinite(per.item()):
                self._raise_nonfinite_output(out, ys, weights, c0, c1, h, chunk, per.item())
            return per, count, weights
        if per.shape != (n, N):
            raise ValueError(f"TBPTT: loss_fn must return a scalar or per-element losses of shape (n, N) = "
                             f"{(n, N)} for a chunk of n steps, got {per.shape}")
        if self.check_finite:
            where = first_nonfinite_step(per.numpy(), valid)
            if where is not None:
                self._raise_nonfinite_output(out, ys, weights, c0, c1, h, chunk, None, where)
        if count == 0:
            return per.sum() * 0, 0.0, weights
        if not valid.all():
            per = _where(valid, per, 0.0)
        mask = Tensor(weights.astype(per.dtype))
        return (per * mask).sum() / count, count, weights

    def _raise_nonfinite_output(self, out, ys, weights, c0, c1, h, chunk, value, where=None):
        """Name the first step whose output, target or (failing both) loss is NaN/Inf."""
        valid = weights > 0
        at = first_nonfinite_step(out.numpy(), valid)
        what, tensor = "the model's output is", "output"
        if at is None and ys.dtype.kind in "fc":
            at = first_nonfinite_step(ys, valid)
            what, tensor = "the target is", "target"
        if at is None:
            at, what, tensor = where, "the loss is", "loss"
        t, row = at if at is not None else (None, None)
        step = None if t is None else c0 - h + t
        place = f"at step {step} (row {row})" if step is not None else "(no single step: the loss itself)"
        raise NonFiniteError(
            f"TBPTT: non-finite loss{'' if value is None else f' ({value})'} {place} in chunk {chunk} "
            f"(steps {c0 - h}-{c1 - h - 1}): {what} NaN or Inf there; training stopped before the "
            "optimizer step, parameters unchanged", tensor=tensor, step=step, chunk=chunk)


# ------------------------------------------------------------------- helpers
class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _array(x) -> np.ndarray:
    return x.numpy() if isinstance(x, Tensor) else np.asarray(x)


def _check_time_major(xs: np.ndarray, ys: np.ndarray) -> tuple[int, int]:
    if xs.ndim < 2:
        raise ValueError(f"TBPTT.run: inputs must be time-major (L, N, ...), got shape {xs.shape}")
    if ys.shape[:2] != xs.shape[:2]:
        raise ValueError(f"TBPTT.run: targets must match the inputs' (L, N) = {xs.shape[:2]}, got shape {ys.shape}")
    return xs.shape[0], xs.shape[1]


def _check_lengths(lengths, L: int, N: int) -> np.ndarray:
    lengths = np.asarray(_array(lengths))
    if lengths.shape != (N,) or lengths.dtype.kind not in "iu":
        raise ValueError(f"TBPTT.run: lengths must be integers of shape (N,) = ({N},), got {lengths.dtype} "
                         f"of shape {lengths.shape}")
    if N and (lengths.min() < 0 or lengths.max() > L):
        raise ValueError(f"TBPTT.run: lengths must be between 0 and L = {L}, got {lengths.min()}..{lengths.max()}")
    return lengths.astype(np.int64)


def _tree_map(tree, fn, leaf=Tensor):
    if isinstance(tree, leaf):
        return fn(tree)
    if isinstance(tree, (tuple, list)):
        return type(tree)(_tree_map(t, fn, leaf) for t in tree)
    return tree


def _blank(ys: np.ndarray, where: np.ndarray) -> np.ndarray:
    """``ys`` (n, N, ...) with 0 at the (n, N) positions ``where`` (a copy; ``ys`` itself if none)."""
    if not where.any():
        return ys
    ys = ys.copy()
    ys[where] = 0
    return ys


def _where(cond: np.ndarray, x: Tensor, other: float) -> Tensor:
    from ..autograd.ops import where

    return where(cond, x, other)


def _detach(state):
    return _tree_map(state, lambda t: t.detach())


def _cat_time(outs):
    from ..autograd.ops import cat

    return cat(outs, dim=0)


def _grad_array(p) -> np.ndarray:
    return p._grad


def _global_norm(grads: list[np.ndarray], norm_type: float) -> float:
    """The global norm as ``clip_grad_norm_`` computes it (no overflow: [3e38, 3e38] gives 4.2e38, not inf)."""
    scale, ratio = _total_norm(grads, float(norm_type))
    with np.errstate(over="ignore"):
        return float(np.float64(scale) * ratio)
