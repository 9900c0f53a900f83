"""ONNX Runtime backend: parity with PyTorch on the bundled tiny model, refusals, batching; the main job."""
import json

import numpy as np
import pytest

from evaluation.backends.onnxruntime import OnnxRuntimeBackend
from evaluation.backends.pytorch import PyTorchBackend
from evaluation.cli import main
from evaluation.parity import compare_split
from export import BatchSpec, ExportOptions, export_onnx
from instancevg import bundled
from instancevg.data.datasets import open_dataset

from .html_check import check_document


@pytest.fixture(scope="module")
def data_root(synthetic_root):
    return synthetic_root(16, 11)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """A dynamic-batch portable FP32 graph and a fixed-batch (2) tensorrt graph of the bundled model."""
    folder = tmp_path_factory.mktemp("graphs")
    portable = folder / "tiny_portable.onnx"
    export_onnx(portable, "tiny", ExportOptions(target="portable", batch=BatchSpec.parse_dynamic("1:2:4")), log=None)
    tensorrt = folder / "tiny_tensorrt.onnx"
    export_onnx(tensorrt, "tiny", ExportOptions(target="tensorrt", batch=BatchSpec.fixed(2)), log=None)
    return portable, tensorrt


def test_portable_graph_matches_pytorch_sample_for_sample(graphs, data_root):
    candidate = OnnxRuntimeBackend(graphs[0])
    assert candidate.config.name == "tiny" and candidate.tokenizer_path == str(bundled.TINY_TOKENIZER)
    reference = PyTorchBackend.from_files("tiny")
    result = compare_split(candidate, reference, open_dataset("grefcoco", "val", data_root), ("grec", "gres"),
                           batch_size=3)
    assert result.violations == [] and result.tolerance == 0.5
    assert all(abs(d) < 1e-9 for values in result.deltas.values() for d in values.values())
    a = result.agreement
    assert a["points_identical"] == 1.0 and a["no_target_identical"] == 1.0 and a["selection_identical"] == 1.0
    assert a["min_box_iou"] > 0.999 and a["min_mask_iou"] > 0.99 and a["max_score_diff"] < 1e-4


def test_batches_larger_than_the_profile_are_chunked(graphs):
    backend = OnnxRuntimeBackend(graphs[0])
    rng = np.random.default_rng(0)
    inputs = {"image": rng.standard_normal((5, 3, 128, 128), dtype=np.float32),
              "text_ids": np.ones((5, 16), np.int64), "text_pad_mask": np.ones((5, 16), bool)}
    inputs["text_ids"][:, :3] = [0, 20, 2]
    inputs["text_pad_mask"][:, :3] = False
    backend.batch = 2  # as if the graph had a fixed batch of 2: 5 samples -> 2 + 2 + 1 (padded)
    chunked = backend.forward(inputs)
    backend.batch = None
    whole = backend.forward(inputs)
    assert chunked.boxes.shape == (5, 5, 4)
    np.testing.assert_allclose(chunked.boxes, whole.boxes, atol=1e-5)


def test_tensorrt_graph_runs_with_the_plugin_kernels_and_scores_what_pytorch_scores(graphs, data_root,
                                                                                     plugin_kernels):
    """The exact graph TensorRT receives (plugin nodes), in ONNX Runtime with the plugins' host kernels as
    custom operators: FP32 metric deltas exactly 0, the same points and decisions on every sample."""
    candidate = OnnxRuntimeBackend(graphs[1])
    assert candidate.describe()["target"] == "tensorrt" and candidate.batch == 2
    result = compare_split(candidate, PyTorchBackend.from_files("tiny"), open_dataset("grefcoco", "val", data_root),
                           ("grec", "gres"), batch_size=3)
    assert result.violations == []
    assert all(d == 0.0 for values in result.deltas.values() for d in values.values() if d is not None)
    a = result.agreement
    assert a["points_identical"] == a["selection_identical"] == a["no_target_identical"] == 1.0
    assert a["max_score_diff"] < 1e-5


def test_tensorrt_graph_without_the_kernels_says_what_is_missing(graphs, tmp_path, monkeypatch):
    from instancevg.ops import kernels

    monkeypatch.setenv(kernels.PLUGINS_ENV, str(tmp_path))
    kernels.reset()
    try:
        with pytest.raises(RuntimeError, match="tiny_tensorrt.onnx: .*custom operators.*libinstancevg_plugins_host.so "
                                               "not found .*cmake -S plugins"):
            OnnxRuntimeBackend(graphs[1])
    finally:
        monkeypatch.undo()
        kernels.reset()


