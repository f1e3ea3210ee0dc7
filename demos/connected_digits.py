"""Connected digits: strings of 1-7 spoken digits recognised by a unidirectional GRU trained with CTC, offline and streaming.

    RNNBP_DATA=../shared/data python demos/connected_digits.py              # full run (see "Time" below)
    RNNBP_DATA=../shared/data python demos/connected_digits.py --quick      # seconds, for smoke tests
    RNNBP_DATA=../shared/data python demos/connected_digits.py --speaker all --beam 8
    python demos/connected_digits.py predict a.wav [b.wav ...] [--model runs/connected_digits/model.npz]
    python demos/connected_digits.py predict --stream a.wav [--chunk-ms 100]
    RNNBP_DATA=../shared/data python demos/connected_digits.py latency [--n 300]   # streaming latency of a saved model
    RNNBP_DATA=../shared/data python demos/connected_digits.py generate folder [--n 5]  # WAVs + their digit spans

Data: ``rnnbp.data.ConnectedDigits`` joins one FSDD speaker's trimmed recordings with pauses of
50-300 ms into utterances of 1-7 digits, seeded, with each digit's span in samples. Half of the
training utterances get white noise at 10-40 dB SNR (and their pauses a noise floor instead of
digital silence); validation and test utterances are clean. Splits are FSDD's:

* ``held-out takes`` (conventional): training and validation utterances are made of takes 5-49,
  test utterances of takes 0-4 of every digit and speaker (``holdout_speaker=None``).
* ``held-out speakers``: for a speaker (``--speaker jackson,nicolas``, ``all`` for the six
  folds), a model trained on utterances of the other five, tested on utterances of that voice only.

Features: 13 MFCC + deltas + delta-deltas per 16 ms frame (``rnnbp.data.FeatureConfig``), with
``top_db=None``: the library's default floors the log-mel 80 dB below the *whole utterance's*
peak, which a streaming recogniser cannot know yet; without it every static frame depends on its
own 32 ms window only, and a full frame on its deltas' 9-frame window (4 frames, 64 ms, of
look-ahead). Each voice's features are standardised by its own mean and deviation
(``SpeakerNormalizer``, fitted on that voice's recordings: no labels needed, so a new voice's test
recordings can be used; ``--norm global`` skips this), then by the training frames' statistics
(``Normalizer``). Then two consecutive frames are stacked into one input step (78 features per
32 ms): half the recurrent steps, and still 10+ steps per digit.

Measured (seed 0, ``--speaker all``): held-out takes 0.05 % digit error rate; held-out speakers
9.03 % over all six (george 20.8, jackson 7.2, lucas 5.0, nicolas 14.9, theo 4.4, yweweler 2.0);
with dropout 0.1 and 6-wide masks it was 0.20 % and 12.83 %. Seeds vary a lot per speaker (seed 1:
jackson 12.9 %, nicolas 20.6 %). Speed perturbation (0.9-1.1) and log-mel features were worse.

Model: a 2-layer unidirectional GRU (160 units) and a linear head to 11 classes, digits 0-9 and
the CTC blank (class 10), log-softmax over them. Trained with ``nn.functional.ctc_loss`` by
``rnnbp.train.Trainer`` (AdamW with a warm-up and a cosine decay, gradient-norm clipping at 1,
SpecAugment time and feature masks on the training batches, the epoch with the lowest validation
loss kept). Decoding: greedy (best path), or prefix beam search with ``--beam N``.

Reported, on each test set: the digit error rate (the edit distance between the decoded and the
spoken digits, summed over the utterances, over the number of spoken digits) and the string
accuracy (utterances decoded exactly). The conventional model is saved (``rnnbp.save``: state
dict, normalizer, feature and model configs; .npz, no pickle) and then run as a streaming
recogniser over test utterances to measure the latency.

Streaming (``predict --stream``, ``latency``, :class:`StreamingRecognizer`): the audio arrives in
chunks (100 ms by default); each chunk extends the feature frames that are final
(:class:`rnnbp.data.streaming.StreamingFeatures`: equal to the whole-file features up to float32 rounding, not an
approximation: a static frame is computed once its 32 ms window has arrived, its deltas once the
4 frames after it have), they are normalised, stacked, run through the GRU with its state carried
from the previous chunk (``out, state = model.rnn(x_chunk, state)`` under ``no_grad``), and the
greedy decoder emits a digit the moment the best class changes to a digit. The emitted digits
equal offline greedy decoding of the whole file. A digit's emission time is the end of the chunk
that produced it (audio time; the compute time per chunk is reported apart, since on a loaded
machine it says more about the machine). For generated utterances, whose digit spans are known
(``generate`` writes them beside each WAV as JSON; ``predict --stream`` reads them), its latency
is the emission time minus the end of the digit in the audio, for each decoded digit aligned to a
spoken one by the edit distance. It is the wait for the end of the chunk, plus the features'
look-ahead (4 frames and half a window, 80 ms), plus however long the model takes to commit to
a digit after the digit's end -- which can be negative: CTC's spike comes once the word is
recognisable, and for about a fifth of the digits that is before the end of its (trimmed)
recording. With the seed-0 model of the default run, over 300 held-out-take utterances: median
57 ms, 95th percentile 137 ms (from -163 ms to 206 ms) with 100 ms chunks; median 20 ms, 95th
percentile 88 ms with 20 ms chunks. Compute: about 1-2 ms per 100 ms chunk (median).

Time: on 2 cores, one training run of 3,000 utterances takes about 10 s an epoch when the machine
is quiet; features are computed once per split (about 20 ms per utterance) and cached in the
FSDD cache folder. The default run (conventional + 2 held-out speakers) is ~10-15 minutes when
features are not cached yet. BLAS is kept to one thread (``--threads``) as in spoken_digits.py.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

import rnnbp
from rnnbp import nn, optim
from rnnbp.data import (
    AudioFileError, ConnectedDigits, FeatureConfig, Features, Normalizer, SpecAugment, SpeakerNormalizer, compute_features,
    load_fsdd, pad_sequences, padded_batches, read_audio, speed_perturb,
)
from rnnbp.data.streaming import StreamingFeatures
from rnnbp.nn import functional as F
from rnnbp.nn.ctc import greedy_decode, prefix_beam_search
from rnnbp.serialization import CheckpointError
from rnnbp.train import Trainer

DIGITS = 10
BLANK = 10            # class 10 is the CTC blank; class d < 10 is digit d
CLASSES = DIGITS + 1
TEST_SEED = 0         # test utterances are the same whatever the training seed
MODEL_FILE_KEYS = ("model", "normalizer", "features", "model_config")
MODEL_FIELDS = ("cell", "hidden", "layers", "dropout", "stack")


class ModelFileError(ValueError):
    """The file given to ``--model`` is not a connected-digit model; the message says what it is."""


@dataclass
class Config:
    cell: str = "gru"                # recurrent layer: "gru" or "lstm" (unidirectional: it must stream)
    hidden: int = 160                # hidden units
    layers: int = 2                  # stacked recurrent layers
    dropout: float = 0.3             # between recurrent layers and before the head
    stack: int = 2                   # consecutive feature frames stacked into one recurrent step
    kind: str = "mfcc"               # features: "mfcc" (13 cepstra) or "logmel" (40 mel bands), + deltas
    delta_width: int = 9             # frames of the delta window; look-ahead is delta_width // 2 frames
    lr: float = 3e-3                 # AdamW peak learning rate
    weight_decay: float = 1e-2       # AdamW decoupled weight decay
    warmup: float = 0.5              # epochs of linear warm-up from lr/10, then a cosine to 0
    clip_norm: float = 1.0           # global gradient-norm clip
    batch_size: int = 32             # utterances per batch, bucketed by length
    epochs: int = 10                 # epochs of every run (the cosine ends there)
    patience: int = 4                # epochs without a lower validation loss before stopping early
    n_train: int = 3000              # training utterances (half of them noisy, see noisy)
    n_val: int = 300                 # validation utterances (clean, from recordings held out of training)
    n_test: int = 1000               # test utterances, conventional split
    n_speaker_test: int = 500        # test utterances of each held-out speaker
    norm: str = "speaker"            # "speaker": each voice by its own statistics, then globally; "global": only globally
    noisy: float = 0.5               # share of training utterances with white noise
    snr_db: tuple = (10.0, 40.0)     # their SNR range, dB
    speeds: tuple = (1.0,)           # speed perturbation of training utterances: each gets one of these factors
    time_masks: int = 2              # SpecAugment time masks per training utterance (0: none)
    time_mask: int = 10              # widest time mask, frames (16 ms each)
    freq_masks: int = 2              # SpecAugment feature masks per training utterance (0: none)
    freq_mask: int = 10              # widest feature mask, features
    max_digits: int = 7              # digits per utterance: 1..max_digits
    speaker: str = "jackson,nicolas"  # held-out speaker(s): names, "all" (six folds) or "none"
    beam: int = 0                    # decoding: 0 greedy, else a prefix beam search of this width
    chunk_ms: float = 100.0          # streaming chunk, milliseconds
    latency_n: int = 300             # test utterances streamed to measure the latency (0: none)
    jobs: int = 1                    # feature-extraction processes (joblib)
    threads: int = 1                 # BLAS threads (0: as configured)
    seed: int = 0                    # seeds the training utterances, the initialisation, dropout, batches, masks
    data: str | None = None          # data folder holding fsdd/ (None: $RNNBP_DATA or the loader's default)
    cache: str | None = None         # feature cache folder (None: the FSDD cache folder)
    out: str = "runs/connected_digits/model.npz"  # the saved model; checkpoints go beside it
    progress: bool = True            # progress bars


def quick_config(**overrides) -> Config:
    """Seconds: a few hundred short utterances, a small model, 2 epochs, one held-out speaker."""
    quick = dict(hidden=48, layers=1, epochs=2, n_train=160, n_val=24, n_test=40, n_speaker_test=24,
                 max_digits=3, speaker="theo", latency_n=10, lr=1e-2, warmup=0.2)
    return Config(**{**quick, **overrides})


def feature_config(cfg) -> FeatureConfig:
    """The library's MFCC features, without the utterance-wide log-mel floor (so they can stream)."""
    return FeatureConfig(kind=cfg.kind, top_db=None, delta_width=cfg.delta_width)


