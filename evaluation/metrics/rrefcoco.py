"""R-RefCOCO / R-RefCOCO+ / R-RefCOCOg: mIoU, oIoU, mRR, rIoU per group (InstanceVG
``rrefcoco_evaluate``, after robust-ref-seg).

A group is one object with its positive sentences (targeted samples) and negative sentences (no-target
samples); its id is ``Target.group`` (the runner derives it from ``instance_index.json`` ranges or from
the original release's refs). Per group g:
- positives: I_g = sum I, U_g = sum U, IoU_g = mean over positives of I/U (0 when U = 0);
- negatives: a false positive (FP) when the prediction says "target" (rule "score": some score > thr_q,
  strict, float32 comparison), else a true negative (TN); r_g = TN / (TN + FP);
  rIoU_g = I_g / (U_g + predicted areas of the FP negatives).
mIoU = 100 * mean IoU_g; oIoU = 100 * sum I_g / sum U_g (without FP areas); mRR = 100 * mean r_g;
rIoU = 100 * mean rIoU_g. Means are over groups (objects), not sentences. A negative's predicted area
is its U (its GT mask is empty).

Guards (the official code crashes or yields NaN on all of these):
- a group without negatives has no r_g: it is left out of mRR (``groups_without_negatives="exclude"``,
  default) or counts r_g = 1 (``"count_as_one"``, the guard left commented out in the official code);
- a group without positives has no IoU_g / rIoU_g: it is left out of mIoU and rIoU (it adds nothing to
  oIoU) and still counts in mRR;
- a positive with U = 0 has IoU 0; U_g + FP areas = 0 -> rIoU_g 0 (per-sample / per-group guards);
- undefined metrics are None: sum U_g = 0 -> oIoU None; no group in a mean -> that metric None (mRR
  with every group lacking negatives under "exclude", mIoU / rIoU with no positives); ``groups``,
  ``groups_without_negatives`` and ``groups_without_positives`` say which.
Groups are aggregated in the order of their first sample; a group's samples need not be contiguous.
The official code's Pr@K for this protocol is buggy (running sum) and not returned; it is not computed.

Options: ``thr_q`` (0.7); ``no_target_rule`` ("score", official; "mask_empty", robust-ref-seg: a negative
is a false positive iff its predicted mask is non-empty); ``groups_without_negatives``.

Record per sample: {"group": int, "empty": bool, "pred_nt": bool, "I": int, "U": int}.
Result keys: "mIoU", "oIoU", "mRR", "rIoU", "samples", "groups", "positive_samples",
"negative_samples", "groups_without_negatives", "groups_without_positives".
"""
from __future__ import annotations

import numpy as np

from instancevg.structures import Prediction, Target

from .base import NO_TARGET_RULES, Evaluator, check_choice, masks_pair, predicts_no_target
from .overlap import mask_intersection_union, percent, ratio

GROUPS_WITHOUT_NEGATIVES = ("exclude", "count_as_one")


def group_records(records: list) -> dict[int, list]:
    """Records by group id, groups in the order of their first record."""
    groups: dict[int, list] = {}
    for record in records:
        groups.setdefault(record["group"], []).append(record)
    return groups


class RRefCOCOEvaluator(Evaluator):
    """Robust RES. Options: ``thr_q`` (0.7), ``no_target_rule`` ("score" | "mask_empty"),
    ``groups_without_negatives`` ("exclude" | "count_as_one")."""

    name = "rrefcoco"
    record_fields = ("group", "empty", "pred_nt", "I", "U")

    def __init__(self, thr_q: float = 0.7, no_target_rule: str = "score",
                 groups_without_negatives: str = "exclude") -> None:
        super().__init__()
        self.thr_q = float(thr_q)
        self.no_target_rule = check_choice("no_target_rule", no_target_rule, NO_TARGET_RULES)
        self.groups_without_negatives = check_choice("groups_without_negatives", groups_without_negatives,
                                                     GROUPS_WITHOUT_NEGATIVES)

    def options(self) -> dict:
        return {"thr_q": self.thr_q, "no_target_rule": self.no_target_rule,
                "groups_without_negatives": self.groups_without_negatives}

    def measure(self, sample_id, prediction: Prediction, target: Target) -> dict:
        group = target.group
        if group is None or isinstance(group, (bool, np.bool_)) or not isinstance(group, (int, np.integer)):
            raise ValueError(f"sample {sample_id!r}: R-RefCOCO needs an integer Target.group, got {group!r}")
        pred, gt = masks_pair(sample_id, prediction, target)
        pred_nt = predicts_no_target(sample_id, prediction, self.no_target_rule, self.thr_q, pred)
        inter, union = mask_intersection_union(pred, gt)
        return {"group": int(group), "empty": bool(target.empty), "pred_nt": pred_nt, "I": inter, "U": union}

    def summarize(self, records: list) -> dict:
        group_ious, group_rates, group_rious = [], [], []
        sum_inter = sum_union = 0
        without_negatives = without_positives = 0
        for members in group_records(records).values():
            positives = [r for r in members if not r["empty"]]
            negatives = [r for r in members if r["empty"]]
            inter = sum(r["I"] for r in positives)
            union = sum(r["U"] for r in positives)
            sum_inter += inter
            sum_union += union
            false_positives = [r for r in negatives if not r["pred_nt"]]
            if negatives:
                group_rates.append(ratio(len(negatives) - len(false_positives), len(negatives)))
            else:
                without_negatives += 1
                if self.groups_without_negatives == "count_as_one":
                    group_rates.append(1.0)
            if positives:
                group_ious.append(sum(ratio(r["I"], r["U"]) for r in positives) / len(positives))
                group_rious.append(ratio(inter, union + sum(r["U"] for r in false_positives)))
            else:
                without_positives += 1
        return {
            "mIoU": percent(sum(group_ious), len(group_ious)),
            "oIoU": percent(sum_inter, sum_union),
            "mRR": percent(sum(group_rates), len(group_rates)),
            "rIoU": percent(sum(group_rious), len(group_rious)),
            "samples": len(records),
            "groups": len(group_records(records)),
            "positive_samples": sum(not r["empty"] for r in records),
            "negative_samples": sum(bool(r["empty"]) for r in records),
            "groups_without_negatives": without_negatives,
            "groups_without_positives": without_positives,
        }
