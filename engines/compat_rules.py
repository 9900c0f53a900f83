"""The rules of the TensorRT compatibility check (engines/compat.py). A rule is a function
``rule(ctx: CheckContext) -> Iterable[Finding]``; ``DEFAULT_RULES`` lists them in report order. Each rule
reads the support table (engines/data/tensorrt_onnx_support.json) through ``ctx.support`` and reports per
TensorRT major where the table differs between majors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

import numpy as np
import onnx
from onnx import TensorProto

from .findings import ERROR, WARNING, Finding
from .onnx_info import STANDARD_DOMAINS, GraphIndex, attributes, default_opset, type_name
from .plugin_contract import check_custom_node_attributes, check_plugin_node, is_our_plugin


@dataclass
class CheckContext:
    """A type-inferred model, its lookups, the support table and the TensorRT majors checked."""

    model: onnx.ModelProto
    support: dict
    versions: tuple[str, ...]
    index: GraphIndex = field(init=False)
    opset: int | None = field(init=False)

    def __post_init__(self):
        self.index = GraphIndex(self.model)
        self.opset = default_opset(self.model)

    @property
    def types(self):
        return self.index.types

    def standard_nodes(self) -> Iterable[onnx.NodeProto]:
        return (n for n in self.model.graph.node if n.domain in STANDARD_DOMAINS)

    def op_entry(self, op_type: str) -> dict | None:
        return self.support["operators"].get(op_type)

    def per_version(self, value, version: str):
        """A table value that is either common to all majors or a dict keyed by major."""
        if isinstance(value, dict) and set(value) <= set(self.support["tensorrt"]):
            return value.get(version)
        return value

    def schema(self, node: onnx.NodeProto):
        try:
            return onnx.defs.get_schema(node.op_type, self.opset or onnx.defs.onnx_opset_version(), "")
        except onnx.defs.SchemaError:
            return None


Rule = Callable[[CheckContext], Iterable[Finding]]


def _node_finding(node, rule, message, versions, severity=ERROR) -> Finding:
    return Finding(rule, message, node.name, node.op_type if node.domain in STANDARD_DOMAINS
                   else f"{node.domain}::{node.op_type}", tuple(versions), severity)


def _grouped(ctx: CheckContext, node, compute: Callable[[str], str | None], rule: str,
             severity: str = ERROR) -> list[Finding]:
    """One finding per distinct message over the checked majors (``compute(version)`` -> message or None)."""
    messages: dict[str, list[str]] = {}
    for version in ctx.versions:
        message = compute(version)
        if message:
            messages.setdefault(message, []).append(version)
    return [_node_finding(node, rule, m, v, severity) for m, v in messages.items()]


# -- the graph as a whole -------------------------------------------------------------------------------

def rule_opset(ctx: CheckContext) -> Iterable[Finding]:
    """The default-domain opset lies in the range each parser imports."""
    for version in ctx.versions:
        lo, hi = ctx.support["tensorrt"][version]["opset"]
        if ctx.opset is None or not lo <= ctx.opset <= hi:
            table = ctx.support["tensorrt"][version]["table_version"]
            yield Finding("opset", f"default-domain opset {ctx.opset} outside {lo}..{hi} (the {table} parser)",
                          versions=(version,))


def rule_tensor_types(ctx: CheckContext) -> Iterable[Finding]:
    """Every value has an element type TensorRT has, UINT8 only at the network's I/O, DOUBLE (cast down to
    FP32 by the parser) flagged, quantized types only around Q/DQ, ranks <= 8."""
    table = ctx.support["tensor_types"]
    index = ctx.index
    quantize_io = set()
    for node in ctx.standard_nodes():
        if node.op_type == "DequantizeLinear":
            quantize_io.update(x for x in node.input[:1] + node.input[2:3] if x)
        elif node.op_type == "QuantizeLinear":
            quantize_io.update(x for x in list(node.output[:1]) + list(node.input[2:3]) if x)
    io = set(index.graph_inputs) | index.graph_outputs
    for name, vt in ctx.types.items():
        if not vt.elem_type:
            continue
        kind = type_name(vt.elem_type)
        producer = index.producers.get(name)
        where = dict(node=producer.name, op_type=producer.op_type) if producer else {}
        label = f"value {name!r}"
        if kind not in table["supported"]:
            yield Finding("tensor-type", f"{label} is {kind}: TensorRT has no such type", **where)
        elif kind in table["io_only"] and name not in io:
            yield Finding("tensor-type", f"{label} is {kind}, which TensorRT allows only as a network input or "
                                         "output (Cast it at the graph's edge)", **where)
        elif kind in table["quantized_only"] and name not in quantize_io:
            yield Finding("tensor-type", f"{label} is {kind}, which TensorRT supports only as the quantized side "
                                         "of QuantizeLinear/DequantizeLinear", **where)
        elif kind in table["downcast"]:
            yield Finding("tensor-type", f"{label} is {kind}: the parser casts it to "
                                         f"{table['downcast'][kind]}, clamping to the float32 range",
                          severity=WARNING, **where)
        if vt.rank is not None and vt.rank > table["max_rank"]:
            yield Finding("tensor-type", f"{label} has rank {vt.rank}; TensorRT tensors have at most "
                                         f"{table['max_rank']} dimensions", **where)


def rule_dynamic_shapes(ctx: CheckContext) -> Iterable[Finding]:
    """Network inputs: known rank; only the batch axis (0) symbolic, since instancevg-build-engine and the
    trtexec recipes give an optimisation profile for the batch axis alone; no integer input used as a
    shape tensor (it would need shape-input values in the profile)."""
    index = ctx.index
    for name, info in index.graph_inputs.items():
        vt = ctx.types.get(name)
        if vt is None or vt.shape is None:
            yield Finding("dynamic-shape", f"network input {name!r} has no known rank; TensorRT needs the rank of "
                                           "every network input")
            continue
        dynamic = [axis for axis, d in enumerate(vt.shape) if not isinstance(d, int) or d < 0]
        if [a for a in dynamic if a != 0]:
            yield Finding("dynamic-shape", f"network input {name!r} has symbolic dimensions on axes "
                                           f"{[a for a in dynamic if a != 0]} {vt.shape}; the engine profile "
                                           "(sidecar batch range) covers the batch axis 0 only")
        for node, slot in index.consumers.get(name, []):
            if slot in SHAPE_INPUTS.get(node.op_type, ()):
                yield Finding("dynamic-shape", f"network input {name!r} feeds input {slot} of {node.op_type} node "
                                               f"{node.name!r} as a shape tensor; the engine profile gives no "
                                               "shape-tensor values")


# inputs of standard ops that TensorRT treats as shape tensors
SHAPE_INPUTS = {"Reshape": (1,), "Expand": (1,), "ConstantOfShape": (0,), "Tile": (1,), "Range": (0, 1, 2),
                "Slice": (1, 2, 3, 4), "Resize": (2, 3), "Upsample": (1,), "TopK": (1,), "OneHot": (1,),
                "Squeeze": (1,), "Unsqueeze": (1,), "Pad": (1,)}


# -- per node ------------------------------------------------------------------------------------------

def rule_operators(ctx: CheckContext) -> Iterable[Finding]:
    """Each standard op is imported by the parser of each major; nodes calling a model-local function
    are imported through the function; custom-domain nodes other than ours go to the plugin fallback."""
    functions = {(f.domain, f.name) for f in ctx.model.functions}
    for node in ctx.model.graph.node:
        if (node.domain, node.op_type) in functions:
            continue
        if node.domain not in STANDARD_DOMAINS:
            if is_our_plugin(node):
                continue  # rule_plugin_contract
            yield _node_finding(
                node, "custom-operator",
                f"imported through TensorRT's plugin fallback: needs a plugin creator {node.op_type!r} "
                f"version {attributes(node).get('plugin_version', '1')!r} in namespace "
                f"{attributes(node).get('plugin_namespace', '')!r} (or {node.domain!r}, TensorRT >= 10.10) "
                "registered before parsing, which this check cannot see", ctx.versions, WARNING)
            continue
        entry = ctx.op_entry(node.op_type)
        missing = [v for v in ctx.versions if entry is None or v not in entry["supported"]]
        if missing:
            what = ("not an ONNX operator TensorRT knows: the parser would look for a plugin of that name"
                    if entry is None else "TensorRT's ONNX parser does not import this operator")
            yield _node_finding(node, "operator", what, missing)
    bodies = [(f"local function {f.name!r}", f.node) for f in ctx.model.functions]
    bodies += list(_subgraphs(ctx.model.graph.node))
    for where, nodes in bodies:
        for node in nodes:
            entry = ctx.op_entry(node.op_type) if node.domain in STANDARD_DOMAINS else None
            missing = [v for v in ctx.versions if entry is None or v not in entry["supported"]]
            if node.domain in STANDARD_DOMAINS and missing:
                yield _node_finding(node, "operator", f"inside {where}: TensorRT's ONNX parser does not import "
                                                      "this operator", missing)


def _subgraphs(nodes, path: str = "") -> Iterable[tuple[str, list]]:
    """(description, nodes) of every If/Loop/Scan body below ``nodes``, recursively."""
    for node in nodes:
        for attr in node.attribute:
            graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
            for graph in graphs:
                where = f"{path}{attr.name} of {node.op_type} node {node.name!r}"
                yield where, list(graph.node)
                yield from _subgraphs(graph.node, where + " > ")


def _typed_values(ctx: CheckContext, node, params: list[str]) -> list[tuple[str, str]]:
    """(kind and index, value name) of the node's inputs/outputs bound to the type parameters ``params``."""
    schema = ctx.schema(node)
    if schema is None:
        return []
    bound = []
    for kind, formals, actuals in (("input", schema.inputs, node.input), ("output", schema.outputs, node.output)):
        for i, name in enumerate(actuals):
            if not name or not formals:
                continue
            formal = formals[min(i, len(formals) - 1)]
            if i >= len(formals) and formal.option != onnx.defs.OpSchema.FormalParameterOption.Variadic:
                continue
            if formal.type_str in params:
                bound.append((f"{kind} {i}", name))
    return bound


