"""demos/spoken_digits.py: the --quick run learns, reports and saves; predict agrees with it; padding changes nothing.

The tests that need the FSDD recordings look for them in $RNNBP_DATA (CI sets
RNNBP_DATA=../shared/data), then ../shared/data beside the checkout, then datasets/; they
are skipped, with the reason, when none holds them. The padding tests need no data.
"""
import os
from pathlib import Path

import numpy as np
import pytest

import rnnbp
from rnnbp.data import AudioFileError, Features, file_features, pad_sequences

from demo_loader import load_demo

REPO = Path(__file__).resolve().parents[2]
demo = load_demo("spoken_digits.py")


def _data_root() -> str:
    """A data folder holding all 3,000 FSDD recordings, or skip."""
    candidates = [os.environ.get("RNNBP_DATA"), REPO.parent / "shared" / "data", REPO / "datasets"]
    for root in candidates:
        if root and len(list((Path(root) / "fsdd" / "recordings").glob("*.wav"))) >= 3000:
            return str(root)
    pytest.skip("FSDD recordings not found: set RNNBP_DATA to a folder holding fsdd/recordings/*.wav "
                "(e.g. RNNBP_DATA=../shared/data)")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One --quick run (features cached in a temporary folder, never in the data folder or the repo)."""
    root = _data_root()
    tmp = tmp_path_factory.mktemp("spoken_digits")
    out = tmp / "model.npz"
    result = demo.main(["--quick", "--no-progress", "--data", root, "--cache", str(tmp / "cache"), "--out", str(out)])
    return result, root, out


# ------------------------------------------------------------- the run
def test_quick_run_learns_reports_and_saves(quick):
    result, _, out = quick
    # Three epochs on 780 recordings put a 32-unit bidirectional GRU far above chance (10 %): ~98 %.
    assert result["test_acc"] > 0.85
    counts = result["confusion"]
    assert counts.shape == (10, 10) and counts.sum() == 300  # takes 0-4 of 10 digits x 6 speakers
    assert counts.sum(axis=1).tolist() == [30] * 10
    assert np.trace(counts) / counts.sum() == pytest.approx(result["test_acc"])
    # One epoch on the other five speakers is still far above chance on theo.
    assert [r["speaker"] for r in result["speakers"]] == ["theo"]
    assert result["speakers"][0]["confusion"].sum() == 200 and result["speaker_acc"] > 0.4
    assert out.is_file() and (out.parent / "conventional" / "best.npz").is_file()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert result["png"] is None
    else:
        assert Path(result["png"]).is_file()
        curves = Path(result["curves_png"])
        assert curves == out.parent / "conventional" / "curves.png" and curves.is_file()


def test_saved_model_reloads_identical(quick):
    result, _, out = quick
    model, norm, feature_config = demo.load_classifier(out)
    assert feature_config == result["feature_config"]
    np.testing.assert_array_equal(norm.mean, result["normalizer"].mean)
    for key, value in result["model"].state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[key], value)


def test_predict_matches_the_in_memory_model(quick, capsys):
    result, root, out = quick
    name = "7_theo_3.wav"  # take 3: in the test split
    wav = Path(root) / "fsdd" / "recordings" / name
    capsys.readouterr()
    got = demo.main(["predict", str(wav), "--model", str(out)])
    printed = capsys.readouterr().out
    assert 0 <= got["digit"] <= 9 and f": {got['digit']}" in printed
    assert got["probs"].shape == (10,) and got["probs"].sum() == pytest.approx(1.0, abs=1e-9)
    assert got["probs"].min() >= 0 and got["digit"] == int(np.argmax(got["probs"]))
    # The same file through the in-memory model, and as the run scored it from the feature cache.
    x = result["normalizer"].transform(file_features(wav, result["feature_config"]))
    with rnnbp.no_grad():
        logits = result["model"].eval()(rnnbp.Tensor(x[:, None, :]), np.array([len(x)])).numpy()[0]
    np.testing.assert_allclose(got["probs"], demo.softmax(logits), atol=1e-6)
    i = result["test_names"].index(name)
    np.testing.assert_allclose(logits, result["test_logits"][i], atol=1e-4)


def test_predict_names_an_unreadable_file(quick, tmp_path):
    _, _, out = quick
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(AudioFileError, match="broken.wav"):
        demo.main(["predict", str(bad), "--model", str(out)])


# ------------------------------------------------------------- padding
def _utterances(n_features: int, lengths, seed: int = 0, dtype=np.float64) -> Features:
    rng = np.random.default_rng(seed)
    return Features.from_arrays([rng.standard_normal((t, n_features)).astype(dtype) for t in lengths])


def _batch_and_alone(model, feats: Features, extra: int = 0):
    """Logits of all utterances in one padded batch (``extra`` more zero steps), and of each alone."""
    dtype = model.head.weight.dtype
    model.eval()
    with rnnbp.no_grad():
        x, lengths = pad_sequences(feats, dtype=dtype)  # (T, B, F), T = the longest
        x = np.concatenate([x, np.zeros((extra,) + x.shape[1:], dtype)])
        batch = model(rnnbp.Tensor(x), lengths).numpy()
        alone = np.stack([model(rnnbp.Tensor(u[:, None, :].astype(dtype)), np.array([len(u)])).numpy()[0]
                          for u in feats])
    return batch, alone


@pytest.mark.parametrize("cell,bidirectional,layers,pool", [
    ("gru", True, 1, "mean"), ("lstm", True, 2, "mean"), ("gru", False, 1, "last"), ("lstm", True, 1, "last"),
])
def test_padded_batch_gives_each_utterance_its_own_logits(cell, bidirectional, layers, pool):
    rnnbp.manual_seed(1)
    model = demo.DigitClassifier(39, cell=cell, hidden=16, layers=layers, bidirectional=bidirectional, pool=pool,
                                 dtype="float64")
    feats = _utterances(39, [9, 143, 1, 28, 60, 9])
    batch, alone = _batch_and_alone(model, feats, extra=7)
    np.testing.assert_allclose(batch, alone, rtol=0, atol=1e-12)
    # Not a vacuous check: the utterances do get different logits.
    assert np.abs(alone - alone[0]).max() > 1e-3


def test_trained_model_is_padding_invariant_in_float32(quick):
    result, _, _ = quick
    model = result["model"]
    assert model.head.weight.dtype == np.float32
    feats = _utterances(39, [12, 97, 30, 30, 55, 18, 143], seed=2, dtype=np.float32)
    batch, alone = _batch_and_alone(model, feats, extra=3)
    np.testing.assert_allclose(batch, alone, rtol=0, atol=1e-5)


# -------------------------------------------------------------- pieces
def test_confusion_matrix_and_its_text():
    y_true = np.array([0, 0, 1, 2, 9, 9, 9])
    y_pred = np.array([0, 1, 1, 2, 9, 9, 3])
    counts = demo.confusion_matrix(y_true, y_pred)
    assert counts.sum() == len(y_true) and counts[0, 1] == 1 and counts[9, 3] == 1 and counts[9, 9] == 2
    lines = demo.format_confusion(counts).splitlines()
    assert len(lines) == 11 and lines[1].split()[:3] == ["0", "1", "1"] and lines[10].endswith("66.7 %")


def test_model_rejects_unknown_choices():
    with pytest.raises(ValueError, match="cell"):
        demo.DigitClassifier(39, cell="rnn")
    with pytest.raises(ValueError, match="pool"):
        demo.DigitClassifier(39, pool="max")
