"""Building plugins/ for the tests: CMake invocations, nvcc and TensorRT header discovery (see conftest.py)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGINS_DIR = REPO_ROOT / "plugins"
if str(REPO_ROOT) not in sys.path:  # instancevg.ops and tests.wheels, when the package is not installed
    sys.path.insert(0, str(REPO_ROOT))

from tests.wheels import cache_root, fetch_wheel, unpack  # noqa: E402  (needs REPO_ROOT on sys.path)

KERNEL_LENS = "kernel-lens==2.0.1"
JOBS = os.environ.get("INSTANCEVG_BUILD_JOBS", "2")


def build_root() -> Path:
    return Path(os.environ.get("INSTANCEVG_PLUGIN_BUILD_DIR", REPO_ROOT / "build" / "tests" / "plugins"))


def run(cmd: list[str], what: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Runs cmd; on failure, fails the test with the command's output tail."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-4000:]
        pytest.fail(f"{what} failed ({' '.join(cmd)}):\n{tail}", pytrace=False)
    return proc


def cmake_build(build_dir: Path, options: list[str], targets: list[str]) -> float:
    """Configures plugins/ into build_dir and builds targets. Returns the wall time in seconds."""
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.fail("cmake is required to build plugins/ (apt-get install cmake)", pytrace=False)
    start = time.monotonic()
    run([cmake, "-S", str(PLUGINS_DIR), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release", *options],
        f"configuring plugins/ into {build_dir}")
    run([cmake, "--build", str(build_dir), "-j", JOBS, "--target", *targets], f"building {', '.join(targets)}")
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
