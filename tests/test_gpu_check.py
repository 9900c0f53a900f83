"""``bash .ci/gpu`` on a machine without a GPU: the host-kernel parts run and pass, every GPU part is listed
as skipped with its reason, the report is written, the budget is honoured."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine .ci/gpu runs the GPU steps")


def ci_gpu(tmp_path, *args):
    env = dict(os.environ, OUT=str(tmp_path / "report"), PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(REPO / ".ci" / "gpu"), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    report = tmp_path / "report" / "gpu-report.json"
    return proc, (json.loads(report.read_text()) if report.is_file() else None)


def test_cpu_machine_runs_the_host_parts_and_lists_the_gpu_parts(tmp_path):
    proc, report = ci_gpu(tmp_path, "--steps", "environment,build,kernels,model-golden,sanitizer,kernel-timings,"
                                                "latency,gpu-tests")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = {s["name"]: s for s in report["steps"]}
    assert report["passed"] and steps["build"]["status"] == "passed"
    kernels = steps["kernels"]
    assert kernels["status"] == "passed" and kernels["details"]["devices"] == ["cpu"]
    names = [c["name"] for c in kernels["checks"]]
    assert any("fp32 cpu B8 Q300" in n for n in names) and any("overflow" in n for n in names)
    assert any("PointSelect cpu softmax B4096" in n for n in names)
    for name in ("model-golden", "sanitizer", "kernel-timings", "latency", "gpu-tests"):
        assert steps[name]["status"] == "skipped" and "no CUDA GPU" in steps[name]["reason"], name
    assert steps["fidelity-tests"]["reason"] == "not selected (--steps)"
    markdown = (tmp_path / "report" / "gpu-report.md").read_text()
    assert "| kernels | passed |" in markdown and "| sanitizer | skipped |" in markdown


def test_steps_that_do_not_fit_the_budget_are_skipped_and_listed(tmp_path):
    proc, report = ci_gpu(tmp_path, "--budget", "20", "--steps", "environment,build,kernels")
    assert proc.returncode == 0
    steps = {s["name"]: s for s in report["steps"]}
    assert steps["environment"]["status"] == "passed"
    assert steps["build"]["status"] == "skipped" and steps["build"]["reason"].startswith("out of time: needs ~90 s")


def test_unknown_step_is_refused(tmp_path):
    proc, report = ci_gpu(tmp_path, "--steps", "kernels,warp-speed")
    assert proc.returncode == 2 and "unknown steps ['warp-speed']" in proc.stderr and report is None
