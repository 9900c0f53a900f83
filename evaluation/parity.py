"""Backend parity: two backends on the same samples, their metrics, the deltas, per-sample agreement.

Agreement is measured query by query (both backends run the same network, so query k of one is query k
of the other): box IoU of each query's box, IoU of the final masks, identical selected points, identical
no-target decisions, largest score difference; the worst samples are listed by mask IoU.

Undefined metrics (None: an empty denominator, e.g. N-acc of a split without no-target samples) are
compared as such: undefined on both sides is agreement (no delta), undefined on one side only is a
disagreement that fails the comparison whatever the tolerance.

Tolerances are absolute metric deltas in percentage points, per precision of the candidate graph
(``DEFAULT_TOLERANCES``): FP32 graphs differ from PyTorch only in summation order, so a delta comes from a
score or mask logit lying within ~1e-6 of a threshold; on small splits one such sample moves a metric by
100 / N points, hence 0.5 rather than 0. FP16 graphs round activations to 11 bits (the selection path stays
FP32, so the points agree), which moves scores, boxes and mask borders by ~1e-3: 2 points. INT8 graphs round
the inputs of every INT8 layer to 8 bits (errors of a few percent of each output's range, and the selection
path's inputs move, so some points differ): 1 point, the INT8 deployment target. For both reduced
precisions at least one sample's worth (100 / N points on a split of N samples: a box whose IoU with the
target lies within rounding of 0.9 flips Pr@0.9, whatever the split's size). A tolerance given explicitly is
used as it is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import distributed
from .metrics.overlap import box_iou
from .runner import SplitResult, run_backends

DEFAULT_TOLERANCES = {"fp32": 0.5, "fp16": 2.0, "int8": 1.0}
_COUNT_KEYS = ("samples", "groups")


def is_rate(key: str, value) -> bool:
    """Whether a metric entry is a rate (float percentage, or None when undefined) rather than a count."""
    return (value is None or isinstance(value, float)) and key not in _COUNT_KEYS \
        and not key.endswith(("_samples", "_negatives", "_positives"))


def sample_agreement(a, b) -> dict:
    """Agreement of two Predictions of one sample (rows aligned by query index)."""
    ia, ib = np.argsort(a.query_index), np.argsort(b.query_index)
    # query k against query k; two empty boxes of the same query agree
    overlap = np.diagonal(box_iou(a.boxes[ia], b.boxes[ib])).copy()
    overlap[np.all(a.boxes[ia] == b.boxes[ib], axis=1)] = 1.0
    union = np.logical_or(a.mask, b.mask).sum()
    mask_iou = 1.0 if union == 0 else float(np.logical_and(a.mask, b.mask).sum() / union)
    return {"min_box_iou": float(overlap.min()), "mask_iou": mask_iou,
            "points_identical": bool(np.array_equal(a.points[ia], b.points[ib])),
            "no_target_identical": bool(a.selected.any() == b.selected.any()),
            "selection_identical": bool(np.array_equal(a.selected[ia], b.selected[ib])),
            "max_score_diff": float(np.abs(a.scores[ia] - b.scores[ib]).max())}


@dataclass
class ParityResult:
    candidate: SplitResult
    reference: SplitResult
    tolerance: float
    agreement: dict = field(default_factory=dict)
    worst: list = field(default_factory=list)

    def rates(self):
        """(suite, metric, reference value, candidate value) for every rate of the split (counts left out);
        a value is None where the metric is undefined."""
        for suite, values in self.reference.metrics.items():
            cand = self.candidate.metrics[suite]
            for k, ref in values.items():
                if is_rate(k, ref) and is_rate(k, cand.get(k)):
                    yield suite, k, ref, cand.get(k)

    @property
    def deltas(self) -> dict:
        """{suite: {metric: candidate - reference}} for every rate; None where either side is undefined."""
        out = {suite: {} for suite in self.reference.metrics}
        for suite, k, ref, cand in self.rates():
            out[suite][k] = None if ref is None or cand is None else float(cand) - float(ref)
        return out

    @property
    def undefined(self) -> dict:
        """{suite: {metric: "both" | "reference" | "candidate"}}: where each undefined metric is undefined."""
        out = {}
        for suite, k, ref, cand in self.rates():
            if ref is None or cand is None:
                side = "both" if ref is None and cand is None else "reference" if ref is None else "candidate"
                out.setdefault(suite, {})[k] = side
        return out

    def largest_delta(self) -> tuple[float, str | None, float | None]:
        """(|delta|, "suite metric", signed delta) of the largest metric delta of the split; a metric
        undefined on one side only counts as an infinite delta (signed delta None). (0.0, None, 0.0) when
        every rate is identical or undefined on both sides."""
        best = (0.0, None, 0.0)
        for suite, k, ref, cand in self.rates():
            if ref is None and cand is None:
                continue
            delta = None if ref is None or cand is None else float(cand) - float(ref)
            size = math.inf if delta is None else abs(delta)
            if size > best[0]:
                best = (size, f"{suite} {k}", delta)
        return best

    @property
    def disagreeing_samples(self) -> list:
        """Ids of the worst samples that disagree at all (mask, selection, points or no-target decision)."""
        return [w["sample_id"] for w in self.worst
                if w["mask_iou"] < 1.0 or not (w["selection_identical"] and w["points_identical"])]

    @property
    def violations(self) -> list[str]:
        where = f"{self.candidate.benchmark}/{self.candidate.split}"
        samples = self.disagreeing_samples
        named = f" (disagreeing samples: {', '.join(map(repr, samples))})" if samples else ""
        out = []
        for suite, k, ref, cand in self.rates():
            if ref is None and cand is None:
                continue
            if ref is None or cand is None:
                side, value = ("reference", cand) if ref is None else ("candidate", ref)
                out.append(f"{where} {suite} {k}: undefined in the {side} only (the other gives {value:.2f}){named}")
            elif abs(float(cand) - float(ref)) > self.tolerance:
                out.append(f"{where} {suite} {k}: delta {float(cand) - float(ref):+.3f} exceeds {self.tolerance}{named}")
        return out

    def to_json(self) -> dict:
        return {"benchmark": self.candidate.benchmark, "split": self.candidate.split,
                "samples": self.candidate.samples, "tolerance": self.tolerance,
                "candidate": self.candidate.to_json(), "reference": self.reference.to_json(),
                "deltas": self.deltas, "undefined": self.undefined, "agreement": self.agreement, "worst_samples": self.worst,
                "passed": not self.violations, "violations": self.violations}


def default_tolerance(precision: str, samples: int) -> float:
    """The default tolerance in points for a candidate of ``precision`` on a split of ``samples`` samples:
    DEFAULT_TOLERANCES, and for reduced precisions at least one sample's worth (100 / samples)."""
    base = DEFAULT_TOLERANCES.get(precision, DEFAULT_TOLERANCES["fp32"])
    if precision == "fp32" or samples == 0:
        return base
    return max(base, math.ceil(1e5 / samples) / 1e3)  # rounded up: one sample's delta never exceeds it


