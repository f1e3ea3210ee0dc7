"""Audio that is finite but absurd (float samples of 1e20) is refused by name, and so is a --model
file that is not a spoken-digit model; the demo says so in one line, without a traceback.

WAV files are written into pytest's temporary folders with soundfile; nothing is committed.
"""
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import rnnbp
from rnnbp.data import AudioFileError, FeatureConfig, Features, Normalizer, compute_features, extract_features
from rnnbp.data import feature_cache_path, file_features

from demo_loader import load_demo

sf = pytest.importorskip("soundfile")
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demos" / "spoken_digits.py"
demo = load_demo("spoken_digits.py")


def _tone(amplitude, n=4000, sr=8000):
    t = np.arange(n) / sr
    return amplitude * np.sin(2 * np.pi * 440 * t) + 0.1 * amplitude * np.sin(2 * np.pi * 1234 * t)


def _wav(folder, name, amplitude, subtype="FLOAT"):
    path = Path(folder) / name
    sf.write(path, _tone(amplitude).astype(np.float32 if subtype == "FLOAT" else np.float64), 8000,
             subtype=subtype)
    return path


# ------------------------------------------------------------- features
@pytest.mark.parametrize("amplitude", [1e20, -3e37, 1e18])
def test_file_features_of_absurd_audio_name_the_file(tmp_path, amplitude):
    loud = _wav(tmp_path, "loud.wav", amplitude)
    with pytest.raises(AudioFileError, match=r"loud\.wav: its features hold NaN or Inf: the samples reach"):
        file_features(loud)


