"""The plugin kernels through their C ABI, without TensorRT: the host build for CPU tensors, the CUDA build
for CUDA tensors (``plugins/host/hostKernels.h`` and ``plugins/host/cudaKernels.h``).

Both libraries are built from ``plugins/`` with CMake (no TensorRT needed)::

    cmake -S plugins -B build/plugins && cmake --build build/plugins -j        # CPU: host library only
    # with nvcc: also libinstancevg_kernels_cuda.so (set -DCMAKE_CUDA_ARCHITECTURES=native on a GPU machine)

and found where ``instancevg.plugin_paths`` says: ``--plugins`` / ``$INSTANCEVG_PLUGINS`` (the build folder, or
any file inside it), else ``./build/plugins``, else ``build/plugins`` of the source tree this package was
installed from.
"""
from __future__ import annotations

import ctypes
import functools
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ..plugin_paths import CUDA_LIBRARY, HOST_LIBRARY, PLUGINS_ENV, SOURCE_TREE, plugin_library, search_dirs, use_plugins

HOST_ABI_VERSION = 1
CUDA_ABI_VERSION = 1
BUILD_HINT = ("build it with: cmake -S plugins -B build/plugins && cmake --build build/plugins -j "
              f"(then run from the repository root or set ${PLUGINS_ENV} to that folder)")

_i32, _f32, _ptr, _size = ctypes.c_int32, ctypes.c_float, ctypes.c_void_p, ctypes.c_size_t


class KernelLibraryError(RuntimeError):
    """A plugin kernel library is missing, unloadable, of another ABI, or refused a call."""


def find_library(name: str) -> Path:
    """``name`` where ``instancevg.plugin_paths`` finds it; KernelLibraryError naming every place looked at."""
    path = plugin_library(name)
    if not path.is_file():
        looked = ", ".join(str(d) for d in search_dirs())
        raise KernelLibraryError(f"{name} not found (looked in {looked}); {BUILD_HINT}")
    return path


SOURCE_DIR = SOURCE_TREE / "plugins"  # in a source checkout (editable install)


