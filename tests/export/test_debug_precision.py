"""instancevg-debug-precision: tensors matched across FP32/FP16 graphs despite the FP16 graph's Casts, the
statistics, an injected FP16 overflow found at the node that overflows, inputs, refusals."""
from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.debug_precision import (FP16_MAX, DebugPrecisionError, compare_tensor, debug_precision, main,
                                    make_session, mark_all_outputs, match_tensors)
from engines.tensorrt_import import tensorrt_unavailable
from export.graph import strip_debug_outputs
from export.verify import sample_inputs
from instancevg.config import get_config
from instancevg.plugin_paths import plugin_library

TINY = get_config("tiny")
F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16


def save(model: onnx.ModelProto, path, config=True, batch=2):
    """The graph and (for sample inputs) a sidecar with the model config."""
    onnx.save(model, path)
    if config:
        path.with_suffix(".json").write_text(json.dumps({"config": TINY.to_dict(), "batch": {
            "dynamic": False, "min": batch, "opt": batch, "max": batch}}))
    return path


def scaled(model: onnx.ModelProto, weight: str, factor: float) -> onnx.ModelProto:
    model = onnx.ModelProto.FromString(model.SerializeToString())
    init = next(t for t in model.graph.initializer if t.name == weight)
    array = numpy_helper.to_array(init)
    init.CopyFrom(numpy_helper.from_array((array.astype(np.float32) * factor).astype(array.dtype), weight))
    return model


@pytest.fixture(scope="module")
def tiny_pair(traced, tmp_path_factory):
    """The tiny model's portable FP32 and FP16 graphs (one trace each, random weights, batch 2)."""
    folder = tmp_path_factory.mktemp("precision")
    a = strip_debug_outputs(traced("portable-fp32").model)
    b = strip_debug_outputs(traced("portable-fp16").model)
    return folder, a, b


def test_fp32_and_fp16_exports_agree_tensor_by_tensor(tiny_pair):
    folder, a, b = tiny_pair
    report = debug_precision(save(a, folder / "a.onnx"), save(b, folder / "b.onnx"))
    producers = [n for n in a.graph.node if n.op_type != "Constant"]
    # every FP32 tensor has its FP16 counterpart, also where the FP16 graph's Casts renumbered the names
    assert report.compared == sum(len([o for o in n.output if o]) for n in producers) and report.only_in_a == 0
    assert report.renamed > 0
    casts_only_in_b = [n for n in b.graph.node if n.op_type == "Cast" and n.output[0] not in
                       {t.name_b or t.name for t in report.tensors}]
    assert report.only_in_b >= len(casts_only_in_b) > 0
    assert report.passed, report.lines()
    worst = max(t.max_rel for t in report.tensors)
    assert 0 < worst < 5e-2  # FP16 rounding, under the default tolerance (5e-2 of each tensor's range)


def test_an_injected_fp16_overflow_is_reported_at_its_node(tiny_pair, tmp_path, capsys):
    """Scale one FPN convolution's weight in both graphs (the same model) so that its output exceeds FP16's
    range: FP32 computes it, FP16 overflows to inf. The tool names that convolution first, as the origin."""
    _, a, b = tiny_pair
    weight = "model.head.neck.lateral_convs.1.conv.weight"
    largest = float(np.abs(numpy_helper.to_array(next(t for t in a.graph.initializer if t.name == weight))).max())
    factor = 60000.0 / largest  # the largest weight becomes 60000: still an FP16 number, the sums are not
    path_a = save(scaled(a, weight, factor), tmp_path / "a.onnx")
    path_b = save(scaled(b, weight, factor), tmp_path / "b.onnx")
    conv = next(n for n in a.graph.node if weight in n.input)
    position = list(a.graph.node).index(conv)
    assert position > 100  # deep in the graph: what precedes it must agree

    assert main([str(path_a), str(path_b), "-o", str(tmp_path / "report.json"), "--first", "3"]) == 1
    out = capsys.readouterr().out
    first = next(line for line in out.splitlines() if line.startswith(("*", " ")) and " -> " in line)
    assert first.startswith(f"* #{position} {conv.name} (Conv) -> {conv.output[0]}")
    assert "FP16's largest value" in first and "inf 0/" in first
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] is False
    head = report["offenders"][0]
    assert head == {"node": conv.name, "op_type": "Conv", "index": position, "origin": True,
                    "outputs": [conv.output[0]]}
    assert sum(o["origin"] for o in report["offenders"]) == 1  # everything after it inherits the error
    stats = next(t for t in report["tensors"] if t["name"] == conv.output[0])
    assert stats["max_abs_a"] > FP16_MAX and stats["inf_a"] == 0 and stats["inf_b"] > 0
    assert stats["max_abs"] == "inf" and stats["passed"] is False
    before = [t for t in report["tensors"][: report["tensors"].index(stats)]]
    assert before and all(t["passed"] for t in before)


