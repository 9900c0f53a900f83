"""The main job (instancevg-demo) end to end, small: every file it promises, parity passed, a short
terminal summary naming the reports, and one parity report (JSON, Markdown, one valid HTML document)."""
import json
import math

from evaluation.demo import main

from .html_check import check_document

BENCHMARKS = {"refcoco", "refcoco+", "refcocog", "grefcoco", "refzom", "rrefcoco", "rrefcoco+", "rrefcocog"}


def test_demo_runs_the_whole_chain(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["-o", str(out), "--num-images", "8", "--max-samples", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "parity.json").read_text())
    assert report["passed"] is True and report["verdict"] == "PASSED" and report["random_weights"] is False
    assert set(report["graphs"]) == {f"tiny_{t}_{p}" for t in ("tensorrt", "portable") for p in ("fp32", "fp16")}
    for path in report["graphs"].values():
        assert (out / "models" / path.split("/")[-1]).is_file()
        assert (out / "models" / path.split("/")[-1].replace(".onnx", ".json")).is_file()
    graphs = [f"onnxruntime {t} {p}" for t in ("portable", "tensorrt-target") for p in ("fp32", "fp16")]
    assert set(report["candidates"]) >= set(graphs)  # all four exports, the tensorrt-target ones with the kernels
    for target in ("portable", "tensorrt-target"):
        assert report["tolerances"][f"onnxruntime {target} fp32"] == [0.5]
        fp16 = report["candidates"][f"onnxruntime {target} fp16"]["splits"]
        # FP16: 2 points, or one sample's worth on a small split (100 / N, rounded up)
        assert all(r["tolerance"] == max(2.0, math.ceil(1e5 / r["samples"]) / 1e3) for r in fp16)
        splits = report["candidates"][f"onnxruntime {target} fp32"]["splits"]
        assert {r["benchmark"] for r in splits} == BENCHMARKS and len(splits) == 15
        # FP32: every metric delta exactly 0 and the same selections, for both targets
        for r in splits:
            assert all(d == 0.0 for values in r["deltas"].values() for d in values.values() if d is not None), \
                r["benchmark"]
            assert all(side == "both" for values in r["undefined"].values() for side in values.values())
            assert r["agreement"]["points_identical"] == r["agreement"]["selection_identical"] == 1.0
    ran = [label for label in report["candidates"]]
    assert len(report["summary"]) == 15 * len(ran)
    if "tensorrt fp32" not in ran:  # skipped here: the report says why
        reasons = {n["label"]: n["reason"] for n in report["not_run"]}
        assert set(reasons) == {"tensorrt fp32", "tensorrt fp16"}
        assert all("TensorRT" in r or "GPU" in r or "plugin library" in r for r in reasons.values())
    # the terminal gets the verdict, one line per candidate, the not-run lines and the report paths only
    lines = printed.strip().splitlines()
    assert len(lines) < 40, printed
    assert any(line.startswith("parity PASSED") for line in lines)
    assert all(f"  {label}: ok, 15 splits" in printed for label in ran)
    assert lines[-1] == f"reports: {out / 'parity.json'}, {out / 'parity.md'}, {out / 'parity.html'}"
    markdown = (out / "parity.md").read_text()
    assert markdown.startswith("# instancevg-demo: backend parity on synthetic data\n\n**PASSED**:")
    summary = markdown.split("## Summary")[1].split("## Details")[0]
    for label in ran:
        for result in report["candidates"][label]["splits"]:
            assert summary.count(f"| {label} | {result['benchmark']}/{result['split']} |") == 1
    assert "## Not run" in markdown and "+0.000" not in markdown
    parsed = check_document((out / "parity.html").read_text())
    assert parsed.title == "instancevg-demo: backend parity on synthetic data" and parsed.counts["svg"] == len(ran)