def cmake_build(build_dir: Path, options: list[str], targets: list[str], jobs: int | None = None,
                timeout: float = 1800) -> None:
    """Configure plugins/ into ``build_dir`` with CMake and build ``targets``; KernelLibraryError with the
    tail of the output when CMake or the compiler fails."""
    cmake = shutil.which("cmake")
    if cmake is None:
        raise KernelLibraryError("cmake is required to build plugins/ (apt-get install cmake)")
    if not (SOURCE_DIR / "CMakeLists.txt").is_file():
        raise KernelLibraryError(f"the plugin sources are not at {SOURCE_DIR} (an installed package without its "
                                 "source tree): build them from a checkout and set $INSTANCEVG_PLUGINS")
    for cmd, what in (([cmake, "-S", str(SOURCE_DIR), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release", *options],
                       f"configuring plugins/ into {build_dir}"),
                      ([cmake, "--build", str(build_dir), "-j", str(jobs or os.cpu_count() or 2), "--target",
                        *targets], f"building {', '.join(targets)}")):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise KernelLibraryError(f"{what} failed ({' '.join(cmd)}):\n{(proc.stdout + proc.stderr)[-4000:]}")


def ensure_host_library(build_dir: Path) -> Path:
    """The folder of a loadable host library: where the search finds one, else a fresh CMake build of it
    into ``build_dir`` (C++ compiler only, seconds), which the loader then uses."""
    if available("cpu") is None:
        return find_library(HOST_LIBRARY).parent
    cmake_build(Path(build_dir), ["-DINSTANCEVG_PLUGINS_HOST_ONLY=ON"], ["instancevg_plugins_host"])
    use_plugins(build_dir)
    reset()
    host_library()
    return Path(build_dir)


def _load(path: Path) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(str(path))
    except OSError as exc:
        raise KernelLibraryError(f"cannot load {path}: {exc}") from None


@functools.lru_cache(maxsize=None)
def host_library() -> ctypes.CDLL:
    """libinstancevg_plugins_host.so with its C ABI declared (loaded once; :func:`reset` forgets it)."""
    lib = _load(find_library(HOST_LIBRARY))
    lib.ivg_host_abi_version.restype = _i32
    lib.ivg_host_last_error.restype = ctypes.c_char_p
    for name in ("ivg_ms_deform_attn_f32", "ivg_ms_deform_attn_f16"):
        fn = getattr(lib, name)
        fn.restype = _i32
        fn.argtypes = [_ptr] * 6 + [_i32] * 7
    lib.ivg_point_select.restype = _i32
    lib.ivg_point_select.argtypes = [_ptr, _i32, _i32, _i32, _i32, _f32, _ptr, _ptr]
    lib.ivg_point_select_check_fields.restype = _i32
    lib.ivg_point_select_check_fields.argtypes = [_i32, _f32]
    version = lib.ivg_host_abi_version()
    if version != HOST_ABI_VERSION:
        raise KernelLibraryError(f"{lib._name} has host ABI version {version}, this package expects "
                                 f"{HOST_ABI_VERSION}: rebuild plugins/")
    return lib


@functools.lru_cache(maxsize=None)
def cuda_library() -> ctypes.CDLL:
    """libinstancevg_kernels_cuda.so with its C ABI declared (loaded once; :func:`reset` forgets it)."""
    lib = _load(find_library(CUDA_LIBRARY))
    try:
        lib.ivg_cuda_abi_version.restype = _i32
        version = lib.ivg_cuda_abi_version()
    except AttributeError:
        version = 0
    if version != CUDA_ABI_VERSION:
        raise KernelLibraryError(f"{lib._name} has CUDA ABI version {version}, this package expects "
                                 f"{CUDA_ABI_VERSION}: rebuild plugins/")
    lib.ivg_cuda_set_device.restype = _i32
    lib.ivg_cuda_set_device.argtypes = [_i32]
    lib.ivg_cuda_ms_deform_attn.restype = _i32
    lib.ivg_cuda_ms_deform_attn.argtypes = [_i32] + [_ptr] * 6 + [_i32] * 7 + [_ptr, _i32]
    lib.ivg_cuda_point_select_workspace_size.restype = _size
    lib.ivg_cuda_point_select_workspace_size.argtypes = [_i32, _i32, _i32]
    lib.ivg_cuda_point_select.restype = _i32
    lib.ivg_cuda_point_select.argtypes = [_ptr, _i32, _i32, _i32, _i32, _f32, _ptr, _ptr, _ptr, _ptr, _i32]
    lib.ivg_cuda_error_string.restype = ctypes.c_char_p
    lib.ivg_cuda_error_string.argtypes = [_i32]
    return lib


def reset() -> None:
    """Forget the loaded libraries: the next call searches again (after $INSTANCEVG_PLUGINS changed)."""
    host_library.cache_clear()
    cuda_library.cache_clear()


def check_host(status: int, what: str) -> None:
    """Raise KernelLibraryError with the host library's reason for a non-zero ``status``."""
    if status != 0:
        reason = host_library().ivg_host_last_error().decode()
        raise KernelLibraryError(f"{what}: host kernel refused the call ({status}): {reason}")


def check_cuda(status: int, what: str) -> None:
    """Raise KernelLibraryError with cudaGetErrorString for a non-zero cudaError_t ``status``."""
    if status != 0:
        reason = cuda_library().ivg_cuda_error_string(status).decode()
        raise KernelLibraryError(f"{what}: CUDA kernel failed ({status}): {reason}")


def available(device_type: str = "cpu") -> str | None:
    """None when the kernels for ``device_type`` ("cpu" or "cuda") can be loaded, else why not."""
    try:
        host_library() if device_type == "cpu" else cuda_library()
    except KernelLibraryError as exc:
        return str(exc)
    return None


def _pointer(array: np.ndarray) -> int:
    return array.ctypes.data


def host_ms_deform_attn(value: np.ndarray, spatial_shapes: np.ndarray, level_start_index: np.ndarray,
                        sampling_locations: np.ndarray, attention_weights: np.ndarray) -> np.ndarray:
    """MSDeformAttn on the host build: value [B,S,M,D], spatial_shapes [L,2], level_start_index [L] (int32, checked
    against each other and S), sampling_locations [B,Q,M,L,P,2], attention_weights [B,Q,M,L,P], all float32 or
    all float16 -> [B,Q,M*D] in that type."""
    if value.dtype not in (np.float32, np.float16):
        raise TypeError(f"the MSDeformAttn kernels take float32 or float16 values, got {value.dtype}")
    value = np.ascontiguousarray(value)
    locations = np.ascontiguousarray(sampling_locations, dtype=value.dtype)
    weights = np.ascontiguousarray(attention_weights, dtype=value.dtype)
    shapes = np.ascontiguousarray(spatial_shapes, dtype=np.int32)
    starts = np.ascontiguousarray(level_start_index, dtype=np.int32)
    B, S, M, D = value.shape
    _, Q, _, L, P, _ = locations.shape
    out = np.empty((B, Q, M * D), dtype=value.dtype)
    lib = host_library()
    fn = lib.ivg_ms_deform_attn_f32 if value.dtype == np.float32 else lib.ivg_ms_deform_attn_f16
    status = fn(_pointer(value), _pointer(shapes), _pointer(starts), _pointer(locations), _pointer(weights),
                _pointer(out), B, S, M, D, Q, L, P)
    check_host(status, "MSDeformAttn")
    return out


def host_point_select(scores: np.ndarray, num_points: int, w_dist: float) -> tuple[np.ndarray, np.ndarray]:
    """PointSelect on the host build: scores [B,h,w] float32 -> indices [B,N] int32, points [B,N,2] float32."""
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    B, h, w = scores.shape
    indices = np.empty((B, num_points), dtype=np.int32)
    points = np.empty((B, num_points, 2), dtype=np.float32)
    status = host_library().ivg_point_select(_pointer(scores), B, h, w, num_points, w_dist, _pointer(indices),
                                             _pointer(points))
    check_host(status, "PointSelect")
    return indices, points
