"""Reading the metrics and gradient-flow files (no matplotlib needed)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rnnbp.plot import read_grad_flow, read_metrics
from rnnbp.train.metrics_file import MetricsFile


def test_metrics_in_both_forms_read_alike(tmp_path):
    history = [{"epoch": 1, "loss": 0.5, "val_loss": float("nan"), "note": "warm-up", "lr": 0.1},
               {"epoch": 2, "loss": float("inf"), "val_loss": 0.25, "lr": 0.05, "extra": 3}]
    for name in ("metrics.jsonl", "metrics.csv"):
        MetricsFile(tmp_path / name).sync(history)
        rows = read_metrics(tmp_path / name)
        assert [r["epoch"] for r in rows] == [1.0, 2.0]
        assert math.isnan(rows[0]["val_loss"]) and rows[1]["loss"] == math.inf
        assert "note" not in rows[0]  # not a number
        assert rows[1]["extra"] == 3.0 and "extra" not in rows[0]


def test_a_cut_short_last_line_is_ignored_and_a_bad_line_named(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1, "loss": 0.5}\n{"epoch": 2, "lo')
    assert read_metrics(path) == [{"epoch": 1.0, "loss": 0.5}]
    path.write_text('{"epoch": 1, "loss": 0.5}\nnot json\n{"epoch": 3}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl line 2 is not JSON"):
        read_metrics(path)


def test_grad_flow_records_become_arrays(tmp_path):
    path = tmp_path / "grad_flow.jsonl"
    record = {"update": 4, "steps": [8, 12], "window": [2, 12], "loss": 0.7, "grad_norm": 0.1,
              "state_grad_norms": [{"module": "rnn", "layer": 0, "direction": 0, "norms": [0.1, None, 0.3]}]}
    path.write_text(json.dumps(record) + "\n" + '{"update": 8, "win')
    (read,) = read_grad_flow(path)
    norms = read["state_grad_norms"][0]["norms"]
    assert norms.dtype == np.float64 and np.isnan(norms[1]) and norms[2] == 0.3
    path.write_text('{"update": 1}\n')
    with pytest.raises(ValueError, match=r"line 1 is not a gradient-flow record: no \['window', 'state_grad_norms'\]"):
        read_grad_flow(path)
