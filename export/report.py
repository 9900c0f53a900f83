"""The export report: node counts by op type, parameter bytes, custom nodes, and the trtexec command lines
that build the graph (TensorRT 10 and 11; the recipes of ``engines.trtexec``, one implementation)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx

from engines.trtexec import format_command, trtexec_command

from .contract import describe_custom_nodes
from .options import ExportOptions
from .sidecar import PLUGIN_LIBRARY


def parameter_bytes(model: onnx.ModelProto) -> dict[str, int]:
    """Bytes of the initializers (the weights and constants), in total and per element type."""
    per_type: Counter = Counter()
    for init in model.graph.initializer:
        count = 1
        for d in init.dims:
            count *= d
        dtype = onnx.helper.tensor_dtype_to_np_dtype(init.data_type)
        per_type[dtype.name] += count * dtype.itemsize
    return {"total": sum(per_type.values()), **dict(per_type)}


def node_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Nodes per op type (custom ones as domain::op), most frequent first."""
    counts = Counter(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}"
                     for n in model.graph.node)
    return dict(counts.most_common())


def trtexec_commands(onnx_path: str | Path, inputs: list[dict], options: ExportOptions,
                     plugin_library: str = PLUGIN_LIBRARY) -> dict[str, str]:
    """{'TensorRT 10 (dynamic plugins)': cmd, ...}: --stronglyTyped on 10, no precision flag on 11
    (always strongly typed); --dynamicPlugins, or --staticPlugins with the self-registering library."""
    engine = str(Path(onnx_path).with_suffix(".engine"))
    shapes = [(i["name"], i["shape"]) for i in inputs]
    batch = (options.batch.min, options.batch.opt, options.batch.max) if options.batch.dynamic else None
    commands = {}
    for major in (10, 11):
        for static in (False, True):
            argv = trtexec_command(str(onnx_path), engine, plugin_library, major, shapes, batch,
                                   static_plugins=static)
            commands[f"TensorRT {major}, {'static' if static else 'dynamic'} plugin loading"] = format_command(argv)
    return commands


def summary(model: onnx.ModelProto) -> dict:
    counts = node_counts(model)
    return {"nodes": sum(counts.values()), "node_counts": counts, "parameter_bytes": parameter_bytes(model),
            "custom_nodes": describe_custom_nodes(model)}


def int8_lines(int8: dict) -> list[str]:
    """What --int8 did, for the report: quantized nodes, calibration, ONNX Runtime session settings."""
    cal = int8["calibration"]
    by_op = ", ".join(f"{op} {n}" for op, n in int8["qdq"]["quantized_by_op"].items())
    return [f"  INT8: {len(int8['quantized_nodes'])} weighted nodes quantized ({by_op}), {int8['float_weighted_nodes']} "
            "kept float by the INT8 policy (export/quantize.py)",
            f"  calibrated on {cal['samples']} samples of {cal['dataset']}/{cal['split']} ({cal['method']}, "
            f"{int8['calibrated_on']})",
            "  ONNX Runtime sessions: " + _session_text(int8["onnxruntime_session"])
            + " (recorded in the sidecar; instancevg-eval and instancevg-bench apply it)"]


def _session_text(session: dict) -> str:
    if session.get("disabled_optimizers"):
        return "disable " + ", ".join(session["disabled_optimizers"])
    return f"graph optimisation level {session['graph_optimization_level']}"


def format_report(onnx_path: str | Path, file_bytes: int, model_summary: dict, options: ExportOptions,
                  commands: dict[str, str] | None, int8: dict | None = None) -> str:
    """Human-readable report; the trtexec lines come last so they are easy to copy."""
    params = model_summary["parameter_bytes"]
    lines = [f"wrote {onnx_path} ({file_bytes / 2**20:.1f} MiB) and {Path(onnx_path).with_suffix('.json')}",
             f"  target {options.target}, {options.precision}"
             f"{' (fp16 I/O)' if options.fp16_io else ''}, opset {options.opset}, batch {options.batch.describe()}",
             f"  parameters: {params['total'] / 2**20:.2f} MiB ("
             + ", ".join(f"{k} {v / 2**20:.2f} MiB" for k, v in params.items() if k != "total") + ")",
             f"  nodes: {model_summary['nodes']} — "
             + ", ".join(f"{op} {n}" for op, n in model_summary["node_counts"].items())]
    if int8:
        lines += int8_lines(int8)
    custom = model_summary["custom_nodes"]
    if custom:
        lines.append(f"  custom nodes ({len(custom)}):")
        for node in custom:
            attrs = ", ".join(f"{k}={v:.7g}" if isinstance(v, float) else f"{k}={v!r}"
                              for k, v in node["attributes"].items())  # FLOAT attributes are float32
            lines.append(f"    {node['domain']}::{node['op_type']} {node['name']}: {attrs}; "
                         f"in {node['input_dtypes']} -> out {node['output_dtypes']}")
    else:
        lines.append("  custom nodes: none")
    if not commands:
        lines.append("  standard ops only: run it with ONNX Runtime (trtexec recipes come with --target tensorrt)")
    else:
        lines.append(f"build with trtexec ({PLUGIN_LIBRARY} from the plugins build; the graph's types are the "
                     "engine's types, no precision flags"
                     + ("; INT8 comes from the Q/DQ nodes, no --int8" if options.int8 else "") + "):")
        for title, cmd in commands.items():
            lines.append(f"  # {title}\n  {cmd}")
    return "\n".join(lines)
