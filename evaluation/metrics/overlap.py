"""Box and mask overlap: the one implementation every evaluator uses.

Boxes are xyxy pixels. Box overlaps are ``instancevg.boxes`` (the one implementation of box geometry) on
float32 numpy arrays (no torch needed to score): the operation order of the official code (mmdet ``bbox_overlaps`` for REC,
DETR/MDETR ``generalized_box_iou`` for GREC), so values compared with a threshold agree with the official
ones bit for bit in ordinary cases.

Divisions the official code leaves unguarded are guarded here:
- box IoU with union 0 (two zero-area boxes) -> 0 (mmdet clamps the union to 1e-6, which also gives 0);
- GIoU with enclosing area 0 (both boxes collapse onto one point or segment) -> the IoU term alone, 0;
- mask IoU with U = 0 (empty prediction and empty ground truth) -> 0, as the official protocols state for
  every one; the protocols that score an empty/empty pair as correct do so in their own case tables.

Aggregated metrics (``percent``) with an empty denominator are undefined: None (JSON null, "n/a" in
tables), never 0, with the sample counts that explain it next to them in every result.
"""
from __future__ import annotations

import numpy as np

from instancevg import boxes


def _as_boxes(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float32).reshape(-1, 4)


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Pairwise IoU [N,M] float32 of boxes1 [N,4] and boxes2 [M,4] (xyxy, no +1); 0 where union is 0."""
    return boxes.box_iou(_as_boxes(boxes1), _as_boxes(boxes2))[0]


def generalized_box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """Pairwise GIoU [N,M] float32: IoU - (C - union) / C, C = area of the smallest enclosing box.

    Where C = 0 the penalty term is taken as 0 (the official code would produce NaN there).
    """
    return boxes.generalized_box_iou(_as_boxes(boxes1), _as_boxes(boxes2))


BOX_OVERLAPS = {"iou": box_iou, "giou": generalized_box_iou}


def mask_intersection_union(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """I = |pred AND gt| and U = |pred OR gt| (pixel counts, Python ints) of two bool masks [H,W]."""
    return (int(np.count_nonzero(np.logical_and(pred, gt))),
            int(np.count_nonzero(np.logical_or(pred, gt))))


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator as a float, 0.0 when the denominator is 0: the per-sample guard (mask IoU
    with U = 0) that every protocol documents; aggregated metrics use ``percent``."""
    return float(numerator) / float(denominator) if denominator else 0.0


def percent(numerator: float, denominator: float) -> float | None:
    """100 * numerator / denominator: a reported metric. None when the denominator is 0: a rate over no
    sample (N-acc of a split without no-target samples, a mean over no group) is undefined, not 0; reports
    print it as "n/a" (JSON null) next to the counts that explain it."""
    return 100.0 * float(numerator) / float(denominator) if denominator else None
