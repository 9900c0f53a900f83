"""Inputs, references and ctypes calls shared by the plugin kernel tests (host and GPU)."""
from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np
import torch

from instancevg.ops import ms_deform_attn, select_points


@dataclass
class MSDAInputs:
    value: np.ndarray               # [B,S,M,D]
    spatial_shapes: np.ndarray      # [L,2] int32
    level_start_index: np.ndarray   # [L] int32
    sampling_locations: np.ndarray  # [B,Q,M,L,P,2]
    attention_weights: np.ndarray   # [B,Q,M,L,P]

    @property
    def dims(self) -> tuple[int, ...]:
        B, S, M, D = self.value.shape
        _, Q, _, L, P, _ = self.sampling_locations.shape
        return B, S, M, D, Q, L, P

    def astype(self, dtype) -> "MSDAInputs":
        return MSDAInputs(self.value.astype(dtype), self.spatial_shapes, self.level_start_index,
                          self.sampling_locations.astype(dtype), self.attention_weights.astype(dtype))


def msda_inputs(rng: np.random.Generator, batch: int, queries: int, heads: int, channels: int,
                shapes: list[tuple[int, int]], points: int, loc_low: float = -0.15, loc_high: float = 1.15,
                borders: bool = True) -> MSDAInputs:
    """Random inputs; locations in [loc_low, loc_high] (outside [0,1] too) and, with borders, a share of them
    exactly on the map's edges and on the edges of the -1 px / W px padding band."""
    shapes_arr = np.asarray(shapes, dtype=np.int32)
    starts = np.concatenate([[0], np.cumsum(shapes_arr[:, 0] * shapes_arr[:, 1])[:-1]]).astype(np.int32)
    S = int((shapes_arr[:, 0] * shapes_arr[:, 1]).sum())
    L = len(shapes)
    value = rng.standard_normal((batch, S, heads, channels)).astype(np.float32)
    loc = rng.uniform(loc_low, loc_high, (batch, queries, heads, L, points, 2)).astype(np.float32)
    if borders:
        for level, (h, w) in enumerate(shapes):
            size = np.array([w, h], dtype=np.float32)  # (x, y)
            # 0 and 1: the outer pixel centres +- 0.5; +-0.5/size: pixel centres; -0.5/size and 1+0.5/size: the
            # last sample positions that still touch the map (zero weight on it).
            edges = np.stack([np.zeros(2), np.ones(2), 0.5 / size, 1 - 0.5 / size, -0.5 / size,
                              1 + 0.5 / size]).astype(np.float32)
            mask = rng.random((batch, queries, heads, points, 2)) < 0.3
            picks = edges[rng.integers(0, len(edges), (batch, queries, heads, points)), :]
            level_loc = loc[:, :, :, level]
            level_loc[mask] = picks[mask]
    logits = rng.standard_normal((batch, queries, heads, L * points)).astype(np.float32)
    weights = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    weights = weights.reshape(batch, queries, heads, L, points).astype(np.float32)
    return MSDAInputs(value, shapes_arr, starts, loc, weights)


def msda_reference(x: MSDAInputs, dtype=torch.float64, device: str = "cpu") -> np.ndarray:
    """instancevg.ops.ms_deform_attn on x (converted to dtype), as float64 numpy."""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=dtype)  # noqa: E731
    out = ms_deform_attn(t(x.value), torch.from_numpy(x.spatial_shapes.astype(np.int64)),
                         torch.from_numpy(x.level_start_index.astype(np.int64)), t(x.sampling_locations),
                         t(x.attention_weights))
    return out.double().cpu().numpy()


def _ptr(a: np.ndarray) -> int:
    assert a.flags.c_contiguous
    return a.ctypes.data


def host_msda(lib: ctypes.CDLL, x: MSDAInputs, half: bool = False) -> tuple[int, np.ndarray]:
    """Runs the host build; half=True passes binary16 tensors. Returns (status, output [B,Q,M*D])."""
    B, S, M, D, Q, L, P = x.dims
    dtype = np.float16 if half else np.float32
    value = np.ascontiguousarray(x.value, dtype=dtype)
    loc = np.ascontiguousarray(x.sampling_locations, dtype=dtype)
    weights = np.ascontiguousarray(x.attention_weights, dtype=dtype)
    shapes = np.ascontiguousarray(x.spatial_shapes, dtype=np.int32)
    starts = np.ascontiguousarray(x.level_start_index, dtype=np.int32)
    out = np.full((B, Q, M * D), np.nan, dtype=dtype)
    fn = lib.ivg_ms_deform_attn_f16 if half else lib.ivg_ms_deform_attn_f32
    status = fn(_ptr(value), _ptr(shapes), _ptr(starts), _ptr(loc), _ptr(weights), _ptr(out), B, S, M, D, Q, L, P)
    return status, out


def host_select_points(lib: ctypes.CDLL, scores: np.ndarray, num_points: int, w_dist: float
                       ) -> tuple[int, np.ndarray, np.ndarray]:
    """Runs the host build. Returns (status, indices [B,N] int32, points [B,N,2] float32)."""
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    B, h, w = scores.shape
    indices = np.full((B, num_points), -7, dtype=np.int32)
    points = np.full((B, num_points, 2), np.nan, dtype=np.float32)
    status = lib.ivg_point_select(_ptr(scores), B, h, w, num_points, w_dist, _ptr(indices), _ptr(points))
    return status, indices, points


def select_points_reference(scores: np.ndarray, num_points: int, w_dist: float) -> tuple[np.ndarray, np.ndarray]:
    """instancevg.ops.select_points with w_dist as the float32 the plugin field holds."""
    indices, points = select_points(torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32)), num_points,
                                    float(np.float32(w_dist)))
    return indices.numpy(), points.numpy()


def fp16_tolerance(reference: np.ndarray) -> np.ndarray:
    """Allowed |fp16 output - exact| : half an fp16 ulp of the result (<= |x| * 2^-11 for normal halves) for the
    final rounding, plus 1e-5 for FP32 math and outputs in fp16's subnormal range (ulp 6e-8)."""
    return np.abs(reference) * 2.0 ** -11 + 1e-5