# ------------------------------------------------------------------ model
class DigitStringRecognizer(nn.Module):
    """A unidirectional recurrent layer stack and a linear head to 11 classes: frames in, log-probabilities out.

    Args:
        n_inputs : int > 0, the features of one step (``stack`` frames).  cell : "gru" or "lstm".
        hidden : int > 0.  layers : int > 0.  dropout : float in [0, 1).

    Shape:
        x (T, N, n_inputs) zero-padded, lengths (N,) or None, state as the recurrent layer's
        -> log_probs (T, N, 11), state.
    """

    def __init__(self, n_inputs: int, cell: str = "gru", hidden: int = 160, layers: int = 2,
                 dropout: float = 0.0, dtype=None):
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"DigitStringRecognizer: cell must be 'gru' or 'lstm', got {cell!r}")
        layer = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = layer(n_inputs, hidden, num_layers=layers, dropout=dropout if layers > 1 else 0.0, dtype=dtype)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, CLASSES, dtype=dtype)

    def forward(self, x, lengths=None, state=None):
        out, state = self.rnn(x, state, lengths=lengths)  # (T, N, H)
        return F.log_softmax(self.head(self.drop(out)), dim=-1), state


def build_model(model_config: dict, n_features: int) -> DigitStringRecognizer:
    c = model_config
    return DigitStringRecognizer(n_features * c["stack"], c["cell"], c["hidden"], c["layers"], c["dropout"])