def compare_split(candidate, reference, dataset, metrics, tolerance: float | None = None, batch_size: int = 8,
                  workers: int = 0, progress: bool = False, max_samples: int | None = None,
                  worst: int = 10) -> ParityResult:
    """Run ``candidate`` and ``reference`` on the same batches of ``dataset`` and compare them."""
    precision = candidate.describe().get("precision") or "fp32"
    records = []

    def on_batch(sample_ids, preds, raws):
        records.extend((sid, sample_agreement(a, b)) for sid, a, b in zip(sample_ids, preds[0], preds[1]))

    cand, ref = run_backends([candidate, reference], dataset, metrics, batch_size, workers, progress,
                             max_samples=max_samples, on_batch=on_batch)
    records = [r for part in distributed.gather(records) for r in part]
    n = len(records)
    if tolerance is None:
        tolerance = default_tolerance(precision, n)
    summary = {
        "samples": n,
        "mean_min_box_iou": float(np.mean([r["min_box_iou"] for _, r in records])),
        "min_box_iou": float(min(r["min_box_iou"] for _, r in records)),
        "mean_mask_iou": float(np.mean([r["mask_iou"] for _, r in records])),
        "min_mask_iou": float(min(r["mask_iou"] for _, r in records)),
        "points_identical": sum(r["points_identical"] for _, r in records) / n,
        "no_target_identical": sum(r["no_target_identical"] for _, r in records) / n,
        "selection_identical": sum(r["selection_identical"] for _, r in records) / n,
        "max_score_diff": float(max(r["max_score_diff"] for _, r in records)),
    }
    ranked = sorted(records, key=lambda r: (r[1]["mask_iou"], r[1]["min_box_iou"], -r[1]["max_score_diff"]))
    return ParityResult(cand, ref, float(tolerance), summary,
                        [{"sample_id": sid, **r} for sid, r in ranked[:worst]])

