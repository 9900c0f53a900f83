"""instancevg-export: an InstanceVG checkpoint -> ONNX graph + sidecar, verified against PyTorch.

    instancevg-export -o model.onnx                                   # bundled tiny model, tensorrt, fp32
    instancevg-export --checkpoint gres_base.pth --config gres-base --fp16 -o gres_base_fp16.onnx
    instancevg-export --config gres-base --checkpoint CKPT --target portable --dynamic-batch 1:4:8 -o m.onnx
    instancevg-export --int8 --calib-data DATA --target portable -o int8.onnx   # bundled tiny model, INT8

Targets: tensorrt (MSDeformAttn and PointSelect as instancevg plugin nodes; build with trtexec and
libinstancevg_plugins.so, the commands are printed at the end) and portable (standard ops, ONNX
Runtime). --fp16 writes a strongly typed FP16 graph (float32 where FP16 breaks the result; see
export/README.md). --int8 calibrates on real samples of a benchmark under --calib-data and writes an
explicitly quantized (QuantizeLinear/DequantizeLinear) graph for TensorRT and ONNX Runtime (INT8 policy:
export/quantize.py; --tokenizer gives the calibration expressions' tokenizer). The graph is verified on
sample inputs unless --no-verify; a graph outside the tolerances is not written (exit status 1).
"""
from __future__ import annotations

import argparse
import sys

from instancevg.cli.arguments import (add_model_arguments, add_output_argument, add_plugins_argument, apply_plugins,
                                     make_parser, model_config, run_command)

from .calibration import DEFAULT_SAMPLES, METHODS, CalibrationSpec
from .exporter import export_onnx
from .options import DEFAULT_OPSET, INT8_FP16_MIN_OPSET, MAX_OPSET, MIN_OPSET, BatchSpec, ExportOptions
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
    p.add_argument("--opset", type=int,
                   help=f"ONNX opset, {MIN_OPSET}..{MAX_OPSET} (default: {DEFAULT_OPSET}; "
                        f"{INT8_FP16_MIN_OPSET} with --int8 --fp16)")
    int8 = p.add_argument_group("INT8 (calibrated Q/DQ graph)")
    int8.add_argument("--int8", action="store_true",
                      help="explicitly quantized INT8 graph (Q/DQ), calibrated on --calib-data; with --fp16 the "
                           "float parts follow the FP16 policy")
    int8.add_argument("--calib-data", metavar="DATA", help="data root holding a benchmark (either input format)")
    int8.add_argument("--calib-dataset", metavar="NAME",
                      help="benchmark to calibrate on (default: the first one found whose text length is the config's)")
    int8.add_argument("--calib-split", metavar="SPLIT", help="split (default: the benchmark's training split)")
    int8.add_argument("--calib-samples", metavar="N", type=int,
                      help=f"number of samples, spread evenly over the split (default: {DEFAULT_SAMPLES})")
    int8.add_argument("--calib-method", choices=METHODS,
                      help="ONNX Runtime calibrator (default: percentile; minmax with --fp16, since the "
                           "histogram calibrators fail on FP16 tensors)")
    p.add_argument("--no-verify", action="store_true", help="skip running the graph against PyTorch")
    p.add_argument("--verbose", action="store_true", help="show the exporter's own output")
    add_model_arguments(p)
    add_plugins_argument(p)
    return p


def options_from_args(args: argparse.Namespace) -> ExportOptions:
    batch = BatchSpec.parse_dynamic(args.dynamic_batch) if args.dynamic_batch else BatchSpec.fixed(args.batch)
    opset = args.opset or (INT8_FP16_MIN_OPSET if args.int8 and args.fp16 else DEFAULT_OPSET)
    calib_given = any(v is not None for v in (args.calib_data, args.calib_dataset, args.calib_split,
                                              args.calib_samples, args.calib_method))
    calibration = None
    if args.int8 or calib_given:
        if not args.calib_data:
            raise ValueError("--int8 needs --calib-data DATA (a data root holding a benchmark, e.g. made by "
                             "instancevg-synthetic)" if args.int8 else "--calib-* options need --calib-data and --int8")
        calibration = CalibrationSpec(args.calib_data, args.calib_dataset, args.calib_split,
                                      DEFAULT_SAMPLES if args.calib_samples is None else args.calib_samples,
                                      args.calib_method)
    return ExportOptions(target=args.target, fp16=args.fp16, fp16_io=args.fp16_io, batch=batch, opset=opset,
                         verify=not args.no_verify, int8=args.int8, calibration=calibration)


def export(args: argparse.Namespace) -> int:
    apply_plugins(args)
    try:
        export_onnx(args.output, model_config(args), options_from_args(args), checkpoint=args.checkpoint,
                    random_weights=args.random_weights, log=lambda m: print(m, flush=True), verbose=args.verbose,
                    trusted=args.trust_checkpoint, tokenizer=args.tokenizer)
    except VerificationError as exc:  # ran, but the graph is outside the tolerances: nothing written
        print(f"instancevg-export: verification failed: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("instancevg-export", export, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
