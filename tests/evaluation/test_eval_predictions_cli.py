"""instancevg-eval --predictions: ground truth as predictions scores the maximum, empty predictions the
documented values, bad files are refused without leaving a report."""
import json

import numpy as np
import pytest

from evaluation.cli import main
from evaluation.predictions import PredictionsHeader, write_predictions
from instancevg.data.datasets import get_benchmark, open_dataset
from instancevg.structures import Prediction

SIZE = 128
SPLITS = [("refcoco", "val"), ("grefcoco", "val"), ("refzom", "test"), ("rrefcoco+", "val")]


@pytest.fixture(scope="module")
def data_root(synthetic_root):
    return synthetic_root(24, 5)


def write(path, dataset, make):
    header = PredictionsHeader(dataset=dataset.name, split=dataset.split, backend="oracle", resolution=(SIZE, SIZE),
                               thr_q=0.7, thr_m=0.5)
    write_predictions(path, header, ((s.sample_id, make(s.to_target(SIZE))) for s in dataset))


def oracle(target):
    k = len(target.boxes)
    return Prediction(boxes=target.boxes.astype(np.float32), scores=np.ones(k, np.float32), mask=target.mask)


def nothing(target):
    return Prediction(boxes=np.zeros((0, 4), np.float32), scores=np.zeros(0, np.float32),
                      mask=np.zeros((SIZE, SIZE), bool))


def run(data_root, tmp_path, name, split, make):
    dataset = open_dataset(name, split, data_root)
    write(tmp_path / "p.jsonl", dataset, make)
    assert main(["--predictions", str(tmp_path / "p.jsonl"), "--dataset", name, "--split", split, "--data-root",
                 data_root, "--no-progress", "-o", str(tmp_path / "r.json")]) == 0
    return json.loads((tmp_path / "r.json").read_text())["results"][0]["metrics"]


@pytest.mark.parametrize("name,split", SPLITS)
def test_ground_truth_scores_the_maximum(data_root, tmp_path, name, split):
    metrics = run(data_root, tmp_path, name, split, oracle)
    assert set(metrics) == set(get_benchmark(name).metrics)
    for suite, values in metrics.items():
        for key, value in values.items():
            if key in ("samples", "groups") or key.endswith(("_samples", "_negatives", "_positives")):
                continue
            assert value == pytest.approx(100.0), f"{suite} {key} = {value}"


@pytest.mark.parametrize("name,split", SPLITS)
def test_empty_predictions_score_the_documented_values(data_root, tmp_path, name, split):
    metrics = run(data_root, tmp_path, name, split, nothing)
    if name == "refcoco":  # no box: every REC sample wrong; empty masks: IoU 0
        assert all(v == 0.0 for k, v in metrics["rec"].items() if k.startswith("Pr@"))
        assert metrics["res"]["mIoU"] == 0.0 and metrics["res"]["oIoU"] == 0.0
    elif name == "grefcoco":  # "no target" everywhere: exactly the no-target samples are right
        share = 100.0 * metrics["grec"]["no_target_samples"] / metrics["grec"]["samples"]
        assert metrics["grec"]["F1score"] == pytest.approx(share) and metrics["gres"]["gIoU"] == pytest.approx(share)
        assert metrics["grec"]["N-acc"] == 100.0 and metrics["grec"]["T-acc"] == 0.0
        assert metrics["gres"]["N-acc"] == 100.0 and metrics["gres"]["T-acc"] == 0.0 and metrics["gres"]["cIoU"] == 0.0
    elif name == "refzom":
        assert metrics["refzom"]["Acc"] == 100.0 and metrics["refzom"]["mIoU"] == 0.0
    else:
        assert metrics["rrefcoco"]["mRR"] == 100.0 and metrics["rrefcoco"]["mIoU"] == 0.0
        assert metrics["rrefcoco"]["rIoU"] == 0.0


def test_bad_predictions_files_leave_no_report(data_root, tmp_path, capsys):
    dataset = open_dataset("grefcoco", "val", data_root)
    path = tmp_path / "p.jsonl"
    write(path, dataset, oracle)
    lines = path.read_text().splitlines()
    report = tmp_path / "r.json"
    args = ["--predictions", str(path), "--dataset", "grefcoco", "--split", "val", "--data-root", data_root,
            "--no-progress", "-o", str(report)]
    path.write_text("\n".join(lines[:-1]) + "\n")  # the last sample missing
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "p.jsonl" in err and repr(dataset[len(dataset) - 1].sample_id) in err
    path.write_text("\n".join(lines + [lines[1]]) + "\n")  # a duplicated sample
    assert main(args) == 2
    assert "p.jsonl" in capsys.readouterr().err
    path.write_text(lines[0] + "\n{not json\n")
    assert main(args) == 2
    assert "line 2" in capsys.readouterr().err
    assert not report.exists() and not list(tmp_path.glob(".*tmp"))
    assert main(["--predictions", str(tmp_path / "missing.jsonl")] + args[2:]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
    assert main(args[:2] + ["--dataset", "nope"] + args[4:]) == 2
    assert "nope" in capsys.readouterr().err
