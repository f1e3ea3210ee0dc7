"""rnnbp.data.features: reading audio, MFCC/log-mel with deltas, the on-disk cache, normalisation.

Audio is synthetic (sine tones written by the tests); the real recordings are used through
RNNBP_DATA when it is set, and those tests are skipped otherwise.
"""
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import rnnbp
from rnnbp.data import (
    AudioFileError, FeatureConfig, Features, Normalizer, compute_features, extract_features, feature_cache_path,
    file_features, load_fsdd, read_audio,
)
from rnnbp.data import features as features_module

sf = pytest.importorskip("soundfile")
librosa = pytest.importorskip("librosa")

SR = 8000


def tone(freq: float, seconds: float, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path: Path, y: np.ndarray, sr: int = SR) -> Path:
    sf.write(path, y, sr, subtype="PCM_16")
    return path


@pytest.fixture
def wavs(tmp_path):
    """Twelve tones of different pitch and length, named like FSDD recordings."""
    folder = tmp_path / "wavs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for digit in range(3):
        for take in range(4):
            y = tone(300 + 250 * digit + 20 * take, 0.15 + 0.05 * take) + 0.01 * rng.standard_normal(
                int(round((0.15 + 0.05 * take) * SR))).astype(np.float32)
            paths.append(write(folder / f"{digit}_test_{take}.wav", y))
    return paths


@pytest.fixture
def count_extractions(monkeypatch):
    """Count calls of the per-file extractor (in-process: n_jobs=1)."""
    calls = []
    real = features_module._extract_raw

    def counting(path, config):
        calls.append(path)
        return real(path, config)

    monkeypatch.setattr(features_module, "_extract_raw", counting)
    return calls


