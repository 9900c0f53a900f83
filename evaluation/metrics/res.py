"""RES on RefCOCO / RefCOCO+ / RefCOCOg: mIoU, oIoU and mask Pr@0.5..0.9 (official protocol).

Protocol (official InstanceVG ``accuracy``, masks at the evaluation resolution): per sample
I = |pred AND gt|, U = |pred OR gt|, IoU = I/U (0 when U = 0);
mIoU = 100 * mean IoU; oIoU = 100 * sum I / sum U; Pr@t = 100 * #(IoU >= t) / samples.
The predicted mask is the final output mask (``Prediction.mask``).

Guards: sum U = 0 -> oIoU None; no samples -> every metric None (undefined, not 0). IoUs are float64 ratios of integer counts,
accumulated in float64 (the official code averages in float32 on the GPU: last-digit differences).

Record per sample: {"I": int, "U": int}.
Result keys: "mIoU", "oIoU", "Pr@0.5" ... "Pr@0.9", "samples".
"""
from __future__ import annotations

from instancevg.structures import Prediction, Target

from .base import Evaluator, check_thresholds, masks_pair, pr_key
from .overlap import mask_intersection_union, percent, ratio

RES_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def iou_summary(records: list, thresholds) -> dict:
    """mIoU, oIoU and Pr@t (IoU >= t) of records {"I", "U"}; shared by RES and Ref-ZOM."""
    ious = [ratio(r["I"], r["U"]) for r in records]
    result = {
        "mIoU": percent(sum(ious), len(ious)),
        "oIoU": percent(sum(r["I"] for r in records), sum(r["U"] for r in records)),
    }
    for t in thresholds:
        result[pr_key(t)] = percent(sum(iou >= t for iou in ious), len(ious))
    return result


class RESEvaluator(Evaluator):
    """Mask IoU metrics. Options: ``iou_thresholds`` for Pr@K (default 0.5 ... 0.9)."""

    name = "res"
    record_fields = ("I", "U")

    def __init__(self, iou_thresholds=RES_THRESHOLDS) -> None:
        super().__init__()
        self.iou_thresholds = check_thresholds("iou_thresholds", iou_thresholds)

    def options(self) -> dict:
        return {"iou_thresholds": list(self.iou_thresholds)}

    def measure(self, sample_id, prediction: Prediction, target: Target) -> dict:
        pred, gt = masks_pair(sample_id, prediction, target)
        inter, union = mask_intersection_union(pred, gt)
        return {"I": inter, "U": union}

    def summarize(self, records: list) -> dict:
        result = iou_summary(records, self.iou_thresholds)
        result["samples"] = len(records)
        return result
