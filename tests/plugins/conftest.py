"""Fixtures for the plugin tests: the libraries of plugins/, built with CMake (tests/plugin_build.py).

- kernel libraries (host build, CUDA build on a GPU machine): the session fixture ``plugin_kernels`` of
  tests/conftest.py; loaded through instancevg.ops.kernels, as the ``plugin`` op implementation loads them.
- full plugin library + harness: needs nvcc and TensorRT headers. The headers come from
  $INSTANCEVG_TRT_INCLUDE_DIR when set, else from the kernel-lens==2.0.1 wheel (TensorRT 10.14 headers),
  downloaded once with `pip download --no-deps` into build/cache/ (or $INSTANCEVG_CACHE_DIR) and unzipped there.
  CUDA architectures: $INSTANCEVG_TEST_CUDA_ARCHITECTURES (default 75, one architecture keeps CI short).
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

from instancevg.ops import kernels

from ..plugin_build import build_root, cmake_build, cuda_gpu_reason, find_nvcc, tensorrt_include_dir


@pytest.fixture(scope="session")
def host_lib(plugin_kernels) -> ctypes.CDLL:
    """libinstancevg_plugins_host.so (built with the C++ compiler alone), through instancevg.ops.kernels."""
    return kernels.host_library()


class FullBuild:
    """The full build: library paths and the time the build took."""

    def __init__(self, build_dir: Path, seconds: float, include_dir: Path):
        self.dir = build_dir
        self.seconds = seconds
        self.include_dir = include_dir
        self.plugins = build_dir / "libinstancevg_plugins.so"
        self.plugins_static = build_dir / "libinstancevg_plugins_static.so"
        self.kernels_cuda = build_dir / "libinstancevg_kernels_cuda.so"
        self.harness = build_dir / "instancevg_plugin_harness"


@pytest.fixture(scope="session")
def full_build() -> FullBuild:
    """libinstancevg_plugins(.so|_static.so) and the harness, compiled and linked with nvcc; skips with the
    reason when nvcc or the TensorRT headers are unavailable."""
    nvcc = find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, /usr/local/cuda/bin): the full plugin library cannot be compiled here")
    include, why = tensorrt_include_dir()
    if include is None:
        pytest.skip(why)
    archs = os.environ.get("INSTANCEVG_TEST_CUDA_ARCHITECTURES", "75")
    build_dir = build_root() / "full"
    seconds = cmake_build(build_dir, [f"-DCMAKE_CUDA_COMPILER={nvcc}", f"-DTensorRT_INCLUDE_DIR={include}",
                                      f"-DCMAKE_CUDA_ARCHITECTURES={archs}"],
                          ["instancevg_plugins", "instancevg_plugins_static", "instancevg_plugin_harness"])
    return FullBuild(build_dir, seconds, include)


@pytest.fixture(scope="session")
def cuda_kernels_lib(plugin_kernels) -> ctypes.CDLL:
    """libinstancevg_kernels_cuda.so built for the local GPU, through instancevg.ops.kernels."""
    why = cuda_gpu_reason()
    if why:
        pytest.skip(why)
    if kernels.available("cuda"):
        pytest.skip(kernels.available("cuda"))
    return kernels.cuda_library()
