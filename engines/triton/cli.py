"""instancevg-triton: a Triton Inference Server model repository for an engine or a portable graph.

    instancevg-triton --engine model.engine -o model_repository/ --max-batch 8 --instances 2
    instancevg-triton --onnx model.onnx -o model_repository/                  # onnxruntime backend
    instancevg-triton --onnx model.onnx -o model_repository/ --core python    # ONNX Runtime in Python

Writes the ensemble NAME (request: image_bytes, the encoded image file, and expression; response: boxes,
scores, selected, points, query_index, mask_rle, exist_prob at the original image size) made of
NAME_preprocess (Python backend: our decoding, resizing, normalisation and tokenizer), NAME_core (the
network, dynamic batching) and NAME_postprocess (Python backend: our post-processing with the sidecar's
thresholds). The configs come from the sidecar and are checked against Triton's model-config schema
(tritonclient). --tokenizer is checked against the sidecar's digest and copied into the repository;
engines take the self-registering libinstancevg_plugins_static.so of the --plugins build (default: next
to the library the engine's sidecar records). Prints the tritonserver command line, plugin loading
included for engines.
"""
from __future__ import annotations

import argparse
import sys

from instancevg.cli.arguments import (add_output_argument, add_plugins_argument, add_tokenizer_argument, apply_plugins,
                                     check_writable, make_parser, run_command)

from .repository import DEFAULT_QUEUE_DELAY_US, write_repository
from .spec import CORE_KINDS


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("instancevg-triton", __doc__)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--engine", help="TensorRT engine built by instancevg-build-engine (core tensorrt_plan)")
    source.add_argument("--onnx", help="portable ONNX graph exported by instancevg-export (core onnxruntime or python)")
    add_output_argument(p, "model repository folder (created if missing)", required=True)
    p.add_argument("--core", choices=CORE_KINDS,
                   help="the network's Triton backend (default: tensorrt_plan for --engine, onnxruntime for --onnx)")
    p.add_argument("--name", default="instancevg", help="ensemble name; the other models get it as prefix "
                                                        "(default: %(default)s)")
    p.add_argument("--max-batch", type=int, help="max_batch_size of every model (default: the graph's batch maximum)")
    p.add_argument("--instances", type=int, default=1, help="instances of the core model (per GPU for engines; "
                                                            "default: 1)")
    p.add_argument("--python-instances", type=int, default=1,
                   help="instances of the preprocessing and post-processing models (CPU; default: 1)")
    p.add_argument("--max-queue-delay-us", type=int, default=DEFAULT_QUEUE_DELAY_US,
                   help="dynamic batching: longest wait for a fuller batch in microseconds (default: %(default)s)")
    add_tokenizer_argument(p)
    add_plugins_argument(p)
    p.add_argument("--python-path", help="folders (':'-separated) the Python-backend models import instancevg, numpy, "
                                         "torch, onnxruntime from (default: this environment's); '' when Triton's "
                                         "Python has instancevg installed")
    p.add_argument("--execution-env", help="Triton's EXECUTION_ENV_PATH for the Python-backend models: an "
                                           "environment folder with bin/activate or a conda-pack archive "
                                           "(default: Triton's Python)")
    p.add_argument("--force", action="store_true", help="replace models of the same names already in the repository")
    p.add_argument("--no-validate", action="store_true",
                   help="skip the check against Triton's schema (which needs tritonclient)")
    return p


def run(args: argparse.Namespace) -> int:
    check_writable(args.output, "-o", "folder")
    apply_plugins(args)
    manifest = write_repository(args.output, onnx=args.onnx, engine=args.engine, core=args.core, name=args.name,
                                max_batch=args.max_batch, instances=args.instances,
                                python_instances=args.python_instances, queue_delay_us=args.max_queue_delay_us,
                                tokenizer=args.tokenizer, plugins=args.plugins, python_path=args.python_path,
                                execution_env=args.execution_env, force=args.force, validate=not args.no_validate)
    names = manifest["models"]
    print(f"wrote {args.output}: ensemble {names['ensemble']} = {names['preprocess']} -> {names['core']} "
          f"({manifest['core']}, max batch {manifest['max_batch_size']}) -> {names['postprocess']}"
          + ("" if manifest["validated"] else " (not validated)"))
    print("serve it with:\n  " + manifest["commands"]["tritonserver"])
    if "tritonserver_backend_config" in manifest["commands"]:
        print("or, loading the plugins through the TensorRT backend:\n  "
              + manifest["commands"]["tritonserver_backend_config"])
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("instancevg-triton", run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
