"""Speech features with librosa: MFCC or log-mel with deltas, cached on disk, and a fitted normalizer.

The pipeline for one recording (``y``: mono samples at ``config.sr``)::

    mel    = melspectrogram(y, n_fft, hop_length, n_mels, power=2)   # (n_mels, T)
    logmel = power_to_db(mel, ref=1.0, top_db=top_db)                # dB, floored top_db below the peak
    static = mfcc(S=logmel, n_mfcc)  if kind == "mfcc"  else logmel    # (C, T)
    feats  = [static, delta(static, 1), delta(static, 2)][:1 + deltas] stacked, transposed    # (T, F)
    feats  = per-utterance mean (and variance) normalisation, if utterance_norm asks for it

Every utterance becomes a float32 array of shape (T, F): T frames (``1 + len(y) // hop_length``),
F = ``config.n_features`` (39 by default). A set of them is one
:class:`rnnbp.data.buckets.Features`: the frames of all utterances concatenated, with offsets
(ragged, no object arrays, storable with ``np.savez``). :func:`extract_features` computes them
in parallel (joblib; on a Dask cluster within :func:`rnnbp.parallel.dask_backend`) and caches
the set in ``cache_dir`` under a hash of the configuration, the librosa version and the file
list (absolute paths, sizes and modification times); the file is written to a temporary file
and moved into place, so an interrupted run never leaves a cache that looks complete.
:class:`Normalizer` standardises each feature with the training set's mean and standard
deviation and saves as a state dict beside the model.

Defaults (:class:`FeatureConfig`) suit 8 kHz speech such as FSDD: a 256-sample window (32 ms),
a 128-sample hop (16 ms, 50 % overlap), 40 mel bands up to 4 kHz, 13 MFCC and their deltas and
delta-deltas over 9 frames. FSDD's 3,000 recordings then have 9 to 143 frames (27.8 on average).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import struct
import warnings
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .buckets import Features

__all__ = [
    "FeatureConfig", "Normalizer", "AudioFileError",
    "read_audio", "compute_features", "file_features", "extract_features", "feature_cache_path",
]

_CACHE_FORMAT = 1  # bump when the cache layout or the extraction code changes its numbers
_KINDS = ("mfcc", "logmel")
_UTTERANCE_NORMS = ("none", "mean", "meanvar")
_EPS = 1e-5  # floor of a standard deviation, so silent or constant features do not divide by zero


class AudioFileError(OSError):
    """An audio file cannot be used: missing, truncated, corrupt, empty, or with samples so large
    (finite, but far beyond [-1, 1]) that its features are not finite. The message names it."""


# ----------------------------------------------------------------- config
@dataclass(frozen=True)
class FeatureConfig:
    """How recordings become features. Frozen: its hash keys the feature cache.

    ``utterance_norm`` is applied after the cache, so changing it reuses cached features;
    every other field changes the cache key.
    """

    kind: str = "mfcc"            # "mfcc": n_mfcc cepstra of the log-mel; "logmel": the n_mels log energies
    sr: int = 8000                # sample rate the audio is read at (FSDD's own; other rates are resampled)
    n_fft: int = 256              # FFT size = Hann window length: 32 ms at 8 kHz
    hop_length: int = 128         # samples between frames: 16 ms at 8 kHz, 50 % overlap
    n_mels: int = 40              # mel bands between fmin and fmax
    n_mfcc: int = 13              # cepstral coefficients kept (kind="mfcc"), c0 included
    fmin: float = 0.0             # lowest mel band edge, Hz
    fmax: float | None = None     # highest mel band edge, Hz; None: sr / 2
    top_db: float | None = 80.0   # log-mel floor below the utterance's peak, dB (as librosa's mfcc); None: none
    deltas: int = 2               # 0: static features; 1: + deltas; 2: + deltas and delta-deltas
    delta_width: int = 9          # frames in the delta regression window (odd, >= 3); edges repeat the end frames
    utterance_norm: str = "none"  # per utterance: "none", "mean" (subtract its mean), "meanvar" (and divide by its std)

    def __post_init__(self):
        problems = []

        def need(ok: bool, what: str):
            if not ok:
                problems.append(what)

        def is_int(v) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        def is_num(v) -> bool:
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)

        need(self.kind in _KINDS, f"kind must be one of {_KINDS}, got {self.kind!r}")
        for name in ("sr", "n_fft", "hop_length", "n_mels", "n_mfcc"):
            v = getattr(self, name)
            need(is_int(v) and v > 0, f"{name} must be an int > 0, got {v!r}")
        if is_int(self.n_mfcc) and is_int(self.n_mels):
            need(self.n_mfcc <= self.n_mels, f"n_mfcc must be <= n_mels={self.n_mels}, got {self.n_mfcc}")
        need(is_num(self.fmin) and self.fmin >= 0, f"fmin must be a number >= 0, got {self.fmin!r}")
        if self.fmax is not None:
            nyquist = self.sr / 2 if is_int(self.sr) else float("inf")
            need(is_num(self.fmax) and is_num(self.fmin) and self.fmin < self.fmax <= nyquist,
                 f"fmax must be None or in (fmin={self.fmin}, sr/2={nyquist}], got {self.fmax!r}")
        need(self.top_db is None or (is_num(self.top_db) and self.top_db > 0),
             f"top_db must be None or a number > 0, got {self.top_db!r}")
        need(is_int(self.deltas) and self.deltas in (0, 1, 2), f"deltas must be 0, 1 or 2, got {self.deltas!r}")
        need(is_int(self.delta_width) and self.delta_width >= 3 and self.delta_width % 2 == 1,
             f"delta_width must be an odd int >= 3, got {self.delta_width!r}")
        need(self.utterance_norm in _UTTERANCE_NORMS,
             f"utterance_norm must be one of {_UTTERANCE_NORMS}, got {self.utterance_norm!r}")
        if problems:
            raise ValueError("FeatureConfig: " + "; ".join(problems))

    @property
    def n_features(self) -> int:
        """F, the length of one frame's feature vector: (n_mfcc or n_mels) * (1 + deltas)."""
        return (self.n_mfcc if self.kind == "mfcc" else self.n_mels) * (1 + self.deltas)

    def to_dict(self) -> dict:
        """The fields as a plain dict, storable by ``rnnbp.save`` beside a model."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, state: dict) -> "FeatureConfig":
        """The config saved by :meth:`to_dict`. Unknown keys are an error (listed); missing ones take defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(state) - names)
        if unknown:
            raise ValueError(f"FeatureConfig.from_dict: unknown field(s) {unknown}; known are {sorted(names)}")
        return cls(**state)

    def cache_fields(self) -> dict:
        """The fields that change the extracted numbers (all but ``utterance_norm``)."""
        fields = self.to_dict()
        del fields["utterance_norm"]
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in fields.items()}


