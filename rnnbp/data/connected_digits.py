"""Connected digits: recordings of 1 to 7 spoken digits, made by joining one FSDD speaker's recordings.

FSDD holds isolated digits. A connected-digit utterance (for CTC training, sequence decoding and
streaming recognition) is built from them: one speaker is drawn, then 1-7 digits, each one of that
speaker's recordings of it, each trimmed of leading and trailing silence (:func:`trim_silence`),
joined with random pauses of silence, and optionally mixed with white noise at a random SNR::

    [pause] 7 [pause] 3 [pause] 3 [pause] 9 [pause]       pause ~ U{50 .. 300 ms}, at both ends too

Each item is ``(audio, labels, spans, speaker)`` (:class:`ConnectedUtterance`): float32 samples at
8 kHz, the digits, and each digit's ``[start, end)`` in samples (the streaming recogniser measures
its latency from a digit's end).

Splits follow FSDD's (see :mod:`rnnbp.data.fsdd`); an utterance only uses recordings of its split:

* ``holdout_speaker=None``, the conventional split by take: ``"test"`` utterances use takes 0-4 of
  every digit and speaker, ``"train"`` (and ``"val"``) ones takes 5-49.
* ``holdout_speaker="theo"`` (or several names): ``"test"`` utterances use all of the held-out
  speakers' recordings, ``"train"`` (and ``"val"``) ones all of the other speakers'.
* ``val_fraction > 0`` carves validation recordings out of the training ones (stratified by digit and
  speaker, :meth:`FSDD.validation_split`, always with the same fixed seed, so a ``"train"`` and a
  ``"val"`` set never share a recording whatever their ``seed``); ``"train"`` then omits them.

Determinism: utterance ``i`` depends only on the arguments and the files, never on the order of
access: its draws come from ``np.random.SeedSequence([seed, split, i])`` (split as 0, 1, 2). Two
child streams are spawned from it, one for the content (speaker, digits, recordings, pauses) and
one for the noise, so the same utterance with and without noise holds the same digits.

Generated on the fly, not cached on disk: measured on 2 shared cores (load 5), 2,000 training
utterances (8,070 digits, 80 minutes of audio) took 2.4 s from cold, decoding and trimming the 2,573
FSDD files they use, and 0.65 s once those are in memory (with noise, 1.3 ms more per utterance); a
disk cache of audio would save next to nothing. Decoded, trimmed recordings are kept in memory (an
LRU over files, keyed by path, size and modification time: at most 3,072 clips, about 36 MB for
FSDD), shared by all datasets in the process. The features are the slow part (about 40 ms for a
2.4 s utterance: over a minute for 2,000), so :meth:`ConnectedDigits.features` caches them in the
FSDD cache folder, written atomically, like :func:`rnnbp.data.extract_features`. No audio or
features ever go into the source tree.

Typical use::

    train = ConnectedDigits(split="train", n=4000, seed=0, val_fraction=0.1)
    val = ConnectedDigits(split="val", n=300, seed=1, val_fraction=0.1)
    test = ConnectedDigits(split="test", n=1000, seed=2)
    audio, labels, spans, speaker = test[0]
    feats = train.features(FeatureConfig())       # Features: (T_i, 39) each, cached
    targets = train.labels                        # list of (k_i,) int64, no audio made
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import numpy as np

from ..validation import ArgumentTypeError, check_int, check_number
from .augment import add_noise
from .buckets import Features
from .fsdd import FSDD, FSDD_SAMPLE_RATE, load_fsdd

__all__ = ["ConnectedDigits", "ConnectedUtterance", "UtterancePlan", "trim_silence", "CONNECTED_DIGITS_SPLITS"]

CONNECTED_DIGITS_SPLITS = ("train", "val", "test")
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
_FORMAT = 1            # bump when the same arguments would generate other audio (keys the feature cache)
_VAL_SEED = 20240616   # the one seed of the train/val partition of recordings, independent of ``seed``
_CLIP_CACHE_SIZE = 3072  # trimmed recordings kept in memory: all of FSDD (about 36 MB)

# trim_silence's settings for the generator: 32 ms frames every 8 ms at 8 kHz, sound within 40 dB of
# the loudest frame and 6 dB above the quietest, joined across gaps up to 150 ms. Chosen on FSDD:
# the median trimmed digit is 0.38 s (0.42 s untrimmed), the longest 1.0 s (untrimmed 2.3 s: quiet
# takes with a click 1.8 s after the word), and "six" keeps its fricatives (median 0.34 s).
_TRIM = dict(frame_length=256, hop_length=64, top_db=40.0, floor_margin_db=6.0, max_gap=0.15)


# ----------------------------------------------------------------- trimming
def trim_silence(y: np.ndarray, sr: int = FSDD_SAMPLE_RATE, *, frame_length: int = 256, hop_length: int = 64,
                 top_db: float = 40.0, floor_margin_db: float | None = 6.0,
                 max_gap: float | None = 0.15) -> tuple[int, int]:
    """The ``[start, end)`` samples of the sound in ``y``: leading and trailing silence cut off.

    An energy threshold on frames, as ``librosa.effects.trim`` with two additions for
    quiet recordings and stray clicks:

    1. Frame levels: the mean square of ``frame_length`` samples every ``hop_length``
       (frame ``k`` centred on sample ``k * hop_length``, zeros beyond the ends), in dB.
    2. A frame is sound when its level exceeds the threshold: ``floor_margin_db`` above the
       quietest frame (the noise floor), but at least ``top_db`` and at most ``top_db / 2``
       below the loudest frame. (librosa: ``top_db`` below the loudest frame, which in a quiet
       recording lies under the noise floor, so nothing is cut.)
    3. Sound frames separated by at most ``max_gap`` seconds of silent frames form one run (the
       closure of "eight" or "six" stays inside); only the run holding the loudest frame is
       kept, so a click or a breath far from the word is cut.
    4. ``start = first frame * hop_length``, ``end = min(n, (last frame + 1) * hop_length)``, as librosa.

    With ``floor_margin_db=None`` and ``max_gap=None`` the result equals
    ``librosa.effects.trim(y, top_db=top_db, frame_length=frame_length, hop_length=hop_length)[1]``.
    All-zero input is returned whole: ``(0, n)``.

    Args:
        y : np.ndarray [shape=(n,)], mono samples, n > 0.
        sr : int > 0. Sample rate (for ``max_gap``).
        frame_length, hop_length : int > 0, samples (defaults: 32 ms and 8 ms at 8 kHz).
        top_db : float > 0. floor_margin_db : float or None (None: no floor rule).
        max_gap : float >= 0 or None, seconds (None: keep everything from the first to the last sound frame).

    Returns:
        (start, end): ints, 0 <= start < end <= n.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"trim_silence: expected mono samples of shape (n,), n > 0, got shape {y.shape}")
    sr = check_int("trim_silence", "sr", sr)
    frame_length = check_int("trim_silence", "frame_length", frame_length)
    hop_length = check_int("trim_silence", "hop_length", hop_length)
    top_db = check_number("trim_silence", "top_db", top_db, 0.0, low_open=True)
    floor_margin_db = check_number("trim_silence", "floor_margin_db", floor_margin_db, allow_none=True)
    max_gap = check_number("trim_silence", "max_gap", max_gap, 0.0, allow_none=True)
    n = len(y)
    half = frame_length // 2
    energy = np.concatenate([[0.0], np.cumsum(np.square(y, dtype=np.float64))])  # energy[j] = sum y[:j]**2
    starts = np.arange(1 + n // hop_length) * hop_length - half  # frame k covers [k*hop - half, + frame_length)
    lo, hi = np.clip(starts, 0, n), np.clip(starts + frame_length, 0, n)
    mean_square = (energy[hi] - energy[lo]) / frame_length  # (K,): outside y counts as zeros
    if not mean_square.max() > 0:
        return 0, n
    level = 10.0 * np.log10(np.maximum(mean_square, 1e-20))  # (K,) dB
    peak_db = level.max()
    threshold = peak_db - top_db
    if floor_margin_db is not None:
        threshold = min(max(threshold, level.min() + floor_margin_db), peak_db - top_db / 2)
    sound = np.flatnonzero(level > threshold)  # ascending; holds the loudest frame
    first, last = sound[0], sound[-1]
    if max_gap is not None:
        gap_frames = int(round(max_gap * sr / hop_length))
        breaks = np.flatnonzero(np.diff(sound) > gap_frames + 1)  # more than gap_frames silent frames between
        run_first, run_last = np.r_[sound[0], sound[breaks + 1]], np.r_[sound[breaks], sound[-1]]
        run = int(np.searchsorted(run_last, int(np.argmax(level))))
        first, last = run_first[run], run_last[run]
    return int(first) * hop_length, int(min(n, (int(last) + 1) * hop_length))


@functools.lru_cache(maxsize=_CLIP_CACHE_SIZE)
def _trimmed_clip(path: str, size: int, mtime_ns: int) -> np.ndarray:
    """The recording at ``path`` at 8 kHz, silence trimmed; read-only. ``size`` and ``mtime_ns`` key the cache."""
    from .features import read_audio

    y = read_audio(path, FSDD_SAMPLE_RATE)
    start, end = trim_silence(y, FSDD_SAMPLE_RATE, **_TRIM)
    clip = np.array(y[start:end], dtype=np.float32)
    clip.setflags(write=False)
    return clip


def _file_stamp(path: Path) -> tuple[str, int, int]:
    from .features import AudioFileError

    try:
        st = os.stat(path)
    except OSError as exc:
        raise AudioFileError(f"cannot read audio file {path}: {exc.strerror or exc}") from exc
    return str(path), int(st.st_size), int(st.st_mtime_ns)


# ------------------------------------------------------------------- items
class UtterancePlan(NamedTuple):
    """What utterance ``i`` is made of, drawn without reading audio (:meth:`ConnectedDigits.plan`).

    Attributes:
        speaker : str.
        labels : np.ndarray [shape=(k,), dtype=int64]. The digits, 1 <= k <= 7.
        recordings : np.ndarray [shape=(k,), dtype=int64]. Indices of the recordings into ``ds.fsdd``.
        pauses : np.ndarray [shape=(k + 1,), dtype=int64]. Samples of silence before each digit and after the last.
        snr_db : float or None. The SNR of the added noise, None for none.
    """

    speaker: str
    labels: np.ndarray
    recordings: np.ndarray
    pauses: np.ndarray
    snr_db: float | None


class ConnectedUtterance(NamedTuple):
    """One connected-digit recording: ``audio, labels, spans, speaker = ds[i]``.

    Attributes:
        audio : np.ndarray [shape=(n,), dtype=float32]. Mono samples at 8 kHz.
        labels : np.ndarray [shape=(k,), dtype=int64]. The digits spoken, in order.
        spans : np.ndarray [shape=(k, 2), dtype=int64]. Digit j is ``audio[spans[j, 0]:spans[j, 1]]``;
            spans are ordered and disjoint, separated by the pauses.
        speaker : str.
    """

    audio: np.ndarray
    labels: np.ndarray
    spans: np.ndarray
    speaker: str


def _range_arg(owner: str, name: str, value, low: float, allow_none: bool) -> tuple[float, float] | None:
    """A number ``v`` as ``(v, v)``, a pair as itself (``low <= a <= b``), or None when allowed."""
    if value is None and allow_none:
        return None
    if isinstance(value, (tuple, list)) and len(value) == 2:
        a = check_number(owner, f"{name}[0]", value[0], low)
        b = check_number(owner, f"{name}[1]", value[1], low)
        if a > b:
            raise ValueError(f"{owner}: {name} must be a pair (low, high) with low <= high, got {tuple(value)!r}")
        return a, b
    if isinstance(value, (str, bytes)) or not np.isscalar(value):
        raise ArgumentTypeError(f"{owner}: {name} must be a number or a pair (low, high)"
                        f"{' or None' if allow_none else ''}, got {value!r}")
    v = check_number(owner, name, value, low)
    return v, v


# ----------------------------------------------------------------- dataset
class ConnectedDigits:
    """``n`` connected-digit utterances, generated on demand from one split of FSDD; see the module docstring.

    Args:
        root : str, os.PathLike or None. The data folder holding ``fsdd/recordings/`` (None:
            ``RNNBP_DATA``, else the default of :func:`rnnbp.data.load_fsdd`, which downloads once).
        split : "train", "val" or "test".
        holdout_speaker : None (the split by take), a speaker's name or several: held out for "test".
        n : int > 0. Utterances.
        min_digits, max_digits : ints, 1 <= min_digits <= max_digits. Digits per utterance, uniform.
        seed : int >= 0. With ``split`` and the index, the only source of randomness.
        pause : float or (low, high), seconds >= 0. Silence before, between and after the digits,
            each drawn uniformly (whole samples). Default 50-300 ms.
        noise_snr_db : None, float or (low, high). White noise at this SNR in dB (drawn uniformly per
            utterance for a pair), relative to the whole clean utterance's power (:func:`add_noise`).
        val_fraction : float in [0, 1). Share of the training recordings kept for "val".
        fsdd : FSDD or None. The recordings to use instead of loading FSDD from ``root`` (e.g.
            ``FSDD.from_folder(...)``); then ``root`` must be None.
        verify : "sha256" or "exists", passed to :func:`load_fsdd`.

    Attributes:
        fsdd : FSDD. All recordings; ``pool`` indexes the split's.
        pool : np.ndarray [dtype=int64]. Indices into ``fsdd`` of the recordings this split may use.
        sample_rate : int. 8000.

    Raises:
        ValueError: a bad argument (named, with its value), an unknown held-out speaker, or a split
            with no recordings.
        rnnbp.data.DatasetNotFoundError: FSDD is missing and cannot be downloaded.
    """

    sample_rate = FSDD_SAMPLE_RATE

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train",
                 holdout_speaker: str | Iterable[str] | None = None, n: int = 1000, min_digits: int = 1,
                 max_digits: int = 7, seed: int = 0, pause=(0.05, 0.3), noise_snr_db=None, *,
                 val_fraction: float = 0.0, fsdd: FSDD | None = None, verify: str = "sha256"):
        owner = "ConnectedDigits"
        if split not in CONNECTED_DIGITS_SPLITS:
            raise ValueError(f"{owner}: split must be one of {CONNECTED_DIGITS_SPLITS}, got {split!r}")
        self.split = split
        self.n = check_int(owner, "n", n)
        self.min_digits = check_int(owner, "min_digits", min_digits)
        self.max_digits = check_int(owner, "max_digits", max_digits)
        if self.min_digits > self.max_digits:
            raise ValueError(f"{owner}: min_digits must be <= max_digits, got {min_digits} and {max_digits}")
        self.seed = check_int(owner, "seed", seed, minimum=0)
        self.pause = _range_arg(owner, "pause", pause, 0.0, allow_none=False)
        self.noise_snr_db = _range_arg(owner, "noise_snr_db", noise_snr_db, -100.0, allow_none=True)
        self.val_fraction = check_number(owner, "val_fraction", val_fraction, 0.0, 1.0, high_open=True)
        if split == "val" and self.val_fraction == 0.0:
            raise ValueError(f"{owner}: split='val' needs val_fraction > 0 (the share of training recordings "
                             "held out for validation), got 0")
        if holdout_speaker is None:
            self.holdout_speaker = None
        elif isinstance(holdout_speaker, str):
            self.holdout_speaker = (holdout_speaker,)
        else:
            self.holdout_speaker = tuple(sorted(holdout_speaker))  # one cache key for any order
        if fsdd is not None:
            if root is not None:
                raise ValueError(f"{owner}: pass root or fsdd, not both")
            if not isinstance(fsdd, FSDD):
                raise TypeError(f"{owner}: fsdd must be an FSDD (e.g. FSDD.from_folder(folder)), "
                                f"got {type(fsdd).__name__}")
            self.fsdd = fsdd
        else:
            self.fsdd = load_fsdd(root, verify=verify)
        self.pool = self._pool()
        self._table = self._speaker_digit_table()
        self._plans: list[UtterancePlan] | None = None

    # ------------------------------------------------------------ splits
    def _pool(self) -> np.ndarray:
        fs = self.fsdd
        if self.holdout_speaker is None:
            train, test = fs.split()
        else:
            try:
                train, test = fs.speaker_split(self.holdout_speaker)
            except ValueError as exc:
                raise ValueError(f"ConnectedDigits: holdout_speaker={self.holdout_speaker!r}: {exc}") from exc
        if self.split == "test":
            pool = test
        else:
            if self.val_fraction > 0:
                train, val = fs.validation_split(train, self.val_fraction, generator=np.random.default_rng(_VAL_SEED))
                pool = train if self.split == "train" else val
            else:
                pool = train
        if len(pool) == 0:
            raise ValueError(f"ConnectedDigits: the {self.split!r} split of {fs} has no recordings "
                             f"(holdout_speaker={self.holdout_speaker!r}, val_fraction={self.val_fraction})")
        return pool

    def _speaker_digit_table(self) -> list[tuple[str, np.ndarray, list[np.ndarray]]]:
        """Per speaker of the pool (sorted): its name, its digits (sorted), each digit's recordings (indices)."""
        speaker, digit = self.fsdd.speaker[self.pool], self.fsdd.digit[self.pool]
        table = []
        for s in np.unique(speaker).tolist():
            mine = speaker == s
            digits = np.unique(digit[mine])
            table.append((s, digits, [self.pool[mine & (digit == d)] for d in digits.tolist()]))
        return table

    # ------------------------------------------------------------ access
    def __len__(self) -> int:
        return self.n

    def _index(self, i) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"ConnectedDigits: ds[i] takes one integer index, got {type(i).__name__}")
        if not -self.n <= i < self.n:
            raise IndexError(f"ConnectedDigits: index {i} is out of range for {self.n} utterances")
        return int(i) % self.n

    def _streams(self, i: int) -> tuple[np.random.Generator, np.random.Generator]:
        content, noise = np.random.SeedSequence([self.seed, _SPLIT_CODE[self.split], i]).spawn(2)
        return np.random.default_rng(content), np.random.default_rng(noise)

    def _draw_snr(self, g: np.random.Generator) -> float | None:
        if self.noise_snr_db is None:
            return None
        low, high = self.noise_snr_db
        return low if low == high else float(g.uniform(low, high))

    def plan(self, i: int) -> UtterancePlan:
        """The speaker, digits, recordings, pauses and SNR of utterance ``i``, without reading audio."""
        i = self._index(i)
        g, g_noise = self._streams(i)
        name, digits, recordings = self._table[int(g.integers(len(self._table)))]
        k = int(g.integers(self.min_digits, self.max_digits + 1))
        which = g.integers(len(digits), size=k)  # uniform over the speaker's digits
        chosen = np.array([recordings[w][g.integers(len(recordings[w]))] for w in which.tolist()], dtype=np.int64)
        low, high = (int(round(p * self.sample_rate)) for p in self.pause)
        pauses = g.integers(low, high + 1, size=k + 1).astype(np.int64)
        return UtterancePlan(name, digits[which].astype(np.int64), chosen, pauses, self._draw_snr(g_noise))

    def __getitem__(self, i: int) -> ConnectedUtterance:
        """Utterance ``i``: ``(audio, labels, spans, speaker)``; the same for the same arguments, in any order."""
        i = self._index(i)
        plan = self.plan(i)
        clips = [self._clip(r) for r in plan.recordings.tolist()]
        lengths = np.array([len(c) for c in clips], dtype=np.int64)
        starts = plan.pauses[0] + np.concatenate([[0], np.cumsum(lengths + plan.pauses[1:])[:-1]]).astype(np.int64)
        spans = np.stack([starts, starts + lengths], axis=1)  # (k, 2)
        audio = np.zeros(int(plan.pauses.sum() + lengths.sum()), dtype=np.float32)
        for clip, (start, end) in zip(clips, spans.tolist()):
            audio[start:end] = clip
        if plan.snr_db is not None:
            _, g_noise = self._streams(i)
            self._draw_snr(g_noise)  # the same draw as plan's, so the noise continues the stream after it
            audio = add_noise(audio, plan.snr_db, generator=g_noise)
        return ConnectedUtterance(audio, plan.labels, spans, plan.speaker)

    def __iter__(self) -> Iterator[ConnectedUtterance]:
        return (self[i] for i in range(self.n))

    def _clip(self, r: int) -> np.ndarray:
        return _trimmed_clip(*_file_stamp(self.fsdd.folder / self.fsdd.names[r]))

    def _all_plans(self) -> list[UtterancePlan]:
        if self._plans is None:
            self._plans = [self.plan(i) for i in range(self.n)]
        return self._plans

    @property
    def labels(self) -> list[np.ndarray]:
        """Every utterance's digits: n arrays of shape (k_i,), int64 (no audio is made)."""
        return [p.labels for p in self._all_plans()]

    @property
    def speakers(self) -> np.ndarray:
        """Every utterance's speaker: np.ndarray [shape=(n,), dtype=str] (for per-speaker normalisation)."""
        return np.array([p.speaker for p in self._all_plans()], dtype=str)

    def settings(self) -> dict:
        """The generation arguments as a plain dict (with the format version): what keys the feature cache."""
        return {"format": _FORMAT, "split": self.split, "holdout_speaker": self.holdout_speaker, "n": self.n,
                "min_digits": self.min_digits, "max_digits": self.max_digits, "seed": self.seed,
                "pause": list(self.pause), "val_fraction": self.val_fraction, "val_seed": _VAL_SEED,
                "noise_snr_db": None if self.noise_snr_db is None else list(self.noise_snr_db), "trim": _TRIM}

    def __repr__(self) -> str:
        held = f", holdout_speaker={list(self.holdout_speaker)}" if self.holdout_speaker else ""
        snr = self.noise_snr_db
        noise = "" if snr is None else f", noise_snr_db={snr[0] if snr[0] == snr[1] else snr}"
        return (f"ConnectedDigits(split={self.split!r}{held}, n={self.n}, digits {self.min_digits}-{self.max_digits}, "
                f"seed={self.seed}{noise}; {len(self.pool)} recordings of {len(self._table)} speakers)")

    # ---------------------------------------------------------- features
    def feature_cache_path(self, config, cache_dir: str | os.PathLike) -> Path:
        """``<cache_dir>/features-connected-<key>.npz``: key a SHA-256 of :meth:`settings`, the feature
        config (:meth:`FeatureConfig.cache_fields`), the librosa version, and the path, size and
        modification time of every recording of the split."""
        try:
            librosa_version = metadata.version("librosa")
        except metadata.PackageNotFoundError:
            librosa_version = "unknown"
        files = [list(_file_stamp(self.fsdd.folder / self.fsdd.names[r])) for r in self.pool.tolist()]
        document = {"connected_digits": self.settings(), "config": config.cache_fields(),
                    "librosa": librosa_version, "files": files}
        key = hashlib.sha256(json.dumps(document, sort_keys=True).encode("utf-8")).hexdigest()[:32]
        return Path(os.fspath(cache_dir)) / f"features-connected-{key}.npz"

    def features(self, config=None, *, cache: bool | str | os.PathLike = True, n_jobs: int = 1,
                 progressbar: bool = True) -> Features:
        """The features of every utterance (:func:`rnnbp.data.compute_features`), cached on disk.

        Frame ``t`` is centred on sample ``t * config.hop_length``, so digit ``j`` of utterance
        ``i`` ends near frame ``spans[j, 1] // config.hop_length``.

        Args:
            config : FeatureConfig or None (defaults: 13 MFCC + deltas + delta-deltas, F = 39);
                ``config.sr`` must be 8000. ``utterance_norm`` is applied after the cache.
            cache : True (the FSDD cache folder, ``<data>/fsdd/cache``, none if the FSDD has none),
                False (no cache) or a folder. The file is written to a temporary file and moved
                into place; an unreadable one is rebuilt with a warning.
            n_jobs : int != 0. Worker processes (joblib; 1: in this process).
            progressbar : bool. A tqdm bar while computing.

        Returns:
            Features: n utterances of shape (T_i, config.n_features), float32.
        """
        from .features import FeatureConfig, _load_cache, _normalize_utterances, _save_cache

        config = FeatureConfig() if config is None else config
        if not isinstance(config, FeatureConfig):
            raise TypeError(f"ConnectedDigits.features: config must be a FeatureConfig, got {type(config).__name__}")
        if config.sr != self.sample_rate:
            raise ValueError(f"ConnectedDigits.features: config.sr must be {self.sample_rate} (the audio's rate), "
                             f"got {config.sr}")
        if not isinstance(n_jobs, (int, np.integer)) or isinstance(n_jobs, bool) or n_jobs == 0:
            raise ValueError(f"ConnectedDigits.features: n_jobs must be a non-zero int (-1: all cores), got {n_jobs!r}")
        if cache is True:
            cache_dir = self.fsdd.cache_dir
        elif cache is False or cache is None:
            cache_dir = None
        else:
            cache_dir = cache
        path = None if cache_dir is None else self.feature_cache_path(config, cache_dir)
        feats = None if path is None else _load_cache(path, self.n, config)
        if feats is None:
            feats = Features.from_arrays(self._compute_features(config, int(n_jobs), progressbar),
                                         n_features=config.n_features)
            if path is not None:
                sources = [str(self.fsdd.folder / self.fsdd.names[r]) for r in self.pool.tolist()]
                _save_cache(path, feats, sources, config)
        if config.utterance_norm == "none":
            return feats
        return Features(_normalize_utterances(feats.frames, feats.offsets, config.utterance_norm), feats.offsets)

    def _compute_features(self, config, n_jobs: int, progressbar: bool) -> list[np.ndarray]:
        from tqdm.auto import tqdm

        raw = dataclasses.replace(config, utterance_norm="none")
        bar = tqdm(total=self.n, desc="connected-digit features", unit="utt", disable=not progressbar)
        with bar:
            if n_jobs == 1:
                out = []
                for i in range(self.n):
                    out.append(_utterance_features(self, i, raw))
                    bar.update(1)
                return out
            from joblib import Parallel, delayed

            chunk = 64
            chunks = [range(s, min(s + chunk, self.n)) for s in range(0, self.n, chunk)]
            try:
                parallel = Parallel(n_jobs=n_jobs, return_as="generator")
            except TypeError:  # joblib < 1.3
                parallel = Parallel(n_jobs=n_jobs)
            out = []
            for part in parallel(delayed(_chunk_features)(self, c, raw) for c in chunks):
                out.extend(part)
                bar.update(len(part))
            return out


def _utterance_features(ds: ConnectedDigits, i: int, config) -> np.ndarray:
    from .features import compute_features

    return compute_features(ds[i].audio, config)


def _chunk_features(ds: ConnectedDigits, indices: range, config) -> list[np.ndarray]:
    return [_utterance_features(ds, i, config) for i in indices]
