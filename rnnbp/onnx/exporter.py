"""rnnbp.onnx.export: arguments to graph inputs, the module tree to nodes, outputs to graph outputs, a file."""
from __future__ import annotations

import inspect
import os

import numpy as np

from ..autograd.tensor import Tensor
from .errors import ExportError

DEFAULT_OPSET = 17  # the first opset with LayerNormalization: the lowest, so the widest choice of runtimes
MIN_OPSET = 17

_INSTALL = "pip install rnnbp[onnx]"


def _require_onnx():
    try:
        import onnx.helper  # noqa: F401  (a stray folder named onnx has no helper)
    except ImportError as exc:
        raise ImportError(f"rnnbp.onnx.export needs the onnx package, which is not installed: {_INSTALL} "
                          "(it brings onnx, and onnxruntime to run the exported files)") from exc


def export(model, args=(), f=None, *, kwargs=None, input_names=None, output_names=None, dynamic_axes=None,
           opset_version=None, exporters=None, verbose=None, export_params=True, do_constant_folding=True,
           dynamo=None, keep_initializers_as_inputs=False):
    """Write ``model`` as an ONNX file, the way ``torch.onnx.export`` does.

    The graph is built by walking the module tree, not by tracing: each module becomes the
    ONNX nodes of its forward. Built in: Linear, Embedding, ReLU, Tanh, Sigmoid, GELU,
    LeakyReLU, Softmax, LogSoftmax, Softplus, Dropout (the identity: the export is in eval
    mode), LayerNorm, Flatten, Identity, Sequential, and RNN, LSTM, GRU as ONNX's RNN, LSTM
    and GRU operators (see :mod:`rnnbp.onnx.recurrent`). A module class of your own defines
    ``onnx_export(self, g, *inputs)``, which builds its forward with the builder ``g``
    (:mod:`rnnbp.onnx.builder`) and returns its outputs, or is given in ``exporters``. Any
    other module raises :class:`UnsupportedModuleError` naming its class and its path.

    Args:
        model : the Module to export (in eval mode for the export; its mode is restored).
        args : the forward's positional arguments: a Tensor, or a tuple whose last element may
            be a dict of keyword arguments. Tensors and arrays (a list of ints too, e.g.
            ``lengths``) become graph inputs, tuples of them several (``(h_0, c_0)``); None and
            other Python values are passed to the converters as they are.
        f : a path or a binary file object to write to; None writes nothing.
        kwargs : more keyword arguments of the forward (after any dict in ``args``).
        input_names, output_names : names of the graph's inputs and outputs, in order (inputs
            flattened as above, e.g. ``x``, ``h_0``, ``c_0``; outputs flattened, e.g. output, h_n,
            c_n). Default: the forward's parameter names (``hx_0``, ``hx_1`` for a tuple) and
            ``output`` / ``output_0``, ``output_1``, ...
        dynamic_axes : {name: [axis, ...] or {axis: axis name}}: axes of inputs or outputs whose
            size may differ from the example's (batch, sequence length).
        opset_version : int >= 17 (default 17).
        exporters : {module class: function(module, g, *inputs, **kwinputs)}: conversions of
            classes you cannot edit; they take precedence over ``onnx_export`` and the built-ins.
        verbose : print the graph.  export_params : must be True (the weights are always stored).
        do_constant_folding, dynamo : accepted for PyTorch scripts; nothing to fold or choose here.
        keep_initializers_as_inputs : must be False.

    Returns:
        the ``onnx.ModelProto`` (also written to ``f``).
    """
    _require_onnx()
    import onnx

    from . import layers, recurrent  # noqa: F401  (they register the built-in converters)
    from .builder import GraphBuilder

    if not export_params:
        raise ExportError("rnnbp.onnx.export: export_params=False is not supported; the weights are always "
                          "stored in the graph")
    if keep_initializers_as_inputs:
        raise ExportError("rnnbp.onnx.export: keep_initializers_as_inputs=True is not supported")
    opset = _check_opset(opset_version, onnx)
    args, kwargs = _split_args(args, kwargs)
    g = GraphBuilder(model, opset, exporters)
    inputs = _Inputs(g, input_names, dynamic_axes)
    args, kwargs = _lift_arguments(model, args, kwargs, inputs)
    inputs.check_all_named()
    was_training = model.training
    model.eval()
    try:
        outputs = g.module(model, *args, **kwargs)
    finally:
        model.train(was_training)
    graph_model = _finish(g, outputs, output_names, dynamic_axes or {}, inputs.names, onnx)
    if verbose:
        print(onnx.helper.printable_graph(graph_model.graph))
    if f is not None:
        _write(graph_model, f)
    return graph_model


