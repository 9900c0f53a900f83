"""The plugin node contract: how an ONNX node must look for TensorRT's parser to hand it, intact, to one of
our plugin creators (plugins/README.md). One implementation, used by ``instancevg-export`` (with the
model-specific checks of export/contract.py on top) and by the TensorRT compatibility check.

TensorRT's parser imports a node it has no importer for through its plugin fallback: the creator is looked
up by op_type, the string attribute ``plugin_version`` (default "1") and the string attribute
``plugin_namespace`` (default ""; TensorRT >= 10.10 retries with the node's domain). Only the fields the
creator advertises reach it (other attributes are dropped without a word), INT attributes become int32,
and INT64 inputs are passed unchanged (the parser narrows them only for NVIDIA's own plugins), so index
inputs must be int32 in the graph.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import onnx
from onnx import AttributeProto, TensorProto

from .findings import ERROR, WARNING, Finding
from .onnx_info import ValueType, attributes, type_name

PLUGIN_DOMAIN = "instancevg"
PLUGIN_NAMESPACE = "instancevg"
PLUGIN_VERSION = "1"
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16)
SAME_AS_VALUE = "T"  # the element type of MSDeformAttn's `value` input (float32 or float16)


@dataclass(frozen=True)
class Port:
    """One input or output: its name in plugins/README.md, allowed element types (or SAME_AS_VALUE), rank."""

    label: str
    types: tuple[int, ...] | str
    rank: int


@dataclass(frozen=True)
class PluginSpec:
    """A plugin creator: its name (= the node's op_type), fields (name -> AttributeProto type), I/O."""

    name: str
    fields: dict[str, int]
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]


PLUGINS = {
    "MSDeformAttn": PluginSpec(
        "MSDeformAttn", {},
        (Port("value", FLOATS, 4), Port("spatial_shapes", (TensorProto.INT32,), 2),
         Port("level_start_index", (TensorProto.INT32,), 1), Port("sampling_locations", SAME_AS_VALUE, 6),
         Port("attention_weights", SAME_AS_VALUE, 5)),
        (Port("output", SAME_AS_VALUE, 3),)),
    "PointSelect": PluginSpec(
        "PointSelect", {"num_points": AttributeProto.INT, "w_dist": AttributeProto.FLOAT},
        (Port("scores", (TensorProto.FLOAT,), 3),),
        (Port("indices", (TensorProto.INT32,), 2), Port("points", (TensorProto.FLOAT,), 3))),
}
IDENTITY_ATTRIBUTES = {"plugin_namespace": PLUGIN_NAMESPACE, "plugin_version": PLUGIN_VERSION}
# AttributeProto types the parser turns into plugin fields (INT -> int32, FLOAT -> float32, ...)
FIELD_TYPES = {AttributeProto.INT, AttributeProto.FLOAT, AttributeProto.STRING, AttributeProto.INTS,
               AttributeProto.FLOATS, AttributeProto.STRINGS, AttributeProto.TENSOR}
UNSUPPORTED_TENSOR_FIELDS = {TensorProto.INT64, TensorProto.UINT8, TensorProto.UINT16, TensorProto.UINT32,
                             TensorProto.UINT64, TensorProto.BOOL}


def is_our_plugin(node: onnx.NodeProto) -> bool:
    return node.domain == PLUGIN_DOMAIN or node.op_type in PLUGINS


def plugin_output_types(node: onnx.NodeProto, types: dict[str, ValueType]) -> list[int | None]:
    """Output element types of one of our plugin nodes (for type inference); None where unknown."""
    spec = PLUGINS.get(node.op_type)
    if spec is None:
        return [None] * len(node.output)
    value = types.get(node.input[0]) if node.input else None
    return [(value.elem_type if value else None) if port.types == SAME_AS_VALUE else port.types[0]
            for port in spec.outputs]


