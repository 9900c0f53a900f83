"""The ``plugin`` implementation of the custom ops (the plugins' kernels through their C ABI, here the host
build) against the ``reference`` implementation, through the ops' own dispatch (``use_ops``).

Tolerances: PointSelect exact (indices and points bit for bit: both compute the same separately rounded
float32 operations with the same scale, ``distance_scale``). MSDeformAttn FP32: each output sums L*P*4 <= 64
products of O(1) terms in a different order than grid_sample, 2e-5 + 1e-5 relative (observed ~5e-6);
FP16: the kernels round once at the end (half an FP16 ulp) while the reference rounds every product and
sum to FP16, so 2e-3 relative to the output range.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from instancevg import bundled, ops
from instancevg.config import get_config
from instancevg.inference import load_model
from instancevg.ops import kernels

from ..plugins.plugin_kernels import msda_inputs

pytestmark = pytest.mark.usefixtures("plugin_kernels")


def both(fn, *args):
    """(reference result, plugin result) of one op call."""
    reference = fn(*args)
    with ops.use_ops("plugin"):
        return reference, fn(*args)


def test_distance_scale_rounds_w_dist_to_float32_first():
    # w_dist reaches the kernels as the float32 ONNX attribute / plugin field
    expected = np.float32(float(np.float32(0.003)) / math.sqrt(800))
    assert ops.distance_scale(0.003, 20, 20) == float(expected)
    assert ops.distance_scale(0.003, 20, 20) != float(np.float32(0.003 / math.sqrt(800)))


def test_near_tie_is_decided_as_the_kernels_decide():
    """An adversarial map: after cell 0, cells 344 (17, 4) and 170 (8, 10) tie to within one float32 ulp of
    their combined scores. With distance_scale both implementations pick 344; the former reference (scale
    from the unrounded Python float 0.003 / sqrt(800)) picked 170 there."""
    s = np.full((1, 20, 20), 0.49, np.float32)  # 0.49 + scale * d < 0.5: never competes
    s[0, 0, 0], s[0, 17, 4], s[0, 8, 10] = 0.6, np.float32(0.5006387), np.float32(0.5011327)
    (ref_idx, ref_pts), (ker_idx, ker_pts) = both(ops.select_points, torch.from_numpy(s), 2, 0.003)
    assert ref_idx.tolist() == ker_idx.tolist() == [[0, 344]]
    assert torch.equal(ref_pts, ker_pts)
    # the unrounded scale ranks the pair the other way (ties go to the lower index, 170)
    old = np.float32(0.003 / math.sqrt(800))
    a = np.float32(s[0, 17, 4] + np.float32(old * np.float32(math.sqrt(17 ** 2 + 4 ** 2))))
    b = np.float32(s[0, 8, 10] + np.float32(old * np.float32(math.sqrt(8 ** 2 + 10 ** 2))))
    assert a <= b


@pytest.mark.parametrize("kind", ["softmax", "ulp-quantised", "flat"])
def test_point_selection_identical_on_5000_near_flat_maps(kind):
    rng = np.random.default_rng({"softmax": 0, "ulp-quantised": 1, "flat": 2}[kind])
    if kind == "softmax":  # AQSM's regime: sigmoid of attention probabilities ~ 1/400
        probs = torch.softmax(torch.from_numpy(rng.normal(0, 1, (5000, 400))).float(), -1)
        scores = torch.sigmoid(probs).reshape(5000, 20, 20)
    elif kind == "ulp-quantised":  # scores a few float32 ulps apart: ranks decided by the distance term
        ulp = np.spacing(np.float32(0.5))
        scores = torch.from_numpy(np.float32(0.5) + rng.integers(-40, 41, (5000, 20, 20)).astype(np.float32) * ulp)
    else:  # exact ties everywhere: the first index of each maximum
        scores = torch.full((5000, 20, 20), 0.5)
    (ref_idx, ref_pts), (ker_idx, ker_pts) = both(ops.select_points, scores, 10, 0.003)
    assert ref_idx.dtype == ker_idx.dtype == torch.int64
    assert torch.equal(ref_idx, ker_idx), f"{int((ref_idx != ker_idx).any(1).sum())} maps differ"
    assert torch.equal(ref_pts, ker_pts)


def test_point_selection_nan_scores_rank_highest_in_both():
    scores = torch.rand(3, 6, 7)
    scores[0, 2, 3] = float("nan")
    scores[1] = float("nan")
    (ref_idx, _), (ker_idx, _) = both(ops.select_points, scores, 4, 0.003)
    assert torch.equal(ref_idx, ker_idx)
    assert ref_idx[0, 0] == 2 * 7 + 3 and ref_idx[1].tolist() == [0, 1, 2, 3]


def _msda_tensors(case, seed=0, dtype=torch.float32):
    x = msda_inputs(np.random.default_rng(seed), *case)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(dtype)  # noqa: E731
    return t(x.value), [tuple(int(v) for v in hw) for hw in x.spatial_shapes], x.level_start_index.tolist(), \
        t(x.sampling_locations), t(x.attention_weights)


GRES_BASE = (1, 10, 8, 32, [(80, 80), (40, 40), (20, 20), (10, 10)], 4)


@pytest.mark.parametrize("case", [GRES_BASE, (2, 7, 3, 5, [(13, 17), (7, 9), (4, 5), (1, 3)], 3)],
                         ids=["gres-base", "odd"])
def test_ms_deform_attn_fp32(case):
    ref, out = both(ops.ms_deform_attn, *_msda_tensors(case))
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert torch.all((out - ref).abs() <= 2e-5 + 1e-5 * ref.abs()), f"max error {(out - ref).abs().max():.3g}"


def test_ms_deform_attn_fp16_batch_1():
    """Batch 1 in FP16 on the CPU: the reference's inputs to grid_sample are strided views, which torch's
    CPU FP16 grid_sample misreads unless made contiguous (NaN and errors of the order of the range). The
    reference's FP16 grid_sample also computes pixel coordinates in FP16 (up to 0.04 px off on the 80x80
    level: ~3 % of the range here); the kernels keep them in float32 and round once at the end."""
    args16 = _msda_tensors(GRES_BASE, seed=4, dtype=torch.float16)
    ref16, out16 = both(ops.ms_deform_attn, *args16)
    ref32 = ops.ms_deform_attn(*[a.float() if isinstance(a, torch.Tensor) else a for a in args16])
    scale = ref32.abs().max()
    assert out16.dtype == ref16.dtype == torch.float16
    assert torch.isfinite(ref16).all() and (ref16.float() - ref32).abs().max() <= 5e-2 * scale
    assert (out16.float() - ref32).abs().max() <= 2e-3 * scale


def test_ms_deform_attn_non_finite_and_outside_locations_contribute_nothing():
    """One semantics for both implementations: a sample whose location is NaN/inf adds nothing, whatever its
    weight; one entirely outside the map reads zero padding. Both the same as giving it weight 0."""
    value, shapes, starts, loc, weights = _msda_tensors(GRES_BASE, seed=2)
    bad = torch.zeros(loc.shape[:-1], dtype=torch.bool)
    bad[0, :3, :, 0, 0] = True
    loc[0, 0, :, 0, 0, 0] = float("nan")
    loc[0, 1, :, 0, 0, 1] = float("inf")
    loc[0, 2, :, 0, 0] = torch.tensor([-float("inf"), 0.5])
    bad[0, 3, :, 1, :] = True
    loc[0, 3, :, 1] = torch.tensor([1.2, 0.5])  # pixel x = 1.2 * 40 - 0.5 = 47.5 > W: outside
    weights[bad] = 5.0  # a large weight on them changes nothing
    ref, out = both(ops.ms_deform_attn, value, shapes, starts, loc, weights)
    expected = ops.ms_deform_attn(value, shapes, starts, torch.where(bad[..., None], 0.5, loc),
                                  torch.where(bad, 0.0, weights))
    assert torch.isfinite(ref).all() and torch.isfinite(out).all()
    assert (ref - expected).abs().max() <= 1e-6
    assert torch.all((out - ref).abs() <= 2e-5 + 1e-5 * ref.abs())


def test_bundled_tiny_model_with_plugin_ops_selects_identically():
    cfg = get_config("tiny")
    model = load_model(cfg, bundled.default_checkpoint("tiny"))
    torch.manual_seed(0)
    B, S, L = 6, cfg.image_size, cfg.max_tokens
    image = torch.randn(B, 3, S, S)
    ids = torch.randint(4, cfg.encoder.vocab_size, (B, L))
    pad = torch.arange(L)[None].expand(B, L) >= torch.tensor([3, 5, 8, 12, L, 2])[:, None]
    with torch.no_grad():
        ref = model.forward_all(image, ids, pad)
        with ops.use_ops("plugin"):
            out = model.forward_all(image, ids, pad)
    assert torch.equal(ref["point_index"], out["point_index"]) and torch.equal(ref["text_index"], out["text_index"])
    assert torch.equal(ref["points"], out["points"])
    for name in ("class_logits", "boxes", "instance_mask_logits", "global_mask_logits", "exist_logits"):
        err = (ref[name] - out[name]).abs().max() / ref[name].abs().max()
        assert err <= 1e-5, f"{name}: relative error {err:.2e}"


@pytest.mark.filterwarnings("ignore")
def test_unknown_implementation_and_traced_plugin_ops_are_refused():
    with pytest.raises(ValueError, match="unknown op implementation 'cuda'"):
        with ops.use_ops("cuda"):
            pass
    with ops.use_ops("plugin"), pytest.raises(RuntimeError, match="eagerly only"):
        torch.jit.trace(lambda s: ops.select_points(s, 2, 0.003)[1], (torch.rand(1, 4, 4),))


def test_missing_library_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv(kernels.PLUGINS_ENV, str(tmp_path))
    monkeypatch.chdir(tmp_path)
    kernels.reset()
    try:
        with pytest.raises(kernels.KernelLibraryError, match=r"libinstancevg_plugins_host.so not found .*cmake -S plugins"):
            kernels.host_library()
        assert "not found" in kernels.available("cpu")
    finally:
        monkeypatch.undo()
        kernels.reset()
