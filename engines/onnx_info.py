"""What a check needs to know about an ONNX graph without running it: element types and shapes of every
value (with the types of plugin outputs filled in from their contract), node attributes, custom nodes,
which values are constants, who produces and who consumes each value.

Pure ``onnx``: no torch, no TensorRT, no instancevg.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto

STANDARD_DOMAINS = ("", "ai.onnx")

# ONNX element type -> the names TensorRT's documentation uses (operators.md)
TRT_TYPE_NAMES = {
    TensorProto.FLOAT: "FP32", TensorProto.FLOAT16: "FP16", TensorProto.BFLOAT16: "BF16",
    TensorProto.INT32: "INT32", TensorProto.INT64: "INT64", TensorProto.BOOL: "BOOL", TensorProto.UINT8: "UINT8",
    TensorProto.INT8: "INT8", TensorProto.INT4: "INT4", TensorProto.FLOAT8E4M3FN: "FP8",
    TensorProto.FLOAT4E2M1: "FP4", TensorProto.DOUBLE: "DOUBLE",
}


def type_name(elem_type: int) -> str:
    """FP32/FP16/... for the types TensorRT knows, the ONNX name (INT16, STRING, ...) for the others."""
    return TRT_TYPE_NAMES.get(elem_type) or TensorProto.DataType.Name(elem_type)


@dataclass(frozen=True)
class ValueType:
    """Element type and shape (ints for fixed dims, strings for symbolic ones, None if unknown)."""

    elem_type: int
    shape: tuple | None

    @property
    def dtype(self) -> str:
        return onnx.helper.tensor_dtype_to_np_dtype(self.elem_type).name if self.elem_type else "unknown"

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def static(self) -> bool:
        """Every dimension known as a number."""
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)


def _value_type(info: onnx.ValueInfoProto) -> ValueType:
    tensor = info.type.tensor_type
    shape = (tuple(d.dim_param if d.dim_param else (d.dim_value if d.HasField("dim_value") else None)
                   for d in tensor.shape.dim) if tensor.HasField("shape") else None)
    return ValueType(tensor.elem_type, shape)


def value_types(model: onnx.ModelProto) -> dict[str, ValueType]:
    """Types of every named value of the main graph (inputs, outputs, value_info, initializers)."""
    types: dict[str, ValueType] = {}
    graph = model.graph
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        types[info.name] = _value_type(info)
    for init in graph.initializer:
        types[init.name] = ValueType(init.data_type, tuple(init.dims))
    return types


def attributes(node: onnx.NodeProto) -> dict:
    """Node attributes as python values; strings decoded."""
    out = {}
    for attr in node.attribute:
        value = onnx.helper.get_attribute_value(attr)
        out[attr.name] = value.decode() if isinstance(value, bytes) else value
    return out


def custom_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Nodes outside the default ONNX domain (main graph)."""
    return [n for n in model.graph.node if n.domain not in STANDARD_DOMAINS]


def network_inputs(model: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    """The real inputs of the main graph (initializers listed as inputs, as old exporters did, excluded)."""
    initializers = {t.name for t in model.graph.initializer}
    return {i.name: i for i in model.graph.input if i.name not in initializers}


def default_opset(model: onnx.ModelProto) -> int | None:
    opsets = {o.domain: o.version for o in model.opset_import}
    return opsets.get("", opsets.get("ai.onnx"))


def infer_types(model: onnx.ModelProto,
                output_types: Callable[[onnx.NodeProto, dict[str, ValueType]], list[int | None]] | None = None,
                ) -> onnx.ModelProto:
    """A copy of ``model`` with shape inference run, so that every value has a type.

    ONNX inference stops at custom nodes (no schema); ``output_types(node, types)`` gives their output
    element types (None = unknown) and inference is repeated until nothing new is learned (one extra pass
    per chain of custom nodes whose outputs the graph did not already describe). Graphs over protobuf's
    2 GiB cannot be copied through inference and are returned as they are."""
    if model.ByteSize() >= 2**31 - 1:
        return model
    inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
    if output_types is None:
        return inferred
    for _ in range(len(custom_nodes(inferred)) + 1):
        types = value_types(inferred)
        added = []
        for node in custom_nodes(inferred):
            for name, elem in zip(node.output, output_types(node, types)):
                if name and elem and name not in types:
                    added.append(onnx.helper.make_tensor_value_info(name, elem, None))
        if not added:
            break
        inferred.graph.value_info.extend(added)
        inferred = onnx.shape_inference.infer_shapes(inferred, check_type=False, strict_mode=False,
                                                     data_prop=True)
    return inferred


@dataclass
class GraphIndex:
    """Lookups over the main graph of a (type-inferred) model."""

    model: onnx.ModelProto
    types: dict[str, ValueType] = field(init=False)

    def __post_init__(self):
        self.types = value_types(self.model)

    @cached_property
    def initializers(self) -> dict[str, onnx.TensorProto]:
        return {t.name: t for t in self.model.graph.initializer}

    @cached_property
    def producers(self) -> dict[str, onnx.NodeProto]:
        return {o: n for n in self.model.graph.node for o in n.output if o}

    @cached_property
    def consumers(self) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
        """value name -> [(node, input index)]."""
        out: dict[str, list] = {}
        for node in self.model.graph.node:
            for i, name in enumerate(node.input):
                if name:
                    out.setdefault(name, []).append((node, i))
        return out

    @cached_property
    def graph_inputs(self) -> dict[str, onnx.ValueInfoProto]:
        return network_inputs(self.model)

    @cached_property
    def graph_outputs(self) -> set[str]:
        return {o.name for o in self.model.graph.output}

    def is_initializer(self, name: str) -> bool:
        """What TensorRT's parser calls weights: an initializer or the output of a Constant node."""
        producer = self.producers.get(name)
        return name in self.initializers or (producer is not None and producer.op_type == "Constant"
                                             and producer.domain in STANDARD_DOMAINS)

    @cached_property
    def build_time_constants(self) -> set[str]:
        """Values computable before any input arrives: initializers, Constant outputs, Shape of a tensor
        with a static shape, and whatever standard nodes compute from those alone (the graph is in
        topological order, as ONNX requires)."""
        known = set(self.initializers)
        for node in self.model.graph.node:
            if node.domain not in STANDARD_DOMAINS:
                continue
            if node.op_type == "Constant":
                constant = True
            elif node.op_type in ("Shape", "Size"):
                vt = self.types.get(node.input[0])
                constant = vt is not None and vt.static
            else:
                constant = all(not name or name in known for name in node.input)
            if constant:
                known.update(o for o in node.output if o)
        return known

    def constant_value(self, name: str):
        """The numpy value of an initializer or Constant output (None otherwise)."""
        if name in self.initializers:
            return onnx.numpy_helper.to_array(self.initializers[name])
        producer = self.producers.get(name)
        if producer is not None and producer.op_type == "Constant":
            attrs = attributes(producer)
            if "value" in attrs:
                return onnx.numpy_helper.to_array(attrs["value"])
            for key in ("value_int", "value_ints", "value_float", "value_floats"):
                if key in attrs:
                    return np.asarray(attrs[key])
        return None
