"""Host build of the plugin kernels (same per-element math as the CUDA kernels) against instancevg.ops.

Tolerances:
- MSDeformAttn FP32: the plugin computes coordinates, bilinear weights and sums in FP32; the reference here runs in
  FP64 on the same inputs. Each output sums L*P*4 <= 64 products of O(1) terms, so FP32 rounding stays below
  64 * 2^-24 * sum|terms| ~ 1e-5 for these N(0,1) values; atol 2e-5 + rtol 1e-5 (observed max 5.5e-6, the same
  as PyTorch's own FP32 grid_sample against FP64: 5.4e-6).
- MSDeformAttn FP16: inputs are FP16-rounded, the reference runs in FP64 on those rounded values; the plugin's only
  extra error is the final FP16 rounding (<= |x| * 2^-11) on top of the FP32 error above (observed: 0.94 of the
  bound at worst). Pixel coordinates rounded to FP16 (as NVIDIA's MSDA plugin computes them) miss this bound by
  ~900x on the 100x152 level (test below). The FP16 output must also equal the FP32 output rounded to FP16, bit
  for bit.
- PointSelect: exact. Indices equal the reference's, points equal its float32 values bit for bit: both compute
  the same separately rounded FP32 operations in the same order.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from .plugin_kernels import (fp16_tolerance, host_msda, host_select_points, msda_inputs, msda_reference,
                            select_points_reference)

MSDA_CASES = [
    # batch, queries, heads, channels, level shapes (H, W), points
    (1, 20, 8, 32, [(80, 80), (40, 40), (20, 20), (10, 10)], 4),  # InstanceVG's decoder (8500 tokens)
    (2, 7, 3, 5, [(13, 17), (7, 9), (4, 5), (1, 3)], 3),          # odd D, non-square levels, a 1-row level
    (3, 5, 2, 8, [(1, 1), (6, 2)], 1),                            # a 1x1 level, one point
    (2, 11, 4, 16, [(9, 23)], 5),                                 # one level
    (1, 4, 1, 2, [(3, 3), (2, 2), (5, 4), (1, 7), (8, 1)], 2),    # five levels, one head
]


@pytest.mark.parametrize("case", MSDA_CASES, ids=lambda c: f"B{c[0]}Q{c[1]}M{c[2]}D{c[3]}L{len(c[4])}P{c[5]}")
@pytest.mark.parametrize("seed", [0, 1])
def test_ms_deform_attn_fp32_matches_reference(host_lib, case, seed):
    rng = np.random.default_rng(seed)
    x = msda_inputs(rng, *case)
    status, out = host_msda(host_lib, x)
    assert status == 0, host_lib.ivg_host_last_error()
    ref = msda_reference(x)
    err = np.abs(out - ref)
    assert np.all(err <= 2e-5 + 1e-5 * np.abs(ref)), f"max abs error {err.max():.3g}"


def test_ms_deform_attn_fp32_matches_fp32_reference(host_lib):
    """Also against the op as the model runs it (FP32 grid_sample)."""
    x = msda_inputs(np.random.default_rng(5), *MSDA_CASES[0])
    _, out = host_msda(host_lib, x)
    ref32 = msda_reference(x, dtype=torch.float32)
    assert np.abs(out - ref32).max() <= 2e-5


@pytest.mark.parametrize("case", MSDA_CASES + [(1, 9, 2, 6, [(100, 152), (50, 76)], 4)],
                         ids=lambda c: f"B{c[0]}Q{c[1]}M{c[2]}D{c[3]}L{len(c[4])}P{c[5]}")
def test_ms_deform_attn_fp16_matches_reference(host_lib, case):
    rng = np.random.default_rng(3)
    x = msda_inputs(rng, *case).astype(np.float16)  # FP16-rounded inputs
    status, out16 = host_msda(host_lib, x, half=True)
    assert status == 0, host_lib.ivg_host_last_error()
    ref = msda_reference(x.astype(np.float64))
    err = np.abs(out16.astype(np.float64) - ref)
    assert np.all(err <= fp16_tolerance(ref)), f"max abs error {err.max():.3g}"
    # FP32 math inside: identical to the FP32 kernel on the same (rounded) inputs, then rounded once.
    status, out32 = host_msda(host_lib, x.astype(np.float32))
    assert status == 0
    np.testing.assert_array_equal(out16, out32.astype(np.float16))


def test_fp16_tolerance_catches_half_precision_coordinates():
    """The FP16 bound is tight enough to tell FP32 from FP16 coordinate math: emulate the latter on the
    reference (pixel = loc * size - 0.5 rounded to FP16 at each step) and check it breaks the bound."""
    x = msda_inputs(np.random.default_rng(0), 1, 9, 2, 6, [(100, 152), (50, 76)], 4).astype(np.float16)
    exact = msda_reference(x.astype(np.float64))
    rounded = x.astype(np.float64)
    for level, (h, w) in enumerate(x.spatial_shapes.tolist()):
        size = np.array([w, h], dtype=np.float64)
        scaled = (rounded.sampling_locations[:, :, :, level] * size).astype(np.float16).astype(np.float64)
        pixel = (scaled - 0.5).astype(np.float16).astype(np.float64)
        rounded.sampling_locations[:, :, :, level] = (pixel + 0.5) / size
    err = np.abs(msda_reference(rounded) - exact)
    assert (err / fp16_tolerance(exact)).max() > 10


def test_ms_deform_attn_far_outside_reads_zeros(host_lib):
    x = msda_inputs(np.random.default_rng(2), 1, 6, 2, 4, [(5, 6), (3, 3)], 2, borders=False)
    x.sampling_locations[:] = np.float32(1e9)
    x.sampling_locations[0, :3] = np.float32(-1e9)
    status, out = host_msda(host_lib, x)
    assert status == 0
    np.testing.assert_array_equal(out, np.zeros_like(out))
    np.testing.assert_array_equal(msda_reference(x), np.zeros_like(out))


def test_ms_deform_attn_empty_batch_and_queries(host_lib):
    x = msda_inputs(np.random.default_rng(0), 1, 3, 2, 4, [(2, 2)], 1)
    empty = type(x)(x.value[:0], x.spatial_shapes, x.level_start_index, x.sampling_locations[:0],
                    x.attention_weights[:0])
    status, out = host_msda(host_lib, empty)
    assert status == 0 and out.shape == (0, 3, 8)
    no_queries = type(x)(x.value, x.spatial_shapes, x.level_start_index, x.sampling_locations[:, :0],
                         x.attention_weights[:, :0])
    status, out = host_msda(host_lib, no_queries)
    assert status == 0 and out.shape == (1, 0, 8)


def test_ms_deform_attn_refuses_inconsistent_levels(host_lib):
    x = msda_inputs(np.random.default_rng(0), 1, 3, 2, 4, [(4, 4), (2, 3)], 2)
    bad_start = type(x)(x.value, x.spatial_shapes, np.array([0, 15], np.int32), x.sampling_locations,
                        x.attention_weights)
    status, _ = host_msda(host_lib, bad_start)
    assert status == -3 and b"level_start_index[1] = 15, expected 16" in host_lib.ivg_host_last_error()
    bad_shapes = type(x)(x.value, np.array([[4, 4], [2, 2]], np.int32), np.array([0, 16], np.int32),
                         x.sampling_locations, x.attention_weights)
    status, _ = host_msda(host_lib, bad_shapes)
    assert status == -2 and b"S = 22" in host_lib.ivg_host_last_error()
    zero_level = type(x)(x.value, np.array([[0, 4], [2, 3]], np.int32), np.array([0, 0], np.int32),
                         x.sampling_locations, x.attention_weights)
    status, _ = host_msda(host_lib, zero_level)
    assert status == -3 and b"must be > 0" in host_lib.ivg_host_last_error()


def test_ms_deform_attn_refuses_bad_sizes_and_null(host_lib):
    status = host_lib.ivg_ms_deform_attn_f32(None, None, None, None, None, None, 1, 4, 0, 4, 1, 1, 1)
    assert status == -2 and b"heads" in host_lib.ivg_host_last_error()
    status = host_lib.ivg_ms_deform_attn_f32(None, None, None, None, None, None, 1, 4, 1, 4, 1, 1, 1)
    assert status == -1 and b"null" in host_lib.ivg_host_last_error()


# ------------------------------------------------------------------------------------------------ PointSelect
def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def assert_select_points_match(host_lib, scores, num_points, w_dist):
    status, indices, points = host_select_points(host_lib, scores, num_points, w_dist)
    assert status == 0, host_lib.ivg_host_last_error()
    ref_indices, ref_points = select_points_reference(scores, num_points, w_dist)
    np.testing.assert_array_equal(indices, ref_indices.astype(np.int32))
    np.testing.assert_array_equal(points, ref_points)  # bit for bit
    return indices


W_DISTS = [0.0, 0.003, 0.05, 1.0, 25.0, -0.2]


@pytest.mark.parametrize("shape,num_points", [((2, 20, 20), 10), ((3, 7, 13), 91), ((2, 1, 9), 4),
                                              ((1, 16, 5), 33), ((4, 20, 20), 1)])
@pytest.mark.parametrize("w_dist", W_DISTS)
def test_select_points_random_maps(host_lib, shape, num_points, w_dist):
    rng = np.random.default_rng(hash((shape, num_points)) % 2**32)
    scores = sigmoid(rng.standard_normal(shape)).astype(np.float32)
    assert_select_points_match(host_lib, scores, num_points, w_dist)


@pytest.mark.parametrize("w_dist", W_DISTS)
def test_select_points_ties(host_lib, w_dist):
    """Quantised scores (many exact ties) and a constant map: ties go to the first row-major cell."""
    rng = np.random.default_rng(11)
    quantised = (np.round(rng.random((3, 9, 11)) * 4) / 4).astype(np.float32)
    assert_select_points_match(host_lib, quantised, 30, w_dist)
    constant = np.full((2, 6, 6), 0.5, dtype=np.float32)
    indices = assert_select_points_match(host_lib, constant, 36, w_dist)
    assert indices[0, 0] == 0
    assert sorted(indices[0].tolist()) == list(range(36))  # every cell exactly once


def test_select_points_w_dist_changes_the_order(host_lib):
    """A bright cluster and a slightly dimmer far peak: spreading (w_dist) picks the far peak second."""
    scores = np.full((1, 20, 20), 0.50, dtype=np.float32)
    scores[0, 2:5, 2:5] = 0.60
    scores[0, 3, 3] = 0.62
    scores[0, 17, 16] = 0.59
    near = assert_select_points_match(host_lib, scores, 5, 0.0)
    far = assert_select_points_match(host_lib, scores, 5, 0.1)
    assert near[0, 0] == far[0, 0] == 3 * 20 + 3
    assert near[0, 1] != 17 * 20 + 16 and far[0, 1] == 17 * 20 + 16
    assert not np.array_equal(near, far)


def test_select_points_model_regime(host_lib):
    """The model's regime: s = sigmoid(attention probability ~ 1/400), differences ~1e-5, W_dist = 0.003."""
    rng = np.random.default_rng(7)
    logits = rng.standard_normal((4, 400)).astype(np.float32) * 2
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    scores = sigmoid(probs).reshape(4, 20, 20).astype(np.float32)
    assert_select_points_match(host_lib, scores, 10, 0.003)
    assert_select_points_match(host_lib, scores, 20, 0.003)


