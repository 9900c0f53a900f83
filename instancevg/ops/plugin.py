"""The ``plugin`` implementation of the custom ops: the TensorRT plugins' own kernels, called through their
C ABI (``kernels``) on torch tensors, with no TensorRT involved. CPU tensors run the host build, CUDA tensors
the CUDA build on the tensors' device and current stream (asynchronously: capturable in a CUDA graph).

The contracts are those of the plugin nodes (plugins/README.md): MSDeformAttn takes float32 or float16 value,
locations and weights of one type and returns that type (coordinates, weights and sums in float32 inside);
PointSelect takes float32 scores and returns int32 indices (widened here to int64, the op's contract) and
float32 points. Eager only: inside an ONNX export or torch.compile the ops take their traceable forms.
"""
from __future__ import annotations

import functools

import torch

from . import kernels
from .ms_deform_attn import level_starts

_FLOAT_TYPES = {torch.float32: 0, torch.float16: 1}


@functools.lru_cache(maxsize=None)
def level_tables(shapes: tuple[tuple[int, int], ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """spatial_shapes [L, 2] and level_start_index [L] as int32 tensors on ``device``, made once per device:
    later calls (and CUDA-graph captures) copy nothing from the host."""
    return (torch.tensor(shapes, dtype=torch.int32).to(device),
            torch.tensor(level_starts(shapes), dtype=torch.int32).to(device))


def _check_eager(op: str) -> None:
    if torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling() or torch.jit.is_tracing():
        raise RuntimeError(f"the plugin implementation of {op} calls C kernels and runs eagerly only; "
                           "export and compile with the reference ops")


def _cuda_prepare(device: torch.device):
    """The CUDA library with its runtime on ``device``, and the handle of that device's current stream."""
    lib = kernels.cuda_library()
    kernels.check_cuda(lib.ivg_cuda_set_device(device.index if device.index is not None else 0),
                       f"selecting {device}")
    return lib, torch.cuda.current_stream(device).cuda_stream


def _check_device(tensor: torch.Tensor) -> None:
    if tensor.device.type not in ("cpu", "cuda"):
        raise ValueError(f"the plugin kernels run on CPU and CUDA tensors, not on {tensor.device}")


def ms_deform_attn(value: torch.Tensor, shapes: list[tuple[int, int]], sampling_locations: torch.Tensor,
                   attention_weights: torch.Tensor) -> torch.Tensor:
    """value [B,S,M,D], shapes [(H_l, W_l)], sampling_locations [B,Q,M,L,P,2], attention_weights
    [B,Q,M,L,P] -> [B,Q,M*D] in value's type (float32 or float16)."""
    _check_eager("ms_deform_attn")
    _check_device(value)
    if value.dtype not in _FLOAT_TYPES:
        raise TypeError(f"the MSDeformAttn kernels take float32 or float16 values, got {value.dtype}")
    value = value.contiguous()
    locations = sampling_locations.to(value.dtype).contiguous()
    weights = attention_weights.to(value.dtype).contiguous()
    spatial_shapes, level_starts = level_tables(tuple(shapes), value.device)
    if not value.is_cuda:
        return torch.from_numpy(kernels.host_ms_deform_attn(value.numpy(), spatial_shapes.numpy(), level_starts.numpy(),
                                                            locations.numpy(), weights.numpy()))
    B, S, M, D = value.shape
    _, Q, _, L, P, _ = locations.shape
    out = torch.empty(B, Q, M * D, dtype=value.dtype, device=value.device)
    lib, stream = _cuda_prepare(value.device)
    status = lib.ivg_cuda_ms_deform_attn(_FLOAT_TYPES[value.dtype], value.data_ptr(), spatial_shapes.data_ptr(),
                                         level_starts.data_ptr(), locations.data_ptr(), weights.data_ptr(),
                                         out.data_ptr(), B, S, M, D, Q, L, P, stream, 0)
    kernels.check_cuda(status, "MSDeformAttn")
    return out


def select_points(scores: torch.Tensor, num_points: int, w_dist: float) -> tuple[torch.Tensor, torch.Tensor]:
    """scores [B, h, w] float32 -> indices [B, N] int64, points [B, N, 2] float32 (x, y)."""
    _check_eager("select_points")
    _check_device(scores)
    scores = scores.float().contiguous()
    if not scores.is_cuda:
        indices, points = kernels.host_point_select(scores.numpy(), num_points, w_dist)
        return torch.from_numpy(indices).long(), torch.from_numpy(points)
    B, h, w = scores.shape
    indices = torch.empty(B, num_points, dtype=torch.int32, device=scores.device)
    points = torch.empty(B, num_points, 2, dtype=torch.float32, device=scores.device)
    lib, stream = _cuda_prepare(scores.device)
    workspace = torch.empty(max(1, lib.ivg_cuda_point_select_workspace_size(B, h, w)), dtype=torch.uint8,
                            device=scores.device)
    status = lib.ivg_cuda_point_select(scores.data_ptr(), B, h, w, num_points, w_dist, workspace.data_ptr(),
                                       indices.data_ptr(), points.data_ptr(), stream, 0)
    kernels.check_cuda(status, "PointSelect")
    return indices.long(), points
