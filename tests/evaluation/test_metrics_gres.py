"""GRES: the four cases of the official table, thresholds, guards, and a direct reference loop."""
import numpy as np
import pytest

from evaluation.metrics import GRESEvaluator
from .metric_factories import mask_target, no_target, pred, random_mask, rect_mask


def run(samples, **options):
    evaluator = GRESEvaluator(**options)
    for i, (p, t) in enumerate(samples):
        evaluator.process(i, p, t)
    return evaluator.evaluate()


GT = rect_mask(0, 0, 2, 5)  # 10 px
CASES = [
    (pred([[0, 0, 1, 1]], [0.6], rect_mask(8, 8, 9, 13)), no_target()),  # TP: IoU 1, adds 0/0
    (pred([[0, 0, 1, 1]], [0.8], rect_mask(8, 8, 9, 15)), no_target()),  # FN: IoU 0, U += 7
    (pred([[0, 0, 1, 1]], [0.5], rect_mask(0, 0, 2, 4)), mask_target(GT)),  # FP: I := 0, U = 10 (I 8)
    (pred([[0, 0, 1, 1]], [0.9], rect_mask(0, 1, 3, 4)), mask_target(GT)),  # TN: I 6, U 13
]


def test_case_table():
    result = run(CASES)
    assert result["gIoU"] == pytest.approx(100 * (1 + 0 + 0 + 6 / 13) / 4)
    assert result["cIoU"] == pytest.approx(100 * 6 / (0 + 7 + 10 + 13))
    assert result["N-acc"] == 50.0 and result["T-acc"] == 50.0
    assert result["Pr@0.7"] == 0.0
    assert (result["samples"], result["target_samples"], result["no_target_samples"]) == (4, 2, 2)


def test_score_exactly_0_7_is_not_selected():
    p = pred([[0, 0, 1, 1]], [0.7], GT.copy())
    assert run([(p, mask_target(GT))])["gIoU"] == 0.0  # pred_nt -> FP, I := 0
    assert run([(pred([[0, 0, 1, 1]], [0.7]), no_target())])["N-acc"] == 100.0  # not selected -> TP
    above = np.nextafter(np.float32(0.7), np.float32(1))
    assert run([(pred([[0, 0, 1, 1]], [above], GT.copy()), mask_target(GT))])["gIoU"] == 100.0


def test_perfect_and_empty_predictions():
    perfect = [(pred([[0, 0, 1, 1]], [0.9], GT.copy()), mask_target(GT)),
               (pred([[0, 0, 1, 1]], [0.1]), no_target())]
    assert run(perfect) == {"gIoU": 100.0, "cIoU": 100.0, "N-acc": 100.0, "T-acc": 100.0, "Pr@0.7": 100.0,
                            "Pr@0.8": 100.0, "Pr@0.9": 100.0, "samples": 2, "target_samples": 1,
                            "no_target_samples": 1}
    nothing = [(pred(), mask_target(GT)), (pred(), no_target())]
    assert run(nothing) == {"gIoU": 50.0, "cIoU": 0.0, "N-acc": 100.0, "T-acc": 0.0, "Pr@0.7": 0.0,
                            "Pr@0.8": 0.0, "Pr@0.9": 0.0, "samples": 2, "target_samples": 1,
                            "no_target_samples": 1}


def test_guards():
    # undefined metrics (empty denominators) are None, never 0; the counts say why
    only_empty = run([(pred(), no_target())])  # sum U = 0, no targeted samples
    assert only_empty["cIoU"] is None and only_empty["T-acc"] is None and only_empty["Pr@0.7"] is None
    assert only_empty["target_samples"] == 0 and only_empty["gIoU"] == 100.0 and only_empty["N-acc"] == 100.0
    only_targets = run([(pred([[0, 0, 1, 1]], [0.9], GT.copy()), mask_target(GT))])
    assert only_targets["N-acc"] is None and only_targets["no_target_samples"] == 0
    assert only_targets["T-acc"] == 100.0  # documented deviation: the official code reports 0
    assert run([])["gIoU"] is None and run([])["samples"] == 0


def test_mask_empty_rule():
    # the ReLA-like "empty mask" reading: a high score with an empty mask is a no-target prediction
    result = run([(pred([[0, 0, 1, 1]], [0.9]), no_target())], no_target_rule="mask_empty")
    assert result["N-acc"] == 100.0
    with pytest.raises(ValueError, match="no_target_rule"):
        GRESEvaluator(no_target_rule="argmax")


def reference_gres(samples, threshold=0.7):
    """Direct transcription of the official GRES protocol (evaluation/metrics/gres.py describes it), written independently of the evaluator."""
    accum_i = accum_u = accum_iou = 0.0
    tp = tn = fp = fn = 0
    targeted_ious = []
    for p, t in samples:
        pred_nt = not any(np.float32(s) > np.float32(threshold) for s in p.scores)
        inter = int((p.mask & t.mask).sum())
        union = int((p.mask | t.mask).sum())
        if t.empty:
            if pred_nt:
                tp += 1
                accum_iou += 1
            else:
                fn += 1
                accum_u += union
        else:
            if pred_nt:
                fp += 1
                inter = 0
            else:
                tn += 1
            iou = inter / union if union else 0.0
            accum_iou += iou
            accum_i += inter
            accum_u += union
            targeted_ious.append(iou)
    return {"gIoU": 100 * accum_iou / len(samples), "cIoU": 100 * accum_i / accum_u,
            "N-acc": 100 * tp / (tp + fn), "T-acc": 100 * tn / (tn + fp),
            **{f"Pr@{k}": 100 * np.mean([iou >= k for iou in targeted_ious]) for k in (0.7, 0.8, 0.9)}}


def test_against_reference_loop():
    rng = np.random.default_rng(6)
    samples = []
    for _ in range(80):
        scores = np.sort(rng.uniform(0.4, 0.9, 3))[::-1]
        boxes = np.tile([[0, 0, 4, 4]], (3, 1))
        if rng.random() < 0.3:
            samples.append((pred(boxes, scores, random_mask(rng, p=rng.uniform(0, 0.2))), no_target()))
        else:
            g = random_mask(rng, p=0.4)
            p = g.copy() if rng.random() < 0.3 else random_mask(rng, p=0.4)
            samples.append((pred(boxes, scores, p), mask_target(g)))
    result = run(samples)
    for key, value in reference_gres(samples).items():
        assert result[key] == pytest.approx(value, rel=1e-12), key
