"""REC on RefCOCO / RefCOCO+ / RefCOCOg: Pr@0.5..0.9 of the top-1 box (official protocol).

Protocol (official InstanceVG ``accuracy``): order the queries by score descending (ties: larger box
first, as the official ``sorted(zip(scores, boxes), reverse=True)``), take the first box, no score
threshold; IoU with the single GT box in continuous xyxy coordinates (no +1), float32 as mmdet's
``bbox_overlaps``; correct at t iff IoU >= t (float32 comparison). Pr@t = 100 * correct / samples.

Guards: a prediction with no boxes scores IoU 0 (the official code would crash); no samples -> every
Pr@t None (undefined).
The target must hold exactly one box (RefCOCO is single-target); anything else is an error.

Record per sample: {"iou": float} (the float32 IoU as a Python float).
Result keys: "Pr@0.5" ... "Pr@0.9" (or the configured thresholds), "samples".
"""
from __future__ import annotations

import numpy as np

from instancevg.structures import Prediction, Target

from .base import Evaluator, above, check_thresholds, official_order, pr_key, prediction_boxes, target_boxes
from .overlap import box_iou, percent

REC_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


class RECEvaluator(Evaluator):
    """Top-1 box accuracy. Options: ``iou_thresholds`` (default 0.5, 0.6, 0.7, 0.8, 0.9)."""

    name = "rec"
    record_fields = ("iou",)

    def __init__(self, iou_thresholds=REC_THRESHOLDS) -> None:
        super().__init__()
        self.iou_thresholds = check_thresholds("iou_thresholds", iou_thresholds)

    def options(self) -> dict:
        return {"iou_thresholds": list(self.iou_thresholds)}

    def measure(self, sample_id, prediction: Prediction, target: Target) -> dict:
        gt = target_boxes(sample_id, target)
        if len(gt) != 1:
            raise ValueError(f"sample {sample_id!r}: REC needs exactly one GT box, got {len(gt)}")
        boxes, scores = prediction_boxes(sample_id, prediction)
        if not len(boxes):
            return {"iou": 0.0}
        top = official_order(scores, boxes)[0]
        return {"iou": float(box_iou(gt, boxes[top:top + 1])[0, 0])}

    def summarize(self, records: list) -> dict:
        ious = np.array([r["iou"] for r in records], dtype=np.float32)
        result = {pr_key(t): percent(int(above(ious, t, inclusive=True).sum()), len(ious))
                  for t in self.iou_thresholds}
        result["samples"] = len(records)
        return result