# ------------------------------------------------ per-utterance normalisation
def _normalize_utterances(frames: np.ndarray, offsets: np.ndarray, mode: str) -> np.ndarray:
    """Subtract each utterance's mean (and divide by its standard deviation) per feature."""
    if mode == "none" or len(frames) == 0:
        return frames
    lengths = np.diff(offsets)
    if np.any(lengths == 0):
        raise ValueError("utterance normalisation: an utterance has no frames")
    x = frames.astype(np.float64)
    which = np.repeat(np.arange(len(lengths)), lengths)  # (sum T_i,) utterance of each frame
    mean = np.add.reduceat(x, offsets[:-1], axis=0) / lengths[:, None]  # (N, F)
    x -= mean[which]
    if mode == "meanvar":
        std = np.sqrt(np.add.reduceat(x * x, offsets[:-1], axis=0) / lengths[:, None])
        x /= np.maximum(std, _EPS)[which]
    return x.astype(np.float32)


# ------------------------------------------------------------------ audio
def _check_wav_complete(path: str) -> None:
    """Raise if a RIFF/WAVE file's data chunk claims more bytes than the file holds.

    libsndfile reads such a truncated file without complaint and returns fewer samples,
    so a cut-off download would pass as a shorter recording.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return  # not a WAVE file (or too short to tell): soundfile decides
        endian = "<" if head[:4] == b"RIFF" else ">"
        size = os.fstat(f.fileno()).st_size
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            chunk, length = struct.unpack(endian + "4sI", f.read(8))
            if chunk == b"data":
                if length != 0xFFFFFFFF and pos + 8 + length > size:  # 0xFFFFFFFF: length unknown (streamed)
                    raise AudioFileError(
                        f"audio file {path} is truncated: its data chunk declares {length} bytes "
                        f"but only {size - pos - 8} follow (an interrupted copy or download?)")
                return
            pos += 8 + length + (length & 1)  # chunks are padded to an even size


def read_audio(path: str | os.PathLike, sr: int = 8000) -> np.ndarray:
    """The samples of an audio file as mono float32 in [-1, 1], at sample rate ``sr``.

    Channels are averaged; another file rate is resampled (librosa, soxr).

    Args:
        path : str or os.PathLike. Any format libsndfile reads (WAV, FLAC, OGG, ...).
        sr : int > 0. The rate to return.

    Returns:
        np.ndarray [shape=(n,), dtype=float32], n > 0.

    Raises:
        AudioFileError: the file is missing, truncated, corrupt, empty or holds non-finite
            samples; the message names the path and the reader's complaint.
    """
    path = os.fspath(path)
    try:
        _check_wav_complete(path)
        import soundfile  # lazy: loads libsndfile

        y, file_sr = soundfile.read(path, dtype="float32", always_2d=True)  # (n, channels)
    except AudioFileError:
        raise
    except Exception as exc:  # soundfile.LibsndfileError (a RuntimeError), OSError, ...
        raise AudioFileError(f"cannot read audio file {path}: {type(exc).__name__}: {exc}") from exc
    y = y.mean(axis=1, dtype=np.float32) if y.shape[1] > 1 else y[:, 0]
    if y.size == 0:
        raise AudioFileError(f"audio file {path} holds no samples")
    if not np.all(np.isfinite(y)):
        raise AudioFileError(f"audio file {path} holds NaN or infinite samples (or samples beyond float32's "
                             "range, about 3.4e38; audio is expected within [-1, 1])")
    if file_sr != sr:
        import librosa

        y = librosa.resample(y, orig_sr=file_sr, target_sr=sr)
    return np.ascontiguousarray(y, dtype=np.float32)


def _raw_features(y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Features of one signal before per-utterance normalisation: (T, F) float32.

    Not checked: absurd samples (1e18 and up) overflow the float32 power spectrum and give NaN;
    callers check with :func:`_nonfinite_features`.
    """
    import librosa  # lazy: librosa takes about a second to import

    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, not as a warning
        return _librosa_features(librosa, y, config)


