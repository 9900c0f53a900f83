"""Ref-ZOM: oIoU, mIoU and Pr@0.5..0.9 over targeted samples, Acc over no-target samples
(InstanceVG ``refzom_evaluate``, after RIS-DMMI).

Per targeted sample: I, U of the final predicted mask and the GT mask, IoU = I/U (0 if U = 0).
mIoU = 100 * mean IoU; oIoU = 100 * sum I / sum U; Pr@t = 100 * #(IoU >= t) / #targeted (>=).
Per no-target sample: correct iff the prediction says no-target; Acc = 100 * correct / #no-target.
No-target samples never enter mIoU / oIoU / Pr@t, targeted samples never enter Acc.

Options: ``thr_q`` (0.7); ``no_target_rule="score"`` (InstanceVG, default: correct iff no score > thr_q,
strict, float32 comparison) or ``"mask_empty"`` (RIS-DMMI's rule: correct iff the predicted mask is
empty); ``iou_thresholds`` (0.5 ... 0.9).

Guards: undefined metrics are None, with the counts that explain them (``target_samples``,
``no_target_samples``): no targeted samples -> mIoU, oIoU, Pr@t None (the official code gives NaN /
divides by zero); sum U = 0 -> oIoU None; no no-target samples -> Acc None (official: NaN).

Record per sample: {"empty": bool, "pred_nt": bool, "I": int, "U": int}.
Result keys: "oIoU", "mIoU", "Acc", "Pr@0.5" ... "Pr@0.9", "samples", "target_samples",
"no_target_samples".
"""
from __future__ import annotations

from .gres import GRESEvaluator
from .overlap import percent
from .res import RES_THRESHOLDS, iou_summary


class RefZOMEvaluator(GRESEvaluator):
    """Ref-ZOM. Options: ``thr_q`` (0.7), ``no_target_rule`` ("score" | "mask_empty"),
    ``iou_thresholds`` (0.5 ... 0.9). Per-sample records are those of GRES; only the summary differs."""

    name = "refzom"

    def __init__(self, thr_q: float = 0.7, no_target_rule: str = "score",
                 iou_thresholds=RES_THRESHOLDS) -> None:
        super().__init__(thr_q, no_target_rule, iou_thresholds)

    def summarize(self, records: list) -> dict:
        targeted = [r for r in records if not r["empty"]]
        no_target = [r for r in records if r["empty"]]
        iou_metrics = iou_summary(targeted, self.iou_thresholds)
        result = {"oIoU": iou_metrics.pop("oIoU"), "mIoU": iou_metrics.pop("mIoU"),
                  "Acc": percent(sum(r["pred_nt"] for r in no_target), len(no_target))}
        result.update(iou_metrics)  # Pr@t
        result.update(samples=len(records), target_samples=len(targeted), no_target_samples=len(no_target))
        return result