def rule_data_types(ctx: CheckContext) -> Iterable[Finding]:
    """The element types a node's typed inputs/outputs carry are among those the parser's importer takes
    (operators.md 'Supported Types'; DOUBLE counts as the FP32 the parser casts it to)."""
    downcast = ctx.support["tensor_types"]["downcast"]
    for node in ctx.standard_nodes():
        entry = ctx.op_entry(node.op_type)
        if not entry or not entry.get("typed"):
            continue
        typed = _typed_values(ctx, node, entry["typed"])

        def compute(version, typed=typed, entry=entry):
            allowed = ctx.per_version(entry.get("types", []), version)
            if version not in entry["supported"] or allowed is None:
                return None
            bad = []
            for where, name in typed:
                vt = ctx.types.get(name)
                if vt is None or not vt.elem_type:
                    continue
                kind = type_name(vt.elem_type)
                if downcast.get(kind, kind) not in allowed:
                    bad.append(f"{where} ({name!r}) is {kind}")
            return (f"{'; '.join(bad)}: the importer takes {', '.join(allowed)}") if bad else None

        yield from _grouped(ctx, node, compute, "data-type")


def rule_strongly_typed(ctx: CheckContext) -> Iterable[Finding]:
    """Strongly typed networks (TensorRT 11 always; 10 with --stronglyTyped) insert no casts: the values
    bound to one type parameter of an op must have one element type (no FP16/FP32 mixing without a
    Cast)."""
    for node in ctx.standard_nodes():
        schema = ctx.schema(node)
        if schema is None:
            continue
        params = {c.type_param_str for c in schema.type_constraints}
        for param in sorted(params):
            kinds: dict[str, list[str]] = {}
            for where, name in _typed_values(ctx, node, [param]):
                vt = ctx.types.get(name)
                if vt is not None and vt.elem_type:
                    kinds.setdefault(type_name(vt.elem_type), []).append(f"{where} {name!r}")
            if len(kinds) > 1:
                detail = "; ".join(f"{k}: {', '.join(v)}" for k, v in kinds.items())
                yield _node_finding(node, "strongly-typed",
                                    f"type parameter {param} is bound to {' and '.join(kinds)} ({detail}); a "
                                    "strongly typed network casts nothing implicitly: insert a Cast",
                                    ctx.versions)


