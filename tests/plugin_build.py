"""Building plugins/ for the tests: CMake invocations, nvcc and TensorRT header discovery.

Builds go to build/tests/plugins/ under the repository (ignored by git), or to $INSTANCEVG_PLUGIN_BUILD_DIR.
"""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from instancevg.ops import kernels

from .wheels import cache_root, fetch_wheel, unpack

REPO_ROOT = Path(__file__).resolve().parents[1]
PLUGINS_DIR = REPO_ROOT / "plugins"

KERNEL_LENS = "kernel-lens==2.0.1"
JOBS = os.environ.get("INSTANCEVG_BUILD_JOBS", "2")


def build_root() -> Path:
    return Path(os.environ.get("INSTANCEVG_PLUGIN_BUILD_DIR", REPO_ROOT / "build" / "tests" / "plugins"))




def cmake_build(build_dir: Path, options: list[str], targets: list[str]) -> float:
    """Configures plugins/ into build_dir and builds targets (instancevg.ops.kernels.cmake_build); fails the
    test with the output's tail when that fails. Returns the wall time in seconds."""
    start = time.monotonic()
    try:
        kernels.cmake_build(build_dir, options, targets, jobs=int(JOBS), timeout=900)
    except kernels.KernelLibraryError as exc:
        pytest.fail(str(exc), pytrace=False)
    return time.monotonic() - start


def find_nvcc() -> str | None:
    nvcc = shutil.which("nvcc")
    if nvcc is None and Path("/usr/local/cuda/bin/nvcc").exists():
        nvcc = "/usr/local/cuda/bin/nvcc"
    return nvcc


def tensorrt_include_dir() -> tuple[Path | None, str]:
    """TensorRT headers for the full build: (directory, "") or (None, reason they are unavailable)."""
    given = os.environ.get("INSTANCEVG_TRT_INCLUDE_DIR")
    if given:
        if (Path(given) / "NvInferRuntime.h").exists():
            return Path(given), ""
        return None, f"INSTANCEVG_TRT_INCLUDE_DIR={given} has no NvInferRuntime.h"
    include = cache_root() / "kernel-lens-2.0.1" / "kernel_lens" / "include" / "tensorrt"
    if (include / "NvInferRuntime.h").exists():
        return include, ""
    wheel, reason = fetch_wheel(KERNEL_LENS, "kernel_lens-2.0.1-*.whl")
    if wheel is None:
        return None, f"no TensorRT headers: {reason}"
    unpack(wheel, cache_root() / "kernel-lens-2.0.1", ("kernel_lens/include/tensorrt/",))
    if not (include / "NvInferRuntime.h").exists():
        return None, f"{wheel.name} has no kernel_lens/include/tensorrt/NvInferRuntime.h"
    return include, ""


def cuda_gpu_reason() -> str:
    """"" when a CUDA GPU is usable from torch, else why not."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU (torch.cuda.is_available() is False)"
    return ""
