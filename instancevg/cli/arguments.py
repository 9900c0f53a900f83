"""The command-line vocabulary shared by every instancevg command: each option is defined once here, with
one name, default and help, and the commands add the groups they take (like Polygraphy's argument groups).

Imports nothing but argparse and the config presets (no torch), so every stage's CLI can use it.
"""
from __future__ import annotations

import argparse

from ..config import PRESETS

OP_IMPLEMENTATIONS = ("reference", "plugin")
PRECISIONS = ("fp32", "fp16")


def add_runtime_arguments(parser: argparse.ArgumentParser, cuda_graph: bool = False) -> argparse._ArgumentGroup:
    """How the PyTorch model runs: --device, --ops, --precision, --tf32 (and --cuda-graph)."""
    group = parser.add_argument_group("PyTorch runtime")
    group.add_argument("--device", default="cpu",
                       help="cpu, cuda or cuda:N; under torchrun each process uses the GPU of its LOCAL_RANK "
                            "(default: cpu)")
    group.add_argument("--ops", choices=OP_IMPLEMENTATIONS, default="reference",
                       help="implementation of the custom ops MSDeformAttn and PointSelect: reference (PyTorch) "
                            "or plugin (the TensorRT plugins' own kernels, host build on the CPU, CUDA build on a "
                            "GPU; built from plugins/ with CMake, found in $INSTANCEVG_PLUGINS or build/plugins) "
                            "(default: reference)")
    group.add_argument("--precision", choices=PRECISIONS, default="fp32",
                       help="fp32, or fp16 with the FP16 export's float32 islands (default: fp32)")
    group.add_argument("--tf32", action="store_true",
                       help="allow TF32 matrix products and convolutions on CUDA (default: full float32)")
    if cuda_graph:
        group.add_argument("--cuda-graph", action="store_true",
                           help="replay the PyTorch model (and TensorRT engines) from CUDA graphs (CUDA only)")
    return group


def runtime_options(args: argparse.Namespace) -> dict:
    """The keyword options of ``PyTorchBackend`` chosen by :func:`add_runtime_arguments`."""
    return {"ops": args.ops, "precision": args.precision, "tf32": args.tf32,
            "cuda_graph": getattr(args, "cuda_graph", False)}


def config_choices() -> list[str]:
    return sorted(PRESETS)
