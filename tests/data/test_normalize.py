"""rnnbp.data.normalize: per-speaker mean/variance normalisation, its state dict and its errors."""
import numpy as np
import pytest

import rnnbp
from rnnbp.data import Features, Normalizer
from rnnbp.data.normalize import SpeakerNormalizer, normalize_by_speaker

F = 6


def voices(seed=0, per_speaker=5):
    """Utterances of three speakers, each with its own offset and scale per feature, and their names."""
    g = np.random.default_rng(seed)
    arrays, names = [], []
    for s, name in enumerate(("ann", "bob", "cyd")):
        shift, scale = g.normal(0, 5, F), g.uniform(0.5, 3, F)
        for _ in range(per_speaker):
            arrays.append((g.standard_normal((int(g.integers(3, 20)), F)) * scale + shift).astype(np.float32))
            names.append(name)
    order = g.permutation(len(arrays))  # speakers interleaved
    return [arrays[i] for i in order], [names[i] for i in order]


def frames_of(arrays, names, who):
    return np.concatenate([a for a, n in zip(arrays, names) if n == who]).astype(np.float64)


def test_each_speaker_gets_zero_mean_and_unit_variance_on_its_fitted_frames():
    arrays, names = voices()
    out = SpeakerNormalizer().fit_transform(arrays, names)
    assert isinstance(out, list) and [o.shape for o in out] == [a.shape for a in arrays]
    assert all(o.dtype == np.float32 for o in out)
    for who in ("ann", "bob", "cyd"):
        x = frames_of(out, names, who)
        np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(x.std(axis=0), 1, atol=1e-4)
    raw = frames_of(arrays, names, "ann")
    assert np.abs(raw.mean(axis=0)).max() > 0.5


def test_statistics_are_those_of_the_speaker_alone():
    arrays, names = voices(1)
    norm = SpeakerNormalizer().fit(arrays, names)
    assert norm.speakers == ("ann", "bob", "cyd") and norm.mean.shape == (3, F) and norm.mean.dtype == np.float32
    own = Normalizer().fit(frames_of(arrays, names, "bob"))
    np.testing.assert_allclose(norm.mean[1], own.mean, rtol=1e-6)
    np.testing.assert_allclose(norm.std[1], own.std, rtol=1e-6)
    one = arrays[names.index("bob")]
    np.testing.assert_allclose(norm.transform(one, "bob"), (one - own.mean) / own.std, rtol=1e-5, atol=1e-6)


def test_features_in_features_out_and_the_helper():
    arrays, names = voices(2)
    feats = Features.from_arrays(arrays)
    out = normalize_by_speaker(feats, np.array(names))
    assert isinstance(out, Features) and np.array_equal(out.offsets, feats.offsets)
    listed = SpeakerNormalizer().fit_transform(arrays, names)
    for i in range(len(arrays)):
        np.testing.assert_allclose(out[i], listed[i], rtol=1e-6, atol=1e-6)


def test_one_speaker_without_names():
    arrays, _ = voices(3)
    norm = SpeakerNormalizer().fit(arrays)
    assert norm.speakers == ("",)
    x = np.concatenate(norm.transform(arrays)).astype(np.float64)
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-5)
    single = norm.fit_transform(arrays[0])  # one (T, F) array: one utterance
    assert isinstance(single, np.ndarray) and single.shape == arrays[0].shape
    np.testing.assert_allclose(single.mean(axis=0), 0, atol=1e-5)


def test_constant_feature_stays_finite():
    x = np.ones((10, F), np.float32)
    out = SpeakerNormalizer().fit_transform([x], "ann")
    assert np.all(out[0] == 0)


def test_state_dict_round_trips_through_save(tmp_path):
    arrays, names = voices(4)
    norm = SpeakerNormalizer().fit(arrays, names)
    state = norm.state_dict()
    assert set(state) == {"speakers", "mean", "std"} and state["speakers"].tolist() == ["ann", "bob", "cyd"]
    rnnbp.save({"norm": state}, tmp_path / "n.npz")
    back = SpeakerNormalizer.from_state_dict(rnnbp.load(tmp_path / "n.npz")["norm"])
    for a, b in zip(back.transform(arrays, names), norm.transform(arrays, names)):
        assert np.array_equal(a, b)
    shuffled = {"speakers": state["speakers"][::-1], "mean": state["mean"][::-1], "std": state["std"][::-1]}
    again = SpeakerNormalizer.from_state_dict(shuffled)  # any order: sorted on load
    assert again.speakers == ("ann", "bob", "cyd") and np.array_equal(again.mean, norm.mean)
    state["mean"][:] = 99
    assert not np.any(norm.mean == 99)  # the state dict holds copies


def test_errors_name_the_problem():
    arrays, names = voices(5)
    with pytest.raises(ValueError, match="SpeakerNormalizer.fit: got no utterances"):
        SpeakerNormalizer().fit([])
    with pytest.raises(ValueError, match=r"utterance 2 has 4 features \(shape \(3, 4\)\) but utterance 0 has 6"):
        SpeakerNormalizer().fit([np.zeros((2, 6)), np.zeros((3, 6)), np.zeros((3, 4))])
    with pytest.raises(ValueError, match=r"must be a 2-D array \(T, F\); got shapes \[\(1, \(5,\)\)\]"):
        SpeakerNormalizer().fit([np.zeros((2, 6)), np.zeros(5)])
    with pytest.raises(ValueError, match=r"one name per utterance \(15\), got shape \(2,\)"):
        SpeakerNormalizer().fit(arrays, ["ann", "bob"])
    with pytest.raises(ValueError, match="speaker 'bob' has no frames"):
        SpeakerNormalizer().fit([np.zeros((3, F)), np.zeros((0, F))], ["ann", "bob"])
    with pytest.raises(ValueError, match="speaker 'ann' hold NaN or Inf"):
        SpeakerNormalizer().fit([np.full((3, F), np.nan)], "ann")
    with pytest.raises(TypeError, match="expected Features, a sequence of"):
        SpeakerNormalizer().fit("utterances")
    with pytest.raises(ValueError, match="eps must be a number > 0"):
        SpeakerNormalizer(eps=0)
    norm = SpeakerNormalizer()
    with pytest.raises(ValueError, match="transform: not fitted"):
        norm.transform(arrays, names)
    with pytest.raises(ValueError, match="state_dict: not fitted"):
        norm.state_dict()
    norm.fit(arrays, names)
    with pytest.raises(ValueError, match=r"utterance 0 has 4 features .* but the fitted statistics have 6"):
        norm.transform([np.zeros((3, 4))], "ann")
    with pytest.raises(ValueError, match=r"no statistics for speaker\(s\) \['zed'\]; fitted speakers are "
                                         r"\['ann', 'bob', 'cyd'\]"):
        norm.transform(arrays[:1], "zed")
    with pytest.raises(ValueError, match=r"missing keys \['std'\], unexpected keys \['var'\]"):
        SpeakerNormalizer().load_state_dict({"speakers": np.array(["a"]), "mean": np.zeros((1, 2)),
                                             "var": np.ones((1, 2))})
    with pytest.raises(ValueError, match=r"shapes must be .*; speakers are repeated; every std must be > 0"):
        SpeakerNormalizer().load_state_dict({"speakers": np.array(["a", "a"]), "mean": np.zeros((3, 2)),
                                             "std": np.zeros((3, 2))})