def stack_frames(x: np.ndarray, lengths: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, N, F) zero-padded -> (ceil(T/k), N, k*F): step s holds frames s*k .. s*k+k-1 (zeros past the end)."""
    if k == 1:
        return x, lengths
    t, n, f = x.shape
    steps = -(-t // k)
    if steps * k != t:
        x = np.concatenate([x, np.zeros((steps * k - t, n, f), x.dtype)])
    x = x.reshape(steps, k, n, f).transpose(0, 2, 1, 3).reshape(steps, n, k * f)
    return np.ascontiguousarray(x), -(-np.asarray(lengths) // k)


@rnnbp.no_grad()
def utterance_log_probs(model, feats: Features, stack: int, batch_size: int = 128) -> list[np.ndarray]:
    """Each utterance's log-probabilities (T_i', 11), in eval mode; batches cut from the length-sorted order."""
    was_training = model.training
    model.eval()
    order = np.argsort(feats.lengths, kind="stable")
    out: list = [None] * len(feats)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x, lengths = stack_frames(*pad_sequences(feats, idx), stack)
        lp = model(rnnbp.Tensor(x), lengths)[0].numpy()
        for j, i in enumerate(idx):
            out[i] = lp[:lengths[j], j]
    model.train(was_training)
    return out


def decode(log_probs: list[np.ndarray], beam: int = 0) -> list[list[int]]:
    """Digit strings: greedy (beam 0) or prefix beam search of width ``beam``."""
    if beam:
        return [prefix_beam_search(lp, beam_width=beam, blank=BLANK)[0][0] for lp in log_probs]
    return [greedy_decode(lp, blank=BLANK)[0] for lp in log_probs]


# ---------------------------------------------------------------- scoring
def edit_alignment(ref, hyp) -> tuple[int, list[tuple[int, int]]]:
    """Levenshtein distance of two sequences, and the (ref index, hyp index) pairs an optimal alignment matches."""
    n, m = len(ref), len(hyp)
    d = np.zeros((n + 1, m + 1), dtype=np.int64)
    d[:, 0], d[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]))
    pairs, i, j = [], n, m
    while i and j:
        if d[i, j] == d[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            if ref[i - 1] == hyp[j - 1]:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return int(d[n, m]), pairs[::-1]


def score(refs, hyps) -> dict:
    """``{"der", "string_acc", "errors", "digits", "utterances"}``: digit error rate over all reference digits."""
    errors = sum(edit_alignment(list(r), list(h))[0] for r, h in zip(refs, hyps))
    digits = sum(len(r) for r in refs)
    exact = sum(list(r) == list(h) for r, h in zip(refs, hyps))
    return {"der": errors / max(digits, 1), "string_acc": exact / max(len(refs), 1), "errors": errors,
            "digits": digits, "utterances": len(refs)}


def format_score(s: dict) -> str:
    return (f"digit error rate {100 * s['der']:.2f} % ({s['errors']} edits / {s['digits']} digits), "
            f"string accuracy {100 * s['string_acc']:.1f} % of {s['utterances']} utterances")


# ------------------------------------------------------------------- data
def make_sets(cfg: Config, fsdd, holdout) -> dict:
    """The ConnectedDigits of one run: "train" (clean and noisy parts), "val", "test"."""
    common = dict(fsdd=fsdd, holdout_speaker=holdout, max_digits=cfg.max_digits, val_fraction=0.1)
    n_noisy = int(round(cfg.noisy * cfg.n_train))
    train = []
    if cfg.n_train - n_noisy:
        train.append(ConnectedDigits(split="train", n=cfg.n_train - n_noisy, seed=2 * cfg.seed, **common))
    if n_noisy:
        train.append(ConnectedDigits(split="train", n=n_noisy, seed=2 * cfg.seed + 1,
                                     noise_snr_db=tuple(cfg.snr_db), **common))
    n_test = cfg.n_test if holdout is None else cfg.n_speaker_test
    return {"train": train, "val": [ConnectedDigits(split="val", n=cfg.n_val, seed=cfg.seed, **common)],
            "test": [ConnectedDigits(split="test", n=n_test, seed=TEST_SEED, **common)]}


def speed_features(ds: ConnectedDigits, fc: FeatureConfig, speeds, cache_dir, progress: bool) -> Features:
    """Features of ``ds`` with each utterance sped up or slowed down (``speed_perturb``) by a factor drawn
    from ``speeds`` (seeded by the set); cached beside the set's own features (``rnnbp.save``, no pickle)."""
    factors = np.random.default_rng([ds.seed, 1234]).choice(np.asarray(speeds, dtype=np.float64), size=len(ds))
    path = None
    if cache_dir is not None:
        base = ds.feature_cache_path(fc, cache_dir)
        key = hashlib.sha256(json.dumps([base.name, factors.tolist()]).encode()).hexdigest()[:32]
        path = base.with_name(f"features-connected-speed-{key}.npz")
        if path.is_file():
            saved = rnnbp.load(path)
            return Features(saved["frames"], saved["offsets"])
    from tqdm.auto import tqdm

    arrays = [compute_features(speed_perturb(ds[i].audio, f), fc) if f != 1 else None
              for i, f in tqdm(enumerate(factors.tolist()), total=len(ds), desc="speed-perturbed features",
                               disable=not progress)]
    if any(a is None for a in arrays):  # factor 1: the set's own (cached) features
        own = ds.features(fc, cache=cache_dir if cache_dir is not None else False, progressbar=progress)
        arrays = [own[i] if a is None else a for i, a in enumerate(arrays)]
    feats = Features.from_arrays(arrays, n_features=fc.n_features)
    if path is not None:
        rnnbp.save({"frames": feats.frames, "offsets": feats.offsets}, path)
    return feats


