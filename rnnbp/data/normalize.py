"""Per-speaker mean and variance normalisation: each voice's features standardised by its own statistics.

A voice shifts every feature (vocal tract length, microphone, level); subtracting each speaker's
mean and dividing by their standard deviation, per feature, removes much of that shift, which is
why it helps most on voices never heard in training. The statistics are those of the speaker's
own frames, so they need no labels: a new speaker's are fitted on their own (test) recordings.

It is :class:`rnnbp.data.Normalizer`'s transform (same formula, same ``eps`` floor) applied with one
set of statistics per speaker. Typical use, with a speaker per utterance::

    norm = SpeakerNormalizer()
    x_train = norm.fit_transform(feats_train, speakers_train)      # Features -> Features
    x_test = SpeakerNormalizer().fit_transform(feats_test, speakers_test)  # new voices: their own stats
    x_test = normalize_by_speaker(feats_test, speakers_test)      # the same in one call

Normalise before padding, so padded steps stay zero.
"""
from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np

from .buckets import Features
from .features import _EPS, Normalizer

__all__ = ["SpeakerNormalizer", "normalize_by_speaker"]

_ONE_SPEAKER = ""  # the name kept for statistics fitted with speakers=None


def _utterances(owner: str, utterances) -> tuple[list[np.ndarray], str]:
    """``utterances`` as a list of (T_i, F) arrays, and its kind ("features", "list" or "array") for the result."""
    if isinstance(utterances, Features):
        return utterances.to_list(), "features"
    if isinstance(utterances, np.ndarray) and utterances.ndim == 2:
        return [utterances], "array"
    if isinstance(utterances, (str, bytes)) or not isinstance(utterances, (Sequence, np.ndarray)):
        raise TypeError(f"{owner}: expected Features, a sequence of (T, F) arrays or one (T, F) array, "
                        f"got {type(utterances).__name__}")
    arrays = [np.asarray(u) for u in utterances]
    bad = [(i, a.shape) for i, a in enumerate(arrays) if a.ndim != 2]
    if bad:
        raise ValueError(f"{owner}: every utterance must be a 2-D array (T, F); got shapes {bad[:5]} "
                         f"(index, shape){' ...' if len(bad) > 5 else ''}")
    return arrays, "list"


def _speaker_names(owner: str, speakers, n: int) -> np.ndarray:
    """One name per utterance: np.ndarray [shape=(n,), dtype=str]."""
    if speakers is None:
        return np.full(n, _ONE_SPEAKER)
    if isinstance(speakers, str):
        return np.full(n, speakers)
    names = np.asarray(speakers)
    if names.ndim != 1 or len(names) != n:
        raise ValueError(f"{owner}: speakers must give one name per utterance ({n}), got shape {names.shape}")
    return names.astype(str)


def _check_widths(owner: str, arrays: list[np.ndarray], n_features: int | None = None) -> int:
    """The common feature size F; raises naming the first utterance that differs."""
    width = arrays[0].shape[1] if n_features is None else n_features
    for i, a in enumerate(arrays):
        if a.shape[1] != width:
            ref = "utterance 0 has" if n_features is None else "the fitted statistics have"
            raise ValueError(f"{owner}: utterance {i} has {a.shape[1]} features (shape {a.shape}) but {ref} "
                             f"{width}; every utterance must have the same feature size F")
    return width


