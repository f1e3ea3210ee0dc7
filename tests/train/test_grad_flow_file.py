"""GradFlowFile: which updates it keeps, the lines it writes, and a resumed run that repeats updates."""
from __future__ import annotations

import json

import numpy as np
import pytest

import rnnbp
from rnnbp import nn, optim
from rnnbp.bptt import TBPTT, sequence_mse
from rnnbp.train import GradFlowFile


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.Recurrent(nn.RNNCell, 2, 4)  # cells on the tape: no compiled kernel to wait for
        self.head = nn.Linear(4, 1)

    def forward(self, x, hx=None):
        out, hx = self.rnn(x, hx)
        return self.head(out), hx


def _engine(on_update, diagnostics="wanted"):
    rnnbp.manual_seed(0)
    model = Model()
    if diagnostics == "wanted":
        diagnostics = on_update.wanted
    return TBPTT(model, sequence_mse, optim.SGD(model.parameters(), lr=0.1), k1=2, k2=5,
                 diagnostics=diagnostics, on_update=on_update)


def _data(steps=20):
    g = np.random.default_rng(0)
    return g.standard_normal((steps, 3, 2)).astype(np.float32), g.standard_normal((steps, 3, 1)).astype(np.float32)


def _updates(path):
    return [json.loads(line)["update"] for line in path.read_text().splitlines()]


def test_powers_of_two_by_default_and_every(tmp_path):
    x, y = _data(40)  # 20 updates
    seen = []
    log = GradFlowFile(tmp_path / "a" / "grad_flow.jsonl")
    _engine(lambda e, u: (seen.append(u), log(e, u)), diagnostics=log.wanted).run(x, y)
    assert _updates(tmp_path / "a" / "grad_flow.jsonl") == [0, 1, 2, 4, 8, 16]
    # diagnostics=log.wanted: the engine probes the updates the file keeps, and no others
    assert [u.index for u in seen if u.state_grad_norms is not None] == [0, 1, 2, 4, 8, 16]
    assert [u.index for u in seen if u.param_grad_norms is not None] == [0, 1, 2, 4, 8, 16]
    log = GradFlowFile(tmp_path / "b.jsonl", every=7)
    _engine(log).run(x, y)
    assert _updates(tmp_path / "b.jsonl") == [0, 7, 14]

    record = json.loads((tmp_path / "a" / "grad_flow.jsonl").read_text().splitlines()[-1])
    update = seen[16]
    assert record["steps"] == list(update.steps) and record["window"] == list(update.window) == [29, 34]
    assert record["loss"] == pytest.approx(update.loss, rel=1e-15)
    (entry,) = record["state_grad_norms"]
    assert (entry["module"], entry["layer"], entry["direction"]) == ("rnn", 0, 0)
    np.testing.assert_allclose(entry["norms"], update.state_grad_norms["rnn", 0, 0], rtol=1e-15)
    assert len(entry["norms"]) == 5  # k2 steps


def test_a_resumed_run_replaces_the_updates_it_repeats(tmp_path):
    path = tmp_path / "grad_flow.jsonl"
    x, y = _data(40)
    _engine(GradFlowFile(path, every=4)).run(x, y)
    assert _updates(path) == [0, 4, 8, 12, 16]
    engine = _engine(GradFlowFile(path, every=4))
    engine.updates_done = 9  # as if resumed from a checkpoint taken after update 8
    engine.run(x[:12], y[:12])  # updates 9..14
    assert _updates(path) == [0, 4, 8, 12]
    _engine(GradFlowFile(path, every=4)).run(x[:4], y[:4])  # a fresh run starts the file afresh
    assert _updates(path) == [0]


def test_an_engine_without_diagnostics_is_refused(tmp_path):
    x, y = _data(4)
    with pytest.raises(ValueError, match=r"GradFlowFile: update 0 carries no state-gradient norms; build the "
                                         r"engine with TBPTT\(\.\.\., diagnostics=<this GradFlowFile>\.wanted"):
        _engine(GradFlowFile(tmp_path / "g.jsonl"), diagnostics=False).run(x, y)
    with pytest.raises(ValueError, match="every must be a positive integer"):
        GradFlowFile(tmp_path / "g.jsonl", every=0)