def test_inputs_from_npz_and_their_refusals(tiny_pair, tmp_path):
    folder, a, b = tiny_pair
    path_a, path_b = save(a, tmp_path / "a.onnx", config=False), save(b, tmp_path / "b.onnx", config=False)
    feeds = sample_inputs(TINY, 2, seed=5)
    np.savez(tmp_path / "in.npz", **feeds)
    report = debug_precision(path_a, path_b, inputs=str(tmp_path / "in.npz"))
    assert report.passed and report.inputs.endswith("in.npz")
    with pytest.raises(DebugPrecisionError, match="sidecar .* not found.*--inputs FILE.npz"):
        debug_precision(path_a, path_b)  # sample inputs need the config
    np.savez(tmp_path / "short.npz", image=feeds["image"])
    with pytest.raises(DebugPrecisionError, match=r"arrays \['image'\], but .* takes"):
        debug_precision(path_a, path_b, inputs=str(tmp_path / "short.npz"))
    np.savez(tmp_path / "shape.npz", **{**feeds, "image": feeds["image"][:, :, :64]})
    with pytest.raises(DebugPrecisionError, match="'image' has shape"):
        debug_precision(path_a, path_b, inputs=str(tmp_path / "shape.npz"))


# -- small graphs: matching, statistics, refusals -------------------------------------------------------------