def set_features(sets: list, fc: FeatureConfig, cfg: Config, speeds=(1.0,)) -> tuple[Features, list, np.ndarray]:
    """Features (cached per set), digit strings and speakers of the sets, concatenated."""
    cache = True if cfg.cache is None else cfg.cache
    if tuple(speeds) != (1.0,):
        cache_dir = sets[0].fsdd.cache_dir if cfg.cache is None else cfg.cache
        feats = [speed_features(s, fc, speeds, cache_dir, cfg.progress) for s in sets]
    else:
        feats = [s.features(fc, cache=cache, n_jobs=cfg.jobs, progressbar=cfg.progress) for s in sets]
    merged = Features.from_arrays([a for f in feats for a in f.to_list()], n_features=fc.n_features)
    return merged, [lab for s in sets for lab in s.labels], np.concatenate([s.speakers for s in sets])


# --------------------------------------------------------------- training
def _schedule(opt, cfg: Config, per_epoch: int):
    total = max(cfg.epochs * per_epoch, 2)
    warm = min(max(int(round(cfg.warmup * per_epoch)), 1), total - 1)
    return optim.lr_scheduler.SequentialLR(
        opt, [optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=warm),
              optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warm)], milestones=[warm])


def _targets(labels: list, idx) -> tuple[np.ndarray, np.ndarray]:
    """The batch's digit strings concatenated (sum k_i,) and their lengths (B,)."""
    chosen = [labels[i] for i in idx]
    return np.concatenate(chosen).astype(np.int64), np.array([len(c) for c in chosen], dtype=np.int64)


