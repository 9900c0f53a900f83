"""Fixtures for the plugin tests: build the libraries of plugins/ with CMake and load them.

Builds go to build/tests/plugins/ under the repository (ignored by git), or to $INSTANCEVG_PLUGIN_BUILD_DIR.

- host library (C++ compiler only): always built; its tests always run.
- full plugin library + harness: needs nvcc and TensorRT headers. The headers come from
  $INSTANCEVG_TRT_INCLUDE_DIR when set, else from the kernel-lens==2.0.1 wheel (TensorRT 10.14 headers),
  downloaded once with `pip download --no-deps` into build/cache/ (or $INSTANCEVG_CACHE_DIR) and unzipped there.
  CUDA architectures: $INSTANCEVG_TEST_CUDA_ARCHITECTURES (default 75, one architecture keeps CI short).
- CUDA kernels C ABI (GPU tests): needs nvcc and a GPU; built for the local GPU ("native").
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

from plugin_build import build_root, cmake_build, cuda_gpu_reason, find_nvcc, tensorrt_include_dir


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU (skipped with its reason where none is found)")
    config.addinivalue_line("markers", "slow: long-running (builds for many architectures, benchmarks)")


@pytest.fixture(scope="session")
def host_lib() -> ctypes.CDLL:
    """libinstancevg_plugins_host.so, built with the C++ compiler alone, with its C ABI declared."""
    build_dir = build_root() / "host"
    cmake_build(build_dir, ["-DINSTANCEVG_PLUGINS_HOST_ONLY=ON"], ["instancevg_plugins_host"])
    lib = ctypes.CDLL(str(build_dir / "libinstancevg_plugins_host.so"))
    i32, f32, ptr = ctypes.c_int32, ctypes.c_float, ctypes.c_void_p
    lib.ivg_host_abi_version.restype = i32
    lib.ivg_host_last_error.restype = ctypes.c_char_p
    for name in ("ivg_ms_deform_attn_f32", "ivg_ms_deform_attn_f16"):
        fn = getattr(lib, name)
        fn.restype = i32
        fn.argtypes = [ptr] * 6 + [i32] * 7
    lib.ivg_point_select.restype = i32
    lib.ivg_point_select.argtypes = [ptr, i32, i32, i32, i32, f32, ptr, ptr]
    lib.ivg_point_select_check_fields.restype = i32
    lib.ivg_point_select_check_fields.argtypes = [i32, f32]
    assert lib.ivg_host_abi_version() == 1
    return lib


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
def cuda_kernels_lib() -> ctypes.CDLL:
    """libinstancevg_kernels_cuda.so built for the local GPU, with its C ABI declared."""
    why = cuda_gpu_reason()
    if why:
        pytest.skip(why)
    nvcc = find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found: cannot build the CUDA kernels")
    archs = os.environ.get("INSTANCEVG_TEST_CUDA_ARCHITECTURES", "native")
    build_dir = build_root() / "cuda"
    cmake_build(build_dir, [f"-DCMAKE_CUDA_COMPILER={nvcc}", f"-DCMAKE_CUDA_ARCHITECTURES={archs}"],
                ["instancevg_kernels_cuda"])
    lib = ctypes.CDLL(str(build_dir / "libinstancevg_kernels_cuda.so"))
    i32, f32, ptr = ctypes.c_int32, ctypes.c_float, ctypes.c_void_p
    lib.ivg_cuda_ms_deform_attn.restype = i32
    lib.ivg_cuda_ms_deform_attn.argtypes = [i32] + [ptr] * 6 + [i32] * 7 + [ptr, i32]
    lib.ivg_cuda_point_select_workspace_size.restype = ctypes.c_size_t
    lib.ivg_cuda_point_select_workspace_size.argtypes = [i32, i32, i32]
    lib.ivg_cuda_point_select.restype = i32
    lib.ivg_cuda_point_select.argtypes = [ptr, i32, i32, i32, i32, f32, ptr, ptr, ptr, ptr, i32]
    lib.ivg_cuda_error_string.restype = ctypes.c_char_p
    lib.ivg_cuda_error_string.argtypes = [i32]
    return lib