def rule_attributes(ctx: CheckContext) -> Iterable[Finding]:
    """Attribute values the importers accept (the table's 'attributes' / 'forbidden_attributes')."""
    for node in ctx.standard_nodes():
        entry = ctx.op_entry(node.op_type)
        if not entry:
            continue
        values = attributes(node)
        for name, spec in entry.get("attributes", {}).items():
            value = values.get(name, spec.get("default"))
            if value is None:
                continue
            if not _allowed(value, spec["allowed"]):
                yield _node_finding(node, "attribute", f"{name}={value!r}; TensorRT supports "
                                                       f"{', '.join(repr(a) for a in spec['allowed'])}",
                                    [v for v in ctx.versions if v in entry["supported"]])
        for name in entry.get("forbidden_attributes", []):
            if name in values:
                yield _node_finding(node, "attribute", f"attribute {name} is not supported",
                                    [v for v in ctx.versions if v in entry["supported"]])


def _allowed(value, allowed) -> bool:
    if isinstance(value, float):
        return any(isinstance(a, (int, float)) and math.isclose(value, a, abs_tol=1e-12) for a in allowed)
    return value in allowed


def rule_constant_inputs(ctx: CheckContext) -> Iterable[Finding]:
    """Inputs the importers need as weights ('initializer': an initializer or Constant output) or as
    build-time constants (computable from weights and static shapes, no network input involved)."""
    index = ctx.index
    for node in ctx.standard_nodes():
        entry = ctx.op_entry(node.op_type)
        if not entry:
            continue
        for slot, kind in entry.get("constant_inputs", {}).items():
            slot = int(slot)
            if slot >= len(node.input) or not node.input[slot]:
                continue
            name = node.input[slot]
            ok = index.is_initializer(name) if kind == "initializer" else name in index.build_time_constants
            if not ok:
                need = ("an initializer (or Constant)" if kind == "initializer"
                        else "a build-time constant (computed from initializers, not from network inputs)")
                yield _node_finding(node, "constant-input", f"input {slot} ({name!r}) must be {need}",
                                    [v for v in ctx.versions if v in entry["supported"]])


