"""Fixtures of the ONNX export tests: running an exported model in ONNX Runtime.

(The folder is tests/onnx_export, not tests/onnx: pyproject puts tests/ on sys.path, and a
tests/onnx folder would then be importable as a namespace package named ``onnx`` wherever the
real onnx is not installed.)
"""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def run_onnx():
    """run_onnx(model_proto or bytes, {input name: array}) -> {output name: array}, on one thread."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime runs the exported files: pip install rnnbp[onnx]")

    def run(model, feed: dict) -> dict:
        data = model if isinstance(model, bytes) else model.SerializeToString()
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(None, {k: np.asarray(v) for k, v in feed.items()})))

    return run