def test_eval_cli_compare_writes_reports_and_exit_status(graphs, data_root, tmp_path, capsys):
    args = ["--backend", "onnxruntime", "--onnx", str(graphs[0]), "--compare", "pytorch", "--dataset", "refzom",
            "--data-root", data_root, "--no-progress", "-o", str(tmp_path / "parity.json")]
    assert main(args) == 0
    started, out = capsys.readouterr().out.split("\n", 1)
    assert started == "refzom/test: 6 samples"  # one line per split as it starts
    assert out.startswith("parity PASSED: every metric within tolerance in 1 split comparison (1 candidate; "
                          "tolerance: onnxruntime portable fp32 0.5 points)")
    assert "onnxruntime portable fp32 vs pytorch (tolerance 0.5 points)" in out and "refzom/test" in out
    assert out.rstrip().endswith(f"reports: {tmp_path / 'parity.json'}, {tmp_path / 'parity.md'}, "
                                 f"{tmp_path / 'parity.html'}")
    report = json.loads((tmp_path / "parity.json").read_text())
    assert report["passed"] and report["compare"] == "pytorch"
    assert report["candidates"]["onnxruntime portable fp32"]["splits"][0]["benchmark"] == "refzom"
    assert (tmp_path / "parity.md").read_text().startswith("# Parity report: onnxruntime portable fp32 vs pytorch\n\n**PASSED**")
    assert check_document((tmp_path / "parity.html").read_text()).counts["svg"] == 1
    # a negative tolerance cannot be met: the command must fail with status 1
    assert main(args + ["--tolerance", "-1"]) == 1
    out = capsys.readouterr().out
    assert "parity FAILED" in out and "  ! onnxruntime portable fp32: refzom/test refzom" in out


def test_missing_graph_or_sidecar(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        OnnxRuntimeBackend(tmp_path / "nope.onnx")
    (tmp_path / "lonely.onnx").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="lonely.json"):
        OnnxRuntimeBackend(tmp_path / "lonely.onnx")


class PerturbedBackend(OnnxRuntimeBackend):
    """Injected disagreement: every other sample's queries all claim a target, its masks flip."""

    def forward(self, inputs):
        raw = super().forward(inputs)
        raw.class_logits[::2, :, 0] = 20.0
        raw.exist_logits[::2, 0] = 20.0
        raw.global_mask_logits[::2] *= -1
        return raw


def test_injected_disagreement_fails_and_names_the_samples(graphs, data_root):
    dataset = open_dataset("grefcoco", "val", data_root)
    result = compare_split(PerturbedBackend(graphs[0]), PyTorchBackend.from_files("tiny"), dataset,
                           ("grec", "gres"), batch_size=4)
    assert result.violations, "a perturbed backend must violate the tolerance"
    perturbed = {dataset[i].sample_id for i in range(len(dataset)) if i % 4 % 2 == 0}  # every other of each batch
    assert set(result.disagreeing_samples) and set(result.disagreeing_samples) <= perturbed
    assert repr(result.disagreeing_samples[0]) in result.violations[0]
    assert result.agreement["no_target_identical"] < 1.0


def test_mismatched_model_shapes_are_refused(graphs, data_root):
    from instancevg.config import get_config
    from instancevg.model import build_model

    other = PyTorchBackend(build_model(get_config("tiny").replace(num_queries=3)).eval(), bundled.TINY_TOKENIZER)
    with pytest.raises(ValueError, match="do not run the same model shape"):
        compare_split(OnnxRuntimeBackend(graphs[0]), other, open_dataset("refzom", "test", data_root), ("refzom",))


def test_bench_runs_pytorch_and_onnxruntime_and_prints_the_ratio(graphs, tmp_path, capsys):
    from evaluation.bench import main as bench

    assert bench(["--backends", "pytorch,onnxruntime", "--onnx", str(graphs[0]), "--batch-sizes", "1,2",
                  "--warmup", "1", "--iters", "2", "-o", str(tmp_path / "bench.json")]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "x" in out.splitlines()[-2]
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert {(r["backend"], r["batch"]) for r in rows} == {(b, n) for b in ("pytorch", "onnxruntime") for n in (1, 2)}
    assert all(r["median_ms"] > 0 and "speedup_vs_pytorch" in r for r in rows)
