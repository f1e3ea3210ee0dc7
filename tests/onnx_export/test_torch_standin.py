"""A PyTorch program calling torch.onnx.export runs unchanged under ``python -m rnnbp.torch``: the
stand-in's torch.onnx is rnnbp.onnx, and the file it writes gives ONNX Runtime the model's outputs."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("onnx", reason="the ONNX export needs the onnx package: pip install rnnbp[onnx]")
pytest.importorskip("onnxruntime", reason="the exported files are checked with onnxruntime: pip install rnnbp[onnx]")

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = textwrap.dedent("""\
    import numpy as np
    import onnxruntime as ort
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    head = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3), nn.LogSoftmax(dim=-1))
    rnn = nn.GRU(6, 8, num_layers=2, bidirectional=True, batch_first=True)
    head.eval()
    rnn.eval()

    x = torch.randn(2, 6)
    torch.onnx.export(head, (x,), "head.onnx", input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, do_constant_folding=True)
    seq, h0 = torch.randn(2, 5, 6), torch.zeros(4, 2, 8)
    torch.onnx.export(rnn, (seq, h0), "rnn.onnx", input_names=["seq", "h0"], output_names=["out", "h_n"],
                      dynamic_axes={"seq": {0: "batch", 1: "time"}, "h0": {1: "batch"}, "out": {0: "batch", 1: "time"},
                                    "h_n": {1: "batch"}}, opset_version=17, dynamo=False)

    x = torch.randn(7, 6)
    y, = ort.InferenceSession("head.onnx").run(None, {"x": x.numpy()})
    seq, h0 = torch.randn(3, 9, 6), torch.randn(4, 3, 8)
    out, h_n = ort.InferenceSession("rnn.onnx").run(None, {"seq": seq.numpy(), "h0": h0.numpy()})
    with torch.no_grad():
        want_out, want_h = rnn(seq, h0)
        errors = [np.abs(y - head(x).numpy()).max(), np.abs(out - want_out.numpy()).max(),
                  np.abs(h_n - want_h.numpy()).max()]
    print(type(torch.onnx).__module__, max(errors))
    """)

UNSUPPORTED = textwrap.dedent("""\
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return F.log_softmax(self.fc(x), dim=1)

    torch.onnx.export(Net(), (torch.randn(1, 4),), "net.onnx")
    """)


def run(tmp_path: Path, code: str):
    (tmp_path / "program.py").write_text(code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "rnnbp.torch", "program.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_pytorch_program_exports_and_onnxruntime_agrees(tmp_path):
    proc = run(tmp_path, PROGRAM)
    assert proc.returncode == 0, proc.stderr
    module, error = proc.stdout.split()
    assert module == "rnnbp.torch"  # torch.onnx was the stand-in's
    assert float(error) < 1e-5
    assert (tmp_path / "head.onnx").is_file() and (tmp_path / "rnn.onnx").is_file()


def test_a_model_with_its_own_forward_is_named(tmp_path):
    proc = run(tmp_path, UNSUPPORTED)
    assert proc.returncode != 0 and not (tmp_path / "net.onnx").exists()
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("rnnbp.onnx.errors.UnsupportedModuleError: rnnbp.onnx.export: no ONNX conversion for "
                           "the model itself (__main__.Net)"), last
