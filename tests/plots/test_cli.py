"""python -m rnnbp.plot runs/NAME/: writes what the run has data for, says what it skipped and why."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the pictures need matplotlib: pip install rnnbp[plot]")

from rnnbp.plot.__main__ import main  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_the_module_writes_every_picture_of_a_run(tiny_run, tmp_path, check_png):
    out = tmp_path / "pictures"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "rnnbp.plot", str(tiny_run.folder), "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    for name in ("curves.png", "gradient_flow.png", "confusion.png"):
        check_png(out / name)
        assert f"wrote {out / name}" in done.stdout
    assert "skipped" not in done.stdout
    assert not any(tiny_run.folder.glob("*.png"))  # --out: nothing written into the run folder


def test_skips_say_why(tiny_run, tmp_path, capsys, check_png):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny_run.folder / "metrics.jsonl", run)
    shutil.copy(tiny_run.folder / "last.npz", run)  # a Trainer checkpoint: never read for a confusion matrix
    assert main([str(run)]) == 0  # no --out: into the run's folder
    said = capsys.readouterr().out
    check_png(run / "curves.png")
    assert f"skipped gradient flow: no grad_flow.jsonl in {run}" in said
    assert "rnnbp.train.GradFlowFile('grad_flow.jsonl'); TBPTT(..., diagnostics=flow.wanted, on_update=flow)" in said
    assert f"skipped confusion matrix: no .npz file in {run} holds a 'confusion' entry" in said
    assert sorted(p.name for p in run.glob("*.png")) == ["curves.png"]


def test_a_folder_of_runs_points_to_them(tiny_run, tmp_path, capsys):
    parent = tmp_path / "spoken"
    shutil.copytree(tiny_run.folder, parent / "conventional", ignore=shutil.ignore_patterns("model.npz"))
    assert main([str(parent)]) == 1  # nothing to draw here
    captured = capsys.readouterr()
    assert f"its subfolders conventional/ have one (python -m rnnbp.plot {parent / 'conventional'})" in captured.out
    assert "nothing written" in captured.err


def test_not_a_folder(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
