"""instancevg-build-engine: ONNX graph (+ our plugin library) -> TensorRT engine.

    instancevg-build-engine model.onnx -o model.engine --plugins build/plugins/libinstancevg_plugins.so
    instancevg-build-engine model.onnx -o model.engine --plugins LIB --print-trtexec   # commands only
    instancevg-build-engine --inspect model.engine
    instancevg-build-engine --check model.onnx          # TensorRT 10/11 compatibility, no TensorRT needed

The graph's sidecar (model.json, written by instancevg-export) supplies the input shapes and the batch
range of the optimisation profile. --print-trtexec prints the equivalent trtexec commands for
TensorRT 10 and 11 and builds nothing (no TensorRT needed). --check checks every node of any ONNX
graph against what TensorRT's ONNX parser (10.x, 11.x) supports, the strongly typed rules and the plugin
node contract, prints each offending node with the rule it breaks and exits 1 if any (0 when clean).
"""
from __future__ import annotations

import argparse
import json
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
    p.add_argument("--check", action="store_true",
                   help="check the graph's TensorRT 10/11 compatibility (no TensorRT needed) and exit: "
                        "0 clean, 1 problems found")
    p.add_argument("--tensorrt-major", choices=("10", "11"),
                   help="with --check: check against this TensorRT major only (default: both)")
    p.add_argument("--verbose", action="store_true")
    return p


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
        if args.check:
            from .compat import check_tensorrt_compatibility

            report = check_tensorrt_compatibility(args.onnx, (args.tensorrt_major,) if args.tensorrt_major
                                                  else ("10", "11"))
            print(report.format())
            return 0 if report.passed else 1
        engine = args.output or str(args.onnx).rsplit(".", 1)[0] + ".engine"
        if args.print_trtexec:
            print("\n".join(trtexec_lines(args.onnx, engine, args.plugins, args.workspace, args.timing_cache)))
            return 0
        from .build import build_engine

        build_engine(args.onnx, engine, args.plugins, args.workspace, args.timing_cache, args.verbose)
    except (ValueError, FileNotFoundError, RuntimeError, TensorRTUnavailable) as exc:
        print(f"instancevg-build-engine: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
