"""Checks of an exported graph against its contracts: the plugin node contract
(tensorrt target; the generic part is engines.plugin_contract's, shared with the TensorRT compatibility
check, the model-specific part is here), standard ops only (portable target), opset and IR version.

Each check returns a list of problems (empty = conforming), so the exporter can report them all at once
and tests can assert on them.
"""
from __future__ import annotations

import onnx
from onnx import TensorProto

from engines.onnx_info import attributes, custom_nodes, value_types
from engines.plugin_contract import PLUGINS, check_plugin_node
from instancevg.config import ModelConfig
from instancevg.ops import level_starts
from instancevg.ops.export_target import PLUGIN_DOMAIN

from .options import MAX_IR_VERSION, MAX_OPSET, MIN_OPSET

MS_DEFORM_ATTN = "MSDeformAttn"
POINT_SELECT = "PointSelect"
PLUGIN_NAMES = tuple(PLUGINS)


def check_model_versions(model: onnx.ModelProto, target: str, opset: int | None = None) -> list[str]:
    """IR version <= MAX_IR_VERSION, default opset in MIN..MAX (and == ``opset`` when given), the plugin
    domain imported (tensorrt) or no other domain (portable)."""
    problems = []
    if model.ir_version > MAX_IR_VERSION:
        problems.append(f"IR version {model.ir_version} > {MAX_IR_VERSION} (ONNX Runtime 1.31 rejects > 13)")
    opsets = {o.domain: o.version for o in model.opset_import}
    default = opsets.get("", opsets.get("ai.onnx"))
    if default is None or not MIN_OPSET <= default <= MAX_OPSET:
        problems.append(f"default-domain opset {default} outside {MIN_OPSET}..{MAX_OPSET}")
    if opset is not None and default != opset:
        problems.append(f"default-domain opset {default}, requested {opset}")
    extra = sorted(d for d in opsets if d not in ("", "ai.onnx"))
    if target == "tensorrt" and opsets.get(PLUGIN_DOMAIN) != 1:
        problems.append(f"opset_import lacks domain {PLUGIN_DOMAIN!r} version 1")
    if target == "portable" and extra:
        problems.append(f"portable graph imports non-standard domains {extra}")
    if model.functions:
        problems.append(f"graph carries {len(model.functions)} local functions "
                        f"({', '.join(sorted({f.name for f in model.functions}))}); expected plain nodes")
    return problems


def check_portable(model: onnx.ModelProto) -> list[str]:
    """Standard ops only."""
    return [f"node {n.name!r}: {n.domain}::{n.op_type} is not a standard ONNX op" for n in custom_nodes(model)]


def check_plugin_nodes(model: onnx.ModelProto, cfg: ModelConfig, fp16: bool) -> list[str]:
    """The tensorrt graph against the plugin node contract (engines.plugin_contract: domain, namespace,
    version, creator fields and their types, int32 index inputs, I/O element types and ranks) and against
    the model: one MSDeformAttn per decoder layer and one PointSelect, PointSelect's fields equal to the
    config's, MSDeformAttn in the graph's compute type (FP16 in FP16 graphs), the level tables constants
    equal to the config's FPN levels, and the shapes the contract fixes."""
    problems = []
    types = value_types(model)
    value_type = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    counts = {name: 0 for name in PLUGIN_NAMES}
    for node in custom_nodes(model):
        where = f"node {node.name!r} ({node.domain}::{node.op_type})"
        if node.domain != PLUGIN_DOMAIN or node.op_type not in PLUGIN_NAMES:
            problems.append(f"{where}: unexpected custom node; expected {PLUGIN_DOMAIN}::{'/'.join(PLUGIN_NAMES)}")
            continue
        counts[node.op_type] += 1
        problems += [f"{where}: {f.message}" for f in check_plugin_node(node, types)]
        got = attributes(node)
        if node.op_type == POINT_SELECT:
            for key, want in (("num_points", cfg.num_queries), ("w_dist", cfg.w_dist)):
                value = got.get(key)
                ok = (isinstance(value, float) and abs(value - want) <= 1e-7 * max(1.0, abs(want))
                      if isinstance(want, float) else value == want)
                if key in got and not ok:
                    problems.append(f"{where}: attribute {key}={value!r}, expected {want!r} (config {cfg.name})")
            problems += _check_io(where, "input", list(node.input)[:1],
                                  [("scores", None, (None, cfg.grid_size, cfg.grid_size))], types)
        else:
            L = cfg.num_levels
            spec = [("value", value_type, None), ("spatial_shapes", None, (L, 2)), ("level_start_index", None, (L,))]
            problems += _check_io(where, "input", list(node.input)[:3], spec, types)
            problems += _check_io(where, "output", list(node.output)[:1], [("output", value_type, None)], types)
            problems += _check_level_constants(where, model, node, cfg)
    want_counts = {MS_DEFORM_ATTN: cfg.decoder_layers, POINT_SELECT: 1}
    for name, want in want_counts.items():
        if counts[name] != want:
            problems.append(f"{counts[name]} {name} nodes, expected {want}")
    return problems


def _check_io(where, kind, names, spec, types) -> list[str]:
    """[(label, element type or None = any, shape or None = any; None dims = any)] against ``names``."""
    problems = []
    if len(names) != len(spec):
        return [f"{where}: {len(names)} {kind}s, expected {len(spec)} ({', '.join(s[0] for s in spec)})"]
    for name, (label, elem, shape) in zip(names, spec):
        vt = types.get(name)
        if vt is None:
            continue  # check_plugin_node reports it
        if elem is not None and vt.elem_type != elem:
            problems.append(f"{where}: {kind} {label} is {vt.dtype}, expected "
                            f"{onnx.helper.tensor_dtype_to_np_dtype(elem).name}")
        if shape is not None and (vt.shape is None or len(vt.shape) != len(shape)
                                  or any(w is not None and d != w for d, w in zip(vt.shape, shape))):
            problems.append(f"{where}: {kind} {label} has shape {vt.shape}, expected {shape}")
    return problems


def _check_level_constants(where, model, node, cfg) -> list[str]:
    """spatial_shapes / level_start_index must be constants equal to the config's FPN levels."""
    inits = {t.name: t for t in model.graph.initializer}
    constants = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    shapes = [list(hw) for hw in cfg.level_shapes]
    starts = level_starts(cfg.level_shapes)
    problems = []
    for name, want in ((node.input[1], shapes), (node.input[2], starts)):
        if name in inits:
            got = onnx.numpy_helper.to_array(inits[name]).tolist()
        elif name in constants:
            got = onnx.numpy_helper.to_array(attributes(constants[name])["value"]).tolist()
        else:
            problems.append(f"{where}: input {name!r} is not a constant (initializer or Constant node)")
            continue
        if got != want:
            problems.append(f"{where}: input {name!r} = {got}, expected {want}")
    return problems


def describe_custom_nodes(model: onnx.ModelProto) -> list[dict]:
    """The custom nodes for reports and the sidecar: name, op, attributes, input/output dtypes."""
    types = value_types(model)
    described = []
    for node in custom_nodes(model):
        def dtype(name):
            vt = types.get(name)
            return vt.dtype if vt else "unknown"
        described.append({"name": node.name, "domain": node.domain, "op_type": node.op_type,
                          "attributes": attributes(node),
                          "input_dtypes": [dtype(i) for i in node.input],
                          "output_dtypes": [dtype(o) for o in node.output]})
    return described
