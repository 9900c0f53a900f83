"""Post-processing: strict thr_q, output modes, box scaling/clipping, NMS, rescaling."""
import math

import numpy as np
import pytest
import torch

from instancevg.config import PostprocessConfig
from instancevg.postprocess import nms, postprocess, query_scores, rescale_prediction
from instancevg.structures import RawOutputs


def logits_for_probability(p: float) -> torch.Tensor:
    """Class logits [target, no-object] whose float32 softmax gives exactly float32(p)."""
    target = torch.tensor(p, dtype=torch.float32)
    d = math.log(p / (1 - p))
    for step in range(-200, 200):
        logits = torch.tensor([d + step * 1e-8, 0.0], dtype=torch.float32)
        if torch.softmax(logits, -1)[0] == target:
            return logits
    raise AssertionError("no exact logits found")


def make_raw(probs, boxes, inst, glob, exist_logit=50.0):
    n = len(probs)
    return RawOutputs(
        class_logits=torch.stack([logits_for_probability(p) for p in probs])[None],
        boxes=torch.tensor(boxes, dtype=torch.float32)[None], points=torch.full((1, n, 2), 0.5),
        instance_mask_logits=torch.tensor(np.array(inst), dtype=torch.float32)[None],
        global_mask_logits=torch.tensor(glob, dtype=torch.float32)[None, None],
        exist_logits=torch.tensor([[exist_logit, 0.0]]))


def masks_4x4(*cells):
    m = np.full((4, 4), -10.0)
    for r, c in cells:
        m[r, c] = 10.0
    return m


@pytest.fixture
def raw():
    # three queries: exactly 0.7 (must NOT be selected), 0.9 (selected), 0.2
    return make_raw([0.7, 0.9, 0.2], [[0.5, 0.5, 0.2, 0.2], [0.9, 0.1, 0.6, 0.4], [0.5, 0.5, 1.0, 1.0]],
                    [masks_4x4((0, 0)), masks_4x4((3, 3)), masks_4x4((1, 1))], masks_4x4((2, 2)))


def test_threshold_is_strict_and_queries_are_sorted(raw):
    scores = query_scores(raw.class_logits, raw.exist_logits, score_weighted=False)
    assert scores[0, 0].item() == np.float32(0.7)
    (p,) = postprocess(raw, PostprocessConfig(score_weighted=False), 4)
    assert p.query_index.tolist() == [1, 0, 2]
    assert p.selected.tolist() == [True, False, False]  # 0.7 is not > 0.7
    np.testing.assert_allclose(p.scores, [0.9, 0.7, 0.2], rtol=1e-6)


def test_output_modes(raw):
    # masks at 4x4 logits upsampled to 4x4 (identity): merge = global OR selected; instance; global
    merge, = postprocess(raw, PostprocessConfig(score_weighted=False), 4)
    glob, = postprocess(raw, PostprocessConfig(score_weighted=False, out_mask="global"), 4)
    inst, = postprocess(raw, PostprocessConfig(score_weighted=False, out_mask="instance"), 4)
    assert np.argwhere(merge.mask).tolist() == [[2, 2], [3, 3]]
    assert np.argwhere(glob.mask).tolist() == [[2, 2]]
    assert np.argwhere(inst.mask).tolist() == [[3, 3]]
    none, = postprocess(raw, PostprocessConfig(score_weighted=False, thr_q=0.95, out_mask="instance"), 4)
    assert not none.mask.any() and not none.selected.any()


def test_existence_weighting_uses_sigmoid_of_logit_0():
    raw = make_raw([0.9], [[0.5, 0.5, 0.5, 0.5]], [masks_4x4()], masks_4x4(), exist_logit=0.3)
    (p,) = postprocess(raw, PostprocessConfig(), 4)
    expected = 0.9 / (1 + math.exp(-0.3))  # a sigmoid of logit 0, not softmax([0.3, 0])
    assert p.scores[0] == pytest.approx(expected, rel=1e-6)
    assert p.exist_prob == pytest.approx(1 / (1 + math.exp(-0.3)), rel=1e-6)


def test_boxes_are_scaled_to_pixels_and_clipped(raw):
    (p,) = postprocess(raw, PostprocessConfig(score_weighted=False), 320)
    by_query = p.boxes[np.argsort(p.query_index)]
    np.testing.assert_allclose(by_query[0], [128, 128, 192, 192], atol=1e-4)
    np.testing.assert_allclose(by_query[1], [192, 0, 320, 96], atol=1e-4)  # x2 = 384 and y1 = -32 clipped
    np.testing.assert_allclose(by_query[2], [0, 0, 320, 320], atol=1e-4)
    assert p.instance_masks.shape == (3, 320, 320)


def test_masks_upsample_bilinearly_with_aligned_corners():
    inst = np.array([[[-1.0, 1.0], [-1.0, 1.0]]])
    raw = make_raw([0.9], [[0.5, 0.5, 0.5, 0.5]], inst, inst[0])
    (p,) = postprocess(raw, PostprocessConfig(score_weighted=False), 5)
    # align_corners=True: columns at -1, -0.5, 0, 0.5, 1 -> sigmoid >= 0.5 from the middle column on
    assert p.instance_masks[0][0].tolist() == [False, False, True, True, True]


def test_nms_suppresses_overlapping_queries():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30.0]])
    assert nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.7).tolist() == [0, 2]
    assert nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.9).tolist() == [0, 1, 2]
    raw = make_raw([0.9, 0.8], [[0.5, 0.5, 0.4, 0.4], [0.5, 0.5, 0.4, 0.4]], [masks_4x4((0, 0)), masks_4x4((1, 1))],
                   masks_4x4())
    (p,) = postprocess(raw, PostprocessConfig(score_weighted=False, nms=True), 4)
    assert p.query_index.tolist() == [0] and np.argwhere(p.mask).tolist() == [[0, 0]]


def test_config_validation():
    with pytest.raises(ValueError, match="out_mask must be"):
        PostprocessConfig(out_mask="union")
    with pytest.raises(ValueError, match=r"thr_q must lie in \[0, 1\]"):
        PostprocessConfig(thr_q=1.5)


def test_rescale_prediction_maps_back_to_the_original_size(raw):
    (p,) = postprocess(raw, PostprocessConfig(score_weighted=False), 4)
    r = rescale_prediction(p, 8, 12)
    assert r.mask.shape == (8, 12) and r.instance_masks.shape == (3, 8, 12)
    np.testing.assert_allclose(r.boxes[0], p.boxes[0] * [3, 2, 3, 2])
    assert r.mask[4:6, 6:9].all() and r.mask.sum() == 2 * 6  # two 2x3 cells