def _librosa_features(librosa, y: np.ndarray, config: FeatureConfig) -> np.ndarray:
    mel = librosa.feature.melspectrogram(y=y, sr=config.sr, n_fft=config.n_fft, hop_length=config.hop_length,
                                         n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax, power=2.0)
    static = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=config.top_db)  # (n_mels, T)
    if config.kind == "mfcc":
        static = librosa.feature.mfcc(S=static, n_mfcc=config.n_mfcc)  # (n_mfcc, T), DCT-II, orthonormal
    parts = [static]
    for order in range(1, config.deltas + 1):
        # mode="nearest": short utterances (fewer frames than the window) work; "interp" refuses them.
        parts.append(librosa.feature.delta(static, width=config.delta_width, order=order, mode="nearest"))
    return np.ascontiguousarray(np.concatenate(parts, axis=0).T, dtype=np.float32)  # (T, F)


def compute_features(y: np.ndarray, config: FeatureConfig | None = None) -> np.ndarray:
    """Features of one signal, exactly as :func:`extract_features` computes them for a file.

    Args:
        y : np.ndarray [shape=(n,)], mono samples at ``config.sr``, n > 0.
        config : FeatureConfig or None (defaults).

    Returns:
        np.ndarray [shape=(T, config.n_features), dtype=float32], T = 1 + n // hop_length.

    Raises:
        ValueError: ``y`` is not (n,), holds NaN or Inf, or is so large (1e18 and up) that the
            features are not finite.
    """
    config = FeatureConfig() if config is None else config
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"compute_features: expected mono samples of shape (n,), n > 0, got shape {y.shape}")
    y = y.astype(np.float32, copy=False)
    if not np.all(np.isfinite(y)):
        raise ValueError("compute_features: the samples hold NaN or Inf (or values beyond float32's range)")
    raw = _raw_features(y, config)
    problem = _nonfinite_features(raw, y)
    if problem:
        raise ValueError(f"compute_features: {problem}")
    return _normalize_utterances(raw, np.array([0, len(raw)]), config.utterance_norm)