@pytest.mark.parametrize("amplitude", [0.5, 1.0, 30.0, 1e15])
def test_loud_but_representable_audio_still_gives_finite_features(tmp_path, amplitude):
    feats = file_features(_wav(tmp_path, "ok.wav", amplitude))
    assert feats.shape == (1 + 4000 // 128, 39) and np.isfinite(feats).all()


def test_float64_samples_past_float32_are_refused_as_such(tmp_path):
    path = _wav(tmp_path, "huge64.wav", 1e200, subtype="DOUBLE")
    with pytest.raises(AudioFileError, match=r"huge64\.wav holds NaN or infinite samples \(or samples beyond"):
        file_features(path)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_extract_features_names_the_absurd_file_and_caches_nothing(tmp_path, n_jobs):
    ok, loud = _wav(tmp_path, "ok.wav", 0.5), _wav(tmp_path, "loud.wav", 1e20)
    cache = tmp_path / "cache"
    with pytest.raises(AudioFileError, match=r"loud\.wav: its features hold NaN or Inf"):
        extract_features([ok, loud], cache_dir=cache, n_jobs=n_jobs, progressbar=False)
    assert not cache.exists() or not list(cache.glob("features-*.npz"))


def test_a_cache_holding_nan_features_is_rebuilt_and_the_file_named(tmp_path):
    ok, loud = _wav(tmp_path, "ok.wav", 0.5), _wav(tmp_path, "loud.wav", 1e20)
    config, cache = FeatureConfig(), tmp_path / "cache"
    paths = [str(ok), str(loud)]
    path = feature_cache_path(paths, config, cache)
    cache.mkdir()
    frames = np.full((10, config.n_features), np.nan, dtype=np.float32)  # as written before features were checked
    np.savez(path, frames=frames, offsets=np.array([0, 5, 10]), key=np.array(path.stem.removeprefix("features-")))
    with warnings.catch_warnings(record=True) as seen, pytest.raises(AudioFileError, match=r"loud\.wav"):
        warnings.simplefilter("always")
        extract_features(paths, config, cache_dir=cache, n_jobs=1, progressbar=False)
    assert any("NaN or Inf features" in str(w.message) for w in seen)


def test_compute_features_refuses_absurd_and_nonfinite_samples():
    message = r"compute_features: its features hold NaN or Inf: the samples reach 1\.1e\+20"
    with pytest.raises(ValueError, match=message):
        compute_features(_tone(1e20).astype(np.float32))
    y = _tone(0.5)
    y[10] = np.nan
    with pytest.raises(ValueError, match="compute_features: the samples hold NaN or Inf"):
        compute_features(y)
    assert np.isfinite(compute_features(_tone(0.5))).all()


# ------------------------------------------------------------ the demo
def _tiny_model_file(folder, weights_nan=False) -> Path:
    """A spoken-digit model file as the demo's run saves it, untrained (no data needed)."""
    config = FeatureConfig()
    model_config = {"cell": "gru", "bidirectional": False, "hidden": 4, "layers": 1, "pool": "mean", "dropout": 0.0}
    model = demo.build_model(model_config, config.n_features)
    state = {k: np.asarray(v) for k, v in model.state_dict().items()}
    if weights_nan:
        state["head.bias"] = np.full_like(state["head.bias"], np.nan)
    rng = np.random.default_rng(0)
    norm = Normalizer().fit(Features.from_arrays([rng.standard_normal((20, config.n_features)).astype(np.float32)]))
    path = Path(folder) / ("nan_model.npz" if weights_nan else "model.npz")
    rnnbp.save({"model": state, "normalizer": norm.state_dict(), "features": config.to_dict(),
                "model_config": model_config}, path)
    return path


def _run_predict(wav, model):
    return subprocess.run([sys.executable, str(DEMO), "predict", str(wav), "--model", str(model)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def test_predict_on_absurd_audio_names_the_file_in_one_line(tmp_path):
    model = _tiny_model_file(tmp_path)
    ok, loud = _wav(tmp_path, "ok.wav", 0.5), _wav(tmp_path, "loud.wav", 1e20)
    got = demo.predict([ok], model, log=lambda s: None)  # the tiny model works on sane audio
    assert np.isfinite(got[0]["probs"]).all()
    with pytest.raises(AudioFileError, match=r"loud\.wav"):
        demo.main(["predict", str(loud), "--model", str(model)])
    run = _run_predict(loud, model)
    assert run.returncode != 0
    assert "nan" not in run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr
    assert lines[0].startswith("spoken_digits.py: audio file ") and "loud.wav: its features hold NaN" in lines[0]


def _other_files(folder):
    folder = Path(folder)
    rnnbp.save({"format": "rnnbp-trainer", "version": 1, "model": {"w": np.ones(2)}}, folder / "last.npz")
    rnnbp.save({"weights": np.ones(2), "step": 3}, folder / "other.npz")
    rnnbp.save([1, 2, 3], folder / "list.npz")
    rnnbp.save({"model": {}, "normalizer": {}, "features": {}, "model_config": {"cell": "gru"}}, folder / "cfg.npz")
    np.savez(folder / "plain.npz", a=np.ones(3))
    (folder / "text.npz").write_text("not a model")
    return [
        ("last.npz", r"last\.npz is a Trainer checkpoint .*not a spoken-digit model"),
        ("other.npz", r"other\.npz is an rnnbp file with entries \[step, weights\], not a spoken-digit model "
                      r"\(it lacks model, normalizer, features, model_config\)"),
        ("list.npz", r"list\.npz holds a list, not a spoken-digit model"),
        ("cfg.npz", r"cfg\.npz has a spoken-digit model's entries, but its model_config lacks bidirectional"),
        ("plain.npz", r"cannot read the model file .*plain\.npz"),
        ("text.npz", r"cannot read the model file .*text\.npz"),
    ]


def test_predict_with_a_file_that_is_not_a_spoken_digit_model(tmp_path):
    wav = _wav(tmp_path, "ok.wav", 0.5)
    for name, message in _other_files(tmp_path):
        with pytest.raises(demo.ModelFileError, match=message):
            demo.main(["predict", str(wav), "--model", str(tmp_path / name)])
    for name, message in _other_files(tmp_path)[:2]:  # the command line: one line, no traceback, exit 1
        run = _run_predict(wav, tmp_path / name)
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 1 and len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
        assert lines[0].startswith("spoken_digits.py: ") and "expected the model file a training run saves" in lines[0]


def test_predict_with_nan_weights_says_so_instead_of_printing_nan(tmp_path):
    wav = _wav(tmp_path, "ok.wav", 0.5)
    model = _tiny_model_file(tmp_path, weights_nan=True)
    printed = []
    with pytest.raises(demo.ModelFileError, match=r"nan_model\.npz gives NaN or Inf logits for .*ok\.wav"):
        demo.predict([wav], model, log=printed.append)
    assert printed == []
