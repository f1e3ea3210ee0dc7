"""The graph builder ``g``: what converters and ``onnx_export`` methods write ONNX nodes with.

A converter receives the forward's arguments with every tensor replaced by a :class:`Value`
(a name in the graph) and returns the forward's outputs the same way, built with ``g``:

* ``g.module(child, *args, **kwargs)`` converts a submodule (built in, with its own
  ``onnx_export``, or given in ``exporters``) and returns its outputs as Values;
* ``g.op("ReduceSum", x, axes, keepdims=0)`` adds one ONNX node (``outputs=k`` for several);
* ``g.constant(array)``, ``g.param(module, "weight")`` add initializers;
* helpers for the ops whose signatures changed across opsets: ``cast``, ``unsqueeze``,
  ``squeeze``, ``transpose``, ``reshape``, ``concat``, ``slice``, ``reduce_sum``;
* ``g.shape(v)``, ``g.rank(v)``, ``g.dtype(v)``: what ONNX shape inference knows of a Value
  (ints for fixed sizes, names for dynamic axes, None where unknown).

Everything is symbolic: nothing runs while the graph is built.
"""
from __future__ import annotations

import itertools

import numpy as np
import onnx
from onnx import helper, numpy_helper

from . import registry
from .errors import ExportError, UnsupportedModuleError