def rule_outputs_and_inputs(ctx: CheckContext) -> Iterable[Finding]:
    """Optional outputs/inputs the importers do not support, and the input ranks they accept."""
    for node in ctx.standard_nodes():
        entry = ctx.op_entry(node.op_type)
        if not entry:
            continue
        supported = [v for v in ctx.versions if v in entry["supported"]]
        limit = entry.get("max_outputs")
        if limit is not None:
            extra = [i for i, name in enumerate(node.output) if name and i >= limit]
            if extra:
                yield _node_finding(node, "output", f"outputs {extra} are used; TensorRT supports only the first "
                                                    f"{limit}", supported)
        for slot, label in entry.get("unsupported_inputs", {}).items():
            if int(slot) < len(node.input) and node.input[int(slot)]:
                yield _node_finding(node, "input", f"input {slot} ({label}) is not supported", supported)
        ranks = entry.get("input_rank")
        if ranks:
            def compute(version, node=node, ranks=ranks):
                table = ctx.per_version(ranks, version)
                if version not in entry["supported"] or not table:
                    return None
                bad = []
                for slot, allowed in table.items():
                    slot = int(slot)
                    vt = ctx.types.get(node.input[slot]) if slot < len(node.input) else None
                    if vt is not None and vt.rank is not None and vt.rank not in allowed:
                        bad.append(f"input {slot} has rank {vt.rank}, TensorRT supports rank "
                                   f"{' or '.join(map(str, allowed))}")
                return "; ".join(bad) or None

            yield from _grouped(ctx, node, compute, "input-rank")


