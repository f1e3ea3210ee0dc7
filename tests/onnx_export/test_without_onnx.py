"""Without the optional onnx package, rnnbp.onnx still imports, and export says what to install."""
from __future__ import annotations

import sys

import numpy as np
import pytest

import rnnbp
import rnnbp.onnx
from rnnbp import nn


def test_export_without_onnx_says_what_to_install(monkeypatch):
    for name in [n for n in sys.modules if n == "onnx" or n.startswith("onnx.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"needs the onnx package, which is not installed: pip install rnnbp\[onnx\]"):
        rnnbp.onnx.export(nn.Linear(2, 2), rnnbp.Tensor(np.zeros((1, 2), np.float32)), None)


def test_the_errors_import_without_onnx():
    assert issubclass(rnnbp.onnx.UnsupportedModuleError, rnnbp.onnx.ExportError)
    assert issubclass(rnnbp.onnx.ExportError, RuntimeError)
