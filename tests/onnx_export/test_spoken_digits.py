"""The spoken-digit classifier of demos/spoken_digits.py (recurrent layer, length-aware mean pooling or
last states, linear head) exports whole: ONNX Runtime gives rnnbp's logits and predictions.

The default tests use synthetic features; the slow one trains the demo's --quick model on FSDD and
compares the predictions on the whole conventional test split (300 recordings). It looks for the
recordings in $RNNBP_DATA, then ../shared/data beside the checkout, and is skipped without them.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the ONNX export needs the onnx package: pip install rnnbp[onnx]")
pytest.importorskip("onnxruntime", reason="the exported files are checked with onnxruntime: pip install rnnbp[onnx]")

import rnnbp  # noqa: E402
import rnnbp.onnx  # noqa: E402
from rnnbp.onnx.recipes import spoken_digit_classifier  # noqa: E402

from demo_loader import load_demo  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
demo = load_demo("spoken_digits.py")
F = 39  # features per frame
TOL = 1e-5


def export(model, path=None, T=9, N=3):
    """The classifier as ONNX with dynamic batch and time; ``exporters`` only while the demo class
    does not describe itself (an ``onnx_export`` method calling the same recipe)."""
    cls = demo.DigitClassifier
    exporters = None if hasattr(cls, "onnx_export") else {cls: spoken_digit_classifier}
    x = rnnbp.Tensor(np.zeros((T, N, F), dtype=np.float32))
    return rnnbp.onnx.export(model, (x, np.full(N, T)), path, input_names=["x", "lengths"], output_names=["logits"],
                             dynamic_axes={"x": {0: "frames", 1: "batch"}, "lengths": {0: "batch"},
                                           "logits": {0: "batch"}}, exporters=exporters)


def synthetic(T: int, lengths, seed: int):
    """Zero-padded (T, N, F) features and their lengths, as pad_sequences makes them."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, len(lengths), F)).astype(np.float32)
    for i, n in enumerate(lengths):
        x[n:, i] = 0
    return x, np.asarray(lengths, dtype=np.int64)


CONFIGS = {
    "demo default (bi-GRU, mean)": dict(cell="gru", hidden=16),
    "bi-LSTM, 2 layers, mean": dict(cell="lstm", hidden=8, layers=2, dropout=0.2),
    "GRU, 2 layers, last": dict(cell="gru", hidden=8, layers=2, bidirectional=False, pool="last"),
    "bi-LSTM, last": dict(cell="lstm", hidden=8, pool="last"),
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_the_classifier_exports_whole(config, run_onnx):
    rnnbp.manual_seed(0)
    model = demo.DigitClassifier(F, **CONFIGS[config])
    proto = export(model)
    model.eval()
    for seed, (T, lengths) in enumerate([(12, [12, 1, 7, 3, 12]), (4, [4]), (30, [30, 25, 9, 30, 2, 17, 30, 11])]):
        x, lengths = synthetic(T, lengths, seed)
        got = run_onnx(proto, {"x": x, "lengths": lengths})["logits"]
        want = model(rnnbp.Tensor(x), lengths).numpy()
        np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL)
        assert np.array_equal(got.argmax(axis=1), want.argmax(axis=1))


def test_padding_changes_nothing_in_the_exported_model(run_onnx):
    """As in rnnbp: a recording's logits are the same alone as in a padded batch."""
    rnnbp.manual_seed(1)
    proto = export(demo.DigitClassifier(F, hidden=8))
    x, lengths = synthetic(15, [15, 6, 10], seed=3)
    batch = run_onnx(proto, {"x": x, "lengths": lengths})["logits"]
    for i, n in enumerate(lengths):
        alone = run_onnx(proto, {"x": x[:n, i:i + 1], "lengths": lengths[i:i + 1]})["logits"]
        np.testing.assert_allclose(alone[0], batch[i], rtol=TOL, atol=TOL)


def _data_root() -> str:
    candidates = [os.environ.get("RNNBP_DATA"), REPO.parent / "shared" / "data", REPO / "datasets"]
    for root in candidates:
        if root and len(list((Path(root) / "fsdd" / "recordings").glob("*.wav"))) >= 3000:
            return str(root)
    pytest.skip("FSDD recordings not found: set RNNBP_DATA to a folder holding fsdd/recordings/*.wav")


@pytest.mark.slow
def test_a_trained_model_predicts_the_whole_test_split_the_same(tmp_path, run_onnx):
    """The demo's --quick model, saved, loaded as predict loads it, exported to a file: the same
    300 test predictions from ONNX Runtime (batches sorted by length, as predict_logits cuts them)."""
    from rnnbp.data import load_fsdd, pad_sequences

    root = _data_root()
    cache, out = tmp_path / "cache", tmp_path / "model.npz"
    result = demo.main(["--quick", "--speaker", "none", "--no-progress", "--data", root, "--cache", str(cache),
                        "--out", str(out)])
    model, norm, feature_config = demo.load_classifier(out)
    export(model, tmp_path / "digits.onnx")

    ds = load_fsdd(root, progressbar=False)
    ds = ds.subset(ds.take < demo.quick_config().subset_takes)
    feats = ds.features(feature_config, cache_dir=cache,
                        n_jobs=1, progressbar=False)
    test_idx = ds.split()[1]
    test = norm.transform(feats.subset(test_idx))
    assert len(test) == 300

    logits = np.zeros((len(test), 10), dtype=np.float32)
    order = np.argsort(test.lengths, kind="stable")
    data = (tmp_path / "digits.onnx").read_bytes()
    for start in range(0, len(order), 64):
        idx = order[start:start + 64]
        x, lengths = pad_sequences(test, idx, dtype=np.float32)
        logits[idx] = run_onnx(data, {"x": x, "lengths": lengths.astype(np.int64)})["logits"]
    want = demo.predict_logits(model, test)
    np.testing.assert_allclose(logits, want, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(want, result["test_logits"], rtol=TOL, atol=TOL)  # the run's own test logits
    assert np.array_equal(logits.argmax(axis=1), want.argmax(axis=1))
    assert (logits.argmax(axis=1) == ds.digit[test_idx]).mean() == pytest.approx(result["test_acc"])
