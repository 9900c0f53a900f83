"""instancevg-export: an InstanceVG checkpoint -> ONNX graph + sidecar, verified against PyTorch.

    instancevg-export -o model.onnx                                   # bundled tiny model, tensorrt, fp32
    instancevg-export --checkpoint gres_base.pth --config gres-base --fp16 -o gres_base_fp16.onnx
    instancevg-export --config gres-base --checkpoint CKPT --target portable --dynamic-batch 1:4:8 -o m.onnx

Targets: tensorrt (MSDeformAttn and PointSelect as instancevg plugin nodes; build with trtexec and
libinstancevg_plugins.so, the commands are printed at the end) and portable (standard ops, ONNX
Runtime). --fp16 writes a strongly typed FP16 graph (float32 where FP16 breaks the result; see
export/README.md). The graph is verified on sample inputs unless --no-verify; a graph outside the
tolerances is not written (exit status 1).
"""
from __future__ import annotations

import argparse
import sys

from instancevg.cli.arguments import (add_model_arguments, add_output_argument, add_plugins_argument, apply_plugins,
                                     make_parser, model_config, run_command)

from .exporter import export_onnx
from .options import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, BatchSpec, ExportOptions
from .verify import VerificationError


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("instancevg-export", __doc__)
    add_output_argument(p, "the ONNX graph, e.g. model.onnx (its sidecar model.json is written next to it)",
                        required=True)
    p.add_argument("--target", choices=("tensorrt", "portable"), default="tensorrt",
                   help="tensorrt: plugin nodes for TensorRT; portable: standard ops (default: %(default)s)")
    p.add_argument("--fp16", action="store_true", help="strongly typed FP16 graph (TensorRT 11 has no --fp16)")
    p.add_argument("--fp16-io", action="store_true", help="with --fp16: FP16 image input and float outputs")
    batch = p.add_mutually_exclusive_group()
    batch.add_argument("--batch", type=int, default=1, help="fixed batch size (default: %(default)s)")
    batch.add_argument("--dynamic-batch", metavar="MIN:OPT:MAX",
                       help="dynamic batch dimension and its TensorRT optimisation profile, e.g. 1:4:8")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET} (default: %(default)s)")
    p.add_argument("--no-verify", action="store_true", help="skip running the graph against PyTorch")
    p.add_argument("--verbose", action="store_true", help="show the exporter's own output")
    add_model_arguments(p, tokenizer=False)
    add_plugins_argument(p)
    return p


def options_from_args(args: argparse.Namespace) -> ExportOptions:
    batch = BatchSpec.parse_dynamic(args.dynamic_batch) if args.dynamic_batch else BatchSpec.fixed(args.batch)
    return ExportOptions(target=args.target, fp16=args.fp16, fp16_io=args.fp16_io,
                         batch=batch, opset=args.opset, verify=not args.no_verify)


def export(args: argparse.Namespace) -> int:
    apply_plugins(args)
    try:
        export_onnx(args.output, model_config(args), options_from_args(args), checkpoint=args.checkpoint,
                    random_weights=args.random_weights, log=lambda m: print(m, flush=True), verbose=args.verbose,
                    trusted=args.trust_checkpoint)
    except VerificationError as exc:  # ran, but the graph is outside the tolerances: nothing written
        print(f"instancevg-export: verification failed: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("instancevg-export", export, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
