"""Export to ONNX: ``rnnbp.onnx.export(model, args, "model.onnx", dynamic_axes=...)``, as torch.onnx.export.

The graph is built from the module tree: each module is written as the ONNX nodes of its
forward, with nn.RNN, nn.LSTM and nn.GRU as ONNX's own RNN, LSTM and GRU operators (weights
reordered to ONNX's gate order; several layers, both directions, ``batch_first``, initial
states and per-row ``lengths`` supported). A model class with its own forward describes
itself with an ``onnx_export(self, g, *inputs)`` method built on the graph builder ``g``
(:mod:`rnnbp.onnx.builder`); :mod:`rnnbp.onnx.recipes` has the spoken-digit classifier's.

Needs the optional ``onnx`` package (``pip install rnnbp[onnx]``, which brings onnxruntime
too); importing this module does not, only calling :func:`export` does.
"""
from .errors import ExportError, UnsupportedModuleError
from .exporter import export

__all__ = ["export", "ExportError", "UnsupportedModuleError"]
