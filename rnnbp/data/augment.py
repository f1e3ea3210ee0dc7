"""Augmentation for speech: SpecAugment masks on features, speed perturbation and additive noise on audio.

Used to train recognisers that hold up on voices and rooms they never heard. Everything random
takes an optional ``np.random.Generator`` (``generator=``) and otherwise draws from the one
default generator that ``rnnbp.manual_seed`` reseeds, so a seeded run is reproducible.

* :func:`spec_augment` (and :class:`SpecAugment`, the same with its settings kept): time and
  frequency masks on one utterance's features (T, F) (Park et al. 2019, "SpecAugment: A Simple
  Data Augmentation Method for Automatic Speech Recognition", without time warping). The
  argument names are torchaudio's (``torchaudio.transforms.SpecAugment``); in the paper's
  letters, ``freq_mask_param`` = F, ``n_freq_masks`` = m_F, ``time_mask_param`` = T,
  ``n_time_masks`` = m_T and ``p`` = p.
* :func:`speed_perturb`: play the audio faster or slower (pitch moves too), as Kaldi's
  speed perturbation (Ko et al. 2015, factors 0.9 / 1.0 / 1.1): a polyphase resampling.
* :func:`add_noise`: white Gaussian noise, or a given noise recording, scaled to a target
  signal-to-noise ratio in dB.

Typical training-time use::

    g = np.random.default_rng(seed)
    y = speed_perturb(y, g.choice([0.9, 1.0, 1.1]))
    y = add_noise(y, snr_db=g.uniform(10, 30), generator=g)
    x = augment(compute_features(y, config), generator=g)   # augment = SpecAugment(...)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from ..autograd.random import get_generator
from ..validation import check_int, check_number

__all__ = ["SpecAugment", "SpecAugmentMasks", "spec_augment", "speed_perturb", "add_noise"]

_MAX_SPEED_DENOMINATOR = 100  # speed factors are taken as fractions p/q with q <= 100 (0.9 = 9/10 exactly)


# ------------------------------------------------------------- SpecAugment
class SpecAugmentMasks(NamedTuple):
    """The masks drawn for one utterance: ``[start, end)`` spans of frames and of features.

    Attributes:
        time : np.ndarray [shape=(n_time_masks, 2), dtype=int64]. Frame spans, 0 <= start <= end <= T.
        freq : np.ndarray [shape=(n_freq_masks, 2), dtype=int64]. Feature spans, 0 <= start <= end <= F.
    """

    time: np.ndarray
    freq: np.ndarray


@dataclass(frozen=True)
class SpecAugment:
    """Time and frequency masks on features (T, F): SpecAugment (Park et al. 2019) without time warping.

    Each of ``n_freq_masks`` masks covers features ``[f0, f0 + f)``, its width ``f`` drawn
    uniformly from {0, ..., freq_mask_param} and ``f0`` from {0, ..., F - f}; each of
    ``n_time_masks`` covers frames ``[t0, t0 + t)``, ``t`` uniform in {0, ..., min(time_mask_param,
    floor(p * T))} and ``t0`` in {0, ..., T - t}. Masks are drawn independently and may overlap.

    Fill: the masked cells take the utterance's own mean of each feature (its column mean over
    the T frames, computed before masking), or 0 with ``zero_masking=True``. Park et al. fill
    with 0 after normalising the log-mel to zero mean, and torchaudio fills with the scalar
    mean of the whole input; here the mean is per feature because the columns of MFCC + deltas
    have very different scales (c0 against the rest), so one scalar would stamp an artefact
    into them. After a :class:`~rnnbp.data.Normalizer`, the two fills are nearly the same.

    On MFCC features, "frequency" masks hide a run of adjacent columns (cepstra, or deltas), not
    a band of frequencies; on ``FeatureConfig(kind="logmel")`` they hide mel bands as in the paper.

    Park et al.'s policies, for 80 log-mel bands at 100 frames a second (LibriSpeech), are
    LB: F=27, m_F=1, T=100, p=1.0, m_T=1; LD: F=27, m_F=2, T=100, p=1.0, m_T=2; and for
    Switchboard SM: F=15, m_F=2, T=70, p=0.2, m_T=2. The defaults here are scaled down to
    rnnbp's default features (39 per 16 ms frame, 62.5 frames a second) and FSDD's short
    digits (0.4 s, 25 frames): F=8, m_F=2, T=10 (160 ms), p=0.2, m_T=2.

    Args:
        n_time_masks : int >= 0, m_T.  time_mask_param : int >= 0, T (frames).
        n_freq_masks : int >= 0, m_F.  freq_mask_param : int >= 0, F (features).
        p : float in [0, 1]. Upper bound of a time mask's width as a fraction of the frames.
        zero_masking : bool. Fill with 0 instead of each feature's mean.

    Call: ``augment(x, generator=None)``, x (T, F) -> (T, F), a new array of x's float dtype.
    """

    n_time_masks: int = 2
    time_mask_param: int = 10
    n_freq_masks: int = 2
    freq_mask_param: int = 8
    p: float = 0.2
    zero_masking: bool = False

    def __post_init__(self):
        for name in ("n_time_masks", "time_mask_param", "n_freq_masks", "freq_mask_param"):
            object.__setattr__(self, name, check_int("SpecAugment", name, getattr(self, name), minimum=0))
        object.__setattr__(self, "p", check_number("SpecAugment", "p", self.p, 0.0, 1.0))
        if not isinstance(self.zero_masking, (bool, np.bool_)):
            raise TypeError(f"SpecAugment: zero_masking must be a bool, got {self.zero_masking!r}")

    def masks(self, n_frames: int, n_features: int,
              generator: np.random.Generator | None = None) -> SpecAugmentMasks:
        """Draw the masks for an utterance of ``n_frames`` frames of ``n_features`` features."""
        n_frames = check_int("SpecAugment.masks", "n_frames", n_frames, minimum=0)
        n_features = check_int("SpecAugment.masks", "n_features", n_features, minimum=0)
        g = get_generator(generator)
        widest_f = min(self.freq_mask_param, n_features)
        widest_t = min(self.time_mask_param, int(math.floor(self.p * n_frames)))
        f = g.integers(0, widest_f + 1, size=self.n_freq_masks)
        f0 = g.integers(0, n_features - f + 1)  # (m_F,): each start drawn below its own bound
        t = g.integers(0, widest_t + 1, size=self.n_time_masks)
        t0 = g.integers(0, n_frames - t + 1)
        return SpecAugmentMasks(np.stack([t0, t0 + t], axis=1).astype(np.int64).reshape(-1, 2),
                                np.stack([f0, f0 + f], axis=1).astype(np.int64).reshape(-1, 2))

    def apply(self, x: np.ndarray, masks: SpecAugmentMasks) -> np.ndarray:
        """``x`` (T, F) with the cells under ``masks`` filled (see the class docstring); a new array."""
        x = _check_features("SpecAugment", x)
        out = x.copy()
        fill = np.zeros(x.shape[1], x.dtype) if self.zero_masking or len(x) == 0 else x.mean(axis=0, dtype=np.float64)
        fill = fill.astype(x.dtype)
        for start, end in np.asarray(masks.freq).reshape(-1, 2):
            out[:, start:end] = fill[start:end]
        for start, end in np.asarray(masks.time).reshape(-1, 2):
            out[start:end, :] = fill
        return out

    def __call__(self, x: np.ndarray, generator: np.random.Generator | None = None) -> np.ndarray:
        x = _check_features("SpecAugment", x)
        return self.apply(x, self.masks(x.shape[0], x.shape[1], generator))


def spec_augment(x: np.ndarray, n_time_masks: int = 2, time_mask_param: int = 10, n_freq_masks: int = 2,
                 freq_mask_param: int = 8, p: float = 0.2, zero_masking: bool = False, *,
                 generator: np.random.Generator | None = None) -> np.ndarray:
    """SpecAugment time and frequency masks on one utterance; see :class:`SpecAugment` for the draws and fill.

    Args:
        x : np.ndarray [shape=(T, F)], float. One utterance's features; not modified.
        n_time_masks, time_mask_param, n_freq_masks, freq_mask_param, p, zero_masking : as
            :class:`SpecAugment` (torchaudio's names; Park et al.'s m_T, T, m_F, F, p).
        generator : np.random.Generator or None (the generator ``rnnbp.manual_seed`` seeds).

    Returns:
        np.ndarray [shape=(T, F)], x's dtype: a masked copy.
    """
    return SpecAugment(n_time_masks, time_mask_param, n_freq_masks, freq_mask_param, p, zero_masking)(x, generator)


def _check_features(owner: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{owner}: expected one utterance's features of shape (T, F), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{owner}: expected float features, got dtype {x.dtype}")
    return x


# ------------------------------------------------------------------- audio
def _check_audio(owner: str, y) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"{owner}: expected mono samples of shape (n,), n > 0, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.floating):
        y = y.astype(np.float32)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{owner}: the samples hold NaN or Inf")
    return y


def speed_perturb(y: np.ndarray, factor: float) -> np.ndarray:
    """The audio played ``factor`` times as fast: about ``len(y) / factor`` samples, pitch scaled by ``factor``.

    Kaldi's speed perturbation: the samples are resampled by ``1 / factor`` (polyphase,
    ``scipy.signal.resample_poly``, its Kaiser-windowed anti-aliasing filter) and read at the
    original rate. ``factor`` is taken as the nearest fraction p/q with q <= 100 (0.9, 1.1,
    0.95 exactly). A sample index ``s`` of ``y`` lands near ``s / factor`` in the result
    (scale digit spans that way). A factor of 1 returns a copy.

    Args:
        y : np.ndarray [shape=(n,)], mono samples, n > 0.
        factor : float > 0, typically 0.9 to 1.1 (0.5 to 2 at most).

    Returns:
        np.ndarray [shape=(ceil(n * q / p),)], y's float dtype (float32 for integer input).

    Raises:
        ValueError: y not (n,) or not finite; factor not in [0.5, 2].
    """
    y = _check_audio("speed_perturb", y)
    factor = check_number("speed_perturb", "factor", factor, 0.5, 2.0)
    ratio = Fraction(factor).limit_denominator(_MAX_SPEED_DENOMINATOR)  # factor = p / q
    if ratio == 1:
        return y.copy()
    from scipy.signal import resample_poly  # lazy: scipy.signal takes a moment to import

    out = resample_poly(y, up=ratio.denominator, down=ratio.numerator)  # n * q / p samples
    return np.ascontiguousarray(out, dtype=y.dtype)


def add_noise(y: np.ndarray, snr_db: float, noise: np.ndarray | None = None, *,
              generator: np.random.Generator | None = None) -> np.ndarray:
    """``y`` plus noise scaled to exactly ``snr_db`` dB below it: ``10 log10(P_y / P_noise) = snr_db``.

    ``P`` is the mean square over all of ``y``'s samples (pauses included). The noise is white
    Gaussian when ``noise`` is None; otherwise a stretch of ``noise`` of ``len(y)`` samples from
    a random offset (repeated cyclically when it is shorter). It is scaled by its own drawn power,
    so the ratio holds to float rounding, not just on average. The sum is not clipped.

    Args:
        y : np.ndarray [shape=(n,)], mono samples, n > 0, not all zero.
        snr_db : float. The signal-to-noise ratio in dB (e.g. 20: noise 100 times weaker in power).
        noise : np.ndarray [shape=(m,)] or None. A noise recording at y's rate, m > 0, not all zero.
        generator : np.random.Generator or None (the generator ``rnnbp.manual_seed`` seeds).

    Returns:
        np.ndarray [shape=(n,)], y's float dtype (float32 for integer input).

    Raises:
        ValueError: y or noise not 1-D, empty, non-finite or silent (the ratio is undefined); snr_db
            not finite.
    """
    y = _check_audio("add_noise", y)
    snr_db = check_number("add_noise", "snr_db", snr_db)
    g = get_generator(generator)
    power = float(np.mean(np.square(y, dtype=np.float64)))
    if power == 0.0:
        raise ValueError("add_noise: the signal is silent (all samples 0), so no noise level gives an SNR")
    if noise is None:
        n = g.standard_normal(len(y))
    else:
        noise = _check_audio("add_noise (noise)", noise).astype(np.float64)
        start = int(g.integers(0, len(noise)))
        n = np.take(noise, np.arange(start, start + len(y)), mode="wrap")
    noise_power = float(np.mean(np.square(n)))
    if noise_power == 0.0:
        raise ValueError("add_noise: the noise is silent over the stretch used (all samples 0)")
    scale = math.sqrt(power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (y.astype(np.float64) + scale * n).astype(y.dtype)