def test_select_points_nan_and_infinite_scores(host_lib):
    """torch.argmax takes NaN as the maximum; -inf cells rank below every finite one."""
    scores = sigmoid(np.random.default_rng(1).standard_normal((1, 5, 5))).astype(np.float32)
    scores[0, 1, 1] = -np.inf
    scores[0, 4, 2] = np.nan
    scores[0, 0, 3] = np.inf
    assert_select_points_match(host_lib, scores, 4, 0.003)


def test_select_points_refusals(host_lib):
    scores = np.zeros((1, 2, 3), dtype=np.float32)
    for num_points, w_dist, text in [(0, 0.1, b">= 1"), (7, 0.1, b"h * w"), (2, float("nan"), b"finite"),
                                     (2, float("inf"), b"finite")]:
        status, _, _ = host_select_points(host_lib, scores, num_points, w_dist)
        assert status != 0 and text in host_lib.ivg_host_last_error(), (num_points, w_dist)
    assert host_lib.ivg_point_select_check_fields(10, 0.003) == 0
    assert host_lib.ivg_point_select_check_fields(0, 0.003) != 0
    assert host_lib.ivg_point_select_check_fields(-1, 0.003) != 0
    assert host_lib.ivg_point_select_check_fields(3, float("nan")) != 0
    status, indices, _ = host_select_points(host_lib, np.zeros((0, 4, 4), np.float32), 3, 0.0)
    assert status == 0 and indices.shape == (0, 3)