def check_plugin_node(node: onnx.NodeProto, types: dict[str, ValueType]) -> list[Finding]:
    """One node against the contract of the plugin its op_type names (domain, namespace, version, fields
    and their types and ranges, input/output count, element types and ranks)."""
    spec = PLUGINS.get(node.op_type)

    def finding(message, rule="plugin-contract", severity=ERROR):
        return Finding(rule, message, node.name, f"{node.domain}::{node.op_type}", severity=severity)

    if spec is None:
        return [finding(f"no instancevg plugin is called {node.op_type!r}; the plugins are "
                        f"{', '.join(PLUGINS)} (op_type = plugin name)")]
    found = []
    if node.domain != PLUGIN_DOMAIN:
        found.append(finding(f"domain {node.domain!r}, expected {PLUGIN_DOMAIN!r}"))
    attrs = {a.name: a for a in node.attribute}
    values = attributes(node)
    for key, want in IDENTITY_ATTRIBUTES.items():
        attr = attrs.get(key)
        if attr is None:
            default = '""' if key == "plugin_namespace" else '"1"'
            found.append(finding(f"attribute {key} missing (the parser then uses {default}"
                                 + ("; only TensorRT >= 10.10 retries with the node's domain" if key ==
                                    "plugin_namespace" else "") + f"); expected {key}={want!r}"))
        elif attr.type != AttributeProto.STRING:
            found.append(finding(f"attribute {key} is {AttributeProto.AttributeType.Name(attr.type)}, "
                                 f"expected the STRING {want!r}"))
        elif values[key] != want:
            found.append(finding(f"attribute {key}={values[key]!r}, expected {want!r}"))
    for key, attr in attrs.items():
        if key in IDENTITY_ATTRIBUTES:
            continue
        if key not in spec.fields:
            fields = ", ".join(spec.fields) or "none"
            found.append(finding(f"attribute {key!r} is not a field of the {spec.name} creator (fields: "
                                 f"{fields}); TensorRT's parser drops it, the plugin never sees it"))
            continue
        want = spec.fields[key]
        if attr.type != want:
            found.append(finding(f"field {key} is {AttributeProto.AttributeType.Name(attr.type)}, the creator "
                                 f"expects {AttributeProto.AttributeType.Name(want)}"))
    for key in spec.fields:
        if key not in attrs:
            found.append(finding(f"field {key} missing; the {spec.name} creator refuses to create the plugin"))
    if spec.name == "PointSelect":
        found += _point_select_fields(node, values, attrs, finding)
    found += _check_ports(node, spec, types, finding)
    return found


def _point_select_fields(node, values, attrs, finding) -> list[Finding]:
    found = []
    n = values.get("num_points")
    if attrs.get("num_points") is not None and attrs["num_points"].type == AttributeProto.INT:
        if not INT32_MIN <= n <= INT32_MAX:
            found.append(finding(f"field num_points={n} does not fit int32 (the parser truncates INT fields "
                                 "to int32)", rule="plugin-int32"))
        elif n < 1:
            found.append(finding(f"field num_points={n}; the creator needs num_points >= 1"))
    w = values.get("w_dist")
    if attrs.get("w_dist") is not None and attrs["w_dist"].type == AttributeProto.FLOAT and not math.isfinite(w):
        found.append(finding(f"field w_dist={w}; the creator needs a finite value"))
    return found


def _check_ports(node, spec, types, finding) -> list[Finding]:
    found = []
    value_type = types.get(node.input[0]).elem_type if node.input and types.get(node.input[0]) else None
    for kind, names, ports in (("input", list(node.input), spec.inputs), ("output", list(node.output), spec.outputs)):
        if len(names) != len(ports):
            found.append(finding(f"{len(names)} {kind}s, expected {len(ports)} "
                                 f"({', '.join(p.label for p in ports)})"))
            continue
        for name, port in zip(names, ports):
            vt = types.get(name)
            if vt is None or not vt.elem_type:
                found.append(finding(f"{kind} {port.label} ({name!r}) has no type information",
                                     severity=WARNING))
                continue
            allowed = (value_type,) if port.types == SAME_AS_VALUE else port.types
            if vt.elem_type not in allowed:
                want = " or ".join(type_name(t) for t in allowed if t)
                int64_index = (vt.elem_type == TensorProto.INT64 and allowed == (TensorProto.INT32,))
                why = (" (the parser passes INT64 unchanged to non-NVIDIA plugins; Cast to INT32 in the graph)"
                       if int64_index else " (strongly typed: all float inputs of the plugin share value's type)"
                       if port.types == SAME_AS_VALUE else "")
                found.append(finding(f"{kind} {port.label} is {type_name(vt.elem_type)}, expected {want}{why}",
                                     rule="plugin-int32" if int64_index else "plugin-contract"))
            if vt.rank is not None and vt.rank != port.rank:
                found.append(finding(f"{kind} {port.label} has rank {vt.rank} {vt.shape}, expected rank {port.rank}"))
    return found


def check_custom_node_attributes(node: onnx.NodeProto) -> list[Finding]:
    """Attributes of any plugin node that TensorRT's parser cannot turn into plugin fields: INT values
    beyond int32 (truncated), graph / sparse / type-proto attributes, tensors of unsupported types."""
    found = []
    for attr in node.attribute:
        def finding(message, rule="plugin-attribute"):
            return Finding(rule, f"attribute {attr.name}: {message}", node.name, f"{node.domain}::{node.op_type}")

        if attr.type not in FIELD_TYPES:
            found.append(finding(f"{AttributeProto.AttributeType.Name(attr.type)} attributes have no plugin "
                                 "field type"))
        elif attr.type == AttributeProto.INT and not INT32_MIN <= attr.i <= INT32_MAX:
            found.append(finding(f"{attr.i} does not fit int32 (INT attributes become int32 fields)", "plugin-int32"))
        elif attr.type == AttributeProto.INTS and any(not INT32_MIN <= v <= INT32_MAX for v in attr.ints):
            found.append(finding("values beyond int32 (INTS attributes become int32[] fields)", "plugin-int32"))
        elif attr.type == AttributeProto.TENSOR and attr.t.data_type in UNSUPPORTED_TENSOR_FIELDS:
            found.append(finding(f"{type_name(attr.t.data_type)} tensors cannot become plugin fields"))
    return found
