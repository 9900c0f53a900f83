"""Box IoU / GIoU and mask I/U against direct loops and pycocotools."""
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from evaluation.metrics.overlap import box_iou, generalized_box_iou, mask_intersection_union, percent, ratio


def loop_iou_giou(a, b):
    """Textbook IoU and GIoU of two xyxy boxes in float64."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    iou = inter / union if union > 0 else 0.0
    enclosing = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    giou = iou - (enclosing - union) / enclosing if enclosing > 0 else iou
    return iou, giou


def test_regression_pair_iou_vs_giou():
    a, b = [[0, 0, 10, 10]], [[1.8, 1.8, 11.8, 11.8]]
    assert box_iou(a, b)[0, 0] == pytest.approx(67.24 / 132.76, abs=1e-6)
    assert generalized_box_iou(a, b)[0, 0] == pytest.approx(67.24 / 132.76 - 6.48 / 139.24, abs=1e-6)
    assert round(float(box_iou(a, b)[0, 0]), 4) == 0.5065
    assert round(float(generalized_box_iou(a, b)[0, 0]), 4) == 0.4599


def test_pairwise_against_loops():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (12, 2))
    wh = rng.uniform(0, 30, (12, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    boxes[3] = boxes[4]  # identical pair
    boxes[5, 2:] = boxes[5, :2]  # zero-area box
    b1, b2 = boxes[:7], boxes[7:]
    iou, giou = box_iou(b1, b2), generalized_box_iou(b1, b2)
    assert iou.shape == giou.shape == (7, 5) and iou.dtype == np.float32
    for i in range(7):
        for j in range(5):
            ref_iou, ref_giou = loop_iou_giou(b1[i].astype(float), b2[j].astype(float))
            assert iou[i, j] == pytest.approx(ref_iou, abs=1e-5)
            assert giou[i, j] == pytest.approx(ref_giou, abs=1e-5)
    assert (giou <= iou + 1e-6).all()


def test_degenerate_boxes_are_guarded():
    point = [[3, 3, 3, 3]]
    assert box_iou(point, point)[0, 0] == 0.0
    assert generalized_box_iou(point, point)[0, 0] == 0.0
    line = [[0, 5, 10, 5]]
    assert np.isfinite(generalized_box_iou(line, line)).all()
    assert box_iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def test_mask_iou_agrees_with_pycocotools():
    rng = np.random.default_rng(1)
    for _ in range(20):
        shape = tuple(rng.integers(5, 40, 2))
        pred, gt = rng.random(shape) < rng.uniform(0.05, 0.9), rng.random(shape) < rng.uniform(0.05, 0.9)
        pred[0, 0] = gt[-1, -1] = True  # non-empty: pycocotools gives 0 for empty vs empty
        inter, union = mask_intersection_union(pred, gt)
        rles = [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in (pred, gt)]
        coco_iou = mask_utils.iou([rles[0]], [rles[1]], [0])[0, 0]
        assert inter / union == pytest.approx(coco_iou, rel=1e-12)
        assert union == mask_utils.area(rles[0]) + mask_utils.area(rles[1]) - inter


def test_mask_iou_empty_and_guards():
    empty = np.zeros((4, 4), bool)
    assert mask_intersection_union(empty, empty) == (0, 0)
    assert ratio(0, 0) == 0.0 and percent(3, 0) is None and percent(1, 4) == 25.0
