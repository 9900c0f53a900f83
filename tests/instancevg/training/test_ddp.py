"""A two-process torchrun run (gloo, CPU): both processes train, rank 0 alone writes the checkpoint."""
import json
import os
import subprocess
import sys

import pytest
import torch

from instancevg.checkpoint import load_checkpoint, read_file

from .conftest import tiny_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="torch.distributed with gloo is not available")
def test_two_process_torchrun_trains_and_writes_one_checkpoint(train_root, tmp_path):
    work = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "evaluation.train_cli", "--config", "tiny", "--data-root", train_root, "--dataset", "grefcoco",
           "--work-dir", str(work), "--epochs", "1", "--batch-size", "2", "--train-limit", "8", "--workers", "0",
           "--threads", "1", "--eval-split", "none", "--no-progress", "--log-interval", "1", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    checkpoints = sorted(p.name for p in work.iterdir() if p.suffix == ".pth")
    assert checkpoints == ["latest.pth"]
    ckpt = read_file(work / "latest.pth")
    assert ckpt["epoch"] == 0 and ckpt["global_step"] == 2  # 8 samples / 2 processes / batch 2
    assert not any(k.startswith("module.") for k in ckpt["state_dict"])
    load_checkpoint(tiny_model(), work / "latest.pth")
    records = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["event"] == "train"]
    assert [r["iters"] for r in train] == [2, 2]  # one log line per step, written once (rank 0)
