"""The main job (instancevg-demo) end to end, small: every file it promises, parity passed, and the
report matches the printed tables."""
import json

from evaluation.demo import main


def test_demo_runs_the_whole_chain(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["-o", str(out), "--num-images", "8", "--max-samples", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "parity.json").read_text())
    assert report["passed"] is True and report["random_weights"] is False
    assert set(report["graphs"]) == {f"tiny_{t}_{p}" for t in ("tensorrt", "portable") for p in ("fp32", "fp16")}
    for path in report["graphs"].values():
        assert (out / "models" / path.split("/")[-1]).is_file()
        assert (out / "models" / path.split("/")[-1].replace(".onnx", ".json")).is_file()
    assert set(report["parity"]) >= {"onnxruntime fp32", "onnxruntime fp16"}
    benchmarks = {r["benchmark"] for r in report["parity"]["onnxruntime fp32"]}
    assert benchmarks == {"refcoco", "refcoco+", "refcocog", "grefcoco", "refzom", "rrefcoco", "rrefcoco+", "rrefcocog"}
    markdown = (out / "parity.md").read_text()
    assert markdown in printed  # the files hold exactly what was printed
    for result in report["parity"]["onnxruntime fp32"]:
        assert f"| {result['benchmark']}/{result['split']} |" in markdown
    assert (out / "parity.html").read_text().startswith("<!doctype html>")
    if report["tensorrt_skipped"]:
        assert "TensorRT" in report["tensorrt_skipped"] or "GPU" in report["tensorrt_skipped"] \
            or "plugin library" in report["tensorrt_skipped"]
