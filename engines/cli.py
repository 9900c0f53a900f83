"""instancevg-build-engine: a tensorrt-target ONNX graph + our plugin library -> TensorRT engine.

    instancevg-build-engine model.onnx -o model.engine --plugins build/plugins
    instancevg-build-engine model.onnx -o model.engine --print-trtexec   # the trtexec commands only
    instancevg-build-engine --inspect model.engine
    instancevg-build-engine --check model.onnx          # TensorRT 10/11 compatibility, no TensorRT needed

The graph's sidecar (model.json, written by instancevg-export) supplies the input shapes and the batch
range of the optimisation profile. Engines are built from graphs exported with --target tensorrt; a
portable export is refused (it runs in ONNX Runtime). --print-trtexec prints the equivalent trtexec
commands for TensorRT 10 and 11 and builds nothing (no TensorRT needed). INT8 graphs (instancevg-export
--int8: QuantizeLinear/DequantizeLinear nodes) build with the same lines (INT8 comes from the Q/DQ nodes;
there is no --int8 flag with strong typing) and are first checked against TensorRT's Q/DQ placement rules
(engines/qdq_rules.py); a graph that breaks them is refused with the list of problems. --check checks every
node of any ONNX graph against what TensorRT's ONNX parser (10.x, 11.x) supports, the strongly typed rules
and the plugin node contract, prints each offending node with the rule it breaks and exits 1 if any (0
when clean). Missing files are reported before TensorRT is looked for; Ctrl-C or SIGTERM cancel a build
and leave no file behind.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from instancevg.cli.arguments import (CommandError, add_output_argument, add_plugins_argument, apply_plugins,
                                      check_writable, make_parser, run_command, tensorrt_library)

from .sidecar import graph_inputs, read_sidecar, sidecar_path
from .tensorrt_import import TensorRTUnavailable
from .trtexec import format_command, trtexec_command


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("instancevg-build-engine", __doc__)
    p.add_argument("onnx", nargs="?", help="ONNX graph exported with --target tensorrt")
    add_output_argument(p, "engine path, its sidecar ENGINE.json next to it (default: the graph's name with "
                           ".engine)")
    add_plugins_argument(p)
    p.add_argument("--workspace", type=int, default=4096, help="workspace limit in MiB (default: %(default)s)")
    p.add_argument("--timing-cache", help="timing cache file (read if present, written after the build)")
    p.add_argument("--print-trtexec", action="store_true", help="print the trtexec commands and exit")
    p.add_argument("--inspect", metavar="ENGINE", help="describe a built engine (I/O, layers, plugins)")
    p.add_argument("--check", action="store_true",
                   help="check the graph's TensorRT 10/11 compatibility (no TensorRT needed) and exit: "
                        "0 clean, 1 problems found")
    p.add_argument("--tensorrt-major", choices=("10", "11"),
                   help="with --check: check against this TensorRT major only (default: both)")
    p.add_argument("--verbose", action="store_true", help="TensorRT's verbose log during the build")
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


def run(args: argparse.Namespace) -> int:
    if args.inspect:
        from .inspect_engine import inspect_engine

        apply_plugins(args)
        print(json.dumps({k: v for k, v in inspect_engine(args.inspect, args.plugins).items() if k != "layers"},
                         indent=2))
        return 0
    if not args.onnx:
        raise CommandError("give the ONNX graph to build (or --inspect ENGINE)")
    if not Path(args.onnx).is_file():  # before anything else, the missing-TensorRT hint included
        raise CommandError(f"ONNX graph {args.onnx}: file not found")
    if args.check:
        from .compat import check_tensorrt_compatibility

        report = check_tensorrt_compatibility(args.onnx, (args.tensorrt_major,) if args.tensorrt_major
                                              else ("10", "11"))
        print(report.format())
        return 0 if report.passed else 1
    from .build import build_engine, check_plugin_graph

    engine = args.output or str(Path(args.onnx).with_suffix(".engine"))
    apply_plugins(args, must_exist=not args.print_trtexec)  # the commands may be meant for another machine
    library = tensorrt_library(args)
    int8_note = check_int8_graph(args.onnx) if read_sidecar(args.onnx).get("precision") == "int8" else None
    if args.print_trtexec:
        check_plugin_graph(args.onnx, read_sidecar(args.onnx))
        lines = trtexec_lines(args.onnx, engine, str(library), args.workspace, args.timing_cache)
        print("\n".join(([int8_note] if int8_note else []) + lines))
        return 0
    check_writable(engine, "-o")
    check_writable(sidecar_path(engine), "-o (the engine's sidecar)")
    if args.timing_cache:
        check_writable(args.timing_cache, "--timing-cache")
    build_engine(args.onnx, engine, library, args.workspace, args.timing_cache, args.verbose)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("instancevg-build-engine", run, build_parser().parse_args(argv), (TensorRTUnavailable,))


if __name__ == "__main__":
    sys.exit(main())
