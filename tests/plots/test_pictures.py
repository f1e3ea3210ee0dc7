"""Each picture drawn to PNG from a short run: curves, gradient flow, confusion matrix (needs matplotlib)."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="the pictures need matplotlib: pip install rnnbp[plot]")

import rnnbp.plot  # noqa: E402
from rnnbp.train.metrics_file import MetricsFile  # noqa: E402


# ------------------------------------------------------------------ curves
def test_curves_from_the_runs_metrics_file(tiny_run, tmp_path, check_png, capture_figure):
    out = rnnbp.plot.curves(tiny_run.folder / "metrics.jsonl", tmp_path / "curves.png")
    assert out == tmp_path / "curves.png"
    image = check_png(out)
    assert image.shape[1] > image.shape[0]  # three panels side by side
    axes = [ax for ax in capture_figure[-1].axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["loss", "acc (validation)", "learning rate"]
    loss = axes[0]
    assert [t.get_text() for t in loss.get_legend().get_texts()][:2] == ["training", "validation"]
    best = 1 + int(np.argmin([r["val_loss"] for r in tiny_run.history]))
    assert f"lowest val_loss: epoch {best}" in [t.get_text() for t in loss.get_legend().get_texts()]
    np.testing.assert_allclose(loss.lines[0].get_ydata(), [r["loss"] for r in tiny_run.history])
    assert all(ax.get_xlabel() == "epoch" for ax in axes)


def test_curves_from_history_and_csv_agree(tiny_run, tmp_path, check_png, capture_figure):
    MetricsFile(tmp_path / "metrics.csv").sync(tiny_run.history)
    check_png(rnnbp.plot.curves(tmp_path / "metrics.csv", tmp_path / "from_csv.png"))
    check_png(rnnbp.plot.curves(tiny_run.history, tmp_path / "from_history.png", title="history"))
    csv_fig, history_fig = capture_figure
    for a, b in zip(csv_fig.axes, history_fig.axes):
        assert a.get_title() == b.get_title()
        for la, lb in zip(a.lines, b.lines):
            np.testing.assert_array_equal(la.get_ydata(), lb.get_ydata())
    assert history_fig._suptitle.get_text() == "history"


def test_curves_use_a_log_scale_for_a_loss_spanning_decades(tmp_path, capture_figure):
    history = [{"epoch": e, "loss": 10.0 ** -e, "val_loss": float("nan") if e == 2 else 2 * 10.0 ** -e, "lr": 0.1}
               for e in range(1, 5)]
    rnnbp.plot.curves(history, tmp_path / "c.png")
    loss, lr = capture_figure[-1].axes[:2]
    assert (loss.get_yscale(), loss.get_title()) == ("log", "loss (log scale)")
    assert lr.get_yscale() == "linear" and lr.get_ylim()[0] == 0


def test_curves_without_records_say_so(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    with pytest.raises(ValueError, match="no epoch records in .*metrics.jsonl"):
        rnnbp.plot.curves(tmp_path / "metrics.jsonl", tmp_path / "c.png")
    with pytest.raises(ValueError, match="no metric to draw"):
        rnnbp.plot.curves([{"epoch": 1, "time": 2.0}], tmp_path / "c.png")


# ----------------------------------------------------------- gradient flow
def test_gradient_flow_from_the_runs_file(tiny_run, tmp_path, check_png, capture_figure):
    out = rnnbp.plot.gradient_flow(tiny_run.folder / "grad_flow.jsonl", tmp_path / "gf.png", max_curves=4)
    check_png(out)
    (ax,) = [a for a in capture_figure[-1].axes if a.get_visible()]
    assert ax.get_yscale() == "log"
    assert ax.get_ylabel() == "||dL/dh_t||" and ax.get_title() == "rnn, layer 0"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    recorded = [json.loads(line)["update"] for line in (tiny_run.folder / "grad_flow.jsonl").read_text().splitlines()]
    assert labels[0] == f"update {recorded[0]}" and labels[3] == f"update {recorded[-1]}"  # first and last kept
    assert labels[4] == "steps with a loss"  # k2 = 10 > k1 = 4: the window's first 6 steps carry no loss
    assert len(ax.lines) == 4
    full = next(u for u in tiny_run.updates if u.index == recorded[-1])
    np.testing.assert_allclose(ax.lines[3].get_ydata(), full.state_grad_norms["rnn", 0, 0], rtol=1e-12)


def test_gradient_flow_from_updates_equals_the_file(tiny_run, tmp_path, capture_figure):
    recorded = {json.loads(line)["update"] for line in (tiny_run.folder / "grad_flow.jsonl").read_text().splitlines()}
    rnnbp.plot.gradient_flow(tiny_run.folder / "grad_flow.jsonl", tmp_path / "a.png")
    assert {u.index for u in tiny_run.updates if u.state_grad_norms is not None} == recorded
    rnnbp.plot.gradient_flow(tiny_run.updates, tmp_path / "b.png")  # the updates without norms are left out
    a, b = (fig.axes[0] for fig in capture_figure)
    assert [l.get_label() for l in a.lines] == [l.get_label() for l in b.lines]
    for la, lb in zip(a.lines, b.lines):
        np.testing.assert_allclose(la.get_ydata(), lb.get_ydata(), rtol=1e-12)


def test_gradient_flow_of_labelled_curves(tmp_path, check_png, capture_figure):
    t = np.arange(30)
    panels = {"at initialisation": {"Elman RNN": 0.8 ** t[::-1], "LSTM": 0.95 ** t[::-1]},
              "after training": {"Elman RNN": 0.7 ** t[::-1], "LSTM": np.r_[0.0, 0.99 ** t[:-1][::-1]]}}
    check_png(rnnbp.plot.gradient_flow(panels, tmp_path / "gf.png", xlabel="step t", mark=(0, 14, "marker here")))
    left, right = capture_figure[-1].axes
    assert [left.get_title(), right.get_title()] == ["at initialisation", "after training"]
    assert left.get_yscale() == right.get_yscale() == "log"
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["Elman RNN", "LSTM", "marker here"]
    assert np.isnan(right.lines[1].get_ydata()[0])  # a zero norm is a gap on a log scale
    assert any("exactly 0" in t.get_text() for t in right.texts)


def test_gradient_flow_without_diagnostics_says_so(tiny_run, tmp_path):
    from dataclasses import replace

    blind = [replace(u, state_grad_norms=None) for u in tiny_run.updates[:3]]
    with pytest.raises(ValueError, match=r"diagnostics=True"):
        rnnbp.plot.gradient_flow(blind, tmp_path / "gf.png")
    with pytest.raises(ValueError, match="max_curves must be a positive integer"):
        rnnbp.plot.gradient_flow(tiny_run.updates, tmp_path / "gf.png", max_curves=0)


# -------------------------------------------------------- confusion matrix
def test_confusion_matrix_of_the_run(tiny_run, tmp_path, check_png, capture_figure):
    out = rnnbp.plot.confusion_matrix(tiny_run.confusion, ["off", "on"], tmp_path / "cm.png")
    check_png(out)
    ax = capture_figure[-1].axes[0]
    counts = tiny_run.confusion
    assert ax.get_title() == f"{100 * np.trace(counts) / counts.sum():.1f} % correct ({counts.sum()} items)"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["off", "on"]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    assert sorted(t.get_text() for t in ax.texts) == sorted(str(c) for c in counts.ravel() if c)


def test_confusion_matrix_of_many_classes(tmp_path, check_png):
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 4, (30, 30)) + 30 * np.eye(30, dtype=np.int64)
    check_png(rnnbp.plot.confusion_matrix(counts, None, tmp_path / "cm.png"), min_px=600)


@pytest.mark.parametrize("matrix, labels, message", [
    (np.zeros((2, 3)), None, r"must be square \(C, C\) with C >= 1, got shape \(2, 3\)"),
    (np.array([[1, -1], [0, 2]]), None, "finite counts >= 0"),
    (np.array([[1.0, np.nan], [0, 2]]), None, "finite counts >= 0"),
    (np.eye(3), ["a", "b"], r"must name the 3 classes of a \(3, 3\) matrix, got 2"),
])
def test_confusion_matrix_refuses(matrix, labels, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        rnnbp.plot.confusion_matrix(matrix, labels, tmp_path / "cm.png")
    assert not (tmp_path / "cm.png").exists()
