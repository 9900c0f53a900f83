"""instancevg-export --int8 on the bundled tiny model: calibration, the INT8 policy, TensorRT's Q/DQ rules,
verification, the sidecar, ONNX Runtime's int8 kernels, the tensorrt target's carried-over calibration,
--int8 --fp16, and the refusals of bad calibration input."""
from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from engines.qdq_rules import check_qdq_placement
from export import BatchSpec, ExportOptions, export_onnx
from export.calibration import CalibrationSpec, default_dataset, verification_inputs
from export.cli import main as export_main
from export.contract import check_plugin_nodes, value_types
from export.quantize import FLOAT_MODULES, INT8_OPS, OUTPUT_QUANTIZED_OPS, module_path, node_keys, plan
from export.verify import TOLERANCES, run_graph
from instancevg import bundled
from instancevg.config import get_config
from instancevg.data.datasets import available_benchmarks
from instancevg.structures import RAW_OUTPUT_NAMES

TINY = get_config("tiny")
FLOAT_OUTPUTS = [n for n in RAW_OUTPUT_NAMES if n != "points"]
# Measured worst output error of the bundled tiny model, INT8 (max abs / max |reference|): 2.4e-2
# (instance_mask_logits). The assertion keeps 3x of it: tighter than the sanity tolerance (0.25), so a
# policy regression (e.g. quantizing the attention products again: 1.4e-1) fails here.
MEASURED_BOUND = 0.075


@pytest.fixture(scope="module")
def data_root(synthetic_root):
    return synthetic_root(12, 3)


@pytest.fixture(scope="module")
def exports(data_root, tmp_path_factory):
    """The bundled model as INT8 graphs of both targets (batch 2: both text-filter branches)."""
    folder = tmp_path_factory.mktemp("int8")
    spec = CalibrationSpec(data_root, samples=6)
    return {target: export_onnx(folder / f"{target}.onnx", "tiny",
                                ExportOptions(target=target, batch=BatchSpec.fixed(2), int8=True, calibration=spec),
                                log=None)
            for target in ("portable", "tensorrt")}


def _producers(model):
    return {o: n for n in model.graph.node for o in n.output}


def _int8_inputs(model, node, producers):
    return [i for i in node.input if i in producers and producers[i].op_type == "DequantizeLinear"]


@pytest.mark.parametrize("target", ["portable", "tensorrt"])
def test_int8_export_verifies_within_the_int8_tolerances(exports, target):
    report = exports[target].verification
    assert report.passed and report.precision == "int8"
    errors = {e.name: e for e in report.errors}
    for name in FLOAT_OUTPUTS:
        assert errors[name].max_abs <= TOLERANCES["int8"][name].limit(errors[name].scale)
        assert errors[name].max_rel < MEASURED_BOUND, name
        assert errors[name].max_abs > 0  # it is an INT8 graph, not the float one
    assert errors["points"].max_abs == 0.0  # exact, after forcing PyTorch to the graph's selection if it differs
    assert report.selection["equal"] or report.selection["required"] is False


@pytest.mark.parametrize("target", ["portable", "tensorrt"])
def test_int8_graph_follows_the_policy_and_tensorrts_qdq_rules(exports, target):
    result = exports[target]
    model = onnx.load(result.onnx_path)
    assert check_qdq_placement(model) == []
    producers = _producers(model)
    modules = plan(model).modules  # names and module scopes survive quantization
    recorded = set(result.sidecar["int8"]["quantized_nodes"])
    assert len(recorded) > 30 and recorded <= set(modules)
    nodes = {n.name: n for n in model.graph.node}
    for name, node in nodes.items():
        if node.op_type not in INT8_OPS or node.domain:
            continue
        int8_in = _int8_inputs(model, node, producers)
        if name in recorded:  # activation and weight both INT8
            assert len(int8_in) == 2, name
        else:  # float by policy: no INT8 input
            assert int8_in == [], f"{name} ({modules.get(name)}) is float by policy but reads a DQ"
    # the float modules of the policy are float; AQSM and the heads above all
    float_paths = {path for name, path in modules.items() if name not in recorded}
    assert any(p.startswith("head.query_generation") for p in float_paths)
    assert any(p.startswith("head.class_embed") for p in float_paths)
    assert "vis_enc.beit3.vision_embed.proj" in float_paths
    assert not any(p.startswith(("head.query_generation", "head.bbox_embed", "head.nt_embed"))
                   for p in (modules[n] for n in recorded))
    # attention products (no constant operand) are float; Conv outputs are quantized, MatMul outputs not
    consumers = {}
    for node in model.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    for name in recorded:
        quantized_output = any(c.op_type == "QuantizeLinear" for c in consumers.get(nodes[name].output[0], []))
        if nodes[name].op_type in OUTPUT_QUANTIZED_OPS:
            assert quantized_output, name
        elif nodes[name].op_type == "MatMul":  # float output (its bias Add reads it)
            assert not quantized_output, name
    # INT8 weights, one per quantized node, symmetric
    initializers = {t.name: t for t in model.graph.initializer}
    int8_weights = [n.input[0] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in initializers]
    assert len(int8_weights) == len(recorded)
    assert all(initializers[w].data_type == onnx.TensorProto.INT8 for w in int8_weights)
    zero_points = [numpy_helper.to_array(t) for t in model.graph.initializer if t.name.endswith("zero_point")]
    assert zero_points and all((z == 0).all() and z.dtype == np.int8 for z in zero_points)


