"""Backend parity: two backends on the same samples, their metrics, the deltas, per-sample agreement.

Agreement is measured query by query (both backends run the same network, so query k of one is query k
of the other): box IoU of each query's box, IoU of the final masks, identical selected points, identical
no-target decisions, largest score difference; the worst samples are listed by mask IoU.

Tolerances are absolute metric deltas in percentage points, per precision of the candidate graph
(``DEFAULT_TOLERANCES``): FP32 graphs differ from PyTorch only in summation order, so a delta comes from a
score or mask logit lying within ~1e-6 of a threshold; on small splits one such sample moves a metric by
100 / N points, hence 0.5 rather than 0. FP16 graphs round activations to 11 bits (the selection path stays
FP32, so the points agree), which moves scores and mask borders by ~1e-3: 2 points. INT8 graphs round the
inputs of every INT8 layer to 8 bits (errors of a few percent of each output's range, and the selection
path's inputs move, so some points differ): 1 point, the INT8 deployment target.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np

from . import distributed
from .runner import SplitResult, run_backends

DEFAULT_TOLERANCES = {"fp32": 0.5, "fp16": 2.0, "int8": 1.0}
_COUNT_KEYS = ("samples", "groups")


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of [N,4] xyxy boxes; 1 where both boxes are empty."""
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 1.0)


def sample_agreement(a, b) -> dict:
    """Agreement of two Predictions of one sample (rows aligned by query index)."""
    ia, ib = np.argsort(a.query_index), np.argsort(b.query_index)
    box_iou = _box_iou(a.boxes[ia].astype(np.float64), b.boxes[ib].astype(np.float64))
    union = np.logical_or(a.mask, b.mask).sum()
    mask_iou = 1.0 if union == 0 else float(np.logical_and(a.mask, b.mask).sum() / union)
    return {"min_box_iou": float(box_iou.min()), "mask_iou": mask_iou,
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

    @property
    def deltas(self) -> dict:
        """{suite: {metric: candidate - reference}} for every rate (counts left out)."""
        out = {}
        for suite, values in self.candidate.metrics.items():
            ref = self.reference.metrics[suite]
            out[suite] = {k: float(v) - float(ref[k]) for k, v in values.items()
                          if isinstance(v, float) and k not in _COUNT_KEYS and not k.endswith(("_samples", "_negatives", "_positives"))}
        return out

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
        return [f"{where} {suite} {k}: delta {d:+.3f} exceeds {self.tolerance}{named}"
                for suite, values in self.deltas.items() for k, d in values.items() if abs(d) > self.tolerance]

    def to_json(self) -> dict:
        return {"benchmark": self.candidate.benchmark, "split": self.candidate.split,
                "samples": self.candidate.samples, "tolerance": self.tolerance,
                "candidate": self.candidate.to_json(), "reference": self.reference.to_json(),
                "deltas": self.deltas, "agreement": self.agreement, "worst_samples": self.worst,
                "passed": not self.violations, "violations": self.violations}


def compare_split(candidate, reference, dataset, metrics, tolerance: float | None = None, batch_size: int = 8,
                  workers: int = 0, progress: bool = False, max_samples: int | None = None,
                  worst: int = 10) -> ParityResult:
    """Run ``candidate`` and ``reference`` on the same batches of ``dataset`` and compare them."""
    if tolerance is None:
        precision = candidate.describe().get("precision") or "fp32"
        tolerance = DEFAULT_TOLERANCES.get(precision, DEFAULT_TOLERANCES["fp32"])
    records = []

    def on_batch(sample_ids, preds, raws):
        records.extend((sid, sample_agreement(a, b)) for sid, a, b in zip(sample_ids, preds[0], preds[1]))

    cand, ref = run_backends([candidate, reference], dataset, metrics, batch_size, workers, progress,
                             max_samples=max_samples, on_batch=on_batch)
    records = [r for part in distributed.gather(records) for r in part]
    n = len(records)
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


def markdown_summary(results: list[ParityResult]) -> str:
    lines = ["| benchmark/split | metric | candidate | reference | delta | tolerance |", "|---|---|---|---|---|---|"]
    for r in results:
        for suite, values in r.deltas.items():
            for k, d in values.items():
                mark = " **!**" if abs(d) > r.tolerance else ""
                lines.append(f"| {r.candidate.benchmark}/{r.candidate.split} | {suite} {k} | "
                             f"{r.candidate.metrics[suite][k]:.2f} | {r.reference.metrics[suite][k]:.2f} | "
                             f"{d:+.3f}{mark} | {r.tolerance} |")
    lines += ["", "| benchmark/split | samples | mean mask IoU | min box IoU | points identical | no-target identical |",
              "|---|---|---|---|---|---|"]
    for r in results:
        a = r.agreement
        lines.append(f"| {r.candidate.benchmark}/{r.candidate.split} | {a['samples']} | {a['mean_mask_iou']:.4f} | "
                     f"{a['min_box_iou']:.4f} | {100 * a['points_identical']:.1f}% | {100 * a['no_target_identical']:.1f}% |")
    worst = [(r, w) for r in results for w in r.worst if w["sample_id"] in r.disagreeing_samples]
    if worst:
        lines += ["", "| benchmark/split | sample | mask IoU | min box IoU | selection identical | points identical |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r.candidate.benchmark}/{r.candidate.split} | {w['sample_id']!r} | {w['mask_iou']:.4f} | "
                  f"{w['min_box_iou']:.4f} | {w['selection_identical']} | {w['points_identical']} |" for r, w in worst]
    return "\n".join(lines) + "\n"


def html_summary(results: list[ParityResult], title: str) -> str:
    """A standalone page: one bar per metric delta (scaled to the tolerance), then the Markdown tables."""
    rows = []
    for r in results:
        for suite, values in r.deltas.items():
            for k, d in values.items():
                width = min(abs(d) / r.tolerance, 2.0) * 100 if r.tolerance else 0
                colour = "#c0392b" if abs(d) > r.tolerance else "#2e86c1"
                side = "left" if d < 0 else "right"
                rows.append(f"<tr><td>{html.escape(r.candidate.benchmark)}/{html.escape(r.candidate.split)}</td>"
                            f"<td>{html.escape(suite)} {html.escape(k)}</td><td class=num>{d:+.3f}</td>"
                            f"<td><div class=axis><div class=bar style='{side}:50%;width:{width / 4:.1f}%;"
                            f"background:{colour}'></div></div></td></tr>")
    return ("<!doctype html><meta charset=utf-8><title>" + html.escape(title) + "</title><style>"
            "body{font-family:sans-serif;margin:2em}td{padding:2px 8px}.num{text-align:right;font-family:monospace}"
            ".axis{position:relative;width:400px;height:12px;background:linear-gradient(90deg,transparent 49.8%,#888 49.8%,"
            "#888 50.2%,transparent 50.2%)}.bar{position:absolute;height:12px}</style>"
            f"<h1>{html.escape(title)}</h1><p>Metric deltas (candidate - reference, percentage points); the full "
            "width of a half-axis is twice the tolerance, red bars exceed it.</p><table>" + "".join(rows) + "</table>"
            "<pre>" + html.escape(markdown_summary(results)) + "</pre>")
