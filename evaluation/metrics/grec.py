"""GREC on gRefCOCO: F1score, N-acc, T-acc (gRefCOCO/MDETR ``RefExpEvaluator``,
InstanceVG ``grec_evaluate_f1_nacc``).

Per sample:
1. Keep the predicted boxes with score >= ``score_threshold`` (0.7), in the official order (score
   descending, ties by descending box). Scores are compared in float32, see the note below.
2. No-target GT (``target.empty``): 0 kept boxes -> F1 = 1 and a no-target TP; otherwise F1 = 0 and a
   no-target FN.
3. Targeted GT: >= 1 kept box -> no-target TN, none -> no-target FP. Then greedy matching on the
   [kept, GT] overlap matrix (GIoU by default): repeat min(#kept, #GT) times: take the global maximum
   (ties: first in row-major order); stop if it is < ``match_threshold`` (0.5); else one more match, and
   its row and column are used up. TP = matches, FP = #kept - TP, FN = #GT - TP,
   F1 = 2TP / (2TP + FP + FN).
4. The sample is correct iff F1 >= 1 (every GT matched, no extra box).
F1score = 100 * correct / samples; N-acc = 100 * TP/(TP+FN) over no-target samples;
T-acc = 100 * TN/(TN+FP) over targeted samples ("TP/TN" in the no-target sense of the official code).

Options (published variants):
- ``matching="giou"`` (official code, default) or ``"iou"`` (what the GREC paper text says; gRefCOCO
  issue #9). Box pair [0,0,10,10] / [1.8,1.8,11.8,11.8]: IoU 0.5065 (matched), GIoU 0.4599 (not).
- ``score_comparison=">="`` (official gRefCOCO, SimVG, InstanceVG, default) or ``">"`` (PropVG).

Note on "a score of exactly 0.7": scores are float32. We compare them with float32(threshold), as torch
does, so a float32 score equal to float32(0.7) is kept by ">=". The official GREC code happens to compare
in float64 (``numpy.array(scores.tolist()) >= 0.7``), where float32(0.7) = 0.69999998807907 is dropped.
The two rules differ only for that single float32 value.

Guards: a prediction with no boxes at all counts as 0 kept boxes (the official code crashes). Undefined
metrics are None (the official code divides by zero): N-acc with no no-target samples, T-acc with no
targeted samples, every metric with no samples; ``no_target_samples`` / ``target_samples`` say which.

Record per sample: {"empty": bool, "kept": int, "gt": int, "matched": int}.
Result keys: "F1score", "N-acc", "T-acc", "samples", "target_samples", "no_target_samples".
"""
from __future__ import annotations

import numpy as np

from instancevg.structures import Prediction, Target

from .base import Evaluator, above, check_choice, official_order, prediction_boxes, target_boxes
from .overlap import BOX_OVERLAPS, percent


def greedy_match_count(overlaps: np.ndarray, threshold: float) -> int:
    """Number of one-to-one matches of the official greedy rule on overlaps [P,G] (P kept, G GT).

    Repeats min(P, G) times: the global maximum (first in row-major order on ties) must be >= threshold
    (float32 comparison); its row and column are then excluded.
    """
    overlaps = np.array(overlaps, dtype=np.float32)
    if overlaps.size == 0:
        return 0
    threshold = np.float32(threshold)
    matched = 0
    for _ in range(min(overlaps.shape)):
        flat = int(np.argmax(overlaps))
        if overlaps.flat[flat] < threshold:
            break
        row, col = divmod(flat, overlaps.shape[1])
        matched += 1
        # The official code zeroes the row and column; -inf gives the same count for any threshold
        # > 0 and cannot re-match a used box when someone sets a threshold <= 0.
        overlaps[row, :] = -np.inf
        overlaps[:, col] = -np.inf
    return matched


def f1_of_record(record: dict) -> float:
    """The per-sample F1 of a GREC record (no-target: 1 iff nothing kept)."""
    if record["empty"]:
        return 1.0 if record["kept"] == 0 else 0.0
    tp = record["matched"]
    fp, fn = record["kept"] - tp, record["gt"] - tp
    return 2.0 * tp / (2 * tp + fp + fn)


class GRECEvaluator(Evaluator):
    """Generalized REC. Options: ``score_threshold`` (0.7), ``score_comparison`` (">=" | ">"),
    ``matching`` ("giou" | "iou"), ``match_threshold`` (0.5)."""

    name = "grec"
    record_fields = ("empty", "kept", "gt", "matched")

    def __init__(self, score_threshold: float = 0.7, score_comparison: str = ">=", matching: str = "giou",
                 match_threshold: float = 0.5) -> None:
        super().__init__()
        self.score_threshold = float(score_threshold)
        self.score_comparison = check_choice("score_comparison", score_comparison, (">=", ">"))
        self.matching = check_choice("matching", matching, tuple(BOX_OVERLAPS))
        self.match_threshold = float(match_threshold)

    def options(self) -> dict:
        return {"score_threshold": self.score_threshold, "score_comparison": self.score_comparison,
                "matching": self.matching, "match_threshold": self.match_threshold}

    def measure(self, sample_id, prediction: Prediction, target: Target) -> dict:
        gt = target_boxes(sample_id, target)
        boxes, scores = prediction_boxes(sample_id, prediction)
        order = official_order(scores, boxes)
        keep = above(scores[order], self.score_threshold, inclusive=self.score_comparison == ">=")
        kept = boxes[order][keep]
        matched = 0
        if not target.empty and len(kept):
            overlaps = BOX_OVERLAPS[self.matching](kept, gt)
            matched = greedy_match_count(overlaps, self.match_threshold)
        return {"empty": bool(target.empty), "kept": int(len(kept)), "gt": int(len(gt)), "matched": matched}

    def summarize(self, records: list) -> dict:
        correct = sum(f1_of_record(r) >= 1.0 for r in records)
        no_target = [r for r in records if r["empty"]]
        targeted = [r for r in records if not r["empty"]]
        nt_tp = sum(r["kept"] == 0 for r in no_target)
        nt_tn = sum(r["kept"] > 0 for r in targeted)
        return {
            "F1score": percent(correct, len(records)),
            "N-acc": percent(nt_tp, len(no_target)),
            "T-acc": percent(nt_tn, len(targeted)),
            "samples": len(records),
            "target_samples": len(targeted),
            "no_target_samples": len(no_target),
        }
