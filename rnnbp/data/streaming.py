"""Speech features of audio that arrives in pieces, equal to the whole recording's, for streaming recognisers.

A recogniser that runs while the audio arrives needs each feature frame as soon as it can be
known, and the same frames a model was trained on. :class:`StreamingFeatures` gives both::

    sf = StreamingFeatures(FeatureConfig(top_db=None))
    for chunk in chunks:               # e.g. 100 ms of samples at a time
        frames = sf.push(chunk)        # (k, F) float32, k >= 0: the frames this chunk completes
        ...                            # feed them to a unidirectional model with its state carried over
    frames = sf.finish()               # the last frames (the recording's end is known now)

Concatenated, the frames equal ``compute_features(whole_recording, config)`` up to float32
rounding (the mel projection is a matrix product whose blocking depends on the number of frames;
``tests/data/test_streaming_features.py`` bounds the difference).

Why it is exact: frame t is centred on sample ``t * hop_length``; with the utterance-wide floor
off (``top_db=None``) and no per-utterance normalisation, its static part (the log-mel or the
MFCC) depends on samples ``[t*hop - n_fft/2, t*hop + n_fft/2)`` only (zeros outside the
recording), so it is computed once that window has arrived. Deltas and delta-deltas are
Savitzky-Golay filters over ``delta_width`` static frames (edge frames repeated), so a frame is
complete once the ``delta_width // 2`` static frames after it exist. The look-ahead is
therefore ``(delta_width // 2) * hop + n_fft / 2`` samples (80 ms with the defaults at 8 kHz),
:attr:`StreamingFeatures.lookahead_samples`. Memory stays bounded: only the samples and static
frames that later frames still need are kept.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .features import FeatureConfig, compute_features

__all__ = ["StreamingFeatures"]


class StreamingFeatures:
    """Feature frames of audio given piece by piece: equal to :func:`rnnbp.data.compute_features` of the whole.

    Each static frame is computed with the library's own :func:`rnnbp.data.compute_features`
    (deltas off) on a piece of audio holding its whole window, as soon as that window has
    arrived; the deltas with librosa's ``delta`` (``mode="nearest"``, as the library) over the
    static frames kept. See the module docstring for why the result is the whole file's.

    Args:
        config : FeatureConfig with ``top_db=None`` and ``utterance_norm="none"`` (features that do
            not depend on the whole utterance; anything else is refused with a ValueError).

    Use: ``frames = sf.push(samples)`` for each piece, ``samples : np.ndarray [shape=(n,)]`` at
    ``config.sr`` (n >= 0); returns ``(k, config.n_features)`` float32, the frames completed, in
    order. ``sf.finish()`` at the end returns the rest (``1 + n_total // hop_length`` frames in
    all, as the whole file); after it, ``push`` raises and ``finish`` returns no frames.
    """

    def __init__(self, config: FeatureConfig):
        if not isinstance(config, FeatureConfig):
            raise TypeError(f"StreamingFeatures: expected a FeatureConfig, got {type(config).__name__}")
        if config.top_db is not None or config.utterance_norm != "none":
            raise ValueError("StreamingFeatures: the features must not depend on the whole utterance: need "
                             f"top_db=None and utterance_norm='none', got top_db={config.top_db!r}, "
                             f"utterance_norm={config.utterance_norm!r}; e.g. FeatureConfig(top_db=None)")
        self.config = config
        self._static_config = replace(config, deltas=0)
        self.hop, self.half = config.hop_length, config.n_fft // 2
        # Frames of audio kept before the first static frame still to compute: its window's left half,
        # and a whole window more, so that no piece given to compute_features is shorter than n_fft.
        self.context = -(-self.half // self.hop) + -(-config.n_fft // self.hop)
        self.lookahead = config.delta_width // 2 if config.deltas else 0  # static frames after a full frame
        self._audio = np.zeros(0, np.float32)  # samples from _audio_start on
        self._audio_start = 0
        self._received = 0
        self._static = np.zeros((0, self._static_config.n_features), np.float32)  # from _static_start on
        self._static_start = 0
        self._emitted = 0  # complete frames returned so far
        self.finished = False

    @property
    def lookahead_samples(self) -> int:
        """Samples after a frame's centre that must arrive before the frame is complete."""
        return self.lookahead * self.hop + self.half

    @property
    def frames_emitted(self) -> int:
        """Frames returned so far by :meth:`push` and :meth:`finish`."""
        return self._emitted

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Take the next samples (n,); return the frames they complete, (k, F) float32, in order (k >= 0)."""
        if self.finished:
            raise ValueError("StreamingFeatures.push: the stream was finished; make a new StreamingFeatures")
        samples = np.asarray(samples)
        if samples.ndim != 1:
            raise ValueError(f"StreamingFeatures.push: expected mono samples of shape (n,), got shape {samples.shape}")
        samples = samples.astype(np.float32, copy=False)
        self._audio = np.concatenate([self._audio, samples])
        self._received += len(samples)
        if self._received < self.half:
            return self._empty()
        # Static frame t is final once samples up to t*hop + half have arrived.
        self._add_static((self._received - self.half) // self.hop + 1, final=False)
        return self._complete(final=False)

    def finish(self) -> np.ndarray:
        """The end of the audio: the remaining frames (zeros past the end, edge frames repeated for the deltas)."""
        if self.finished:
            return self._empty()
        self.finished = True
        if self._received == 0:
            return self._empty()
        self._add_static(1 + self._received // self.hop, final=True)
        return self._complete(final=True)

    def _empty(self) -> np.ndarray:
        return np.zeros((0, self.config.n_features), np.float32)

    def _add_static(self, stop: int, final: bool) -> None:
        """Compute static frames up to ``stop`` (exclusive) from the samples kept."""
        first = self._static_start + len(self._static)
        if stop <= first:
            return
        begin = max(first - self.context, 0) * self.hop  # frames whose window starts at or after it are exact
        end = self._received if final else (stop - 1) * self.hop + self.half
        if not final and end - begin < self.config.n_fft:
            return  # too short a piece for one window yet (only at the very start)
        piece = self._audio[begin - self._audio_start:end - self._audio_start]
        static = compute_features(piece, self._static_config)  # frame j centred on sample begin + j*hop
        skip = first - begin // self.hop
        self._static = np.concatenate([self._static, static[skip:skip + stop - first]])

    def _complete(self, final: bool) -> np.ndarray:
        """The full frames (static + deltas) whose delta window is known now, or all of them at the end."""
        have = self._static_start + len(self._static)
        stop = have if final else max(have - self.lookahead, self._emitted)
        if stop <= self._emitted:
            return self._empty()
        window = self._static[max(self._emitted - self.lookahead, 0) - self._static_start:
                              stop + self.lookahead - self._static_start].T  # (C, W), clipped at the start
        lo = max(self._emitted - self.lookahead, 0)
        parts = [window]
        if self.config.deltas:
            import librosa  # lazy: librosa takes about a second to import

            parts += [librosa.feature.delta(window, width=self.config.delta_width, order=o, mode="nearest")
                      for o in range(1, self.config.deltas + 1)]
        frames = np.concatenate(parts, axis=0).T[self._emitted - lo:stop - lo]  # (k, F)
        self._emitted = stop
        self._forget()
        return np.ascontiguousarray(frames, dtype=np.float32)

    def _forget(self) -> None:
        """Drop static frames no delta window needs and samples no static window needs any more."""
        keep_from = max(self._emitted - self.lookahead, 0)
        self._static = self._static[keep_from - self._static_start:]
        self._static_start = keep_from
        next_static = self._static_start + len(self._static)
        audio_from = max(next_static - self.context, 0) * self.hop
        if audio_from > self._audio_start:
            self._audio = self._audio[audio_from - self._audio_start:]
            self._audio_start = audio_from

    def __repr__(self) -> str:
        return (f"StreamingFeatures(kind={self.config.kind!r}, n_features={self.config.n_features}, "
                f"lookahead_samples={self.lookahead_samples}, received={self._received}, "
                f"emitted={self._emitted}{', finished' if self.finished else ''})")
