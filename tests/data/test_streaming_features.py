"""rnnbp.data.streaming: features computed chunk by chunk equal the whole recording's, as early as they can.

No data needed: synthetic audio (noise bursts of rising loudness with a stretch of digital silence).
"""
import numpy as np
import pytest

from rnnbp.data import FeatureConfig, compute_features
from rnnbp.data.streaming import StreamingFeatures

# A one-sample recording is shorter than a window: librosa warns, for the whole file as for the stream.
pytestmark = pytest.mark.filterwarnings("ignore:n_fft=.* is too large:UserWarning")


def _audio(n: int, seed: int = 0) -> np.ndarray:
    """(n,) float32: loudness rising from 0.01 to 0.3, modulated, digital silence over the middle sixth."""
    g = np.random.default_rng(seed)
    y = g.standard_normal(n) * np.linspace(0.01, 0.3, n) * (1 + np.sin(np.arange(n) / 300))
    y[n // 3:n // 2] = 0
    return y.astype(np.float32)


def _stream(sf: StreamingFeatures, y: np.ndarray, chunks) -> np.ndarray:
    """Push ``y`` in pieces of the given sizes (cycled), then finish; all frames, (T, F)."""
    parts, start, k = [], 0, 0
    while start < len(y):
        size = chunks[k % len(chunks)]
        parts.append(sf.push(y[start:start + size]))
        start, k = start + size, k + 1
    parts.append(sf.finish())
    assert all(p.dtype == np.float32 and p.shape[1:] == (sf.config.n_features,) for p in parts)
    return np.concatenate(parts)


# Equal up to float32 rounding (the mel projection's product is blocked differently): features
# reach hundreds (c0 of digital silence is about -632), the differences stay below 1e-4.
TOL = dict(rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("n", [1, 300, 1000, 12345])
@pytest.mark.parametrize("chunk", [1, 37, 800, 100_000])
@pytest.mark.parametrize("delta_width", [9, 5])
def test_chunked_features_equal_whole_file_features(n, chunk, delta_width):
    config = FeatureConfig(top_db=None, delta_width=delta_width)
    y = _audio(n)
    whole = compute_features(y, config)
    sf = StreamingFeatures(config)
    got = _stream(sf, y, [chunk])
    assert got.shape == whole.shape == (1 + n // config.hop_length, config.n_features)
    np.testing.assert_allclose(got, whole, **TOL)
    assert sf.frames_emitted == len(whole)
    # Memory stays bounded: a few windows of samples and a delta window of static frames.
    assert len(sf._audio) <= 4 * config.n_fft and len(sf._static) <= delta_width


@pytest.mark.parametrize("config", [
    FeatureConfig(top_db=None, kind="logmel"),                 # 40 log-mel bands + deltas
    FeatureConfig(top_db=None, deltas=0),                      # static only: no look-ahead beyond the window
    FeatureConfig(top_db=None, deltas=1, n_fft=512, hop_length=160),  # a window of 3.2 hops
], ids=["logmel", "static", "long-window"])
def test_other_configs_and_ragged_chunks(config):
    y = _audio(9001, seed=2)
    got = _stream(StreamingFeatures(config), y, [100, 1, 333, 7, 1600])  # ragged, some shorter than a hop
    np.testing.assert_allclose(got, compute_features(y, config), **TOL)


def test_100ms_chunks_of_a_real_length_utterance():
    """The demo's case: 800-sample (100 ms at 8 kHz) chunks of 2.5 s, every chunk's frames known at once."""
    config = FeatureConfig(top_db=None)
    y = _audio(20_000, seed=4)
    sf = StreamingFeatures(config)
    counts = [len(sf.push(y[s:s + 800])) for s in range(0, len(y), 800)]
    # After the first chunk (640 samples of look-ahead), each 100 ms chunk completes 6 or 7 frames of 16 ms.
    assert counts[0] == 2 and set(counts[1:]) <= {6, 7}
    assert sum(counts) + len(sf.finish()) == 1 + len(y) // 128


def test_frames_are_emitted_as_soon_as_their_windows_arrived():
    config = FeatureConfig(top_db=None)  # 256-sample windows every 128, deltas over 9 frames
    sf = StreamingFeatures(config)
    assert sf.lookahead_samples == 4 * 128 + 128  # 80 ms at 8 kHz
    # Full frame t is complete once sample t*128 + 4*128 + 128 has arrived: frame 0 with sample 640.
    assert len(sf.push(np.zeros(639, np.float32))) == 0
    assert len(sf.push(np.zeros(1, np.float32))) == 1
    assert len(sf.push(_audio(127))) == 0 and len(sf.push(_audio(1))) == 1  # 768 samples: frame 1
    assert len(sf.push(_audio(832))) == 6  # 1,600 samples: static frames 0..11 final, full frames 0..7
    assert len(sf.push(np.zeros(0, np.float32))) == 0
    assert len(sf.finish()) == 1 + 1600 // 128 - 8
    assert len(sf.finish()) == 0 and sf.finished
    with pytest.raises(ValueError, match="finished"):
        sf.push(np.zeros(10))


def test_no_audio_gives_no_frames():
    sf = StreamingFeatures(FeatureConfig(top_db=None))
    assert sf.push(np.zeros(0)).shape == (0, 39)
    assert sf.finish().shape == (0, 39)


def test_refuses_utterance_wide_settings_and_bad_input():
    with pytest.raises(ValueError, match="top_db=None"):
        StreamingFeatures(FeatureConfig())  # top_db=80: floored below the whole utterance's peak
    with pytest.raises(ValueError, match="utterance_norm"):
        StreamingFeatures(FeatureConfig(top_db=None, utterance_norm="mean"))
    with pytest.raises(TypeError, match="FeatureConfig"):
        StreamingFeatures({"top_db": None})
    sf = StreamingFeatures(FeatureConfig(top_db=None))
    with pytest.raises(ValueError, match=r"StreamingFeatures.push: expected mono samples of shape \(n,\), got shape "
                                         r"\(2, 400\)"):
        sf.push(np.zeros((2, 400)))
    with pytest.raises(ValueError, match="NaN or Inf"):
        sf.push(np.full(1000, np.nan))