def test_float_consumers_keep_the_float_tensor(exports):
    """F_v feeds the FPN (INT8) and AQSM (float): AQSM must read F_v itself, not its INT8 rounding."""
    model = onnx.load(exports["portable"].onnx_path)
    producers = _producers(model)
    aqsm = [n for n in model.graph.node if (module_path(n) or "").startswith("head.query_generation")]
    assert len(aqsm) > 50
    for node in aqsm:
        assert _int8_inputs(model, node, producers) == [], node.name


def test_sidecar_records_the_calibration(exports, data_root):
    sidecar = exports["portable"].sidecar
    assert sidecar["precision"] == "int8" and sidecar["float_precision"] == "fp32"
    int8 = sidecar["int8"]
    cal = int8["calibration"]
    assert cal["dataset"] == default_dataset(TINY, list(available_benchmarks(data_root)))
    assert cal["split"] == "train" and cal["samples"] == 6 and cal["method"] == "percentile"  # the default
    assert len(set(map(str, cal["sample_ids"]))) == 6 and cal["runs"] == 3 and cal["batch"] == 2
    assert int8["policy"]["float_modules"] == FLOAT_MODULES
    assert int8["onnxruntime_session"]["disabled_optimizers"] == ["MatMulAddFusion", "CommonSubexpressionElimination"]
    assert int8["qdq"]["quantize_linear"] > 0 and sum(int8["qdq"]["quantized_by_op"].values()) == len(int8["quantized_nodes"])
    assert json.loads(exports["portable"].sidecar_path.read_text())["int8"]["calibration"]["dataset"] == cal["dataset"]
    assert "INT8:" in exports["portable"].report and "calibrated on 6 samples" in exports["portable"].report
    assert exports["tensorrt"].sidecar["int8"]["calibrated_on"].startswith("the portable trace")


def _optimized_ops(path, tmp_path, session: dict | None):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"],
                         disabled_optimizers=list((session or {}).get("disabled_optimizers", [])))
    return onnx.load(options.optimized_model_filepath)


def test_onnxruntime_fuses_every_int8_layer_with_the_recorded_session(exports, tmp_path):
    """With the sidecar's settings ONNX Runtime turns every quantized MatMul into MatMulIntegerToFloat and
    every quantized Conv into QLinearConv; with its defaults float fusions take most MatMuls first."""
    result = exports["portable"]
    by_op = result.sidecar["int8"]["qdq"]["quantized_by_op"]
    optimized = _optimized_ops(result.onnx_path, tmp_path, result.sidecar["int8"]["onnxruntime_session"])
    ops = [n.op_type for n in optimized.graph.node]
    assert ops.count("MatMulIntegerToFloat") == by_op["MatMul"]
    assert ops.count("QLinearConv") == by_op["Conv"]
    default = [n.op_type for n in _optimized_ops(result.onnx_path, tmp_path, None).graph.node]
    assert default.count("MatMulIntegerToFloat") < by_op["MatMul"] / 2


