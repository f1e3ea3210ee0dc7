"""Errors of the ONNX export (importable without the onnx package)."""
from __future__ import annotations


class ExportError(RuntimeError):
    """A model, an argument or a module configuration that :func:`rnnbp.onnx.export` cannot write as ONNX."""


class UnsupportedModuleError(ExportError):
    """A module with no ONNX conversion: neither built in, nor an ``onnx_export`` method, nor in ``exporters``.

    Attributes: ``module`` (the instance), ``path`` (its dotted name in the model, "" for the model itself).
    """

    def __init__(self, message: str, module=None, path: str = ""):
        super().__init__(message)
        self.module, self.path = module, path