def rule_gridsample_opset20(ctx: CheckContext) -> Iterable[Finding]:
    """GridSample-20 names its modes linear/cubic; the parser compares against bilinear/bicubic and falls
    back to nearest sampling without an error (onnx-tensorrt#1060, NVIDIA/TensorRT#4646)."""
    if ctx.opset is None or ctx.opset < 20:
        return
    for node in ctx.standard_nodes():
        if node.op_type != "GridSample":
            continue
        mode = attributes(node).get("mode", "linear")
        if mode in ("linear", "cubic"):
            yield _node_finding(node, "gridsample-opset20",
                                f"mode={mode!r} at opset {ctx.opset}: TensorRT's parser samples nearest instead; "
                                "export with opset <= 19 (mode 'bilinear')", ctx.versions)


def rule_op_checks(ctx: CheckContext) -> Iterable[Finding]:
    """The named checks of the table ('checks'), implemented below."""
    for node in ctx.standard_nodes():
        entry = ctx.op_entry(node.op_type)
        for name in (entry or {}).get("checks", []):
            if name in OP_CHECKS:
                yield from OP_CHECKS[name](ctx, node, [v for v in ctx.versions if v in entry["supported"]])


def rule_plugin_contract(ctx: CheckContext) -> Iterable[Finding]:
    """Our plugin nodes against the plugin node contract; any other custom node's attributes against what
    the plugin fallback can turn into fields."""
    for node in ctx.model.graph.node:
        if node.domain in STANDARD_DOMAINS:
            continue
        found = check_plugin_node(node, ctx.types) if is_our_plugin(node) else check_custom_node_attributes(node)
        yield from (replace(f, versions=ctx.versions) for f in found)
        if not is_our_plugin(node):
            int64 = [name for name in node.input if name and ctx.types.get(name)
                     and ctx.types[name].elem_type == TensorProto.INT64]
            if int64:
                yield _node_finding(node, "plugin-int32", f"INT64 inputs {int64} reach the plugin unchanged (the "
                                                          "parser narrows INT64 only for NVIDIA's plugins)",
                                    ctx.versions, WARNING)


# -- named per-op checks ('checks' in the table) ----------------------------------------------------------

def _dilations_one(ctx, node, versions):
    dilations = attributes(node).get("dilations")
    if dilations and any(d != 1 for d in dilations):
        yield _node_finding(node, "attribute", f"dilations={list(dilations)}; TensorRT pools with dilation 1 only",
                            versions)


def _einsum_equation(ctx, node, versions):
    equation = attributes(node).get("equation", "")
    bad = sorted({c for c in equation if not ("a" <= c <= "z" or c in "->., ")})
    if bad:
        yield _node_finding(node, "attribute", f"equation {equation!r} has characters {bad}; the parser takes "
                                               "lower-case letters only", versions)


def _zero_point_zero(ctx, node, versions):
    if len(node.input) > 2 and node.input[2]:
        value = ctx.index.constant_value(node.input[2])
        if value is None:
            yield _node_finding(node, "constant-input", "the zero point must be a constant zero", versions)
        elif np.any(value.astype(np.float64) != 0):
            yield _node_finding(node, "attribute", "the zero point must be zero (symmetric quantization)", versions)


def _dropout_inference(ctx, node, versions):
    if len(node.input) > 2 and node.input[2]:
        value = ctx.index.constant_value(node.input[2])
        if value is not None and bool(np.any(value)):
            yield _node_finding(node, "attribute", "training_mode is True; TensorRT runs inference only", versions)


def _static_input_shape(ctx, node, versions):
    vt = ctx.types.get(node.input[0])
    if vt is not None and not vt.static:
        yield _node_finding(node, "dynamic-shape", f"input shape {vt.shape} is not static; the importer needs static "
                                                   "dimensions", versions)


def _static_axis_dim(ctx, node, versions):
    vt = ctx.types.get(node.input[0])
    if vt is None or vt.shape is None:
        return
    axis = attributes(node).get("axis", -1)
    dim = vt.shape[axis] if -len(vt.shape) <= axis < len(vt.shape) else None
    if not isinstance(dim, int):
        yield _node_finding(node, "dynamic-shape", f"dimension {axis} of the input is not static ({dim!r})", versions)


