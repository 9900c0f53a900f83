"""GREC: F1score / N-acc / T-acc, thresholds, GIoU vs IoU matching, greedy matching."""
import numpy as np
import pytest

from evaluation.metrics import GRECEvaluator, build_evaluator
from evaluation.metrics.grec import greedy_match_count
from .metric_factories import no_target, pred, target

A, B = [0, 0, 10, 10], [1.8, 1.8, 11.8, 11.8]  # IoU 0.5065, GIoU 0.4599
C = [20, 20, 30, 30]


def run(samples, **options):
    evaluator = GRECEvaluator(**options)
    for i, (p, t) in enumerate(samples):
        evaluator.process(i, p, t)
    return evaluator.evaluate()


def test_no_target_samples():
    result = run([(pred([A], [0.69]), no_target()),  # nothing kept -> F1 1, N-TP
                  (pred([A], [0.71]), no_target()),  # kept -> F1 0, N-FN
                  (pred(), no_target())])  # no box at all (official code would crash) -> F1 1
    assert result == {"F1score": pytest.approx(200 / 3), "N-acc": pytest.approx(200 / 3), "T-acc": None,
                      "samples": 3, "target_samples": 0, "no_target_samples": 3}


def test_score_exactly_threshold_is_kept():
    just_below = np.nextafter(np.float32(0.7), np.float32(0))
    assert run([(pred([A], [0.7]), target([A]))])["F1score"] == 100.0
    assert run([(pred([A], [just_below]), target([A]))])["F1score"] == 0.0
    assert run([(pred([A], [0.7]), no_target())])["N-acc"] == 0.0
    # PropVG's strict variant drops it
    assert run([(pred([A], [0.7]), target([A]))], score_comparison=">")["F1score"] == 0.0


def test_two_predictions_on_one_target_is_not_correct():
    evaluator = GRECEvaluator()
    evaluator.process(0, pred([A, A], [0.9, 0.8]), target([A]))
    (_, record), = evaluator.records()
    assert record == {"empty": False, "kept": 2, "gt": 1, "matched": 1}
    from evaluation.metrics.grec import f1_of_record
    assert f1_of_record(record) == pytest.approx(2 / 3)
    assert evaluator.evaluate()["F1score"] == 0.0 and evaluator.evaluate()["T-acc"] == 100.0
    # no no-target sample: N-acc is undefined (None, with the count), not 0 as the official code divides
    assert evaluator.evaluate()["N-acc"] is None and evaluator.evaluate()["no_target_samples"] == 0


def test_giou_vs_iou_regression_pair():
    assert run([(pred([B], [0.9]), target([A]))])["F1score"] == 0.0
    assert run([(pred([B], [0.9]), target([A]))], matching="iou")["F1score"] == 100.0
    assert build_evaluator("grec", matching="iou").options()["matching"] == "iou"


def test_multi_target_and_aggregates():
    samples = [
        (pred([C, A, [0, 0, 1, 1]], [0.95, 0.9, 0.1]), target([A, C])),  # perfect: correct, T-TN
        (pred([A], [0.9]), target([A, C])),  # one GT missed: F1 2/3, T-TN
        (pred([A], [0.3]), target([A])),  # nothing kept: F1 0, T-FP
        (pred([A], [0.1]), no_target()),  # N-TP, correct
        (pred([A], [0.8]), no_target()),  # N-FN
    ]
    assert run(samples) == {"F1score": 40.0, "N-acc": 50.0, "T-acc": pytest.approx(200 / 3), "samples": 5,
                            "target_samples": 3, "no_target_samples": 2}


def official_greedy(giou, threshold=0.5):
    """The official loop: global max, stop below threshold, zero the row and column."""
    giou = giou.copy()
    num_pred, num_gt = giou.shape
    tp = 0
    for _ in range(min(num_pred, num_gt)):
        index = int(np.argmax(giou))
        if giou.flat[index] < threshold:
            break
        tp += 1
        giou[index // num_gt, :] = 0.0
        giou[:, index % num_gt] = 0.0
    return tp


def test_greedy_matching_is_the_official_rule():
    # greedy takes 0.9 first and is left with 0.1: one match (an optimal assignment would find two)
    assert greedy_match_count(np.array([[0.9, 0.8], [0.85, 0.1]]), 0.5) == 1
    rng = np.random.default_rng(5)
    for _ in range(200):
        m = rng.uniform(-0.5, 1.0, tuple(rng.integers(1, 6, 2))).astype(np.float32)
        assert greedy_match_count(m, 0.5) == official_greedy(m)


def test_errors_name_the_sample():
    with pytest.raises(ValueError, match="sample 3: target is not marked empty but has no boxes"):
        GRECEvaluator().process(3, pred([A], [0.9]), target([], empty=False))
    with pytest.raises(ValueError, match="sample 4: target is marked empty but has 1 boxes"):
        GRECEvaluator().process(4, pred([A], [0.9]), target([A], empty=True))
    with pytest.raises(ValueError, match="sample 5: prediction boxes must satisfy x2 >= x1"):
        GRECEvaluator().process(5, pred([[5, 0, 1, 1]], [0.9]), target([A]))
    with pytest.raises(ValueError, match="matching='dice'"):
        GRECEvaluator(matching="dice")
