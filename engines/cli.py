"""``instancevg-build-engine``: ONNX graph (+ our plugin library) -> TensorRT engine.

    instancevg-build-engine model.onnx -o model.engine --plugins build/plugins/libinstancevg_plugins.so
    instancevg-build-engine model.onnx -o model.engine --plugins LIB --print-trtexec   # commands only
    instancevg-build-engine --inspect model.engine

The graph's sidecar (model.json, written by instancevg-export) supplies the input shapes and the batch
range of the optimisation profile. ``--print-trtexec`` prints the equivalent trtexec commands for
TensorRT 10 and 11 and builds nothing (no TensorRT needed). INT8 graphs (``instancevg-export --int8``:
QuantizeLinear/DequantizeLinear nodes) build with the same lines (INT8 comes from the Q/DQ nodes; there is
no --int8 flag with strong typing) and are first checked against TensorRT's Q/DQ placement rules
(engines/qdq_rules.py); a graph that breaks them is refused with the list of problems.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .sidecar import graph_inputs, read_sidecar, sidecar_path
from .tensorrt_import import TensorRTUnavailable
from .trtexec import format_command, trtexec_command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="instancevg-build-engine", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("onnx", nargs="?", help="ONNX graph exported with --target tensorrt")
    p.add_argument("-o", "--output", help="engine path (default: the graph's name with .engine)")
    p.add_argument("--plugins", default="build/plugins/libinstancevg_plugins.so",
                   help="libinstancevg_plugins.so (default: %(default)s)")
    p.add_argument("--workspace", type=int, default=4096, help="workspace limit in MiB (default 4096)")
    p.add_argument("--timing-cache", help="timing cache file (read if present, written after the build)")
    p.add_argument("--print-trtexec", action="store_true", help="print the trtexec commands and exit")
    p.add_argument("--inspect", metavar="ENGINE", help="describe a built engine (I/O, layers, plugins)")
    p.add_argument("--verbose", action="store_true")
    return p


def check_int8_graph(onnx_path: str) -> str | None:
    """For an explicitly quantized graph: raise ValueError listing the Q/DQ placement problems; returns a
    one-line note for the printed commands (None for graphs without Q/DQ)."""
    import onnx

    from .qdq_rules import check_qdq_placement, has_qdq

    if not os.path.isfile(onnx_path):
        raise FileNotFoundError(f"ONNX graph not found: {onnx_path}")
    model = onnx.load(onnx_path, load_external_data=False)  # scales and zero points are stored inline
    if not has_qdq(model):
        return None
    problems = check_qdq_placement(model)
    if problems:
        raise ValueError(f"{onnx_path} breaks TensorRT's Q/DQ placement rules (engines/qdq_rules.py):\n  "
                         + "\n  ".join(problems))
    count = sum(n.op_type == "QuantizeLinear" for n in model.graph.node)
    return (f"# INT8 (explicit quantization, {count} Q/DQ pairs): fits TensorRT's Q/DQ placement rules; "
            "INT8 comes from the Q/DQ nodes, no --int8 flag")


def trtexec_lines(onnx: str, engine: str, plugins: str, workspace: int, timing_cache: str | None) -> list[str]:
    inputs, batch = graph_inputs(read_sidecar(onnx), str(sidecar_path(onnx)))
    lines = []
    for major in (10, 11):
        for static in (False, True):
            argv = trtexec_command(onnx, engine, plugins, major, inputs, batch, workspace, timing_cache, static)
            lines.append(f"# TensorRT {major}, {'static' if static else 'dynamic'} plugin loading\n"
                         + format_command(argv))
    return lines


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.inspect:
            from .inspect_engine import inspect_engine

            print(json.dumps({k: v for k, v in inspect_engine(args.inspect, args.plugins).items() if k != "layers"},
                             indent=2))
            return 0
        if not args.onnx:
            raise ValueError("give the ONNX graph to build (or --inspect ENGINE)")
        engine = args.output or str(args.onnx).rsplit(".", 1)[0] + ".engine"
        int8_note = check_int8_graph(args.onnx) if read_sidecar(args.onnx).get("precision") == "int8" else None
        if args.print_trtexec:
            lines = trtexec_lines(args.onnx, engine, args.plugins, args.workspace, args.timing_cache)
            print("\n".join(([int8_note] if int8_note else []) + lines))
            return 0
        from .build import build_engine

        build_engine(args.onnx, engine, args.plugins, args.workspace, args.timing_cache, args.verbose)
    except (ValueError, FileNotFoundError, RuntimeError, TensorRTUnavailable) as exc:
        print(f"instancevg-build-engine: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
