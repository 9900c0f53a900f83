"""Outputs get the mode a plain open() would give under the user's umask (0666 & ~umask), written
atomically; the temporary file is private while it is being written."""
import json
import os
import stat

import numpy as np
import pytest

from evaluation.predictions import PredictionsHeader, write_predictions
from evaluation.report import write_report
from instancevg.checkpoint import save_checkpoint
from instancevg.cli.predict import main as predict_main
from instancevg.config import get_config
from instancevg.io import atomic_path, current_umask, write_json_atomic, write_text_atomic
from instancevg.model import build_model
from instancevg.structures import Prediction

EXPECTED = {0o022: 0o644, 0o077: 0o600, 0o027: 0o640, 0o002: 0o664}


@pytest.fixture(params=sorted(EXPECTED), ids=lambda m: f"umask{m:03o}")
def umask(request):
    """Run the test under this umask, restoring the previous one."""
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_without_changing_it(umask):
    assert current_umask() == umask
    assert current_umask() == umask  # unchanged by reading


def test_atomic_writers_follow_the_umask(tmp_path, umask):
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    write_text_atomic(tmp_path / "b.txt", "hello")
    with atomic_path(tmp_path / "c.bin") as tmp:
        assert mode(tmp) == 0o600  # private while being written
        tmp.write_bytes(b"\0")
    for name in ("a.json", "b.txt", "c.bin"):
        assert mode(tmp_path / name) == EXPECTED[umask], name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.txt", "c.bin"]


def test_report_predictions_and_checkpoint_follow_the_umask(tmp_path, umask):
    write_report(tmp_path / "report.json", {"results": []})
    header = PredictionsHeader("grefcoco", "val", "pytorch", (4, 4))
    pred = Prediction(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((4, 4), bool))
    write_predictions(tmp_path / "preds.jsonl", header, [(0, pred)])
    save_checkpoint(build_model(get_config("tiny")), tmp_path / "ckpt.pth")
    for name in ("report.json", "preds.jsonl", "ckpt.pth"):
        assert mode(tmp_path / name) == EXPECTED[umask], name


def test_engine_writer_follows_the_umask(tmp_path, umask):
    from engines.build import _atomic_write_bytes

    _atomic_write_bytes(tmp_path / "model.engine", b"engine bytes")
    assert mode(tmp_path / "model.engine") == EXPECTED[umask]
    assert (tmp_path / "model.engine").read_bytes() == b"engine bytes"


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_predict_outputs_follow_the_umask(tmp_path, mask):
    previous = os.umask(mask)
    try:
        assert predict_main(["-o", str(tmp_path / "pred")]) == 0
    finally:
        os.umask(previous)
    assert mode(tmp_path / "pred.png") == mode(tmp_path / "pred.json") == EXPECTED[mask]
    assert json.loads((tmp_path / "pred.json").read_text())["config"] == "tiny"
