"""The evaluation runner: PyTorch backend on synthetic data, predictions round trip, CLI, torchrun."""
import json
import os
import subprocess
import sys

import pytest
import torch

from evaluation.backends.pytorch import PyTorchBackend
from evaluation.cli import main
from evaluation.predictions import read_header
from evaluation.runner import evaluate_split, score_predictions
from instancevg.config import get_config
from instancevg.data.datasets import open_dataset
from instancevg.inference import load_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def data_root(synthetic_root):
    return synthetic_root(24, 3)


@pytest.fixture(scope="module")
def backend():
    return PyTorchBackend(load_model(get_config("tiny"), None, seed=0), "instancevg/assets/tiny.spm"
                          if os.path.exists("instancevg/assets/tiny.spm") else os.path.join(REPO, "instancevg/assets/tiny.spm"))


def test_predictions_file_scores_like_the_run(backend, data_root, tmp_path):
    dataset = open_dataset("grefcoco", "val", data_root)
    preds = tmp_path / "preds.jsonl"
    result = evaluate_split(backend, dataset, ("grec", "gres"), batch_size=3, save_predictions=preds)
    assert result.samples == len(dataset) and set(result.metrics) == {"grec", "gres"}
    assert result.metrics["gres"]["samples"] == len(dataset)
    header = read_header(preds)
    assert (header.dataset, header.split, header.backend, tuple(header.resolution)) == ("grefcoco", "val", "pytorch",
                                                                                          (128, 128))
    lines = preds.read_text().splitlines()
    assert [json.loads(line)["sample_id"] for line in lines[1:]] == [s.sample_id for s in dataset]
    rescored = score_predictions(preds, dataset, ("grec", "gres"))
    assert rescored.metrics == result.metrics


def test_batch_size_does_not_change_metrics(backend, data_root):
    dataset = open_dataset("rrefcoco", "val", data_root)
    a = evaluate_split(backend, dataset, ("rrefcoco",), batch_size=1)
    b = evaluate_split(backend, dataset, ("rrefcoco",), batch_size=4, max_samples=len(dataset))
    for key, value in a.metrics["rrefcoco"].items():
        assert b.metrics["rrefcoco"][key] == pytest.approx(value, abs=1e-9), key


def test_predictions_for_another_split_are_refused(backend, data_root, tmp_path):
    dataset = open_dataset("grefcoco", "val", data_root)
    evaluate_split(backend, dataset, ("gres",), max_samples=len(dataset), save_predictions=tmp_path / "p.jsonl")
    with pytest.raises(ValueError, match="holds predictions for grefcoco/val, not grefcoco/testA"):
        score_predictions(tmp_path / "p.jsonl", open_dataset("grefcoco", "testA", data_root), ("gres",))


def test_cli_suite_paper_writes_one_report(data_root, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    assert main(["--suite", "paper", "--data-root", data_root, "--random-weights", "--no-progress",
                 "--max-samples", "4", "-o", str(report_path)]) == 0
    out = capsys.readouterr().out
    for table in ("Table 1 (REC)", "Table 2 (RES)", "Table 3 (GRES)", "Table 4 (Ref-ZOM)", "Table 5 (R-RefCOCO)",
                  "Table 6 (GREC)"):
        assert table in out
    report = json.loads(report_path.read_text())
    splits = {(r["benchmark"], r["split"]) for r in report["results"]}
    assert len(splits) == 3 + 3 + 2 + 3 + 1 + 3  # every evaluation split of the eight datasets
    assert report["tools"]["torch"] == torch.__version__
    assert all(r["samples"] == 4 for r in report["results"])


def test_cli_errors(data_root, tmp_path, capsys):
    assert main(["--data-root", data_root, "--random-weights"]) == 2
    assert "--dataset" in capsys.readouterr().err
    assert main(["--dataset", "grefcoco", "--split", "nope", "--data-root", data_root, "--random-weights"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["--dataset", "grefcoco", "--data-root", str(tmp_path), "--random-weights"]) == 2
    assert str(tmp_path) in capsys.readouterr().err


def test_torchrun_two_processes_match_one(data_root, tmp_path):
    args = ["--dataset", "grefcoco", "--split", "val", "--data-root", data_root, "--random-weights",
            "--batch-size", "1", "--no-progress"]
    single = tmp_path / "single.json"
    # both runs in subprocesses with one thread each, so that per-sample floats are computed identically
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "evaluation.cli"] + args + [
        "-o", str(single), "--save-predictions", str(tmp_path / "single.jsonl")],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "evaluation.cli"] + args + ["-o", str(tmp_path / "dist.json"), "--save-predictions",
                                             str(tmp_path / "dist.jsonl")]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = json.loads(single.read_text())["results"][0]
    two = json.loads((tmp_path / "dist.json").read_text())["results"][0]
    assert two["timings"]["processes"] == 2
    assert one["metrics"] == two["metrics"] and one["samples"] == two["samples"]
    assert (tmp_path / "single.jsonl").read_text().splitlines()[1:] == \
        (tmp_path / "dist.jsonl").read_text().splitlines()[1:]


def test_each_torchrun_process_takes_the_gpu_of_its_local_rank(monkeypatch):
    """Device resolution for every backend under torchrun: cuda -> cuda:LOCAL_RANK (pytorch, tensorrt) and
    the ONNX Runtime CUDA provider's device_id."""
    from evaluation import distributed
    from evaluation.backends.onnxruntime import providers

    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.local_device("cuda") == "cuda:1"
    assert distributed.local_device("cpu") == "cpu"
    assert providers(distributed.local_device("cuda")) == [("CUDAExecutionProvider", {"device_id": 1}),
                                                           "CPUExecutionProvider"]
    monkeypatch.delenv("WORLD_SIZE")
    assert distributed.local_device("cuda:2") == "cuda:2"
    with pytest.raises(ValueError, match="cpu, cuda or cuda:N"):
        providers("gpu0")
