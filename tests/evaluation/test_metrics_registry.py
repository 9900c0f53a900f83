"""Registry, records for distributed gathering, input errors and zero-sample results of every evaluator."""
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evaluation.metrics import (EVALUATORS, Evaluator, available_evaluators, build_evaluator, evaluator_options,
                                merge_records)
from .metric_factories import mask_target, no_target, pred, random_mask

NAMES = ("rec", "res", "grec", "gres", "refzom", "rrefcoco")


def make_samples(name, count=30, seed=8):
    """Random but valid samples for evaluator ``name`` (REC/RES: always one target)."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(count):
        boxes = np.array([[2, 2, 9, 9], [1, 1, 6, 7], [8, 8, 15, 12]], np.float32) + rng.uniform(0, 1, (3, 4))
        scores = np.sort(rng.uniform(0.3, 1.0, 3))[::-1]
        p = pred(boxes, scores, random_mask(rng, p=0.3))
        group = i // 3
        if name in ("rec", "res") or rng.random() < 0.7:
            t = mask_target(random_mask(rng, p=0.3), group=group)
            t.boxes = np.array([[2, 2, 9, 9]], np.float32)
        else:
            t = no_target(group=group)
        samples.append((f"s{i}", p, t))
    return samples


def test_registry_names_and_options():
    assert available_evaluators() == NAMES and tuple(EVALUATORS) == NAMES
    for name in NAMES:
        evaluator = build_evaluator(name)
        assert isinstance(evaluator, Evaluator) and evaluator.name == name
        assert set(evaluator.options()) <= set(evaluator_options(name))
    assert build_evaluator("gres", thr_q=0.5).thr_q == 0.5
    with pytest.raises(ValueError, match="unknown evaluator 'miou'"):
        build_evaluator("miou")
    with pytest.raises(ValueError, match="evaluator 'grec' has no option \\['thr_q'\\]"):
        build_evaluator("grec", thr_q=0.7)


@pytest.mark.parametrize("name", NAMES)
def test_two_processes_equal_one(name):
    samples = make_samples(name)
    single = build_evaluator(name)
    for sample_id, p, t in samples:
        single.process(sample_id, p, t)
    # two "ranks" with interleaved shards, gathered through pickle and JSON like all_gather_object would
    ranks = [build_evaluator(name), build_evaluator(name)]
    for k, (sample_id, p, t) in enumerate(samples):
        ranks[k % 2].process(sample_id, p, t)
    gathered = [pickle.loads(pickle.dumps(ranks[0].records())), json.loads(json.dumps(ranks[1].records()))]
    merged = merge_records(gathered, order=[s for s, _, _ in samples])
    rank0 = build_evaluator(name)
    rank0.load_records(merged)
    assert rank0.evaluate() == single.evaluate()
    assert rank0.records() == single.records()
    assert single.evaluate()["samples"] == len(samples) == len(single)
    single.reset()
    assert single.evaluate()["samples"] == 0 and len(single) == 0


@pytest.mark.parametrize("name", NAMES)
def test_zero_samples_give_undefined_metrics(name):
    result = build_evaluator(name).evaluate()
    counts = {k for k, v in result.items() if isinstance(v, int)}
    assert result["samples"] == 0 and all(result[k] == 0 for k in counts)
    assert set(result) - counts and all(result[k] is None for k in set(result) - counts), result


def test_duplicates_and_missing_samples_are_named():
    (sid, p, t), = make_samples("gres", count=1)
    evaluator = build_evaluator("gres")
    evaluator.process(sid, p, t)
    with pytest.raises(ValueError, match="sample 's0' was already processed"):
        evaluator.process(sid, p, t)
    with pytest.raises(ValueError, match="sample 's0' is already loaded"):
        evaluator.load_records(evaluator.records())
    with pytest.raises(ValueError, match="record of sample 'x' has fields"):
        build_evaluator("gres").load_records([("x", {"I": 1})])
    records = evaluator.records()
    with pytest.raises(ValueError, match="sample 's0' has records from more than one process"):
        merge_records([records, records])
    with pytest.raises(ValueError, match="1 samples have no record, first \\['s1'\\]"):
        merge_records([records], order=["s0", "s1"])
    with pytest.raises(ValueError, match="records for samples not in the dataset"):
        merge_records([records], order=[])
    with pytest.raises(TypeError, match="expected an int or a str"):
        evaluator.process(1.5, p, t)


def test_empty_target_with_pixels_is_an_error():
    (sid, p, t), = make_samples("res", count=1)
    t.empty = True
    t.boxes = np.zeros((0, 4), np.float32)
    with pytest.raises(ValueError, match="sample 's0': target is marked empty but its mask has"):
        build_evaluator("gres").process(sid, p, t)


def test_metrics_import_without_torch():
    code = ("import sys, evaluation.metrics, evaluation.predictions; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def as_ground_truth(t):
    """The prediction a perfect model makes: GT boxes scored 0.9 (none for no-target), the GT mask."""
    return pred(t.boxes, [0.9] * len(t.boxes), t.mask.copy())


PERFECT_EXCEPTIONS = {"groups_without_negatives", "groups_without_positives"}


@pytest.mark.parametrize("name", NAMES)
def test_ground_truth_as_prediction_gives_the_maximum(name):
    evaluator = build_evaluator(name)
    for sample_id, _, t in make_samples(name, count=24):
        evaluator.process(sample_id, as_ground_truth(t), t)
    result = evaluator.evaluate()
    metrics = {k: v for k, v in result.items() if not k.endswith("samples") and k != "groups"
               and k not in PERFECT_EXCEPTIONS}
    assert metrics and all(v == 100.0 for v in metrics.values()), result


NO_TARGET_SHARE = "no-target share"
EMPTY_PREDICTION_VALUES = {  # no box, empty mask
    "rec": {"Pr@0.5": 0.0},
    "res": {"mIoU": 0.0, "oIoU": 0.0, "Pr@0.5": 0.0},
    "grec": {"F1score": NO_TARGET_SHARE, "N-acc": 100.0, "T-acc": 0.0},
    "gres": {"gIoU": NO_TARGET_SHARE, "cIoU": 0.0, "N-acc": 100.0, "T-acc": 0.0, "Pr@0.7": 0.0},
    "refzom": {"mIoU": 0.0, "oIoU": 0.0, "Acc": 100.0, "Pr@0.5": 0.0},
    "rrefcoco": {"mIoU": 0.0, "oIoU": 0.0, "mRR": 100.0, "rIoU": 0.0},
}


@pytest.mark.parametrize("name", NAMES)
def test_empty_predictions_give_the_documented_values(name):
    evaluator = build_evaluator(name)
    samples = make_samples(name, count=24)
    for sample_id, _, t in samples:
        evaluator.process(sample_id, pred(), t)
    result = evaluator.evaluate()
    share = 100 * sum(t.empty for _, _, t in samples) / len(samples)
    assert name in ("rec", "res") or 0 < share < 100
    for key, value in EMPTY_PREDICTION_VALUES[name].items():
        assert result[key] == pytest.approx(share if value == NO_TARGET_SHARE else value), key
