"""The plugin kernels inside the PyTorch model score exactly what the reference ops score, on every benchmark
of the synthetic suite (instancevg-eval --backend pytorch --ops plugin --compare pytorch)."""
import json

import pytest

from evaluation.cli import main

pytestmark = pytest.mark.usefixtures("plugin_kernels")


def test_plugin_ops_match_reference_ops_on_the_whole_suite(synthetic_root, tmp_path, capsys):
    report_path = tmp_path / "parity.json"
    args = ["--backend", "pytorch", "--ops", "plugin", "--compare", "pytorch", "--suite", "paper",
            "--data-root", synthetic_root(16, 0), "--batch-size", "4", "--no-progress", "-o", str(report_path)]
    assert main(args) == 0
    assert "parity PASSED" in capsys.readouterr().out
    report = json.loads(report_path.read_text())
    assert report["passed"] and list(report["candidates"]) == ["pytorch plugin-ops fp32"]
    splits = report["candidates"]["pytorch plugin-ops fp32"]["splits"]
    assert {s["benchmark"] for s in splits} == {"refcoco", "refcoco+", "refcocog", "grefcoco", "refzom", "rrefcoco",
                                               "rrefcoco+", "rrefcocog"}
    for split in splits:
        where = f"{split['benchmark']}/{split['split']}"
        assert split["candidate"]["backend"]["ops"] == "plugin" and split["reference"]["backend"]["ops"] == "reference"
        # FP32: every metric delta exactly 0, the same points and decisions on every sample
        assert all(d == 0.0 for values in split["deltas"].values() for d in values.values() if d is not None), where
        assert all(side == "both" for values in split["undefined"].values() for side in values.values()), where
        agreement = split["agreement"]
        assert agreement["points_identical"] == agreement["selection_identical"] == 1.0, where
        assert agreement["no_target_identical"] == 1.0, where
        assert agreement["max_score_diff"] < 1e-5, where


def test_unbuilt_plugin_kernels_are_a_clear_error(synthetic_root, tmp_path, monkeypatch, capsys):
    from instancevg.ops import kernels

    monkeypatch.setenv(kernels.PLUGINS_ENV, str(tmp_path))
    kernels.reset()
    try:
        code = main(["--backend", "pytorch", "--ops", "plugin", "--dataset", "grefcoco", "--split", "val",
                     "--data-root", synthetic_root(16, 0), "--max-samples", "2", "--no-progress"])
    finally:
        monkeypatch.undo()
        kernels.reset()
    err = capsys.readouterr().err
    assert code == 2 and "libinstancevg_plugins_host.so not found" in err and "cmake -S plugins" in err
    assert "Traceback" not in err