def test_tensorrt_graph_carries_the_portable_calibration(exports, data_root):
    """Same layers, same scales: the tensorrt graph's Q/DQ scales are those calibrated on the portable
    trace (carried over layer by layer), and both graphs compute the same (onnx.reference with the plugin
    ops vs ONNX Runtime with GridSample)."""
    models = {t: onnx.load(exports[t].onnx_path) for t in exports}
    inits = {t: {i.name: numpy_helper.to_array(i) for i in m.graph.initializer} for t, m in models.items()}
    keys = {t: node_keys(m) for t, m in models.items()}
    producers = {t: _producers(m) for t, m in models.items()}
    compared = 0
    for key, node in keys["tensorrt"].items():
        other = keys["portable"][key]
        for t_in, p_in in zip(node.input[:1], other.input[:1]):
            dq_t, dq_p = producers["tensorrt"].get(t_in), producers["portable"].get(p_in)
            if dq_t is None or dq_t.op_type != "DequantizeLinear":
                assert dq_p is None or dq_p.op_type != "DequantizeLinear", key
                continue
            assert inits["tensorrt"][dq_t.input[1]] == inits["portable"][dq_p.input[1]], key
            compared += 1
    assert compared == len(exports["tensorrt"].sidecar["int8"]["quantized_nodes"])
    inputs = verification_inputs(CalibrationSpec(data_root, samples=6), TINY, bundled.TINY_TOKENIZER, 2)
    trt = run_graph(models["tensorrt"], "tensorrt", inputs)
    portable = run_graph(models["portable"], "portable", inputs, exports["portable"].sidecar["int8"]["onnxruntime_session"])
    # measured: same points, outputs within 0.9 % of their range (INT8 roundings of inputs that differ by
    # the plugin's float32 summation order)
    np.testing.assert_array_equal(trt["points"], portable["points"])
    for name in FLOAT_OUTPUTS:
        scale = np.abs(portable[name]).max()
        assert np.abs(trt[name] - portable[name]).max() <= 2e-2 * scale, name


def test_plugin_nodes_stay_float(exports):
    model = onnx.load(exports["tensorrt"].onnx_path)
    assert check_plugin_nodes(model, TINY, fp16=False) == []
    producers = _producers(model)
    for node in model.graph.node:
        if node.domain == "instancevg":
            assert all(producers.get(i) is None or producers[i].op_type not in ("QuantizeLinear", "DequantizeLinear")
                       for i in node.input), node.name


def test_int8_fp16_tensorrt_graph(data_root, tmp_path):
    """--int8 --fp16: the float parts follow the FP16 policy, Q/DQ on FP16 tensors (opset 19)."""
    result = export_onnx(tmp_path / "m.onnx", "tiny",
                         ExportOptions(target="tensorrt", fp16=True, int8=True, opset=19, batch=BatchSpec.fixed(2),
                                       calibration=CalibrationSpec(data_root, samples=4)), log=None)
    assert result.verification.passed
    assert max(e.max_rel for e in result.verification.errors if e.name in FLOAT_OUTPUTS) < MEASURED_BOUND
    model = onnx.load(result.onnx_path)
    assert check_qdq_placement(model) == [] and check_plugin_nodes(model, TINY, fp16=True) == []
    types = value_types(model)
    inits = {t.name: t for t in model.graph.initializer}
    activation_q = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert activation_q
    for q in activation_q:  # FP16 tensors quantized with FP16 scales
        assert types[q.input[0]].elem_type == inits[q.input[1]].data_type == onnx.TensorProto.FLOAT16
    assert result.sidecar["fp16_policy"] is not None and result.sidecar["float_precision"] == "fp16"
    assert result.sidecar["int8"]["onnxruntime_session"]["graph_optimization_level"] == "ORT_DISABLE_ALL"
    assert result.sidecar["int8"]["calibration"]["method"] == "minmax"  # the default for FP16 graphs