def two_precisions():
    """y = relu(x @ W) * 2 in FP32, and the same in FP16 with Casts whose names shift the numbering."""
    w = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    a = helper.make_model(helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["mm"], name="mm"),
         helper.make_node("Relu", ["mm"], ["_to_copy"], name="relu"),
         helper.make_node("Mul", ["_to_copy", "two"], ["y"], name="mul")],
        "a", [helper.make_tensor_value_info("x", F32, [2, 4])], [helper.make_tensor_value_info("y", F32, [2, 3])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.array(2, np.float32), "two")]),
        opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    b = helper.make_model(helper.make_graph(
        [helper.make_node("Cast", ["x"], ["_to_copy"], to=F16, name="cast_in"),
         helper.make_node("MatMul", ["_to_copy", "W"], ["mm"], name="mm"),
         helper.make_node("Relu", ["mm"], ["_to_copy_1"], name="relu"),
         helper.make_node("Mul", ["_to_copy_1", "two"], ["y16"], name="mul"),
         helper.make_node("Cast", ["y16"], ["y"], to=F32, name="cast_out")],
        "b", [helper.make_tensor_value_info("x", F32, [2, 4])], [helper.make_tensor_value_info("y", F32, [2, 3])],
        [numpy_helper.from_array(w.astype(np.float16), "W"), numpy_helper.from_array(np.array(2, np.float16), "two")]),
        opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    return a, b


def test_tensors_are_matched_by_what_they_compute_not_by_name():
    a, b = (mark_all_outputs(m) for m in two_precisions())
    # A's "_to_copy" (the Relu) is B's "_to_copy_1"; B's "_to_copy" is the input Cast, not A's tensor; "y" is
    # B's FP32 Cast of "y16" (float Casts are transparent): both qualify, the namesake wins
    assert match_tensors(a, b) == {"mm": "mm", "_to_copy": "_to_copy_1", "y": "y"}


def test_tensor_statistics():
    a = np.array([[1.0, -2.0, 70000.0, -np.inf]], np.float32)
    b = np.array([[1.001, -2.0, np.inf, -np.inf]], np.float16)
    t = compare_tensor("t", a, b, atol=1e-3, rtol=5e-2)
    assert not t.passed and t.inf_a == 1 and t.inf_b == 2 and t.nonfinite_mismatch == 1
    assert t.max_abs == float("inf") and t.max_abs_a == 70000.0 and "FP16's largest value" in t.note
    ok = compare_tensor("t", a[:, :2], b[:, :2], atol=1e-3, rtol=5e-2)
    assert ok.passed and ok.max_abs == pytest.approx(0.0009765625) and ok.max_rel == pytest.approx(0.0009765625 / 2)
    assert ok.limit == pytest.approx(1e-3 + 5e-2 * 2)
    assert not compare_tensor("i", np.array([1, 2]), np.array([1, 3]), 1.0, 1.0).passed  # integers: equal
    shape = compare_tensor("s", np.zeros((2, 3)), np.zeros((3, 2)), 1, 1)
    assert not shape.passed and "shape [2, 3] vs [3, 2]" in shape.note


def test_small_graphs_end_to_end_and_refusals(tmp_path, capsys):
    a, b = two_precisions()
    path_a, path_b = save(a, tmp_path / "a.onnx", config=False), save(b, tmp_path / "b.onnx", config=False)
    np.savez(tmp_path / "x.npz", x=np.linspace(-3, 3, 8, dtype=np.float32).reshape(2, 4))
    assert main([str(path_a), str(path_b), "--inputs", str(tmp_path / "x.npz"), "-o", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "compared 3 tensors (1 under another name in B); 0 only in A, 2 only in B" in out and "all within tolerance" in out
    assert json.loads((tmp_path / "r.json").read_text())["compared"] == 3
    # refusals exit 2 with one clear line
    for argv, message in (([str(path_a)], "give either a second graph B or --engine"),
                          ([str(path_a), str(tmp_path / "none.onnx"), "--inputs", str(tmp_path / "x.npz")],
                           "graph B .*none.onnx: file not found"),
                          ([str(path_a), str(path_b), "--inputs", str(tmp_path / "no.npz")], "no.npz: file not found"),
                          ([str(path_a), str(path_b), "--inputs", str(tmp_path / "x.npz"), "--rtol", "-1"],
                           "must be >= 0"),
                          ([str(path_a), str(path_b), "-o", str(tmp_path)], "is a folder")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("instancevg-debug-precision: error:") and re.search(message, err), err


def test_portable_and_tensorrt_targets_agree_through_the_plugin_kernels(traced, plugin_kernels, tmp_path):
    """The tensorrt-target graph runs in ONNX Runtime with the plugin kernels as custom operators: tensor by
    tensor it agrees with the portable graph of the same model (FP32: within 1e-4 of each tensor's range)."""
    a = strip_debug_outputs(traced("portable-fp32").model)
    b = strip_debug_outputs(traced("tensorrt-fp32").model)
    report = debug_precision(save(a, tmp_path / "portable.onnx"), save(b, tmp_path / "tensorrt.onnx"),
                             atol=1e-4, rtol=1e-4)
    assert report.passed, report.lines()
    assert report.compared > 100 and max(t.max_rel for t in report.tensors) < 1e-4


def test_tensorrt_target_graph_without_the_kernels_says_what_is_missing(monkeypatch, tmp_path):
    from instancevg.ops import kernels

    node = helper.make_node("PointSelect", ["s"], ["i", "p"], domain="instancevg", name="PointSelect_0",
                            num_points=2, w_dist=0.003)
    model = helper.make_model(helper.make_graph([node], "trt", [helper.make_tensor_value_info("s", F32, [1, 4, 4])],
                                                [helper.make_tensor_value_info("i", TensorProto.INT32, None)]),
                              opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("instancevg", 1)])
    monkeypatch.setenv(kernels.PLUGINS_ENV, str(tmp_path))
    kernels.reset()
    try:
        with pytest.raises(DebugPrecisionError, match="libinstancevg_plugins_host.so not found"):
            make_session(model)
    finally:
        monkeypatch.undo()
        kernels.reset()


PLUGINS = plugin_library()
TENSORRT_MISSING = tensorrt_unavailable(PLUGINS)


@pytest.mark.tensorrt
@pytest.mark.gpu
@pytest.mark.skipif(TENSORRT_MISSING is not None, reason=str(TENSORRT_MISSING))
def test_an_engine_as_side_b(tiny_pair, tmp_path):
    """Where TensorRT, a GPU and the plugin library exist: the tiny FP32 engine against the portable FP32
    graph, matched by the engine's output names."""
    from engines.build import build_engine
    from export import BatchSpec, ExportOptions, export_onnx

    export_onnx(tmp_path / "trt.onnx", "tiny", ExportOptions(target="tensorrt", batch=BatchSpec.fixed(2)),
                random_weights=True, log=None)
    build_engine(tmp_path / "trt.onnx", tmp_path / "trt.engine", PLUGINS)
    _, a, _ = tiny_pair
    report = debug_precision(save(a, tmp_path / "a.onnx"), engine=tmp_path / "trt.engine", plugins=str(PLUGINS))
    assert report.compared >= 6 and report.passed, report.lines()
