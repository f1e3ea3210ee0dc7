"""A character-level language model: a GRU (or LSTM) on tiny-shakespeare, trained with truncated BPTT.

    RNNBP_DATA=../shared/data python demos/char_lm.py             # full run (about 14 minutes)
    RNNBP_DATA=../shared/data python demos/char_lm.py --resume    # continue runs/char_lm/last.npz
    RNNBP_DATA=../shared/data python demos/char_lm.py --quick     # seconds, for smoke tests
    python demos/char_lm.py sample --load runs/char_lm.npz --prompt "ROMEO:" --chars 500 --temperature 0.8

The text (first 90 % train, last 10 % validation) is cut into B parallel streams that
TBPTT(k1, k2) walks k1 characters at a time, carrying the hidden state from one chunk
to the next, under AdamW with gradient-norm clipping and a warm-up + cosine learning-rate
schedule. The full run is bounded by a time budget (``--minutes``): the cosine runs to its
end over whichever of the time budget and the epoch budget runs out first, so the run
finishes on time on a slower machine (with a higher loss) and is not reproducible to the
bit (``--minutes 0`` makes it depend on ``--epochs`` alone). ``rnnbp.train.Trainer`` runs
the epochs: progress bar, validation after each epoch, checkpoints, Ctrl-C, ``--resume``.
Beside the checkpoints go ``metrics.jsonl`` and ``grad_flow.jsonl`` (||dL/dh_t|| over the steps
of the TBPTT window at updates 0, 1, 2, 4, 8, ...: ``rnnbp.train.GradFlowFile``) and, with
matplotlib installed, their pictures ``curves.png`` and ``gradient_flow.png`` (``rnnbp.plot``).

The default model, a 2-layer GRU with 384 units, reached 1.428 nats/char (2.061 bits/char) on
the validation text in a 14-minute run (9.6 M characters, ~9.6 epochs, one BLAS thread) on a
busy 2-core machine. Within the same compute budget a 2-layer LSTM reached 1.452 (H=512) to
1.461 (H=256): the GRU is cheaper per step and learns at least as much per character.

Validation loss is reported in nats/char and bits/char (nats / ln 2) over every character
of the validation text, each predicted from the text before it (see :func:`evaluation_windows`).
The model is saved with ``rnnbp.save`` (weights, vocabulary and config; .npz, no pickle),
reloaded from the file, checked to give the same logits, and sampled from with a temperature.

Threads: the default run keeps BLAS to one thread. On an idle 2-core machine two OpenBLAS
threads train up to ~1.7x faster (``--threads 2``), but when another process competes for a
core they can be 5-10x slower than one: the step-by-step recurrent products are small, and
each waits for a helper thread that is not running. One thread gives steady times.

Data: ``<root>/tinyshakespeare/input.txt`` with root ``--data``, else ``$RNNBP_DATA``,
else the loader's default (downloaded once, checked against its SHA-256).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

import rnnbp
import rnnbp.plot
from rnnbp import nn, optim
from rnnbp.bptt import TBPTT, sequence_cross_entropy
from rnnbp.data import CharVocab, TextCorpus, load_tiny_shakespeare, stream_batches, stream_pairs
from rnnbp.optim.lr_scheduler import LRScheduler
from rnnbp.train import Callback, GradFlowFile, StreamCarry, Trainer


@dataclass
class Config:
    cell: str = "gru"             # recurrent cell: "gru" or "lstm"
    embed: int = 64               # character embedding size E
    hidden: int = 384             # hidden size H of each recurrent layer
    layers: int = 2               # stacked recurrent layers
    dropout: float = 0.1          # between recurrent layers and before the output layer
    # Regularisation inside the fused recurrent layer (nn.recurrent.regularization), 0 = off. The
    # variational masks are drawn afresh for every batch (one update), as AWD-LSTM does, although
    # the state is carried from batch to batch.
    input_dropout: float = 0.0    # variational dropout of each layer's input (Keras' dropout)
    recurrent_dropout: float = 0.0  # variational dropout of h_{t-1} into W_hh (Keras' recurrent_dropout)
    zoneout: float = 0.0          # zoneout of h (and c) (Krueger et al. 2016)
    weight_dropout: float = 0.0   # DropConnect on W_hh (AWD-LSTM's WeightDrop)
    batch_size: int = 64          # B parallel streams of the training text
    seq_len: int = 64             # k1: characters per chunk and per update (the loss is on these)
    bptt: int = 64                # k2 >= seq_len: steps backpropagated through (k2 > k1 re-runs k2 - k1 older steps)
    lr: float = 3e-3              # AdamW peak learning rate, after a linear warm-up
    min_lr_ratio: float = 0.05    # the cosine ends at lr * min_lr_ratio
    warmup: int = 100             # updates of linear warm-up
    weight_decay: float = 0.0     # AdamW decoupled weight decay
    clip_norm: float = 1.0        # clip the global gradient norm of each update to this
    epochs: int = 20              # at most this many passes over the training text
    minutes: float = 14.0         # time budget of training and its validations (0: none; epochs alone decide)
    max_updates: int | None = None  # at most this many updates (None: epochs and minutes decide)
    eval_batch: int = 64          # parallel streams when evaluating the validation text
    burn_in: int = 128            # preceding characters each evaluation stream reads before its loss counts
    val_chars: int | None = None  # evaluate only the first this many validation characters (None: all)
    epoch_val_every: int = 4      # after each epoch score only every k-th evaluation stream (the final one: all)
    threads: int = 1              # BLAS threads (0: as configured); see "Threads" above
    seed: int = 0                 # seeds the initialisation, dropout, the stream offsets and the sample
    data: str | None = None       # data root holding tinyshakespeare/ (None: $RNNBP_DATA or the default)
    out: str = "runs/char_lm.npz"  # the trained model (weights, vocabulary, config); checkpoints go in runs/char_lm/
    prompt: str = "ROMEO:"        # sampling starts from this text
    sample_chars: int = 500       # characters to sample after the prompt
    temperature: float = 0.8      # sampling temperature (0: always the most likely character)
    progress: bool = True         # show a progress bar per epoch


QUICK = dict(embed=16, hidden=64, layers=1, dropout=0.0, batch_size=16, seq_len=32, bptt=32, lr=1e-2, warmup=5,
             max_updates=60, minutes=0.0, eval_batch=16, burn_in=32, val_chars=4000, sample_chars=80)


# ------------------------------------------------------------------ model
class CharRNN(nn.Module):
    """Embedding -> stacked LSTM/GRU -> dropout -> linear, over time-major character ids.

    Called as the TBPTT engine calls a model: ``model(x, hx) -> (logits, hx')``.

    Shape: x (L, N) int ids; logits (L, N, V); hx the recurrent layer's state
    ((h, c) for an LSTM, h for a GRU; each (layers, N, H)), None for zeros.
    """

    def __init__(self, vocab_size: int, cfg: Config):
        super().__init__()
        if cfg.cell not in ("lstm", "gru"):
            raise ValueError(f"CharRNN: cell must be 'lstm' or 'gru', got {cfg.cell!r}")
        recurrent = nn.LSTM if cfg.cell == "lstm" else nn.GRU
        self.embed = nn.Embedding(vocab_size, cfg.embed)
        self.rnn = recurrent(cfg.embed, cfg.hidden, num_layers=cfg.layers,
                             dropout=cfg.dropout if cfg.layers > 1 else 0.0, input_dropout=cfg.input_dropout,
                             recurrent_dropout=cfg.recurrent_dropout, zoneout=cfg.zoneout,
                             weight_dropout=cfg.weight_dropout)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, vocab_size)

    def forward(self, x, hx=None):
        out, hx = self.rnn(self.embed(x), hx)  # (L, N, H)
        return self.head(self.drop(out)), hx   # (L, N, V)


# --------------------------------------------------------------- schedule
class BudgetCosineLR(LRScheduler):
    """Linear warm-up over ``warmup`` updates, then a cosine from the peak lr down to
    ``lr * min_ratio``, over whichever budget runs out first: ``total_updates`` updates or
    ``seconds`` of wall time (0: no time budget). ``progress()`` reaches 1 when either is used up.

    Step it once per update. The time spent is saved in ``state_dict``, so a resumed run
    gets only the rest of its budget (give a larger budget to extend a finished run).
    """

    def __init__(self, optimizer, warmup: int, total_updates: int, seconds: float = 0.0, min_ratio: float = 0.0):
        if total_updates <= 0:
            raise ValueError(f"BudgetCosineLR: total_updates must be positive, got {total_updates}")
        self.warmup, self.total_updates, self.seconds, self.min_ratio = warmup, total_updates, seconds, min_ratio
        self.spent, self._since = 0.0, time.perf_counter()  # seconds used before this process, and its clock
        super().__init__(optimizer)

    def elapsed(self) -> float:
        return self.spent + time.perf_counter() - self._since

    def progress(self) -> float:
        by_time = self.elapsed() / self.seconds if self.seconds else 0.0
        return min(1.0, max(self.last_epoch / self.total_updates, by_time))

    def get_lr(self) -> list[float]:
        warm = min(1.0, (self.last_epoch + 1) / (self.warmup + 1))
        decay = self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * self.progress()))
        return [base * warm * decay for base in self.base_lrs]

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.pop("_since")
        state["spent"] = self.elapsed()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore the updates and seconds spent; the budgets stay this scheduler's (a resume may extend them)."""
        budgets = self.total_updates, self.seconds
        super().load_state_dict(state)
        self.total_updates, self.seconds = budgets
        self._since = time.perf_counter()


class StopWhenSpent(Callback):
    """Stop the Trainer once the schedule has used its whole budget (updates or time)."""

    def __init__(self, schedule: BudgetCosineLR):
        self.schedule = schedule

    def on_batch_end(self, trainer, batch_index, metrics):
        if self.schedule.progress() >= 1.0:
            used = (f"{self.schedule.elapsed() / 60:.1f} of {self.schedule.seconds / 60:g} minutes"
                    if self.schedule.seconds and self.schedule.elapsed() >= self.schedule.seconds
                    else f"{self.schedule.last_epoch} updates")
            trainer.request_stop(f"budget used: {used}")


# ------------------------------------------------------------------ data
def load_corpus(cfg: Config) -> TextCorpus:
    """Tiny-shakespeare as ids: the vocabulary of the whole text, first 90 % train, last 10 % validation."""
    return TextCorpus.from_text(load_tiny_shakespeare(cfg.data, progressbar=cfg.progress), val_fraction=0.1)


def epoch_chunks(train_ids: np.ndarray, cfg: Config, generator: np.random.Generator) -> list:
    """One epoch: ``(first, x, y)`` chunks of seq_len steps of B streams, each (n, B) ids.

    The streams start at a random offset in [0, seq_len) so that chunk boundaries move
    from epoch to epoch; ``first`` marks the chunk where the streams (and their state) begin.
    """
    offset = int(generator.integers(cfg.seq_len))
    x, y = stream_pairs(stream_batches(train_ids[offset:], cfg.batch_size))  # (T, B) each
    k = cfg.seq_len
    return [(s == 0, x[s:s + k], y[s:s + k]) for s in range(0, len(x) - len(x) % k, k)]


def evaluation_windows(ids: np.ndarray, start: int, stop: int, batch: int, burn_in: int):
    """Inputs, targets and loss mask that score each of ``ids[start:stop]`` once, from its past.

    The targets are cut into ``batch`` contiguous stretches run side by side; each stream
    first reads the ``burn_in`` characters before its stretch (the training text, for the
    first) with no loss, so no character is scored from a cold, zero state. With
    burn_in >= 100 or so this matches one long stream over the whole text closely.

    Returns:
        inputs, targets : np.ndarray [shape=(burn_in + S, batch), int64], S = ceil((stop - start) / batch).
        mask : np.ndarray [shape=(burn_in + S, batch)], 1 where a target is scored.
    """
    n = stop - start
    if not (0 < n and start - burn_in - 1 >= 0 and stop <= len(ids)):
        raise ValueError(f"evaluation_windows: need 0 < stop - start and burn_in + 1 <= start, got "
                         f"start={start}, stop={stop}, burn_in={burn_in}")
    S = -(-n // batch)
    t = start + np.arange(batch)[None, :] * S + np.arange(-burn_in, S)[:, None]  # target positions (W + S, B)
    mask = (np.arange(-burn_in, S)[:, None] >= 0) & (t < stop)
    t = np.minimum(t, stop - 1)  # positions past the end are padding, masked out
    return ids[t - 1], ids[t], mask.astype(np.float32)


def make_evaluate(engine: TBPTT, ids: np.ndarray, start: int, stop: int, cfg: Config, every: int = 1):
    """``evaluate() -> {"loss": nats/char, "bpc": bits/char}`` over ``ids[start:stop]``.

    ``every`` > 1 scores only every ``every``-th of the ``cfg.eval_batch`` streams: a cheaper
    estimate from stretches spread over the whole text (its start is easier than its end).
    """
    x, y, mask = evaluation_windows(ids, start, stop, cfg.eval_batch, cfg.burn_in)
    x, y, mask = x[:, ::every], y[:, ::every], mask[:, ::every]

    def evaluate() -> dict:
        was_training = engine.model.training
        engine.model.eval()
        try:
            result = engine.evaluate(x, y, loss_mask=mask)
        finally:
            engine.model.train(was_training)
        return {"loss": result.loss, "bpc": result.loss / math.log(2)}

    return evaluate


# --------------------------------------------------------------- sampling
@rnnbp.no_grad()
def sample(model: CharRNN, vocab: CharVocab, prompt: str, n_chars: int, temperature: float = 1.0,
           generator: np.random.Generator | None = None) -> str:
    """The prompt followed by ``n_chars`` characters drawn one at a time from the model.

    The state is warmed on the whole prompt in one call, then each drawn character is fed
    back as a (1, 1) input. ``temperature`` divides the logits: below 1 sharper, above 1
    flatter; 0 takes the most likely character every time.

    Returns:
        str of length ``len(prompt) + n_chars``, starting with ``prompt``.
    """
    if not prompt:
        raise ValueError("sample: the prompt must hold at least one character (the state is warmed on it)")
    if not temperature >= 0:
        raise ValueError(f"sample: temperature must be >= 0, got {temperature}")
    generator = generator if generator is not None else np.random.default_rng()
    was_training = model.training
    model.eval()
    try:
        logits, hx = model(vocab.encode(prompt)[:, None], None)  # (len(prompt), 1, V)
        last, drawn = logits.numpy()[-1, 0].astype(np.float64), []
        for _ in range(n_chars):
            if temperature == 0:
                c = int(np.argmax(last))
            else:
                z = last / temperature
                p = np.exp(z - z.max())
                c = int(generator.choice(len(p), p=p / p.sum()))
            drawn.append(c)
            logits, hx = model(np.array([[c]]), hx)
            last = logits.numpy()[0, 0].astype(np.float64)
    finally:
        model.train(was_training)
    return prompt + vocab.decode(np.array(drawn, dtype=np.int64))


# ---------------------------------------------------------- save and load
def save_model(path, model: CharRNN, vocab: CharVocab, cfg: Config, **metrics) -> None:
    """Weights, vocabulary and config in one .npz (``rnnbp.save``), enough to rebuild the model."""
    rnnbp.save({"model": model.state_dict(), "vocab": vocab.state_dict(), "config": asdict(cfg), **metrics}, path)


def load_model(path) -> tuple[CharRNN, CharVocab, Config]:
    """Rebuild the model saved by :func:`save_model` from its config, and load its weights."""
    saved = rnnbp.load(path)
    known = {f.name for f in fields(Config)}
    cfg = Config(**{k: v for k, v in saved["config"].items() if k in known})
    vocab = CharVocab.from_state_dict(saved["vocab"])
    model = CharRNN(len(vocab), cfg)
    model.load_state_dict(saved["model"])
    return model.eval(), vocab, cfg


# ------------------------------------------------------------------ train
def train(cfg: Config, resume: bool = False, log=print) -> dict:
    """Train, validate, save, reload and sample; returns the figures, the reloaded model and the sample."""
    start = time.perf_counter()
    rnnbp.manual_seed(cfg.seed)
    corpus = load_corpus(cfg)
    vocab, V = corpus.vocab, len(corpus.vocab)
    ids = np.concatenate([corpus.train, corpus.val])
    n_train = len(corpus.train)
    val_stop = len(ids) if cfg.val_chars is None else min(len(ids), n_train + cfg.val_chars)
    counts = np.bincount(corpus.train, minlength=V)
    unigram = float(-np.log(counts[ids[n_train:val_stop]] / counts.sum()).mean())  # nats/char of char frequencies

    model = CharRNN(V, cfg)
    opt = optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    checkpoints = Path(cfg.out).with_suffix("")
    flow = GradFlowFile(checkpoints / "grad_flow.jsonl")  # ||dL/dh_t|| of updates 0, 1, 2, 4, 8, ...
    engine = TBPTT(model, sequence_cross_entropy, opt, k1=cfg.seq_len, k2=cfg.bptt, clip_norm=cfg.clip_norm,
                   diagnostics=flow.wanted, on_update=flow)
    per_epoch = (len(corpus.train) - cfg.seq_len) // cfg.batch_size // cfg.seq_len
    total = per_epoch * cfg.epochs if cfg.max_updates is None else min(cfg.max_updates, per_epoch * cfg.epochs)
    schedule = BudgetCosineLR(opt, cfg.warmup, total, seconds=60 * cfg.minutes, min_ratio=cfg.min_lr_ratio)
    stream = StreamCarry()

    def train_step(batch) -> dict:
        first, x, y = batch
        if first:
            stream.reset()
        model.rnn.reset_masks()  # new variational masks for each batch (the state is still carried)
        result = engine.run(x, y, carry=stream.carry)
        stream.carry = result.carry
        return {"loss": result.loss, "count": result.count, "updates": len(result.updates)}

    evaluate = make_evaluate(engine, ids, n_train, val_stop, cfg)
    epoch_evaluate = make_evaluate(engine, ids, n_train, val_stop, cfg, every=cfg.epoch_val_every)
    n_params = sum(p.numpy().size for p in model.parameters())
    log(f"{cfg.layers}-layer {cfg.cell.upper()} H={cfg.hidden}, E={cfg.embed}: {n_params:,} parameters; "
        f"{V} characters, {n_train:,} train / {val_stop - n_train:,} validation; B={cfg.batch_size}, "
        f"TBPTT(k1={cfg.seq_len}, k2={cfg.bptt}), {per_epoch} updates per epoch; budget "
        f"{total} updates" + (f" or {cfg.minutes:g} minutes" if cfg.minutes else ""))
    log(f"baselines: uniform {math.log(V):.3f} nats/char, unigram {unigram:.3f} nats/char; val_loss after each "
        f"epoch scores 1/{cfg.epoch_val_every} of the validation text, the final evaluation all of it")
    trainer = Trainer(model, opt, train_step, lambda epoch, g: epoch_chunks(corpus.train, cfg, g),
                      evaluate=epoch_evaluate, scheduler=schedule, scheduler_step="update", checkpoint_dir=checkpoints,
                      metrics_file=checkpoints / "metrics.jsonl", stateful={"stream": stream, "engine": engine},
                      callbacks=[StopWhenSpent(schedule)], seed=cfg.seed, progress=cfg.progress, log=log)
    trainer.fit(cfg.epochs, resume=resume)
    train_seconds = time.perf_counter() - start

    final = evaluate()
    log(f"validation: {final['loss']:.4f} nats/char, {final['bpc']:.4f} bits/char over {val_stop - n_train:,} "
        f"characters after {trainer.updates} updates ({trainer.updates * cfg.batch_size * cfg.seq_len:,} "
        f"characters trained on) in {train_seconds / 60:.1f} min")
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(out, model, vocab, cfg, val_loss=final["loss"], val_bpc=final["bpc"], updates=trainer.updates)

    reloaded, vocab2, _ = load_model(out)
    probe = ids[n_train:n_train + 64, None]
    model.eval()
    with rnnbp.no_grad():
        same = np.array_equal(model(probe)[0].numpy(), reloaded(probe)[0].numpy())
    text = sample(reloaded, vocab2, cfg.prompt, cfg.sample_chars, cfg.temperature, np.random.default_rng(cfg.seed))
    seconds = time.perf_counter() - start
    log(f"saved {out}; reloaded it: {'identical' if same else 'DIFFERENT'} logits. "
        f"A sample at temperature {cfg.temperature:g}:\n{'-' * 60}\n{text}\n{'-' * 60}")
    pictures = write_pictures(checkpoints, log)
    log(f"total {seconds / 60:.1f} min")
    return {"val_loss": final["loss"], "val_bpc": final["bpc"], "unigram_loss": unigram, "uniform_loss": math.log(V),
            "train_loss": trainer.history[-1]["loss"] if trainer.history else float("nan"),
            "history": trainer.history, "updates": trainer.updates, "seconds": seconds, "path": out,
            "reloaded_identical": same, "sample": text, "model": model, "reloaded": reloaded, "vocab": vocab,
            "pictures": pictures}


def write_pictures(run_dir: Path, log=print) -> list[str]:
    """The run's pictures (``rnnbp.plot``: curves.png, gradient_flow.png) when matplotlib is there."""
    try:
        report = rnnbp.plot.plot_run(run_dir)
    except ImportError as exc:
        log(f"(no pictures: {exc})")
        return []
    written = [str(path) for path, _ in report.written]
    log(f"pictures: {', '.join(written) or 'none (no finished epoch)'}")
    return written


# ------------------------------------------------------------------- main
def _sample_main(argv) -> dict:
    parser = argparse.ArgumentParser(prog="char_lm.py sample", description="Sample from a saved character model.")
    parser.add_argument("--load", default=Config.out, help="a model saved by a training run (.npz)")
    parser.add_argument("--prompt", default=Config.prompt)
    parser.add_argument("--chars", type=int, default=Config.sample_chars, help="characters to sample")
    parser.add_argument("--temperature", type=float, default=Config.temperature)
    parser.add_argument("--seed", type=int, default=None, help="seed of the draws (default: fresh)")
    args = parser.parse_args(argv)
    model, vocab, _ = load_model(args.load)
    text = sample(model, vocab, args.prompt, args.chars, args.temperature, np.random.default_rng(args.seed))
    print(text)
    return {"sample": text, "model": model, "vocab": vocab}


def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sample"]:
        return _sample_main(argv[1:])
    parser = argparse.ArgumentParser(
        description="Character-level LSTM/GRU language model on tiny-shakespeare, trained with TBPTT.",
        epilog="Sample from a saved model without training: char_lm.py sample --load PATH [--prompt ...]")
    parser.add_argument("--cell", choices=("lstm", "gru"), default=Config.cell)
    parser.add_argument("--hidden", type=int, default=Config.hidden)
    parser.add_argument("--layers", type=int, default=Config.layers)
    parser.add_argument("--embed", type=int, default=Config.embed)
    parser.add_argument("--dropout", type=float, default=Config.dropout)
    parser.add_argument("--input-dropout", type=float, default=Config.input_dropout,
                        help="variational dropout of each recurrent layer's input")
    parser.add_argument("--recurrent-dropout", type=float, default=Config.recurrent_dropout,
                        help="variational dropout of h_{t-1} into the recurrent product")
    parser.add_argument("--zoneout", type=float, default=Config.zoneout, help="zoneout of h (and c)")
    parser.add_argument("--weight-dropout", type=float, default=Config.weight_dropout,
                        help="DropConnect on the hidden-to-hidden weights")
    parser.add_argument("--batch-size", type=int, default=Config.batch_size)
    parser.add_argument("--seq-len", type=int, default=Config.seq_len, help="k1: steps per update")
    parser.add_argument("--bptt", type=int, default=None, help="k2 >= seq-len (default: seq-len)")
    parser.add_argument("--lr", type=float, default=Config.lr)
    parser.add_argument("--weight-decay", type=float, default=Config.weight_decay)
    parser.add_argument("--clip-norm", type=float, default=Config.clip_norm)
    parser.add_argument("--epochs", type=int, default=Config.epochs, help="at most this many epochs")
    parser.add_argument("--minutes", type=float, default=Config.minutes, help="training time budget (0: none)")
    parser.add_argument("--max-updates", type=int, default=None)
    parser.add_argument("--threads", type=int, default=Config.threads,
                        help="BLAS threads (default 1: steady on a shared machine; 0: BLAS's own default)")
    parser.add_argument("--seed", type=int, default=Config.seed)
    parser.add_argument("--data", default=None, help="data root holding tinyshakespeare/ (default: $RNNBP_DATA)")
    parser.add_argument("--out", default=Config.out, help="where to save the model; checkpoints go beside it")
    parser.add_argument("--prompt", default=Config.prompt)
    parser.add_argument("--temperature", type=float, default=Config.temperature)
    parser.add_argument("--sample-chars", type=int, default=None)
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint of an earlier run")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--quick", action="store_true", help="a tiny model for a few seconds, for smoke tests")
    args = parser.parse_args(argv)
    cfg = Config(cell=args.cell, hidden=args.hidden, layers=args.layers, embed=args.embed, dropout=args.dropout,
                 input_dropout=args.input_dropout, recurrent_dropout=args.recurrent_dropout, zoneout=args.zoneout,
                 weight_dropout=args.weight_dropout,
                 batch_size=args.batch_size, seq_len=args.seq_len, bptt=args.bptt or args.seq_len, lr=args.lr,
                 weight_decay=args.weight_decay, clip_norm=args.clip_norm, epochs=args.epochs, minutes=args.minutes,
                 max_updates=args.max_updates, threads=args.threads, seed=args.seed, data=args.data, out=args.out,
                 prompt=args.prompt, temperature=args.temperature, progress=not args.no_progress)
    if args.quick:
        cfg = Config(**{**asdict(cfg), **QUICK, "cell": args.cell})
    if args.sample_chars is not None:
        cfg.sample_chars = args.sample_chars
    with rnnbp.blas_threads(cfg.threads):
        return train(cfg, resume=args.resume)


if __name__ == "__main__":
    main()