# ------------------------------------------------------------------ refusals (before any model is loaded)
@pytest.mark.parametrize("argv,message", [
    (["--int8"], "--int8 needs --calib-data"),
    (["--calib-data", "{root}"], "go with --int8"),
    (["--calib-samples", "4"], "--calib-* options need --calib-data and --int8"),
    (["--int8", "--calib-data", "{root}/missing"], "not a directory"),
    (["--int8", "--calib-data", "{empty}"], "no benchmark found"),
    (["--int8", "--calib-data", "{root}", "--calib-samples", "0"], "--calib-samples must be >= 1"),
    (["--int8", "--calib-data", "{root}", "--calib-samples", "100000"], "has only"),
    (["--int8", "--calib-data", "{root}", "--calib-dataset", "cocoref"], "unknown benchmark 'cocoref'"),
    (["--int8", "--calib-data", "{root}", "--calib-split", "holdout"], "--calib-split holdout"),
    (["--int8", "--fp16", "--opset", "18", "--calib-data", "{root}"], "needs --opset 19"),
    (["--int8", "--fp16", "--calib-data", "{root}", "--calib-method", "percentile"], "use --calib-method minmax"),
    (["--int8", "--calib-data", "{root}", "--config", "gres-base", "--random-weights"], "needs --tokenizer"),
])
def test_bad_calibration_input_is_refused_and_nothing_is_written(argv, message, data_root, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out" / "m.onnx"
    argv = [a.format(root=data_root, empty=empty) for a in argv]
    assert export_main(argv + ["-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_bench_times_several_graphs_in_one_run(exports, tmp_path, capsys):
    from evaluation.bench import main as bench_main

    paths = []
    for stem in ("a", "b"):
        shutil.copy(exports["portable"].onnx_path, tmp_path / f"{stem}.onnx")
        shutil.copy(exports["portable"].sidecar_path, tmp_path / f"{stem}.json")
        paths.append(str(tmp_path / f"{stem}.onnx"))
    report = tmp_path / "bench.json"
    assert bench_main(["--backends", "pytorch,onnxruntime", "--onnx", ",".join(paths), "--batch-sizes", "2",
                       "--iters", "1", "--warmup", "0", "-o", str(report)]) == 0
    rows = json.loads(report.read_text())["rows"]
    assert [r["backend"] for r in rows] == ["pytorch", "onnxruntime[a]", "onnxruntime[b]"]
    assert all(r["speedup_vs_pytorch"] > 0 and r["batch"] == 2 for r in rows)
    assert "onnxruntime[b]" in capsys.readouterr().out


def test_parity_of_the_int8_graph_uses_the_int8_tolerance(exports, data_root):
    from evaluation.backends.onnxruntime import OnnxRuntimeBackend
    from evaluation.backends.pytorch import PyTorchBackend
    from evaluation.parity import compare_split, default_tolerance
    from instancevg.data.datasets import open_dataset

    candidate = OnnxRuntimeBackend(exports["portable"].onnx_path)
    assert candidate.describe()["precision"] == "int8"
    result = compare_split(candidate, PyTorchBackend.from_files("tiny"), open_dataset("grefcoco", "val", data_root),
                           ("grec", "gres"), batch_size=2, max_samples=4)
    # 1 point, or one sample's worth on a split this small (4 samples: 25 points)
    assert result.tolerance == default_tolerance("int8", 4) == 25.0 and result.agreement["samples"] == 4
    assert default_tolerance("int8", 400) == 1.0
    assert result.agreement["mean_mask_iou"] > 0.8  # the INT8 graph grounds what PyTorch grounds


def test_sensitivity_comparison_measures_relative_errors(capsys):
    from export.sensitivity import compare, main as sensitivity_main

    reference = [{"class_logits": np.array([1.0, -2.0]), "instance_mask_logits": np.array([4.0]),
                  "debug_point_index": np.array([3, 1])}] * 2
    outputs = [{"class_logits": np.array([1.5, -2.0]), "instance_mask_logits": np.array([4.0]),
                "debug_point_index": np.array([3, 1])},
               {"class_logits": np.array([1.0, -2.0]), "instance_mask_logits": np.array([3.0]),
                "debug_point_index": np.array([1, 3])}]
    row = compare(outputs, reference)
    assert row["class_logits"] == pytest.approx(0.125) and row["instance_mask_logits"] == pytest.approx(0.125)
    assert row["error"] == pytest.approx(0.25) and row["points_identical"] == 0.5
    assert sensitivity_main(["--calib-data", "/nonexistent", "--samples", "0"]) == 2
    assert "--samples must be >= 1" in capsys.readouterr().err


@pytest.mark.slow
def test_sensitivity_tool_ranks_the_attention_products_first(data_root, capsys):
    from export.sensitivity import main as sensitivity_main

    assert sensitivity_main(["--calib-data", data_root, "--calib-samples", "6", "--samples", "6"]) == 0
    lines = capsys.readouterr().out.splitlines()
    policy, everything = (float(line.split()[0]) for line in lines[1:3])
    assert policy < everything  # the policy's float layers are the ones that matter
    assert "self_attn (node_matmul" in lines[3]  # the most sensitive single layer: an attention product