def train_run(name: str, cfg: Config, train: tuple, val: tuple, n_features: int, log=print):
    """Train a fresh recognizer on ``train`` = (normalised Features, digit strings); the best epoch on ``val``."""
    x_train, y_train = train
    x_val, y_val = val
    rnnbp.manual_seed(cfg.seed)
    model = DigitStringRecognizer(n_features * cfg.stack, cfg.cell, cfg.hidden, cfg.layers, cfg.dropout)
    opt = optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = -(-len(y_train) // cfg.batch_size)
    augment = SpecAugment(n_time_masks=cfg.time_masks, time_mask_param=cfg.time_mask,
                          n_freq_masks=cfg.freq_masks, freq_mask_param=cfg.freq_mask, zero_masking=True)
    masking = cfg.time_masks or cfg.freq_masks
    index = np.arange(len(y_train))

    def batches(epoch, generator):  # masks drawn here, from the epoch's generator: reproducible on a resume
        out = []
        for x, lengths, idx in padded_batches(x_train, index, batch_size=cfg.batch_size, generator=generator):
            if masking:
                for b, n in enumerate(lengths.tolist()):
                    x[:n, b] = augment(x[:n, b], generator)  # zero fill: the training mean after the Normalizer
            out.append((*stack_frames(x, lengths, cfg.stack), idx))
        return out

    def train_step(batch):
        x, lengths, idx = batch
        targets, target_lengths = _targets(y_train, idx)
        log_probs, _ = model(rnnbp.Tensor(x), lengths)
        loss = F.ctc_loss(log_probs, targets, lengths, target_lengths, blank=BLANK, zero_infinity=True)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        opt.step()
        return {"loss": loss.item(), "count": len(idx)}

    def evaluate():
        lps = utterance_log_probs(model, x_val, cfg.stack)
        losses = [F.ctc_loss(rnnbp.Tensor(lp), y, [len(lp)], [len(y)], blank=BLANK, zero_infinity=True).item()
                  for lp, y in zip(lps, y_val)]
        s = score(y_val, decode(lps))
        return {"loss": float(np.mean(losses)), "der": s["der"], "string_acc": s["string_acc"]}

    folder = Path(cfg.out).parent / name
    trainer = Trainer(model, opt, train_step, batches, evaluate=evaluate,
                      scheduler=_schedule(opt, cfg, per_epoch), scheduler_step="update", monitor="val_loss",
                      patience=cfg.patience, restore_best=True, checkpoint_dir=folder,
                      metrics_file=folder / "metrics.jsonl", seed=cfg.seed, progress=cfg.progress, log=log)
    trainer.fit(cfg.epochs)
    return model, trainer


def fold(name: str, cfg: Config, fsdd, holdout, fc: FeatureConfig, log=print) -> dict:
    """One split: features, normaliser, training, test scores. ``{"model", "normalizer", "test", "scores", ...}``."""
    t0 = time.perf_counter()
    sets = make_sets(cfg, fsdd, holdout)
    (x_tr, y_tr, s_tr), (x_va, y_va, s_va), (x_te, y_te, s_te) = (
        set_features(sets[k], fc, cfg, cfg.speeds if k == "train" else (1.0,)) for k in ("train", "val", "test"))
    norm = Normalizer().fit(x_tr)  # training frames only (clean and noisy)
    if cfg.norm == "speaker":  # each voice by its own frames' statistics (no labels needed, test voices too)
        x_tr, x_va, x_te = (SpeakerNormalizer().fit_transform(x, s) for x, s in ((x_tr, s_tr), (x_va, s_va),
                                                                                  (x_te, s_te)))
        norm = Normalizer().fit(x_tr)  # nearly the identity now
    log(f"{name}: {len(y_tr)} training ({sum(map(len, y_tr))} digits), {len(y_va)} validation, "
        f"{len(y_te)} test utterances; features ready in {time.perf_counter() - t0:.0f} s")
    model, trainer = train_run(name, cfg, (norm.transform(x_tr), y_tr), (norm.transform(x_va), y_va),
                               fc.n_features, log)
    result = {"model": model, "normalizer": norm, "interrupted": trainer.stop_training,
              "best_epoch": trainer.monitor.best_epoch, "test_set": sets["test"][0]}
    if not trainer.stop_training:
        hyps = decode(utterance_log_probs(model, norm.transform(x_te), cfg.stack), cfg.beam)
        result["scores"] = score(y_te, hyps)
    result["seconds"] = time.perf_counter() - t0
    return result


def run(cfg: Config, log=print) -> dict:
    """The conventional run (scored, saved, streamed for latency), then the held-out speakers; a dict of results."""
    start = time.perf_counter()
    fsdd = load_fsdd(cfg.data, progressbar=cfg.progress)
    speakers = (list(fsdd.speakers) if cfg.speaker == "all" else [] if cfg.speaker in ("", "none")
                else [s.strip() for s in cfg.speaker.split(",") if s.strip()])
    unknown = [s for s in speakers if s not in fsdd.speakers]
    if unknown:
        raise ValueError(f"connected_digits: unknown speaker(s) {unknown}; FSDD has {list(fsdd.speakers)}, "
                         "or give 'all' or 'none'")
    fc = feature_config(cfg)
    decoding = f"prefix beam search, width {cfg.beam}" if cfg.beam else "greedy"
    result = {"config": cfg, "feature_config": fc}
    with rnnbp.blas_threads(cfg.threads):
        conv = fold("conventional", cfg, fsdd, None, fc, log)
        if conv["interrupted"]:
            return _interrupted(result, start, log)
        model, norm = conv["model"], conv["normalizer"]
        log(f"{model!r}: {sum(p.numel() for p in model.parameters()):,} parameters")
        result.update(model=model, normalizer=norm, takes=conv["scores"])
        log(f"\nheld-out takes (0-4), {decoding}: {format_score(conv['scores'])}")
        out = Path(cfg.out)
        rnnbp.save({"model": model.state_dict(), "normalizer": norm.state_dict(), "features": fc.to_dict(),
                    "model_config": {k: getattr(cfg, k) for k in MODEL_FIELDS}, "norm": cfg.norm,
                    "config": _plain(asdict(cfg)), "takes": conv["scores"]}, out)
        result["out"] = str(out)
        log(f"saved {out}")
        if cfg.latency_n:
            rec = Recognizer(model, norm, fc, cfg.stack, cfg.norm)
            result["latency"] = stream_test_set(rec, conv["test_set"], cfg.latency_n, cfg.chunk_ms,
                                                True if cfg.cache is None else cfg.cache, log)

        rows = []
        for speaker in speakers:
            r = fold(f"speaker_{speaker}", cfg, fsdd, speaker, fc, log=log)
            if r["interrupted"]:
                return _interrupted(result, start, log)
            rows.append({"speaker": speaker, **r["scores"]})
            log(f"  held-out speaker {speaker:>9}, {decoding}: {format_score(r['scores'])} "
                f"(epoch {r['best_epoch']} kept, {r['seconds']:.0f} s)")
        if rows:
            errors, digits = sum(r["errors"] for r in rows), sum(r["digits"] for r in rows)
            result["speakers"] = rows
            result["speaker_der"] = errors / digits
            result["speaker_string_acc"] = float(np.mean([r["string_acc"] for r in rows]))
            log(f"held-out speakers ({', '.join(r['speaker'] for r in rows)}): digit error rate "
                f"{100 * result['speaker_der']:.2f} % ({errors} / {digits}), mean string accuracy "
                f"{100 * result['speaker_string_acc']:.1f} %")
    result["seconds"] = time.perf_counter() - start
    held = f"; held-out speakers {100 * result['speaker_der']:.2f} %" if rows else ""
    lat = result.get("latency")
    lat = f"; streaming latency median {lat['median_ms']:.0f} ms, p95 {lat['p95_ms']:.0f} ms" if lat else ""
    log(f"\ndigit error rate: held-out takes {100 * conv['scores']['der']:.2f} %{held}{lat}; "
        f"{result['seconds']:.0f} s in all")
    return result


def _plain(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items() if v is not None}


def _interrupted(result: dict, start: float, log) -> dict:
    result.update(interrupted=True, seconds=time.perf_counter() - start)
    log("stopped by Ctrl-C: nothing further was trained, evaluated or saved")
    return result


# -------------------------------------------------------------- streaming
class StreamingRecognizer:
    """Digits from audio that arrives in chunks: features, the recurrent state and the greedy decoder carried over.

    ``push(chunk)`` returns the digits the chunk completes as ``(digit, step)`` pairs (``step``:
    the output step, ``stack * hop_length`` samples each); ``finish()`` flushes the last frames.
    Over a whole recording the digits equal offline greedy decoding of its log-probabilities.
    """

    def __init__(self, model: DigitStringRecognizer, normalizer: Normalizer, feature_config: FeatureConfig,
                 stack: int):
        self.model, self.normalizer, self.stack = model.eval(), normalizer, stack
        self.features = StreamingFeatures(feature_config)
        self.state = None
        self.previous = BLANK
        self._pending = np.zeros((0, feature_config.n_features), np.float32)  # frames awaiting a full stack
        self.steps = 0

    def push(self, chunk: np.ndarray) -> list[tuple[int, int]]:
        return self._frames(self.features.push(chunk), final=False)

    def finish(self) -> list[tuple[int, int]]:
        return self._frames(self.features.finish(), final=True)

    def _frames(self, frames: np.ndarray, final: bool) -> list[tuple[int, int]]:
        frames = np.concatenate([self._pending, self.normalizer.transform(frames)])
        usable = len(frames) if final else len(frames) // self.stack * self.stack
        self._pending = frames[usable:]
        if usable == 0:
            return []
        x, _ = stack_frames(frames[:usable, None, :], np.array([usable]), self.stack)  # (k, 1, stack*F)
        with rnnbp.no_grad():
            out, self.state = self.model.rnn(rnnbp.Tensor(x), self.state)
            best = self.model.head(out).numpy()[:, 0].argmax(axis=1)  # argmax of logits = of log-softmax
        emitted = []
        for k in best.tolist():
            if k != BLANK and k != self.previous:
                emitted.append((k, self.steps))
            self.previous = k
            self.steps += 1
        return emitted


def stream_audio(recognizer: StreamingRecognizer, audio: np.ndarray, sr: int, chunk_ms: float):
    """Feed ``audio`` chunk by chunk: ``([(digit, emission time s)], [compute seconds per chunk])``."""
    chunk = max(int(round(chunk_ms * sr / 1000)), 1)
    emitted, compute = [], []
    for start in range(0, len(audio), chunk):
        end = min(start + chunk, len(audio))
        t0 = time.perf_counter()
        got = recognizer.push(audio[start:end])
        if end == len(audio):
            got += recognizer.finish()
        compute.append(time.perf_counter() - t0)
        emitted += [(d, end / sr) for d, _ in got]
    return emitted, compute


def latencies(emitted, labels, spans, sr: int) -> list[float]:
    """Emission time minus the digit's end, in seconds, for each decoded digit matched to a spoken one."""
    _, pairs = edit_alignment(list(labels), [d for d, _ in emitted])
    return [emitted[j][1] - spans[i][1] / sr for i, j in pairs]


def stream_test_set(rec: "Recognizer", ds: ConnectedDigits, n: int, chunk_ms: float, cache=True,
                    log=print) -> dict:
    """Stream the first ``n`` utterances of ``ds``; latency median and 95th percentile, DER, compute per chunk.

    With a speaker-normalised model, each voice's statistics are those of its utterances in
    ``ds`` (as in the offline evaluation), known before its audio starts to arrive.
    """
    n = min(n, len(ds))
    norms = {}
    if rec.norm == "speaker":
        norms = speaker_normalizers(rec.normalizer, ds.features(rec.features, cache=cache, progressbar=False),
                                    ds.speakers)
    lat, compute, refs, hyps = [], [], [], []
    for i in range(n):
        audio, labels, spans, speaker = ds[i]
        r = StreamingRecognizer(rec.model, norms.get(speaker, rec.normalizer), rec.features, rec.stack)
        emitted, spent = stream_audio(r, audio, ds.sample_rate, chunk_ms)
        lat += latencies(emitted, labels, spans, ds.sample_rate)
        compute += spent
        refs.append(labels)
        hyps.append([d for d, _ in emitted])
    lat_ms, compute_ms = 1000 * np.array(lat), 1000 * np.array(compute)

    def stat(values, q):  # NaN when no digit was decoded correctly (an untrained model)
        return float(np.percentile(values, q)) if len(values) else float("nan")

    s = score(refs, hyps)
    result = {"median_ms": stat(lat_ms, 50), "p95_ms": stat(lat_ms, 95),
              "mean_ms": float(lat_ms.mean()) if len(lat) else float("nan"), "matched": len(lat), "scores": s,
              "compute_median_ms": stat(compute_ms, 50), "compute_p95_ms": stat(compute_ms, 95)}
    log(f"streaming ({chunk_ms:g} ms chunks) over {n} test utterances: latency (emission at a chunk's end minus "
        f"the digit's end) median {result['median_ms']:.0f} ms, 95th percentile {result['p95_ms']:.0f} ms, "
        f"mean {result['mean_ms']:.0f} ms over {len(lat)} correctly decoded digits; {format_score(s)}; compute "
        f"per chunk median {result['compute_median_ms']:.1f} ms, p95 {result['compute_p95_ms']:.1f} ms")
    return result


# ---------------------------------------------------------------- predict
class Recognizer(NamedTuple):
    """A saved model, ready to decode: ``model, normalizer, features, stack, norm = load_recognizer(path)``.

    ``norm`` is "global" (``normalizer`` standardises the features) or "speaker" (each voice is
    first standardised by its own statistics, then by ``normalizer``: see :func:`speaker_normalizers`).
    """

    model: DigitStringRecognizer
    normalizer: Normalizer
    features: FeatureConfig
    stack: int
    norm: str


def speaker_normalizers(norm: Normalizer, feats, speakers) -> dict:
    """For each voice, one Normalizer doing its own standardisation and then ``norm``'s: ``{speaker: Normalizer}``.

    Both are per-feature affine maps, so they compose into one: ``((x - m_s) / s_s - m) / s =
    (x - (m_s + s_s m)) / (s_s s)``, which the streaming recogniser applies frame by frame.
    """
    per = SpeakerNormalizer().fit(feats, speakers)
    return {str(name): Normalizer.from_state_dict({"mean": per.mean[k] + per.std[k] * norm.mean,
                                                   "std": per.std[k] * norm.std})
            for k, name in enumerate(per.speakers)}


def load_recognizer(path) -> Recognizer:
    """The model, normalizer, feature config, stack and normalisation of a saved run; ModelFileError names what is wrong."""
    expected = f"the model file a training run saves (demos/connected_digits.py --out ...), with entries " \
               f"{', '.join(MODEL_FILE_KEYS)}"
    try:
        saved = rnnbp.load(path)
    except (CheckpointError, OSError) as exc:
        raise ModelFileError(f"cannot read the model file {path}: {exc}; expected {expected}") from exc
    missing = [k for k in MODEL_FILE_KEYS if not isinstance(saved, dict) or k not in saved]
    if missing:
        what = ("a Trainer checkpoint" if isinstance(saved, dict) and saved.get("format") == "rnnbp-trainer"
                else f"an rnnbp file lacking {', '.join(missing)}")
        raise ModelFileError(f"{path} is {what}, not a connected-digit model; expected {expected}")
    try:
        fc = FeatureConfig.from_dict(saved["features"])
        model = build_model(saved["model_config"], fc.n_features)
        model.load_state_dict(saved["model"])
        norm = Normalizer.from_state_dict(saved["normalizer"])
        kind = str(saved.get("norm", "global"))
        if kind not in ("global", "speaker"):
            raise ValueError(f"norm must be 'global' or 'speaker', got {kind!r}")
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path} has a connected-digit model's entries, but they do not build one: "
                             f"{type(exc).__name__}: {exc}") from exc
    return Recognizer(model.eval(), norm, fc, int(saved["model_config"]["stack"]), kind)