# ----------------------------------------------------------------- arguments
def _check_opset(opset_version, onnx) -> int:
    highest = onnx.defs.onnx_opset_version()
    opset = DEFAULT_OPSET if opset_version is None else opset_version
    if not isinstance(opset, int) or isinstance(opset, bool) or not MIN_OPSET <= opset <= highest:
        raise ExportError(f"rnnbp.onnx.export: opset_version must be an int from {MIN_OPSET} to {highest} (the "
                          f"installed onnx's newest), got {opset_version!r}")
    return opset


def _split_args(args, kwargs):
    if isinstance(args, tuple):
        args = list(args)
    elif isinstance(args, list):
        raise TypeError("rnnbp.onnx.export: args must be a tuple of the forward's arguments (or one Tensor), "
                        "got a list; write tuple(args), or (the_list,) if the list is one argument")
    else:
        args = [args]
    kw = {}
    if args and isinstance(args[-1], dict):
        kw.update(args.pop())
    kw.update(kwargs or {})
    return args, kw


def _lift_arguments(model, args, kwargs, inputs) -> tuple[list, dict]:
    """The forward's arguments with tensors replaced by graph inputs named after its parameters
    (``name_0``, ``name_1``, ... for the parts of a tuple or of ``*args``)."""
    try:
        signature = inspect.signature(model.forward)
    except ValueError:  # no signature to read: name them by position
        return ([inputs.lift(a, f"input_{i}") for i, a in enumerate(args)],
                {k: inputs.lift(v, k) for k, v in kwargs.items()})
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"rnnbp.onnx.export: the arguments do not fit {type(model).__name__}.forward: {exc}") from exc
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            bound.arguments[name] = tuple(inputs.lift(v, f"{name}_{i}") for i, v in enumerate(value))
        elif kind is inspect.Parameter.VAR_KEYWORD:
            bound.arguments[name] = {k: inputs.lift(v, k) for k, v in value.items()}
        else:
            bound.arguments[name] = inputs.lift(value, name)
    return list(bound.args), dict(bound.kwargs)


def _is_int_list(obj) -> bool:
    return bool(obj) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in obj)


class _Inputs:
    """Turns example arguments into graph inputs, naming them and marking their dynamic axes."""

    def __init__(self, g, input_names, dynamic_axes):
        self.g = g
        self.given = list(input_names or [])
        self.dynamic_axes = dict(dynamic_axes or {})
        self.names: list[str] = []

    def lift(self, obj, default: str):
        from ..nn.utils.rnn import PackedSequence

        if isinstance(obj, PackedSequence):
            raise ExportError("rnnbp.onnx.export: a PackedSequence cannot be a graph input; give the padded "
                              "batch and its lengths (forward(x, lengths=lengths)) instead")
        if isinstance(obj, Tensor):
            return self._input(obj._data, default)
        if isinstance(obj, np.ndarray):
            return self._input(obj, default)
        if isinstance(obj, (tuple, list)):
            if _is_int_list(obj):
                return self._input(np.asarray(obj, dtype=np.int64), default)
            items = [self.lift(v, f"{default}_{i}") for i, v in enumerate(obj)]
            return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
        return obj  # None, numbers, strings: constants of the forward

    def _input(self, array: np.ndarray, default: str):
        position = len(self.names)
        name = self.given[position] if position < len(self.given) else default
        if array.dtype.kind not in "biuf":
            raise ExportError(f"rnnbp.onnx.export: input {name!r} has dtype {array.dtype}; ONNX inputs here are "
                              "numbers or booleans")
        shape = list(array.shape)
        for axis, axis_name in _axes(self.dynamic_axes.get(name), name, len(shape), "input").items():
            shape[axis] = axis_name
        self.names.append(name)
        return self.g.add_input(name, array.dtype, tuple(shape))

    def check_all_named(self) -> None:
        if len(self.given) > len(self.names):
            raise ExportError(f"rnnbp.onnx.export: {len(self.given)} input_names for {len(self.names)} inputs "
                              f"({', '.join(self.names)})")


