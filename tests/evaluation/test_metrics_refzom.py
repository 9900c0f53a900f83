"""Ref-ZOM: target samples for mIoU / oIoU / Pr@K, no-target samples for Acc only."""
import pytest

from evaluation.metrics import RefZOMEvaluator
from .metric_factories import empty_mask, mask_target, no_target, pred, rect_mask

GT = rect_mask(0, 0, 4, 4)  # 16 px
BOX = [[0, 0, 1, 1]]


def run(samples, **options):
    evaluator = RefZOMEvaluator(**options)
    for i, (p, t) in enumerate(samples):
        evaluator.process(i, p, t)
    return evaluator.evaluate()


def test_hand_cases():
    result = run([
        (pred(BOX, [0.9], GT.copy()), mask_target(GT)),  # IoU 1
        (pred(BOX, [0.2], rect_mask(0, 0, 4, 2)), mask_target(GT)),  # IoU 0.5, the score does not matter
        (pred(BOX, [0.7], rect_mask(9, 9, 15, 15)), no_target()),  # 0.7 is not > 0.7: correct
        (pred(BOX, [0.8], empty_mask()), no_target()),  # a score > 0.7: wrong, mask area irrelevant
    ])
    assert result == {"oIoU": pytest.approx(100 * 24 / 32), "mIoU": 75.0, "Acc": 50.0, "Pr@0.5": 100.0,
                      "Pr@0.6": 50.0, "Pr@0.7": 50.0, "Pr@0.8": 50.0, "Pr@0.9": 50.0, "samples": 4,
                      "target_samples": 2, "no_target_samples": 2}


def test_mask_empty_rule_of_ris_dmmi():
    samples = [(pred(BOX, [0.7], rect_mask(9, 9, 15, 15)), no_target()),
               (pred(BOX, [0.8], empty_mask()), no_target())]
    assert run(samples, no_target_rule="mask_empty")["Acc"] == 50.0
    assert run(samples[1:], no_target_rule="mask_empty")["Acc"] == 100.0


def test_guards():
    only_no_target = run([(pred(), no_target())])
    assert only_no_target["mIoU"] is only_no_target["oIoU"] is only_no_target["Pr@0.5"] is None
    assert only_no_target["Acc"] == 100.0 and only_no_target["target_samples"] == 0
    only_targets = run([(pred(BOX, [0.9], GT.copy()), mask_target(GT))])
    assert only_targets["Acc"] is None and only_targets["no_target_samples"] == 0 and only_targets["mIoU"] == 100.0
    assert run([(pred(), mask_target(empty_mask()))])["oIoU"] is None  # sum U = 0