def _nonfinite_features(raw: np.ndarray, y: np.ndarray) -> str | None:
    """Why the features ``raw`` (T, F) of samples ``y`` are unusable, or None when all are finite."""
    if np.all(np.isfinite(raw)):
        return None
    peak = float(np.max(np.abs(y)))
    return (f"its features hold NaN or Inf: the samples reach {peak:.3g} in absolute value, where audio "
            "lies within [-1, 1] (a float file written unscaled, or corrupt data)")


def file_features(path: str | os.PathLike, config: FeatureConfig | None = None) -> np.ndarray:
    """Features of one audio file (no cache): for a new recording at prediction time.

    Returns:
        np.ndarray [shape=(T, config.n_features), dtype=float32].

    Raises:
        AudioFileError: the file cannot be read, or its samples are so large that the features
            are not finite; names it.
    """
    config = FeatureConfig() if config is None else config
    raw = _extract_raw(os.fspath(path), config)
    return _normalize_utterances(raw, np.array([0, len(raw)]), config.utterance_norm)


def _extract_raw(path: str, config: FeatureConfig) -> np.ndarray:
    """One file's features before per-utterance normalisation, checked finite; a joblib task."""
    y = read_audio(path, config.sr)
    raw = _raw_features(y, config)
    problem = _nonfinite_features(raw, y)
    if problem:
        raise AudioFileError(f"audio file {path}: {problem}")
    return raw


# ------------------------------------------------------------------ cache
def _stamps(paths: Sequence[str]) -> list[list]:
    stamps = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError as exc:
            raise AudioFileError(f"cannot read audio file {p}: {exc.strerror or exc}") from exc
        stamps.append([p, st.st_size, st.st_mtime_ns])
    return stamps


def _cache_key(paths: Sequence[str], config: FeatureConfig) -> str:
    try:
        librosa_version = metadata.version("librosa")  # no import: a warm cache never loads librosa
    except metadata.PackageNotFoundError:
        librosa_version = "unknown"
    document = {"format": _CACHE_FORMAT, "config": config.cache_fields(), "librosa": librosa_version,
                "files": _stamps(paths)}
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode("utf-8")).hexdigest()


def feature_cache_path(paths: Iterable[str | os.PathLike], config: FeatureConfig,
                       cache_dir: str | os.PathLike) -> Path:
    """The cache file :func:`extract_features` reads and writes for these files and this config.

    ``<cache_dir>/features-<key>.npz``, ``key`` a SHA-256 over the config's
    :meth:`~FeatureConfig.cache_fields`, the librosa version and every file's absolute
    path, size and modification time; so editing, replacing or adding a file, or changing
    a parameter, gives a new file. Old files are not removed (delete the folder to clear it).
    """
    paths = [os.path.abspath(os.fspath(p)) for p in paths]
    return Path(os.fspath(cache_dir)) / f"features-{_cache_key(paths, config)[:32]}.npz"