class SpeakerNormalizer:
    """Standardise each speaker's features with that speaker's own mean and standard deviation.

    ``fit`` learns, per speaker and per feature, the mean and standard deviation of all the
    speaker's frames (every frame counts once; float64 sums, stored as float32; the standard
    deviation floored at ``eps``). ``transform`` maps each frame of a speaker's utterance to
    ``(x - mean[speaker]) / std[speaker]``. Fitting again replaces all statistics.

    Speakers are given per utterance: ``speakers`` is a sequence of N names, one name for all,
    or None (all utterances one speaker; then ``transform`` needs no name either).

    Args:
        eps : float > 0. Floor of the standard deviation (a constant feature stays finite).

    Attributes:
        speakers : tuple[str, ...]. The fitted speakers, sorted (``("",)`` after ``speakers=None``).
        mean, std : np.ndarray [shape=(S, F), dtype=float32] once fitted, else None.
    """

    def __init__(self, eps: float = _EPS):
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not eps > 0:
            raise ValueError(f"SpeakerNormalizer: eps must be a number > 0, got {eps!r}")
        self.eps = float(eps)
        self.speakers: tuple[str, ...] = ()
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    @property
    def n_features(self) -> int | None:
        """F once fitted, else None."""
        return None if self.mean is None else self.mean.shape[1]

    def fit(self, utterances, speakers=None) -> "SpeakerNormalizer":
        """Learn each speaker's per-feature mean and standard deviation from their own frames.

        Args:
            utterances : Features, a sequence of N arrays (T_i, F), or one array (T, F).
            speakers : sequence of N str, one str, or None (all one speaker).

        Returns:
            self.

        Raises:
            ValueError: no utterances; not (T, F); feature sizes differ; speakers not one per
                utterance; a speaker with no frames; NaN or Inf in the features.
        """
        owner = "SpeakerNormalizer.fit"
        arrays, _ = _utterances(owner, utterances)
        if not arrays:
            raise ValueError(f"{owner}: got no utterances; fit needs at least one frame of every speaker")
        names = _speaker_names(owner, speakers, len(arrays))
        width = _check_widths(owner, arrays)
        fitted, code = np.unique(names, return_inverse=True)  # sorted names; speaker of each utterance
        frames_all = np.concatenate(arrays, axis=0)  # (sum T_i, F)
        which = np.repeat(code.reshape(-1), [len(a) for a in arrays])  # (sum T_i,) speaker of each frame
        mean = np.zeros((len(fitted), width), np.float32)
        std = np.zeros((len(fitted), width), np.float32)
        for s, name in enumerate(fitted.tolist()):  # a loop over speakers, not utterances
            frames = frames_all[which == s]
            if len(frames) == 0:
                raise ValueError(f"{owner}: speaker {name!r} has no frames (all of their utterances are empty)")
            if not np.all(np.isfinite(frames)):
                raise ValueError(f"{owner}: the features of speaker {name!r} hold NaN or Inf")
            stats = Normalizer(self.eps).fit(frames)  # one formula for mean and std, shared with Normalizer
            mean[s], std[s] = stats.mean, stats.std
        self.speakers, self.mean, self.std = tuple(fitted.tolist()), mean, std
        return self

    def transform(self, utterances, speakers=None):
        """Normalise each utterance with its speaker's statistics.

        Args:
            utterances : Features, a sequence of N arrays (T_i, F), or one array (T, F).
            speakers : sequence of N str, one str, or None (only after fitting with ``speakers=None``).

        Returns:
            The same kind as ``utterances`` (Features, a list of arrays, or one array), float32.

        Raises:
            ValueError: not fitted; a feature size other than the fitted F; a speaker not fitted (the
                fitted ones are listed: fit a new voice on its own utterances first).
        """
        owner = "SpeakerNormalizer.transform"
        if self.mean is None:
            raise ValueError(f"{owner}: not fitted; call fit(utterances, speakers) or load_state_dict first")
        arrays, kind = _utterances(owner, utterances)
        names = _speaker_names(owner, speakers, len(arrays))
        if arrays:
            _check_widths(owner, arrays, self.n_features)
        unknown = sorted(set(names.tolist()) - set(self.speakers))
        if unknown:
            raise ValueError(f"{owner}: no statistics for speaker(s) {unknown}; fitted speakers are "
                             f"{list(self.speakers[:10])}"
                             f"{' ...' if len(self.speakers) > 10 else ''} (fit a new voice on its own utterances)")
        lengths = np.array([len(a) for a in arrays], dtype=np.int64)
        frames = (np.concatenate(arrays, axis=0) if arrays else np.zeros((0, self.n_features))).astype(np.float32)
        which = np.repeat(np.searchsorted(np.array(self.speakers), names), lengths)  # (sum T_i,) speaker of each frame
        out = ((frames - self.mean[which]) / self.std[which]).astype(np.float32, copy=False)
        if kind == "features":
            return Features(out, utterances.offsets)
        if kind == "array":
            return out
        return np.split(out, np.cumsum(lengths)[:-1]) if arrays else []

    def fit_transform(self, utterances, speakers=None):
        """``fit(utterances, speakers)`` then ``transform(utterances, speakers)``."""
        return self.fit(utterances, speakers).transform(utterances, speakers)

    def state_dict(self) -> dict:
        """``{"speakers": (S,) str, "mean": (S, F) float32, "std": (S, F) float32}``: plain arrays (``rnnbp.save``)."""
        if self.mean is None:
            raise ValueError("SpeakerNormalizer.state_dict: not fitted")
        return {"speakers": np.array(self.speakers, dtype=str), "mean": self.mean.copy(), "std": self.std.copy()}

    def load_state_dict(self, state: dict) -> None:
        """Take ``speakers``, ``mean`` and ``std`` from a :meth:`state_dict`.

        Raises:
            ValueError: keys missing or unexpected; shapes not (S,), (S, F), (S, F); speakers
                repeated; a std <= 0. Every problem is listed.
        """
        owner = "SpeakerNormalizer.load_state_dict"
        if not isinstance(state, dict):
            raise ValueError(f"{owner}: expected a dict, got {type(state).__name__}")
        keys = {"speakers", "mean", "std"}
        missing, unexpected = sorted(keys - set(state)), sorted(set(state) - keys)
        if missing or unexpected:
            raise ValueError(f"{owner}: missing keys {missing}, unexpected keys {unexpected}")
        speakers = np.asarray(state["speakers"]).astype(str)
        mean, std = np.asarray(state["mean"], np.float32), np.asarray(state["std"], np.float32)
        problems = []
        if speakers.ndim != 1 or mean.ndim != 2 or mean.shape != std.shape or len(mean) != len(speakers):
            problems.append(f"shapes must be speakers (S,), mean and std (S, F); got {speakers.shape}, "
                            f"{mean.shape} and {std.shape}")
        if speakers.ndim == 1 and len(set(speakers.tolist())) != len(speakers):
            problems.append("speakers are repeated")
        if std.size and not np.all(std > 0):
            problems.append("every std must be > 0")
        if problems:
            raise ValueError(f"{owner}: " + "; ".join(problems))
        order = np.argsort(speakers, kind="stable")  # sorted, as fit leaves them (transform searches them)
        self.speakers = tuple(speakers[order].tolist())
        self.mean, self.std = mean[order].copy(), std[order].copy()

    @classmethod
    def from_state_dict(cls, state: dict) -> "SpeakerNormalizer":
        """A SpeakerNormalizer holding a saved :meth:`state_dict`."""
        norm = cls()
        norm.load_state_dict(state)
        return norm

    def __repr__(self) -> str:
        if self.mean is None:
            return "SpeakerNormalizer(not fitted)"
        return f"SpeakerNormalizer({len(self.speakers)} speakers, F={self.n_features})"


def normalize_by_speaker(utterances, speakers, eps: float = _EPS):
    """Every speaker's utterances standardised by that speaker's own statistics, fitted on them (no labels).

    ``SpeakerNormalizer(eps).fit_transform(utterances, speakers)``: for a whole dataset grouped by
    speaker, e.g. ``normalize_by_speaker(ds.features(config), ds.speakers)`` for a
    :class:`~rnnbp.data.ConnectedDigits`, or ``(feats, fsdd.speaker)`` for FSDD.

    Returns:
        The same kind as ``utterances``, float32; each speaker's frames have mean 0 and standard
        deviation 1 per feature (unless below ``eps``).
    """
    return SpeakerNormalizer(eps).fit_transform(utterances, speakers)