def cache_files(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ------------------------------------------------------------------ config
def test_default_config_is_39_mfcc_features_for_8_khz():
    cfg = FeatureConfig()
    assert (cfg.kind, cfg.sr, cfg.n_fft, cfg.hop_length, cfg.n_mels, cfg.n_mfcc, cfg.deltas) == \
        ("mfcc", 8000, 256, 128, 40, 13, 2)
    assert cfg.n_features == 39
    assert FeatureConfig(kind="logmel").n_features == 120 and FeatureConfig(kind="logmel", deltas=0).n_features == 40
    assert FeatureConfig(deltas=1).n_features == 26
    with pytest.raises(AttributeError):
        cfg.n_mfcc = 20  # frozen
    assert hash(cfg) == hash(FeatureConfig()) and cfg == FeatureConfig()


def test_config_round_trips_through_a_checkpoint(tmp_path):
    cfg = FeatureConfig(kind="logmel", n_mels=32, fmax=3800.0, top_db=None, utterance_norm="mean")
    rnnbp.save({"features": cfg.to_dict()}, tmp_path / "c.npz")
    assert FeatureConfig.from_dict(rnnbp.load(tmp_path / "c.npz")["features"]) == cfg
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['n_fftt'\]"):
        FeatureConfig.from_dict({"n_fftt": 512})
    assert "utterance_norm" not in cfg.cache_fields() and cfg.cache_fields()["n_mels"] == 32


def test_config_reports_every_bad_field_at_once():
    with pytest.raises(ValueError) as info:
        FeatureConfig(kind="mel", hop_length=0, n_mfcc=50, deltas=3, delta_width=4, utterance_norm="z",
                      fmax=5000.0)
    message = str(info.value)
    for part in ("kind must be one of", "hop_length must be an int > 0, got 0", "n_mfcc must be <= n_mels=40",
                 "deltas must be 0, 1 or 2", "delta_width must be an odd int >= 3", "utterance_norm",
                 "fmax must be None or in (fmin=0.0, sr/2=4000.0]"):
        assert part in message, part
    with pytest.raises(ValueError, match="n_fft must be an int > 0, got True"):
        FeatureConfig(n_fft=True)


# ------------------------------------------------------------------- audio
def test_read_audio_gives_mono_float32_at_the_asked_rate(tmp_path):
    y = tone(440, 0.25)
    assert np.allclose(read_audio(write(tmp_path / "a.wav", y)), y, atol=1e-4)
    stereo = np.stack([y, np.zeros_like(y)], axis=1)
    mono = read_audio(write(tmp_path / "s.wav", stereo))
    assert mono.dtype == np.float32 and mono.shape == y.shape and np.allclose(mono, y / 2, atol=1e-4)
    resampled = read_audio(write(tmp_path / "r.wav", tone(440, 0.25, sr=16000), sr=16000), sr=SR)
    assert resampled.dtype == np.float32 and abs(len(resampled) - len(y)) <= 1


def test_truncated_wav_raises_naming_the_file(tmp_path):
    whole = write(tmp_path / "3_test_7.wav", tone(440, 0.5)).read_bytes()
    cut = tmp_path / "3_test_7.wav"
    cut.write_bytes(whole[:len(whole) // 2])  # the header still promises every sample
    with pytest.raises(AudioFileError, match=r"3_test_7\.wav is truncated: its data chunk declares 8000 bytes"):
        read_audio(cut)
    cut.write_bytes(whole[:30])  # cut inside the header
    with pytest.raises(AudioFileError, match=r"3_test_7\.wav") as info:
        read_audio(cut)
    assert isinstance(info.value.__cause__, RuntimeError)  # soundfile's error, kept as the cause
    assert isinstance(info.value, OSError)


@pytest.mark.parametrize("content, match", [
    (b"", r"bad\.wav"),
    (b"this is not audio at all, just text" * 10, r"bad\.wav.*(Format not recognised|Error)"),
])
def test_unreadable_files_raise_naming_the_file(tmp_path, content, match):
    (tmp_path / "bad.wav").write_bytes(content)
    with pytest.raises(AudioFileError, match=match):
        read_audio(tmp_path / "bad.wav")


def test_missing_and_empty_files_raise_naming_the_file(tmp_path):
    with pytest.raises(AudioFileError, match=r"nowhere\.wav"):
        read_audio(tmp_path / "nowhere.wav")
    write(tmp_path / "empty.wav", np.zeros(0, np.float32))
    with pytest.raises(AudioFileError, match=r"empty\.wav holds no samples"):
        read_audio(tmp_path / "empty.wav")


# ---------------------------------------------------------------- features
def test_features_have_one_frame_per_hop_and_float32(wavs):
    cfg = FeatureConfig()
    feats = extract_features(wavs, cfg, n_jobs=1, progressbar=False)
    assert isinstance(feats, Features) and len(feats) == len(wavs)
    assert feats.frames.dtype == np.float32 and feats.n_features == 39
    expected = [1 + sf.info(str(p)).frames // cfg.hop_length for p in wavs]
    assert feats.lengths.tolist() == expected
    for i, p in enumerate(wavs):
        assert np.array_equal(feats[i], file_features(p, cfg))  # the prediction-time path gives the same numbers
        assert feats[i].shape == (expected[i], 39) and np.all(np.isfinite(feats[i]))


def test_mfcc_and_deltas_match_librosa(tmp_path):
    y = tone(500, 0.4) + tone(1300, 0.4, amp=0.1)
    cfg = FeatureConfig()
    feats = compute_features(y, cfg)
    mfcc = librosa.feature.mfcc(y=y, sr=SR, n_fft=256, hop_length=128, n_mels=40, n_mfcc=13)  # (13, T)
    assert feats.shape == (mfcc.shape[1], 39)
    np.testing.assert_allclose(feats[:, :13], mfcc.T, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(feats[:, 13:26], librosa.feature.delta(mfcc, width=9, mode="nearest").T,
                               rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(feats[:, 26:], librosa.feature.delta(mfcc, width=9, order=2, mode="nearest").T,
                               rtol=1e-4, atol=1e-3)


def test_log_mel_of_a_tone_peaks_in_the_band_of_its_pitch():
    cfg = FeatureConfig(kind="logmel", deltas=0)
    centres = librosa.mel_frequencies(n_mels=cfg.n_mels + 2, fmax=SR / 2)[1:-1]
    for freq in (300.0, 1000.0, 2500.0):
        logmel = compute_features(tone(freq, 0.5), cfg)  # (T, 40)
        assert logmel.shape[1] == 40
        assert abs(centres[np.argmax(logmel.mean(axis=0))] - freq) < 0.1 * freq, freq


def test_short_utterances_get_deltas_too():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # librosa: "n_fft=256 is too large for input signal"
        feats = compute_features(tone(440, 0.01))  # 80 samples: 1 frame, fewer than the 9-frame delta window
    assert feats.shape == (1, 39) and np.allclose(feats[:, 13:], 0, atol=1e-6)


def test_utterance_normalisation():
    y = tone(700, 0.5) + 0.05 * np.random.default_rng(1).standard_normal(4000).astype(np.float32)
    mean = compute_features(y, FeatureConfig(utterance_norm="mean"))
    assert np.allclose(mean.mean(axis=0), 0, atol=1e-4)
    mv = compute_features(y, FeatureConfig(utterance_norm="meanvar"))
    assert np.allclose(mv.mean(axis=0), 0, atol=1e-4) and np.allclose(mv.std(axis=0), 1, atol=1e-3)
    raw = compute_features(y)
    assert np.allclose(mean, raw - raw.mean(axis=0), atol=1e-4)


def test_parallel_extraction_equals_serial(wavs):
    serial = extract_features(wavs, n_jobs=1, progressbar=False)
    parallel = extract_features(wavs, n_jobs=2, progressbar=False)
    assert np.array_equal(serial.frames, parallel.frames) and np.array_equal(serial.offsets, parallel.offsets)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_truncated_file_among_many_is_named(wavs, n_jobs, tmp_path):
    data = wavs[5].read_bytes()
    wavs[5].write_bytes(data[:len(data) - 300])
    with pytest.raises(AudioFileError, match=r"1_test_1\.wav is truncated"):
        extract_features(wavs, n_jobs=n_jobs, cache_dir=tmp_path / "cache", progressbar=False)
    assert cache_files(tmp_path / "cache") == []


def test_extract_features_rejects_bad_arguments(wavs):
    with pytest.raises(ValueError, match="got no files"):
        extract_features([], progressbar=False)
    with pytest.raises(ValueError, match="n_jobs must be a non-zero int"):
        extract_features(wavs, n_jobs=0)
    with pytest.raises(TypeError, match="FeatureConfig"):
        extract_features(wavs, {"n_mfcc": 13})
    with pytest.raises(AudioFileError, match=r"missing\.wav"):
        extract_features([*wavs, wavs[0].parent / "missing.wav"], cache_dir=wavs[0].parent / "c")


# ------------------------------------------------------------------- cache
def test_cache_is_reused_and_rebuilt_when_parameters_change(wavs, tmp_path, count_extractions):
    cache = tmp_path / "cache"
    first = extract_features(wavs, cache_dir=cache, n_jobs=1, progressbar=False)
    assert len(count_extractions) == len(wavs)
    assert cache_files(cache) == [feature_cache_path(wavs, FeatureConfig(), cache).name]

    again = extract_features(wavs, cache_dir=cache, n_jobs=1, progressbar=False)
    assert len(count_extractions) == len(wavs)  # loaded, not extracted
    assert np.array_equal(again.frames, first.frames) and np.array_equal(again.offsets, first.offsets)

    normed = extract_features(wavs, FeatureConfig(utterance_norm="mean"), cache_dir=cache, n_jobs=1,
                              progressbar=False)
    assert len(count_extractions) == len(wavs)  # per-utterance normalisation runs after the cache
    assert np.allclose(normed[3], first[3] - first[3].mean(axis=0), atol=1e-4)

    other = extract_features(wavs, FeatureConfig(n_mfcc=20), cache_dir=cache, n_jobs=1, progressbar=False)
    assert len(count_extractions) == 2 * len(wavs) and other.n_features == 60
    assert len(cache_files(cache)) == 2  # both configs stay cached

    extract_features(wavs[:5], cache_dir=cache, n_jobs=1, progressbar=False)  # another file list
    assert len(count_extractions) == 2 * len(wavs) + 5


def test_cache_is_rebuilt_when_a_file_changes(wavs, tmp_path, count_extractions):
    cache = tmp_path / "cache"
    before = extract_features(wavs, cache_dir=cache, n_jobs=1, progressbar=False)
    write(wavs[2], tone(2000, 0.3))
    st = wavs[2].stat()
    os.utime(wavs[2], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a new mtime even on coarse clocks
    after = extract_features(wavs, cache_dir=cache, n_jobs=1, progressbar=False)
    assert len(count_extractions) == 2 * len(wavs)
    assert not np.array_equal(before[2], after[2]) and np.array_equal(before[1], after[1])


def test_interrupted_extraction_leaves_no_cache_and_the_next_call_rebuilds(wavs, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    real = features_module._extract_raw
    calls = []

    def dies_on_the_fifth(path, config):
        calls.append(path)
        if len(calls) == 5:
            raise KeyboardInterrupt  # Ctrl-C mid-extraction
        return real(path, config)

    monkeypatch.setattr(features_module, "_extract_raw", dies_on_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        extract_features(wavs, cache_dir=cache, n_jobs=1, progressbar=False)
    assert cache_files(cache) == []
    feats = extract_features(wavs, cache_dir=cache, n_jobs=1, progressbar=False)
    assert len(calls) == 5 + len(wavs)  # everything extracted again
    assert np.array_equal(feats.frames, extract_features(wavs, n_jobs=1, progressbar=False).frames)
    assert len(cache_files(cache)) == 1


def test_interrupted_cache_write_leaves_no_file(wavs, tmp_path, monkeypatch, count_extractions):
    cache = tmp_path / "cache"
    savez = np.savez

    def dies_mid_write(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", dies_mid_write)
    with pytest.raises(KeyboardInterrupt):
        extract_features(wavs, cache_dir=cache, n_jobs=1, progressbar=False)
    assert cache_files(cache) == []  # neither the cache file nor its temp file
    monkeypatch.setattr(np, "savez", savez)
    extract_features(wavs, cache_dir=cache, n_jobs=1, progressbar=False)
    assert len(count_extractions) == 2 * len(wavs) and len(cache_files(cache)) == 1


def test_a_corrupt_cache_file_is_rebuilt_with_a_warning(wavs, tmp_path, count_extractions):
    cache = tmp_path / "cache"
    good = extract_features(wavs, cache_dir=cache, n_jobs=1, progressbar=False)
    path = feature_cache_path(wavs, FeatureConfig(), cache)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(RuntimeWarning, match="unreadable cache file"):
        again = extract_features(wavs, cache_dir=cache, n_jobs=1, progressbar=False)
    assert np.array_equal(again.frames, good.frames) and len(count_extractions) == 2 * len(wavs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        extract_features(wavs, cache_dir=cache, n_jobs=1, progressbar=False)  # repaired
    assert len(count_extractions) == 2 * len(wavs)


def test_cache_file_holds_no_pickles(wavs, tmp_path):
    extract_features(wavs, cache_dir=tmp_path, n_jobs=1, progressbar=False)
    with np.load(feature_cache_path(wavs, FeatureConfig(), tmp_path), allow_pickle=False) as z:
        assert set(z.files) == {"frames", "offsets", "key", "files", "config"}
        assert z["frames"].dtype == np.float32 and z["offsets"].shape == (len(wavs) + 1,)
        assert [Path(p).name for p in z["files"]] == [p.name for p in wavs]


def test_an_unwritable_cache_folder_warns_and_still_returns(wavs, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(RuntimeWarning, match="could not write the cache"):
        feats = extract_features(wavs, cache_dir=blocker / "cache", n_jobs=1, progressbar=False)
    assert len(feats) == len(wavs)


# -------------------------------------------------------------- Normalizer
def test_normalizer_standardises_training_frames_and_saves(tmp_path):
    rng = np.random.default_rng(0)
    arrays = [(rng.standard_normal((t, 3)) * [1, 10, 0] + [5, -2, 7]).astype(np.float32) for t in (4, 9, 6)]
    feats = Features.from_arrays(arrays)
    norm = Normalizer().fit(feats)
    out = norm.transform(feats)
    assert isinstance(out, Features) and out.frames.dtype == np.float32
    assert np.allclose(out.frames.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(out.frames.std(axis=0)[:2], 1, atol=1e-4) and np.all(out.frames[:, 2] == 0)  # constant
    assert np.allclose(norm.transform(arrays[1]), out[1])  # one utterance at prediction time
    assert np.allclose(Normalizer().fit(arrays).mean, norm.mean)  # a list of arrays fits the same

    rnnbp.save({"normalizer": norm.state_dict()}, tmp_path / "n.npz")
    loaded = Normalizer.from_state_dict(rnnbp.load(tmp_path / "n.npz")["normalizer"])
    assert np.array_equal(loaded.transform(arrays[0]), norm.transform(arrays[0]))


def test_normalizer_errors():
    with pytest.raises(ValueError, match="not fitted"):
        Normalizer().transform(np.zeros((2, 3)))
    norm = Normalizer().fit(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\), got shape \(2, 5\)"):
        norm.transform(np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"missing keys \['std'\], unexpected keys \['var'\]"):
        Normalizer.from_state_dict({"mean": np.zeros(3), "var": np.ones(3)})
    with pytest.raises(ValueError, match="std must be > 0"):
        Normalizer.from_state_dict({"mean": np.zeros(3), "std": np.zeros(3)})


def test_importing_rnnbp_data_loads_no_audio_library():
    code = ("import sys, rnnbp, rnnbp.data; "
            "print(sorted(m for m in ('librosa', 'soundfile', 'joblib', 'pooch', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def real(real_root):
    return load_fsdd(real_root, verify="exists")


def test_real_recordings_give_39_features_per_16_ms(real, tmp_path):
    one_each = real.subset(real.take == 7)  # 60: every digit and speaker once
    feats = one_each.features(cache_dir=tmp_path, n_jobs=1, progressbar=False)
    frames = np.array([sf.info(str(p)).frames for p in one_each.paths])
    assert feats.lengths.tolist() == (1 + frames // 128).tolist()
    assert feats.n_features == 39 and feats.frames.dtype == np.float32 and np.all(np.isfinite(feats.frames))
    assert 9 <= feats.lengths.min() and feats.lengths.max() <= 143  # 16 ms frames of 0.14 s to 2.3 s
    assert np.array_equal(one_each.features(cache_dir=tmp_path, progressbar=False).frames, feats.frames)