def _load_cache(path: Path, n: int, config: FeatureConfig) -> Features | None:
    """The cached raw features, or None when absent, unreadable or not matching (the caller rebuilds)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            frames, offsets, key = z["frames"], z["offsets"], str(z["key"])
        feats = Features(frames, offsets)
        if key != path.stem.removeprefix("features-") or len(feats) != n or feats.n_features != config.n_features \
                or frames.dtype != np.float32:
            raise ValueError("its contents do not match its name")
        if not np.all(np.isfinite(frames)):  # written before features were checked: rebuilding names the file
            raise ValueError("it holds NaN or Inf features")
        return feats
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        warnings.warn(f"extract_features: ignoring the unreadable cache file {path} ({exc}); rebuilding it",
                      RuntimeWarning, stacklevel=3)
        return None


def _save_cache(path: Path, feats: Features, paths: Sequence[str], config: FeatureConfig) -> None:
    from ..io import _atomic_write  # temp file beside the target, fsync, os.replace

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        members = dict(frames=feats.frames, offsets=feats.offsets, key=np.array(path.stem.removeprefix("features-")),
                       files=np.array(paths, dtype=str), config=np.array(json.dumps(config.cache_fields())))
        _atomic_write(str(path), lambda f: np.savez(f, **members))
    except OSError as exc:
        warnings.warn(f"extract_features: could not write the cache file {path} ({exc}); "
                      "the features are returned but not cached", RuntimeWarning, stacklevel=3)


# ---------------------------------------------------------------- extract
def _extract_all(paths: Sequence[str], config: FeatureConfig, n_jobs: int, progressbar: bool) -> list[np.ndarray]:
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    # The generator hands results back in order as they finish, so the bar moves; an exception
    # in any task stops the rest and is raised here with its own type.
    try:
        parallel = Parallel(n_jobs=n_jobs, return_as="generator")
    except TypeError:  # joblib < 1.3: results arrive all at once, the bar jumps at the end
        parallel = Parallel(n_jobs=n_jobs)
    tasks = parallel(delayed(_extract_raw)(p, config) for p in paths)
    return list(tqdm(tasks, total=len(paths), desc="features", unit="file", disable=not progressbar))


def extract_features(paths: Iterable[str | os.PathLike], config: FeatureConfig | None = None, *,
                     cache_dir: str | os.PathLike | None = None, n_jobs: int = -1,
                     progressbar: bool = True) -> Features:
    """Features of every file, in order, computed in parallel and cached on disk.

    With ``cache_dir``, a cache file made for the same files (path, size, mtime) and the
    same config (see :func:`feature_cache_path`) is loaded instead of extracting; otherwise
    the features are extracted and written there atomically (a temp file moved into place
    only when complete: an exception or Ctrl-C mid-way leaves no cache file). An
    unreadable cache file is rebuilt (with a warning). ``config.utterance_norm`` is applied
    after the cache.

    Args:
        paths : iterable of str or os.PathLike. Audio files (see :func:`read_audio`).
        config : FeatureConfig or None (defaults: 13 MFCC + deltas + delta-deltas, F = 39).
        cache_dir : str, os.PathLike or None. Folder for the cache (created if needed); None:
            no cache. A folder that cannot be written gives a warning, not an error.
        n_jobs : int != 0. Worker processes (joblib's meaning: -1 all cores, 1 none). Inside
            ``with rnnbp.parallel.dask_backend(address):`` the files go to the Dask cluster's
            workers instead, all of its threads whatever ``n_jobs``; the features are the same.
        progressbar : bool. Show a tqdm bar while extracting.

    Returns:
        Features: utterance i of shape (T_i, config.n_features), float32.

    Raises:
        AudioFileError: a file is missing, truncated or corrupt, or its samples are so large that
            its features are not finite; names it.
    """
    config = FeatureConfig() if config is None else config
    if not isinstance(config, FeatureConfig):
        raise TypeError(f"extract_features: config must be a FeatureConfig, got {type(config).__name__}")
    if not isinstance(n_jobs, (int, np.integer)) or isinstance(n_jobs, bool) or n_jobs == 0:
        raise ValueError(f"extract_features: n_jobs must be a non-zero int (-1: all cores), got {n_jobs!r}")
    paths = [os.path.abspath(os.fspath(p)) for p in paths]
    if not paths:
        raise ValueError("extract_features: got no files")
    cache_path = None if cache_dir is None else feature_cache_path(paths, config, cache_dir)
    feats = None if cache_path is None else _load_cache(cache_path, len(paths), config)
    if feats is None:
        feats = Features.from_arrays(_extract_all(paths, config, int(n_jobs), progressbar))
        if cache_path is not None:
            _save_cache(cache_path, feats, paths, config)
    if config.utterance_norm == "none":
        return feats
    return Features(_normalize_utterances(feats.frames, feats.offsets, config.utterance_norm), feats.offsets)


# ------------------------------------------------------------- normalizer
class Normalizer:
    """Standardise each feature with the training set's statistics: ``(x - mean) / std``.

    Fit on the training utterances' frames (every frame counts once), then apply the
    same transform to validation, test and, at prediction time, new recordings: save
    :meth:`state_dict` with the model (``rnnbp.save``) and rebuild with
    :meth:`from_state_dict`. Normalise before padding, so padded steps stay zero.

    Args:
        eps : float > 0. Floor of the standard deviation (a constant feature stays finite).

    Attributes:
        mean, std : np.ndarray [shape=(F,), dtype=float32] once fitted, else None.
    """

    def __init__(self, eps: float = _EPS):
        if not eps > 0:
            raise ValueError(f"Normalizer: eps must be > 0, got {eps!r}")
        self.eps = float(eps)
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    @staticmethod
    def _frames(features) -> np.ndarray:
        if isinstance(features, Features):
            return features.frames
        if isinstance(features, np.ndarray):
            return features.reshape(-1, features.shape[-1]) if features.ndim >= 2 else features[None, :]
        return Features.from_arrays(list(features)).frames

    def fit(self, features) -> "Normalizer":
        """Learn per-feature mean and standard deviation (float64 sums, stored as float32).

        Args:
            features : Features, a sequence of (T_i, F) arrays, or an array (..., F) of frames.

        Returns:
            self.
        """
        frames = self._frames(features)
        if len(frames) == 0:
            raise ValueError("Normalizer.fit: got no frames")
        x = frames.astype(np.float64)
        mean = x.mean(axis=0)
        std = np.sqrt(((x - mean) ** 2).mean(axis=0))
        self.mean = mean.astype(np.float32)
        self.std = np.maximum(std, self.eps).astype(np.float32)
        return self

    def transform(self, x):
        """Apply the fitted transform.

        Args:
            x : Features, or np.ndarray [shape=(..., F)] (one utterance (T, F), frames, ...).

        Returns:
            The same kind as ``x``, float32.
        """
        if self.mean is None:
            raise ValueError("Normalizer.transform: not fitted; call fit(train_features) or load_state_dict first")
        if isinstance(x, Features):
            return Features(self.transform(x.frames), x.offsets)
        x = np.asarray(x)
        if x.ndim == 0 or x.shape[-1] != len(self.mean):
            raise ValueError(f"Normalizer.transform: expected features of shape (..., {len(self.mean)}), "
                             f"got shape {x.shape}")
        return ((x.astype(np.float32, copy=False) - self.mean) / self.std).astype(np.float32, copy=False)

    def fit_transform(self, features):
        """``fit(features)`` then ``transform(features)``."""
        return self.fit(features).transform(features)

    def state_dict(self) -> dict:
        """``{"mean": (F,) float32, "std": (F,) float32}``; storable by ``rnnbp.save``."""
        if self.mean is None:
            raise ValueError("Normalizer.state_dict: not fitted")
        return {"mean": self.mean.copy(), "std": self.std.copy()}

    def load_state_dict(self, state: dict) -> None:
        """Take ``mean`` and ``std`` from a :meth:`state_dict`.

        Raises:
            ValueError: keys missing or unexpected, shapes not (F,) and equal, or a std <= 0.
        """
        if not isinstance(state, dict):
            raise ValueError(f"Normalizer.load_state_dict: expected a dict, got {type(state).__name__}")
        missing, unexpected = sorted({"mean", "std"} - set(state)), sorted(set(state) - {"mean", "std"})
        if missing or unexpected:
            raise ValueError(f"Normalizer.load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        mean, std = np.asarray(state["mean"], np.float32), np.asarray(state["std"], np.float32)
        if mean.ndim != 1 or mean.shape != std.shape:
            raise ValueError(f"Normalizer.load_state_dict: mean and std must have the same shape (F,), "
                             f"got {mean.shape} and {std.shape}")
        if not np.all(std > 0):
            raise ValueError("Normalizer.load_state_dict: every std must be > 0")
        self.mean, self.std = mean.copy(), std.copy()

    @classmethod
    def from_state_dict(cls, state: dict) -> "Normalizer":
        """A Normalizer holding a saved :meth:`state_dict`."""
        norm = cls()
        norm.load_state_dict(state)
        return norm

    def __repr__(self) -> str:
        return f"Normalizer(F={len(self.mean)})" if self.mean is not None else "Normalizer(not fitted)"