def _axes(spec, name: str, rank: int, what: str) -> dict:
    """dynamic_axes[name] as {axis (non-negative): axis name}."""
    if spec is None:
        return {}
    items = spec.items() if isinstance(spec, dict) else ((a, f"{name}_dynamic_axes_{a}") for a in spec)
    out = {}
    for axis, axis_name in items:
        if not isinstance(axis, (int, np.integer)) or not -rank <= axis < rank:
            raise ExportError(f"rnnbp.onnx.export: dynamic_axes[{name!r}] names axis {axis!r}, but the {what} "
                              f"{name!r} has {rank} axes")
        out[int(axis) % rank] = str(axis_name)
    return out


# ------------------------------------------------------------------- outputs
def _flatten_outputs(obj, found: list) -> None:
    from .builder import Value

    if isinstance(obj, Value):
        found.append(obj)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            _flatten_outputs(v, found)
    elif obj is not None:
        raise ExportError(f"rnnbp.onnx.export: the model's conversion returned a {type(obj).__name__}; "
                          "outputs must be Values built with g (in tuples or lists)")


def _finish(g, outputs, output_names, dynamic_axes: dict, input_names: list, onnx):
    from onnx import helper

    values: list = []
    _flatten_outputs(outputs, values)
    if not values:
        raise ExportError("rnnbp.onnx.export: the model has no outputs to export")
    given = list(output_names or [])
    if len(given) > len(values):
        raise ExportError(f"rnnbp.onnx.export: {len(given)} output_names for {len(values)} outputs")
    defaults = ["output"] if len(values) == 1 else [f"output_{i}" for i in range(len(values))]
    names = given + defaults[len(given):]
    if len(set(names)) != len(names):
        raise ExportError(f"rnnbp.onnx.export: output names repeat: {names}")
    clash = set(names) & set(input_names)
    if clash:
        raise ExportError(f"rnnbp.onnx.export: {sorted(clash)} named both an input and an output")
    unknown = set(dynamic_axes) - set(names) - set(input_names)
    if unknown:
        raise ExportError(f"rnnbp.onnx.export: dynamic_axes names {sorted(unknown)}, which are neither inputs "
                          f"({', '.join(input_names)}) nor outputs ({', '.join(names)})")

    for name in names:  # a requested name taken by a tensor inside the graph: that tensor moves aside
        if name in g._used:
            aside = g.fresh(name)
            _rename(g.nodes, name, aside, g.initializers)
            g._used.discard(name)
            for value in values:
                if value.name == name:
                    value.name = aside
    produced = {o for node in g.nodes for o in node.output}
    renamed: set[str] = set()
    for value, name in zip(values, names):
        if value.name in produced and value.name not in renamed and name not in g._used:
            _rename(g.nodes, value.name, name)
            renamed.add(value.name)
            g._used.add(name)
        else:  # an input, a parameter, or one value given twice: copy it under the new name
            g._used.add(name)
            g.nodes.append(helper.make_node("Identity", [value.name], [name], name=g.fresh(f"{name}.Identity")))
        value.name = name

    opsets = [helper.make_opsetid("", g.opset)]
    graph = helper.make_graph(g.nodes, "rnnbp", g.inputs, [], g.initializers)
    model = helper.make_model(graph, opset_imports=opsets, producer_name="rnnbp")
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:  # a conversion wired a node wrongly (most likely an onnx_export of one's own)
        raise ExportError(f"rnnbp.onnx.export: the graph built is not valid ONNX: {exc}") from exc
    known = {info.name: info.type for info in inferred.graph.value_info}
    for name in names:
        if name not in known:
            raise ExportError(f"rnnbp.onnx.export: ONNX shape inference found no type for the output {name!r}")
        tensor_type = known[name].tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor_type.shape.dim]
        for axis, axis_name in _axes(dynamic_axes.get(name), name, len(dims), "output").items():
            dims[axis] = axis_name
        model.graph.output.append(helper.make_tensor_value_info(name, tensor_type.elem_type, dims))
    model.ir_version = helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(model, full_check=True)
    return model


def _rename(nodes, old: str, new: str, initializers=()) -> None:
    for init in initializers:
        if init.name == old:
            init.name = new
    for node in nodes:
        for field in (node.input, node.output):
            for i, n in enumerate(field):
                if n == old:
                    field[i] = new


def _write(model, f) -> None:
    data = model.SerializeToString()
    if isinstance(f, (str, os.PathLike)):
        with open(f, "wb") as fh:
            fh.write(data)
    elif hasattr(f, "write"):
        f.write(data)
    else:
        raise TypeError(f"rnnbp.onnx.export: f must be a path or a binary file object, got {type(f).__name__}")