class Value:
    """One tensor of the graph being built, known by its ONNX name."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"Value({self.name!r})"


def onnx_type(dtype) -> int:
    """The ONNX element type (TensorProto enum) of a NumPy dtype."""
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def describe(path: str) -> str:
    return f"'{path}'" if path else "the model itself"


class GraphBuilder:
    """Collects the nodes, initializers and inputs of one export (see the module docstring).

    Args:
        root : the exported module; submodule paths in errors and node names are relative to it.
        opset : int, the ONNX opset of the default domain.
        exporters : {module class: function(module, g, *inputs, **kwinputs)}, consulted first.
    """

    def __init__(self, root, opset: int, exporters=None):
        self.opset = int(opset)
        self.nodes: list = []
        self.inputs: list = []
        self.initializers: list = []
        self._paths = {}
        for name, m in root.named_modules():
            self._paths.setdefault(id(m), name)
        self._exporters = dict(exporters or {})
        self._used: set[str] = set()
        self._counter = itertools.count()
        self._known: dict[str, tuple] = {}  # name -> (np.dtype | None, shape tuple | None)
        self._params: dict = {}  # (id(param), key) -> Value: a shared (tied) parameter is stored once
        self._stack: list[str] = []  # paths of the modules being converted

    # ------------------------------------------------------------------ names
    def fresh(self, hint: str) -> str:
        """A name not used yet in the graph, built from ``hint``."""
        name = hint
        while name in self._used:
            name = f"{hint}_{next(self._counter)}"
        self._used.add(name)
        return name

    @property
    def path(self) -> str:
        """The dotted path of the module being converted ("" at the root)."""
        return self._stack[-1] if self._stack else ""

    @property
    def where(self) -> str:
        """The module being converted, for messages: "at 'rnn'", or "(the model itself)"."""
        return f"at '{self.path}'" if self.path else "(the model itself)"

    def _scoped(self, hint: str) -> str:
        return f"{self.path}.{hint}" if self.path else hint

    # ------------------------------------------------------------ graph parts
    def add_input(self, name: str, dtype, shape: tuple) -> Value:
        """A graph input; ``shape`` holds ints and, for dynamic axes, names."""
        if name in self._used:
            raise ExportError(f"rnnbp.onnx.export: the name {name!r} is given to two inputs or outputs")
        self._used.add(name)
        self.inputs.append(helper.make_tensor_value_info(name, onnx_type(dtype), list(shape)))
        self._known[name] = (np.dtype(dtype), tuple(shape))
        return Value(name)

    def constant(self, array, name: str | None = None, dtype=None) -> Value:
        """An initializer holding ``array`` (copied); ``dtype`` casts it first."""
        array = np.asarray(array, dtype=dtype)
        name = self.fresh(self._scoped(name or "const"))
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        self._known[name] = (array.dtype, tuple(array.shape))
        return Value(name)

    def param(self, module, attr: str, transform=None, key: str = "") -> Value:
        """The parameter ``module.<attr>`` as an initializer named by its path, optionally transformed.

        ``transform(array) -> array`` (a transpose, a gate reordering) gives a different
        initializer per ``key``; the same parameter reached twice (tied weights) is stored once.
        """
        p = getattr(module, attr)
        cache = (id(p), key)
        if cache not in self._params:
            array = p._data if hasattr(p, "_data") else np.asarray(p)
            array = transform(array) if transform is not None else array
            self._params[cache] = self.constant(array, name=attr + (f".{key}" if key else ""))
        return self._params[cache]

    def op(self, op_type: str, *inputs, outputs: int = 1, domain: str = "", **attrs):
        """Add one node; ``None`` marks an omitted optional input. Returns a Value, or a tuple of ``outputs``."""
        names = []
        for v in inputs:
            if v is None:
                names.append("")
            elif isinstance(v, Value):
                names.append(v.name)
            else:
                raise ExportError(f"g.op({op_type!r}): inputs must be Values from the builder (or None), got "
                                  f"{type(v).__name__}; wrap arrays with g.constant(...)")
        while names and names[-1] == "":  # trailing omitted inputs are left out (some runtimes mishandle "")
            names.pop()
        outs = [self.fresh(self._scoped(f"{op_type}_out")) for _ in range(outputs)]
        node_name = self.fresh(self._scoped(op_type))
        self.nodes.append(helper.make_node(op_type, names, outs, name=node_name, domain=domain or None,
                                           **{k: v for k, v in attrs.items() if v is not None}))
        values = tuple(Value(o) for o in outs)
        return values[0] if outputs == 1 else values

    # ---------------------------------------------------------------- modules
    def module(self, module, *args, **kwargs):
        """Convert a submodule of the exported model on ``args`` (Values and Python constants).

        Looks, in order, in ``exporters``, for an ``onnx_export(g, *args, **kwargs)`` method,
        and in rnnbp's built-in converters; anything else raises UnsupportedModuleError.
        """
        path = self._paths.get(id(module))
        if path is None:
            raise ExportError(f"g.module: {type(module).__name__} is not a submodule of the exported model "
                              f"(called while converting {describe(self.path)})")
        self._stack.append(path)
        try:
            return self._dispatch(module, path, args, kwargs)
        finally:
            self._stack.pop()

    def _dispatch(self, module, path, args, kwargs):
        cls = type(module)
        for klass in cls.__mro__:
            if klass in self._exporters:
                return self._exporters[klass](module, self, *args, **kwargs)
        if callable(getattr(module, "onnx_export", None)):
            return module.onnx_export(self, *args, **kwargs)
        converter, builtin = registry.lookup(module)
        if converter is not None:
            return converter(module, self, *args, **kwargs)
        why = (f": it subclasses {builtin.__name__} but overrides forward, so {builtin.__name__}'s conversion "
               "would not compute what it does" if builtin is not None else "")
        raise UnsupportedModuleError(
            f"rnnbp.onnx.export: no ONNX conversion for {describe(path)} ({_class_name(cls)}){why}. Built in: "
            f"{', '.join(registry.supported_names())}. A class of your own can define "
            f"onnx_export(self, g, *inputs) building its forward with g (see rnnbp.onnx), or pass "
            f"exporters={{{cls.__name__}: function(module, g, *inputs)}} to export",
            module=module, path=path)

    # ------------------------------------------------------- shape knowledge
    def _infer(self) -> None:
        graph = helper.make_graph(self.nodes, "inference", self.inputs, [], self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
        except Exception as exc:  # a node with wrong inputs: say where
            raise ExportError(f"rnnbp.onnx.export: the graph built so far is not valid ONNX (while converting "
                              f"{describe(self.path)}): {exc}") from exc
        for info in inferred.graph.value_info:
            self._known[info.name] = _type_of(info.type)

    def _lookup(self, v: Value) -> tuple:
        if v.name not in self._known:
            self._infer()
        return self._known.get(v.name, (None, None))

    def shape(self, v: Value) -> tuple | None:
        """Each axis: an int (fixed), a name (dynamic axis) or None (unknown); None if even the rank is unknown."""
        return self._lookup(v)[1]

    def rank(self, v: Value) -> int:
        shape = self.shape(v)
        if shape is None:
            raise ExportError(f"rnnbp.onnx.export: the rank of {v.name} is unknown (while converting "
                              f"{describe(self.path)})")
        return len(shape)

    def dtype(self, v: Value) -> np.dtype:
        dtype = self._lookup(v)[0]
        if dtype is None:
            raise ExportError(f"rnnbp.onnx.export: the element type of {v.name} is unknown (while converting "
                              f"{describe(self.path)})")
        return dtype

    # --------------------------------------------- ops with opset-dependent forms
    def ints(self, values) -> Value:
        """A 1-D int64 initializer (axes, shapes, starts and ends)."""
        return self.constant(np.asarray(values, dtype=np.int64).reshape(-1), name="ints")

    def cast(self, v: Value, dtype) -> Value:
        return self.op("Cast", v, to=onnx_type(dtype))

    def unsqueeze(self, v: Value, axes) -> Value:
        return self.op("Unsqueeze", v, self.ints(axes))

    def squeeze(self, v: Value, axes) -> Value:
        return self.op("Squeeze", v, self.ints(axes))

    def transpose(self, v: Value, perm) -> Value:
        return self.op("Transpose", v, perm=list(perm))

    def reshape(self, v: Value, shape) -> Value:
        """``shape``: a list of ints (0 copies the input's axis, -1 is inferred) or a Value."""
        return self.op("Reshape", v, shape if isinstance(shape, Value) else self.ints(shape))

    def concat(self, values, axis: int) -> Value:
        values = list(values)
        return values[0] if len(values) == 1 else self.op("Concat", *values, axis=axis)

    def slice(self, v: Value, starts, ends, axes) -> Value:
        return self.op("Slice", v, self.ints(starts), self.ints(ends), self.ints(axes))

    def reduce_sum(self, v: Value, axes, keepdims: bool = False) -> Value:
        return self.op("ReduceSum", v, self.ints(axes), keepdims=int(keepdims))


def _class_name(cls) -> str:
    """rnnbp.nn.LSTMCell for a class rnnbp.nn exports, else its module and qualified name."""
    from .. import nn

    if getattr(nn, cls.__name__, None) is cls:
        return f"rnnbp.nn.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def _type_of(type_proto) -> tuple:
    """(np.dtype or None, shape tuple or None) of an ONNX TypeProto."""
    tensor = type_proto.tensor_type
    dtype = helper.tensor_dtype_to_np_dtype(tensor.elem_type) if tensor.elem_type else None
    if not tensor.HasField("shape"):
        return dtype, None
    dims = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else None
                 for d in tensor.shape.dim)
    return dtype, dims