def _sidecar(wav: Path) -> dict | None:
    """The labels and spans ``generate`` wrote beside a WAV file, or None."""
    path = wav.with_suffix(".json")
    return json.loads(path.read_text()) if path.is_file() else None


def predict(paths, model_path, stream: bool = False, chunk_ms: float = 100.0, beam: int = 0, enroll=None,
            log=print) -> list[dict]:
    """Decode WAV files with a saved model; per file ``{"path", "digits", ...}`` (and emissions when streaming).

    A speaker-normalised model needs the voice's statistics: those of the ``enroll`` recordings
    (unlabelled, of the same voice), by default of the files given (all taken as one voice). When
    streaming, they are computed before the audio starts to arrive.
    """
    model, norm, fc, stack, kind = load_recognizer(model_path)
    if kind == "speaker":
        voice = list(enroll or paths)
        feats = Features.from_arrays([compute_features(read_audio(p, fc.sr), fc) for p in voice])
        norm = speaker_normalizers(norm, feats, None)[""]  # one voice
        note = ("; from the files streamed themselves, so not strictly causal: pass --enroll with other "
                "recordings of the voice" if stream and not enroll else "")
        log(f"(speaker statistics from {len(voice)} recording(s), {int(feats.lengths.sum())} frames{note})")
    results = []
    for p in paths:
        audio = read_audio(p, fc.sr)
        if not stream:
            lp = utterance_log_probs(model, Features.from_arrays([norm.transform(compute_features(audio, fc))]), stack)
            digits = decode(lp, beam)[0]
            log(f"{p}: {''.join(map(str, digits)) or '(no digits)'}")
            results.append({"path": str(p), "digits": digits})
            continue
        emitted, compute = stream_audio(StreamingRecognizer(model, norm, fc, stack), audio, fc.sr, chunk_ms)
        truth = _sidecar(Path(p))
        log(f"{p}: streaming in {chunk_ms:g} ms chunks ({len(audio) / fc.sr:.2f} s of audio)")
        lat = latencies(emitted, truth["labels"], truth["spans"], fc.sr) if truth else []
        _, pairs = edit_alignment(truth["labels"], [d for d, _ in emitted]) if truth else (0, [])
        matched = {j: i for i, j in pairs}
        for j, (d, t) in enumerate(emitted):
            line = f"  {d}  emitted at {t:.3f} s"
            if j in matched:
                end = truth["spans"][matched[j]][1] / fc.sr
                line += f"  (digit ended at {end:.3f} s: latency {1000 * (t - end):.0f} ms)"
            log(line)
        digits = [d for d, _ in emitted]
        log(f"{p}: {''.join(map(str, digits)) or '(no digits)'}" + (f"  (spoken: {''.join(map(str, truth['labels']))})"
                                                                  if truth else "")
            + f"; compute per chunk median {1000 * np.median(compute):.1f} ms")
        results.append({"path": str(p), "digits": digits, "emitted": emitted, "latencies": lat})
    return results