def _resize_nearest_mode(ctx, node, versions):
    values = attributes(node)
    if (values.get("coordinate_transformation_mode") == "tf_half_pixel_for_nn"
            and values.get("nearest_mode", "round_prefer_floor") != "round_prefer_floor"):
        yield _node_finding(node, "attribute", "tf_half_pixel_for_nn works with nearest_mode round_prefer_floor "
                                               "only", versions)


def _resize_axes(ctx, node, versions):
    values = attributes(node)
    axes = values.get("axes")
    if not axes:
        return
    if len(set(axes)) != len(axes):
        yield _node_finding(node, "attribute", f"axes={list(axes)} repeat an axis", versions)
    scales = node.input[2] if len(node.input) > 2 else ""
    vt = ctx.types.get(node.input[0])
    if scales and not ctx.index.is_initializer(scales) and vt is not None and vt.rank is not None \
            and list(axes) != list(range(vt.rank)):
        yield _node_finding(node, "attribute", f"scales is a tensor, so axes must be 0..{vt.rank - 1}, got "
                                               f"{list(axes)}", versions)


def _reverse_sequence_axes(ctx, node, versions):
    values = attributes(node)
    if values.get("batch_axis", 1) == values.get("time_axis", 0):
        yield _node_finding(node, "attribute", "batch_axis equals time_axis", versions)


def _squeeze_axes_dynamic(ctx, node, versions):
    vt = ctx.types.get(node.input[0])
    has_axes = (len(node.input) > 1 and node.input[1]) or "axes" in attributes(node)
    if not has_axes and vt is not None and not vt.static:
        yield _node_finding(node, "dynamic-shape", f"no axes on an input of dynamic shape {vt.shape}: the parser "
                                                   "cannot tell which dimensions are 1 (fixed in 11.5)",
                            [v for v in versions if v == "10"])


def _topk_k(ctx, node, versions):
    if len(node.input) > 1 and node.input[1]:
        value = ctx.index.constant_value(node.input[1])
        if value is not None and int(np.asarray(value).reshape(-1)[0]) >= 3840:
            yield _node_finding(node, "attribute", f"K={int(np.asarray(value).reshape(-1)[0])}; TensorRT's TopK "
                                                   "takes K < 3840", versions)


def _gridsample_opset20(ctx, node, versions):
    return ()  # a rule of its own (rule_gridsample_opset20), listed in the table for documentation


OP_CHECKS = {"dilations_one": _dilations_one, "einsum_equation": _einsum_equation,
             "zero_point_zero": _zero_point_zero, "dropout_inference": _dropout_inference,
             "static_input_shape": _static_input_shape, "static_axis_dim": _static_axis_dim,
             "resize_nearest_mode": _resize_nearest_mode, "resize_axes": _resize_axes,
             "reverse_sequence_axes": _reverse_sequence_axes, "squeeze_axes_dynamic": _squeeze_axes_dynamic,
             "topk_k": _topk_k, "gridsample_opset20": _gridsample_opset20}

DEFAULT_RULES: tuple[Rule, ...] = (
    rule_opset, rule_operators, rule_tensor_types, rule_data_types, rule_strongly_typed, rule_attributes,
    rule_constant_inputs, rule_outputs_and_inputs, rule_op_checks, rule_gridsample_opset20,
    rule_plugin_contract, rule_dynamic_shapes,
)


def rule_from_messages(rule: str, check: Callable[[onnx.ModelProto], list[str]],
                       severity: str = ERROR) -> Rule:
    """Adapt a check that returns plain messages (e.g. ``engines.qdq_rules.check_qdq_placement``) into a
    rule: one graph-level finding per message, for every checked major."""
    def adapted(ctx: CheckContext) -> Iterable[Finding]:
        return [Finding(rule, message, versions=ctx.versions, severity=severity) for message in check(ctx.model)]

    adapted.__name__ = f"rule_{rule.replace('-', '_')}"
    adapted.__doc__ = check.__doc__
    return adapted
