"""rnnbp.data.connected_digits: trimming, seeded generation, spans, splits by take and by speaker, noise, features.

Most tests use a tiny synthetic FSDD written into tmp_path (tones in FSDD's naming scheme, with
silence and faint noise around them); the real recordings are used through RNNBP_DATA when it is
set (e.g. RNNBP_DATA=../shared/data), and those tests are skipped otherwise.
"""
import numpy as np
import pytest

from rnnbp.data import FSDD, FeatureConfig
from rnnbp.data.connected_digits import ConnectedDigits, ConnectedUtterance, _trimmed_clip, trim_silence
from rnnbp.data.download import DatasetNotFoundError

sf = pytest.importorskip("soundfile")

SR = 8000
SPEAKERS = ("ann", "bob", "cyd")
TAKES = 8  # takes 0-4 are the conventional test set, 5-7 train


def fake_recording(digit: int, speaker: int, take: int) -> np.ndarray:
    """A tone (pitch from the digit, level from the speaker) between stretches of faint noise."""
    rng = np.random.default_rng([digit, speaker, take])
    lead, word, tail = (int(SR * s) for s in (0.05 + 0.01 * take, 0.12 + 0.01 * digit, 0.08))
    t = np.arange(word) / SR
    y = np.concatenate([np.zeros(lead), (0.2 + 0.1 * speaker) * np.sin(2 * np.pi * (300 + 60 * digit) * t),
                        np.zeros(tail)])
    return (y + 1e-3 * rng.standard_normal(len(y))).astype(np.float32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> FSDD:
    """3 speakers x 10 digits x 8 takes of synthetic recordings, with a cache folder."""
    root = tmp_path_factory.mktemp("fsdd")
    folder = root / "recordings"
    folder.mkdir()
    for s, speaker in enumerate(SPEAKERS):
        for digit in range(10):
            for take in range(TAKES):
                sf.write(folder / f"{digit}_{speaker}_{take}.wav", fake_recording(digit, s, take), SR,
                         subtype="PCM_16")
    return FSDD.from_folder(folder, cache_dir=root / "cache")


def make(tiny, **kw) -> ConnectedDigits:
    return ConnectedDigits(fsdd=tiny, **{"n": 40, **kw})


def clip_of(ds: ConnectedDigits, r: int) -> np.ndarray:
    return ds._clip(int(r))


# ------------------------------------------------------------------ trimming
def test_trim_silence_finds_the_word_and_cuts_a_far_click():
    rng = np.random.default_rng(0)
    y = 1e-3 * rng.standard_normal(SR).astype(np.float32)  # 1 s of faint noise
    y[2000:4000] += 0.3 * np.sin(2 * np.pi * 440 * np.arange(2000) / SR).astype(np.float32)
    start, end = trim_silence(y)
    assert abs(start - 2000) <= 256 and abs(end - 4000) <= 256  # within a frame of the word
    y[7000:7010] += 0.5  # a click 375 ms after the word
    assert trim_silence(y) == (start, end)  # max_gap: cut
    assert trim_silence(y, max_gap=None)[1] >= 7000  # without it, kept
    assert trim_silence(np.zeros(100, np.float32)) == (0, 100)


def test_trim_silence_of_a_quiet_recording_uses_the_noise_floor():
    rng = np.random.default_rng(1)
    y = 2e-4 * rng.standard_normal(SR)  # noise 34 dB below the word, less than top_db=40
    y[1000:3000] += 0.01 * np.sin(2 * np.pi * 300 * np.arange(2000) / SR)
    start, end = trim_silence(y)
    assert abs(start - 1000) <= 256 and abs(end - 3000) <= 256
    assert trim_silence(y, floor_margin_db=None) == (0, SR)  # librosa's rule keeps it all


def test_trim_silence_without_the_additions_equals_librosa():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(2)
    for _ in range(5):
        y = (1e-3 * rng.standard_normal(int(rng.integers(2000, 9000)))).astype(np.float32)
        a = int(rng.integers(0, len(y) // 2))
        y[a:a + 800] += 0.2 * rng.standard_normal(800).astype(np.float32)
        ours = trim_silence(y, top_db=30, floor_margin_db=None, max_gap=None)
        theirs = librosa.effects.trim(y, top_db=30, frame_length=256, hop_length=64)[1]
        assert ours == tuple(int(v) for v in theirs)


def test_trim_silence_errors():
    with pytest.raises(ValueError, match=r"trim_silence: expected mono samples of shape \(n,\).*\(2, 3\)"):
        trim_silence(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="top_db"):
        trim_silence(np.ones(10), top_db=0)
    with pytest.raises(ValueError, match="hop_length must be a positive integer"):
        trim_silence(np.ones(10), hop_length=0)


# ----------------------------------------------------------------- generator
def test_items_are_audio_labels_spans_speaker(tiny):
    ds = make(tiny, min_digits=2, max_digits=4)
    item = ds[0]
    assert isinstance(item, ConnectedUtterance) and len(item) == 4
    audio, labels, spans, speaker = item
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert labels.dtype == np.int64 and spans.dtype == np.int64 and spans.shape == (len(labels), 2)
    assert speaker in SPEAKERS and ds.sample_rate == SR and len(ds) == 40


def test_generation_is_deterministic_in_any_order(tiny):
    ds = make(tiny, seed=3)
    forward = [ds[i] for i in range(len(ds))]
    again = make(tiny, seed=3)
    backward = [again[i] for i in reversed(range(len(ds)))][::-1]
    for a, b in zip(forward, backward):
        assert np.array_equal(a.audio, b.audio) and np.array_equal(a.labels, b.labels)
        assert np.array_equal(a.spans, b.spans) and a.speaker == b.speaker
    assert np.array_equal(ds[-1].audio, forward[-1].audio)
    other = make(tiny, seed=4)
    assert sum(np.array_equal(other[i].audio, forward[i].audio) for i in range(len(ds))) < 3
    test = make(tiny, seed=3, split="test")
    assert not np.array_equal(test[0].audio, forward[0].audio)


def test_labels_and_spans_match_the_joined_recordings(tiny):
    ds = make(tiny, n=60, min_digits=1, max_digits=7, seed=1)
    low, high = round(0.05 * SR), round(0.3 * SR)
    counts = set()
    for i in range(len(ds)):
        audio, labels, spans, speaker = ds[i]
        plan = ds.plan(i)
        k = len(labels)
        counts.add(k)
        assert 1 <= k <= 7 and spans.shape == (k, 2)
        assert np.all(spans[:, 0] < spans[:, 1]) and spans[0, 0] >= 0 and spans[-1, 1] <= len(audio)
        gaps = np.r_[spans[0, 0], spans[1:, 0] - spans[:-1, 1], len(audio) - spans[-1, 1]]  # (k + 1,) pauses
        assert np.array_equal(gaps, plan.pauses) and np.all((gaps >= low) & (gaps <= high))
        assert np.array_equal(labels, tiny.digit[plan.recordings])
        assert set(tiny.speaker[plan.recordings].tolist()) == {speaker}  # one speaker per utterance
        silent = np.ones(len(audio), bool)
        for (start, end), r in zip(spans.tolist(), plan.recordings.tolist()):
            assert np.array_equal(audio[start:end], clip_of(ds, r))  # the trimmed recording, unchanged
            silent[start:end] = False
        assert not np.any(audio[silent])  # pauses are silence
    assert counts == set(range(1, 8))  # every length is drawn
    assert ds.labels[5].tolist() == ds[5].labels.tolist() and ds.speakers[5] == ds[5].speaker
    assert ds.speakers.shape == (60,)


def test_recordings_are_trimmed(tiny):
    ds = make(tiny)
    r = int(np.flatnonzero((tiny.digit == 3) & (tiny.take == 6))[0])
    raw = sf.read(str(tiny.paths[r]), dtype="float32")[0]
    clip = clip_of(ds, r)
    word = int(SR * 0.15)  # 0.12 + 0.01 * 3 s of tone between 0.11 s and 0.08 s of noise
    assert len(clip) < len(raw) and abs(len(clip) - word) <= 2 * 256
    assert not clip.flags.writeable


def test_digit_count_range_is_respected(tiny):
    ds = make(tiny, min_digits=3, max_digits=3)
    assert {len(l) for l in ds.labels} == {3}


def test_take_split_keeps_test_takes_out_of_training(tiny):
    train, test = make(tiny, split="train", n=80), make(tiny, split="test", n=80)
    used_train = np.concatenate([train.plan(i).recordings for i in range(len(train))])
    used_test = np.concatenate([test.plan(i).recordings for i in range(len(test))])
    assert tiny.take[used_train].min() >= 5 and tiny.take[used_test].max() <= 4
    assert np.intersect1d(used_train, used_test).size == 0
    assert set(tiny.take[train.pool].tolist()) == {5, 6, 7} and set(tiny.take[test.pool].tolist()) == set(range(5))
    assert set(tiny.speaker[used_test].tolist()) == set(SPEAKERS)


def test_speaker_holdout_uses_only_the_held_out_voice_for_test(tiny):
    train = make(tiny, split="train", holdout_speaker="bob", n=60)
    test = make(tiny, split="test", holdout_speaker="bob", n=30)
    assert set(test.speakers.tolist()) == {"bob"} and "bob" not in set(train.speakers.tolist())
    used_test = np.concatenate([test.plan(i).recordings for i in range(len(test))])
    assert set(tiny.speaker[used_test].tolist()) == {"bob"} and set(tiny.take[test.pool].tolist()) == set(range(TAKES))
    used_train = np.concatenate([train.plan(i).recordings for i in range(len(train))])
    assert "bob" not in set(tiny.speaker[used_train].tolist())
    assert set(tiny.take[train.pool].tolist()) == set(range(TAKES))  # all takes of the others
    two = make(tiny, split="test", holdout_speaker=["ann", "cyd"])
    assert set(two.speakers.tolist()) == {"ann", "cyd"}
    with pytest.raises(ValueError, match=r"holdout_speaker=\('zed',\).*unknown speaker\(s\) \['zed'\]"):
        make(tiny, holdout_speaker="zed")
    with pytest.raises(ValueError, match="leaves no training"):
        make(tiny, holdout_speaker=SPEAKERS)


def test_validation_recordings_are_disjoint_from_training_whatever_the_seed(tiny):
    train = make(tiny, split="train", val_fraction=0.34, seed=0)
    val = make(tiny, split="val", val_fraction=0.34, seed=7)
    assert np.intersect1d(train.pool, val.pool).size == 0
    assert len(train.pool) + len(val.pool) == 3 * 10 * 3 and len(val.pool) == 30  # one of 3 takes per pair
    assert tiny.take[val.pool].min() >= 5
    assert np.array_equal(make(tiny, split="val", val_fraction=0.34, seed=1).pool, val.pool)
    used = np.concatenate([val.plan(i).recordings for i in range(len(val))])
    assert np.isin(used, val.pool).all()


def test_noise_keeps_the_content_and_has_the_target_snr(tiny):
    clean = make(tiny, n=10, seed=5)
    for snr in (0.0, 10.0, 25.0):
        noisy = make(tiny, n=10, seed=5, noise_snr_db=snr)
        for i in range(len(clean)):
            a, b = clean[i], noisy[i]
            assert np.array_equal(a.labels, b.labels) and np.array_equal(a.spans, b.spans)
            x, n = a.audio.astype(np.float64), b.audio.astype(np.float64) - a.audio
            measured = 10 * np.log10(np.mean(x ** 2) / np.mean(n ** 2))
            assert abs(measured - snr) < 0.5, (i, measured, snr)
            assert noisy.plan(i).snr_db == snr
    ranged = make(tiny, n=30, seed=5, noise_snr_db=(5, 15))
    drawn = [ranged.plan(i).snr_db for i in range(30)]
    assert all(5 <= s <= 15 for s in drawn) and len(set(drawn)) == 30
    i = 4
    x = clean[i].audio.astype(np.float64)
    measured = 10 * np.log10(np.mean(x ** 2) / np.mean((ranged[i].audio - x) ** 2))
    assert abs(measured - drawn[i]) < 0.5
    assert np.array_equal(ranged[i].audio, make(tiny, n=30, seed=5, noise_snr_db=(5, 15))[i].audio)


def test_argument_errors_name_the_argument(tiny):
    cases = [
        (dict(split="dev"), r"split must be one of \('train', 'val', 'test'\), got 'dev'"),
        (dict(n=0), "n must be a positive integer, got 0"),
        (dict(min_digits=0), "min_digits must be a positive integer"),
        (dict(min_digits=5, max_digits=2), "min_digits must be <= max_digits, got 5 and 2"),
        (dict(seed=-1), r"seed must be an integer >= 0, got -1"),
        (dict(pause=(0.3, 0.1)), r"pause must be a pair \(low, high\) with low <= high"),
        (dict(pause=-0.1), r"pause must be in \[0, inf\)"),
        (dict(noise_snr_db="loud"), r"noise_snr_db must be a number or a pair \(low, high\) or None"),
        (dict(split="val"), "split='val' needs val_fraction > 0"),
        (dict(val_fraction=1.0), r"val_fraction must be in \[0, 1\)"),
    ]
    for kw, message in cases:
        with pytest.raises(ValueError, match=message):
            make(tiny, **kw)
    with pytest.raises(ValueError, match="pass root or fsdd, not both"):
        ConnectedDigits("somewhere", fsdd=tiny)
    with pytest.raises(TypeError, match="fsdd must be an FSDD"):
        ConnectedDigits(fsdd="somewhere")
    ds = make(tiny, n=5)
    with pytest.raises(IndexError, match="index 5 is out of range for 5 utterances"):
        ds[5]
    with pytest.raises(TypeError, match="one integer index, got slice"):
        ds[1:3]


def test_missing_data_folder_is_a_dataset_error(tmp_path, monkeypatch):
    from rnnbp.data import connected_digits as cd
    from rnnbp.data import fsdd as fsdd_module

    def offline(url, output_file, pooch):
        raise ConnectionError("offline")

    monkeypatch.setattr(cd, "load_fsdd", lambda root, verify: fsdd_module.load_fsdd(root, verify=verify,
                                                                                      downloader=offline))
    with pytest.raises(DatasetNotFoundError, match="recordings are missing"):
        ConnectedDigits(tmp_path / "data")


def test_trimmed_clips_are_cached_by_file_stamp(tiny):
    ds = make(tiny)
    before = _trimmed_clip.cache_info()
    ds[0], ds[0]
    after = _trimmed_clip.cache_info()
    assert after.hits > before.hits


# ------------------------------------------------------------------ features
def test_features_are_cached_and_match_compute_features(tiny, tmp_path, monkeypatch):
    pytest.importorskip("librosa")
    from rnnbp.data import compute_features
    from rnnbp.data import connected_digits as cd

    ds = make(tiny, n=4, max_digits=2)
    config = FeatureConfig()
    feats = ds.features(config, cache=tmp_path, progressbar=False)
    files = list(tmp_path.glob("features-connected-*.npz"))
    assert len(files) == 1 and files[0] == ds.feature_cache_path(config, tmp_path)
    assert len(feats) == 4 and feats.n_features == 39
    for i in range(4):
        audio = ds[i].audio
        assert len(feats[i]) == 1 + len(audio) // config.hop_length
        np.testing.assert_allclose(feats[i], compute_features(audio, config), rtol=1e-5, atol=1e-5)

    def no_compute(*args, **kw):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(cd, "_utterance_features", no_compute)
    again = ds.features(config, cache=tmp_path, progressbar=False)
    assert np.array_equal(again.frames, feats.frames)
    normed = ds.features(FeatureConfig(utterance_norm="meanvar"), cache=tmp_path, progressbar=False)
    np.testing.assert_allclose(normed[0].mean(axis=0), 0, atol=1e-4)  # applied after the cache
    assert ds.feature_cache_path(config, tmp_path) != make(tiny, n=4, max_digits=2, seed=1).feature_cache_path(
        config, tmp_path)
    with pytest.raises(AssertionError, match="cache should have been used"):
        ds.features(config, cache=False, progressbar=False)
    with pytest.raises(ValueError, match="config.sr must be 8000"):
        ds.features(FeatureConfig(sr=16000), cache=False)
    with pytest.raises(TypeError, match="config must be a FeatureConfig"):
        ds.features({"sr": 8000})


def test_features_default_cache_is_the_fsdd_cache_folder(tiny):
    pytest.importorskip("librosa")
    ds = make(tiny, n=2, max_digits=1, seed=11)
    ds.features(progressbar=False)
    assert ds.feature_cache_path(FeatureConfig(), tiny.cache_dir).is_file()


# ------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def real_train(real_root):
    return ConnectedDigits(real_root, split="train", n=200, seed=0, verify="exists")


def test_real_conventional_split_by_take(real_root, real_train):
    test = ConnectedDigits(real_root, split="test", n=200, seed=0, verify="exists")
    fs = real_train.fsdd
    assert len(real_train.pool) == 2700 and len(test.pool) == 300
    used_train = np.concatenate([real_train.plan(i).recordings for i in range(200)])
    used_test = np.concatenate([test.plan(i).recordings for i in range(200)])
    assert fs.take[used_train].min() >= 5 and fs.take[used_test].max() <= 4
    assert set(fs.speaker[used_test].tolist()) == set(fs.speakers)
    audio, labels, spans, speaker = test[0]
    assert audio.dtype == np.float32 and np.all(np.diff(spans.ravel()) > 0) and spans[-1, 1] < len(audio)


def test_real_speaker_holdout(real_root):
    test = ConnectedDigits(real_root, split="test", holdout_speaker="nicolas", n=50, verify="exists")
    train = ConnectedDigits(real_root, split="train", holdout_speaker="nicolas", n=50, verify="exists")
    assert len(test.pool) == 500 and len(train.pool) == 2500
    assert set(test.speakers.tolist()) == {"nicolas"} and "nicolas" not in set(train.speakers.tolist())


def test_real_trimming_removes_long_silence(real_train):
    fs = real_train.fsdd
    r = fs.names.index("9_theo_16.wav")  # 2.3 s: a quiet word, 1.8 s of silence and a click at the end
    assert len(clip_of(real_train, r)) < 0.8 * SR
    some = np.random.default_rng(0).choice(len(fs), 100, replace=False)
    lengths = np.array([len(clip_of(real_train, r)) for r in some]) / SR
    assert 0.1 < lengths.min() and lengths.max() < 1.1 and 0.25 < np.median(lengths) < 0.5


def test_real_noise_snr(real_root, real_train):
    noisy = ConnectedDigits(real_root, split="train", n=200, seed=0, noise_snr_db=20.0, verify="exists")
    for i in (0, 17, 199):
        x = real_train[i].audio.astype(np.float64)
        measured = 10 * np.log10(np.mean(x ** 2) / np.mean((noisy[i].audio - x) ** 2))
        assert abs(measured - 20.0) < 0.5
