"""Without matplotlib, rnnbp.plot still imports, and drawing says what to install."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnbp.plot
from rnnbp.plot.__main__ import main


@pytest.fixture
def no_matplotlib(monkeypatch):
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError


def test_each_picture_says_to_install_the_plot_extra(no_matplotlib, tmp_path):
    calls = [("curves", lambda: rnnbp.plot.curves([{"epoch": 1, "loss": 1.0}], tmp_path / "c.png")),
             ("gradient_flow", lambda: rnnbp.plot.gradient_flow({"a": {"b": [1.0, 0.5]}}, tmp_path / "g.png")),
             ("confusion_matrix", lambda: rnnbp.plot.confusion_matrix(np.eye(2), None, tmp_path / "m.png"))]
    for name, call in calls:
        with pytest.raises(ImportError, match=rf"rnnbp.plot.{name} needs matplotlib, which is not installed: "
                                              r"pip install rnnbp\[plot\]"):
            call()
    assert not list(tmp_path.iterdir())


def test_the_command_says_so_too(no_matplotlib, tmp_path, capsys):
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "loss": 0.5}\n')
    assert main([str(tmp_path)]) == 1
    assert r"pip install rnnbp[plot]" in capsys.readouterr().err


def test_importing_rnnbp_plot_does_not_import_matplotlib():
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    code = "import sys, rnnbp.plot; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=60).returncode == 0