def generate(folder, n: int, split: str, speaker: str | None, seed: int, data=None, log=print) -> list[Path]:
    """Write ``n`` generated utterances as 16-bit WAVs, each with a JSON of its digits, spans and speaker."""
    import soundfile

    ds = ConnectedDigits(data, split=split, holdout_speaker=speaker or None, n=n, seed=seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        audio, labels, spans, who = ds[i]
        path = folder / f"{split}_{seed}_{i:03d}.wav"
        soundfile.write(path, audio, ds.sample_rate, subtype="PCM_16")
        path.with_suffix(".json").write_text(json.dumps(
            {"labels": labels.tolist(), "spans": spans.tolist(), "speaker": who, "sample_rate": ds.sample_rate}))
        log(f"{path}: {''.join(map(str, labels.tolist()))} ({who}, {len(audio) / ds.sample_rate:.2f} s)")
        paths.append(path)
    return paths


# ------------------------------------------------------------------- main
def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--latency"]:  # the same as the latency command
        argv[0] = "latency"
    command = argv[0] if argv[:1] and argv[0] in ("predict", "latency", "generate", "train") else "train"
    rest = argv[1:] if argv[:1] == [command] else argv
    d = Config()
    if command == "predict":
        parser = argparse.ArgumentParser(prog="connected_digits.py predict", description="Decode WAV files.")
        parser.add_argument("wav", nargs="+", help="WAV file(s), each a string of spoken digits")
        parser.add_argument("--model", default=d.out, help=f"the saved model ({d.out})")
        parser.add_argument("--stream", action="store_true", help="recognise chunk by chunk, printing each digit's time")
        parser.add_argument("--chunk-ms", type=float, default=d.chunk_ms, help=f"streaming chunk ({d.chunk_ms:g} ms)")
        parser.add_argument("--beam", type=int, default=0, help="prefix beam width (offline only; 0: greedy)")
        parser.add_argument("--enroll", nargs="+", default=None, metavar="WAV",
                            help="recordings of the same voice for its statistics (speaker-normalised models; "
                                 "default: the files decoded)")
        args = parser.parse_args(rest)
        if not Path(args.model).is_file():
            parser.error(f"no saved model at {args.model}: train one first, or pass --model")
        results = predict(args.wav, args.model, args.stream, args.chunk_ms, args.beam, args.enroll)
        return results[0] if len(results) == 1 else {"predictions": results}
    if command == "latency":
        parser = argparse.ArgumentParser(prog="connected_digits.py latency",
                                         description="Streaming latency of a saved model over test utterances.")
        parser.add_argument("--model", default=d.out)
        parser.add_argument("--n", type=int, default=d.latency_n, help=f"utterances ({d.latency_n})")
        parser.add_argument("--chunk-ms", type=float, default=d.chunk_ms)
        parser.add_argument("--speaker", default=None, help="stream a held-out speaker's test utterances instead")
        parser.add_argument("--data", default=None)
        parser.add_argument("--cache", default=None, help="feature cache folder (the FSDD cache folder)")
        args = parser.parse_args(rest)
        rec = load_recognizer(args.model)
        max_digits = rnnbp.load(args.model).get("config", {}).get("max_digits", d.max_digits)
        ds = ConnectedDigits(args.data, split="test", holdout_speaker=args.speaker, n=args.n, seed=TEST_SEED,
                             max_digits=max_digits, val_fraction=0.1)
        return stream_test_set(rec, ds, args.n, args.chunk_ms, True if args.cache is None else args.cache)
    if command == "generate":
        parser = argparse.ArgumentParser(prog="connected_digits.py generate",
                                         description="Write generated utterances as WAV files with their digit spans.")
        parser.add_argument("folder")
        parser.add_argument("--n", type=int, default=5)
        parser.add_argument("--split", choices=("train", "test"), default="test")
        parser.add_argument("--speaker", default=None, help="held-out speaker: test utterances are theirs")
        parser.add_argument("--seed", type=int, default=TEST_SEED)
        parser.add_argument("--data", default=None)
        args = parser.parse_args(rest)
        return {"paths": generate(args.folder, args.n, args.split, args.speaker, args.seed, args.data)}

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, kind in (("cell", str), ("kind", str), ("hidden", int), ("layers", int), ("dropout", float), ("stack", int),
                       ("delta-width", int), ("lr", float), ("weight-decay", float), ("clip-norm", float),
                       ("batch-size", int), ("epochs", int), ("patience", int), ("n-train", int), ("n-val", int),
                       ("n-test", int), ("n-speaker-test", int), ("noisy", float), ("time-masks", int),
                       ("time-mask", int), ("freq-masks", int), ("freq-mask", int), ("max-digits", int),
                       ("speaker", str), ("beam", int), ("chunk-ms", float), ("latency-n", int), ("jobs", int),
                       ("threads", int), ("seed", int), ("data", str), ("cache", str), ("out", str)):
        field = name.replace("-", "_")
        parser.add_argument(f"--{name}", type=kind, default=None, help=f"({getattr(d, field)})")
    parser.add_argument("--snr-db", type=float, nargs=2, default=None, help=f"noisy utterances' SNR range {d.snr_db}")
    parser.add_argument("--speeds", type=float, nargs="+", default=None,
                        help=f"speed-perturbation factors of training utterances {d.speeds}")
    parser.add_argument("--norm", choices=("global", "speaker"), default=None, help=f"({d.norm})")
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None)
    parser.add_argument("--quick", action="store_true", help="tiny data and model, for smoke tests")
    args = vars(parser.parse_args(rest))
    quick = args.pop("quick")
    overrides = {k: v for k, v in args.items() if v is not None}
    cfg = quick_config(**overrides) if quick else replace(d, **overrides)
    return run(cfg)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (AudioFileError, ModelFileError) as exc:
        sys.exit(f"connected_digits.py: {' '.join(str(exc).split())}")
