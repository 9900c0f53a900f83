"""GRES on gRefCOCO: gIoU, cIoU, N-acc, T-acc, Pr@0.7/0.8/0.9 (InstanceVG
``gres_evaluate``, which follows ReLA's ``ReferEvaluator`` case table).

Per sample: pred_nt = no score > ``thr_q`` (0.7, strict, float32 comparison); I, U of the final
predicted mask and the GT union mask.

| GT        | pred_nt | counter (no-target sense) | IoU added to gIoU | added to sum I / sum U |
|-----------|---------|---------------------------|-------------------|------------------------|
| no-target | True    | TP                        | 1                 | 0 / 0                  |
| no-target | False   | FN                        | 0                 | 0 / U (= predicted area) |
| target    | True    | FP                        | 0 (I := 0)        | 0 / U (U keeps the predicted mask) |
| target    | False   | TN                        | I/U (0 if U = 0)  | I / U                  |

gIoU = 100 * mean IoU over ALL samples; cIoU = 100 * sum I / sum U; N-acc = 100 * TP/(TP+FN);
T-acc = 100 * TN/(TN+FP); Pr@t = 100 * #(IoU >= t) / #targeted samples (targeted samples only).

Options: ``thr_q`` (0.7); ``no_target_rule="score"`` (official) or ``"mask_empty"`` (no-target iff the
predicted mask is empty); ``iou_thresholds`` (0.7, 0.8, 0.9).

Guards and deviations (each one only changes what the official code would crash on or report as 0):
- Undefined metrics are None (an empty denominator; the counts in the result say which): sum U = 0 ->
  cIoU None; no samples -> gIoU None; no targeted samples -> Pr@t and T-acc None; no no-target samples
  -> N-acc None. The official code divides by zero there (NaN / inf).
- The official code reports T-acc = N-acc = 0 for a split without no-target samples, even when T-acc is
  defined; here T-acc = TN/(TN+FP) whenever targeted samples exist and N-acc is None. gRefCOCO's
  val/testA/testB all have no-target samples, so published numbers are unaffected.

Record per sample: {"empty": bool, "pred_nt": bool, "I": int, "U": int} (I, U of the masks as measured,
before the table's I := 0 rule, which ``summarize`` applies).
Result keys: "gIoU", "cIoU", "N-acc", "T-acc", "Pr@0.7", "Pr@0.8", "Pr@0.9", "samples",
"target_samples", "no_target_samples".
"""
from __future__ import annotations

from instancevg.structures import Prediction, Target

from .base import (NO_TARGET_RULES, Evaluator, check_choice, check_thresholds, masks_pair, pr_key,
                   predicts_no_target)
from .overlap import mask_intersection_union, percent, ratio

GRES_THRESHOLDS = (0.7, 0.8, 0.9)


def gres_contribution(record: dict) -> tuple[float, int, int]:
    """(IoU for gIoU, I for cIoU, U for cIoU) of one record, following the case table."""
    if record["empty"]:
        return (1.0, 0, 0) if record["pred_nt"] else (0.0, 0, record["U"])
    inter = 0 if record["pred_nt"] else record["I"]
    return ratio(inter, record["U"]), inter, record["U"]


class GRESEvaluator(Evaluator):
    """Generalized RES. Options: ``thr_q`` (0.7), ``no_target_rule`` ("score" | "mask_empty"),
    ``iou_thresholds`` (0.7, 0.8, 0.9)."""

    name = "gres"
    record_fields = ("empty", "pred_nt", "I", "U")

    def __init__(self, thr_q: float = 0.7, no_target_rule: str = "score",
                 iou_thresholds=GRES_THRESHOLDS) -> None:
        super().__init__()
        self.thr_q = float(thr_q)
        self.no_target_rule = check_choice("no_target_rule", no_target_rule, NO_TARGET_RULES)
        self.iou_thresholds = check_thresholds("iou_thresholds", iou_thresholds)

    def options(self) -> dict:
        return {"thr_q": self.thr_q, "no_target_rule": self.no_target_rule,
                "iou_thresholds": list(self.iou_thresholds)}

    def measure(self, sample_id, prediction: Prediction, target: Target) -> dict:
        pred, gt = masks_pair(sample_id, prediction, target)
        pred_nt = predicts_no_target(sample_id, prediction, self.no_target_rule, self.thr_q, pred)
        inter, union = mask_intersection_union(pred, gt)
        return {"empty": bool(target.empty), "pred_nt": pred_nt, "I": inter, "U": union}

    def summarize(self, records: list) -> dict:
        ious, inters, unions = [], [], []
        for record in records:
            iou, inter, union = gres_contribution(record)
            ious.append(iou)
            inters.append(inter)
            unions.append(union)
        targeted = [iou for iou, r in zip(ious, records) if not r["empty"]]
        no_target = [r for r in records if r["empty"]]
        result = {
            "gIoU": percent(sum(ious), len(ious)),
            "cIoU": percent(sum(inters), sum(unions)),
            "N-acc": percent(sum(r["pred_nt"] for r in no_target), len(no_target)),
            "T-acc": percent(sum(not r["pred_nt"] for r in records if not r["empty"]), len(targeted)),
        }
        for t in self.iou_thresholds:
            result[pr_key(t)] = percent(sum(iou >= t for iou in targeted), len(targeted))
        result.update(samples=len(records), target_samples=len(targeted), no_target_samples=len(no_target))
        return result
