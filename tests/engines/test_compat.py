"""The TensorRT compatibility check (engines.compat): one crafted graph per rule, the node and the rule in
the findings, the versions they concern; the CLI; the support table covers what our exports contain.
Our exports themselves pass: tests/export/test_compat_exports.py."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from engines.cli import main
from engines.compat import check_tensorrt_compatibility, load_support_table
from engines.compat_rules import rule_from_messages

F32, F16, I64, I32 = TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.INT64, TensorProto.INT32

# op types of our exports (tiny and gres-base, both targets, FP32 and FP16; gres-base adds Sin/Cos),
# listed once from `instancevg-export --config gres-base --random-weights` and the tiny exports
EXPORTED_OPS = sorted({
    "Add", "ArgMax", "Cast", "Clip", "Concat", "ConstantOfShape", "Conv", "ConvTranspose", "Cos", "Div", "Einsum",
    "Equal", "Erf", "Expand", "Floor", "Gather", "GatherElements", "GatherND", "Gemm", "GreaterOrEqual",
    "GridSample", "LayerNormalization", "Less", "Log", "MatMul", "MaxPool", "Min", "Mul", "Not", "Or",
    "ReduceMax", "ReduceMean", "ReduceSum", "Relu", "Reshape", "Resize", "Sigmoid", "Sin", "Slice", "Softmax",
    "Split", "Sqrt", "Squeeze", "Sub", "TopK", "Transpose", "Unsqueeze", "Where"})


def make_model(nodes, inputs, outputs, initializers=(), opset=18, extra_opsets=(), value_info=()):
    graph = helper.make_graph(nodes, "crafted", inputs, outputs, list(initializers), value_info=list(value_info))
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    return helper.make_model(graph, opset_imports=opsets, ir_version=10)


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def findings(model, **kwargs):
    return check_tensorrt_compatibility(model, **kwargs).findings


def only(found, rule, node=None):
    """The findings of ``rule`` (on ``node``); fails unless there is at least one."""
    hits = [f for f in found if f.rule == rule and (node is None or f.node == node)]
    assert hits, f"no {rule} finding on {node}: {[f.line() for f in found]}"
    return hits


def relu_model(opset=18):
    return make_model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", F32, [1, 4])],
                      [vi("y", F32, [1, 4])], opset=opset)


def test_a_clean_graph_passes_and_names_the_versions():
    report = check_tensorrt_compatibility(relu_model())
    assert report.passed and report.findings == []
    text = report.format()
    assert "passed" in text and "TensorRT 10.x (parser table 10.15, opsets 9..24" in text
    assert "TensorRT 11.x (parser table 11.5, opsets 9..25" in text and "no problems found" in text


def test_opset_outside_the_parser_range():
    f = only(findings(relu_model(opset=25)), "opset")
    assert [x.versions for x in f] == [("10",)] and "outside 9..24" in f[0].message
    assert {v for x in only(findings(relu_model(opset=26)), "opset") for v in x.versions} == {"10", "11"}


def test_unsupported_and_unknown_operators():
    model = make_model([helper.make_node("Unique", ["x"], ["u"], name="uniq"),
                        helper.make_node("NotAnOnnxOp", ["x"], ["z"], name="weird")],
                       [vi("x", F32, [4])], [vi("u", F32, None), vi("z", F32, None)])
    found = findings(model)
    assert only(found, "operator", "uniq")[0].versions == ("10", "11")
    assert "look for a plugin" in only(found, "operator", "weird")[0].message
    # inside an If branch
    branch = helper.make_graph([helper.make_node("Unique", ["x"], ["u"], name="inner_unique")], "then", [],
                               [vi("u", F32, None)])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["u2"], name="inner_id")], "else", [],
                              [vi("u2", F32, None)])
    cond = make_model([helper.make_node("If", ["c"], ["r"], then_branch=branch, else_branch=other, name="if")],
                      [vi("c", TensorProto.BOOL, []), vi("x", F32, [4])], [vi("r", F32, None)])
    assert "inside then_branch of If node 'if'" in only(findings(cond), "operator", "inner_unique")[0].message
    # Swish: imported by the 11.x parser only
    swish = make_model([helper.make_node("Swish", ["x"], ["y"], name="swish")], [vi("x", F32, [4])],
                       [vi("y", F32, [4])], opset=24)
    assert only(findings(swish), "operator", "swish")[0].versions == ("10",)


def test_unsupported_input_types_and_tensor_types():
    model = make_model(
        [helper.make_node("MatMul", ["a", "b"], ["m"], name="int_matmul"),
         helper.make_node("Cast", ["x"], ["u8"], to=TensorProto.UINT8, name="to_uint8"),
         helper.make_node("Cast", ["u8"], ["back"], to=TensorProto.FLOAT, name="from_uint8"),
         helper.make_node("Cast", ["x"], ["i16"], to=TensorProto.INT16, name="to_int16")],
        [vi("a", I64, [2, 2]), vi("b", I64, [2, 2]), vi("x", F32, [2]), vi("d", TensorProto.DOUBLE, [2])],
        [vi("m", I64, [2, 2]), vi("back", F32, [2]), vi("i16", TensorProto.INT16, [2])])
    found = findings(model)
    assert "input 0 ('a') is INT64" in only(found, "data-type", "int_matmul")[0].message
    assert "only as a network input or output" in only(found, "tensor-type", "to_uint8")[0].message
    assert "no such type" in only(found, "tensor-type", "to_int16")[0].message
    double = [f for f in only(found, "tensor-type") if "'d'" in f.message]
    assert double and double[0].severity == "warning"  # cast down to FP32 by the parser


def test_strongly_typed_networks_do_not_mix_float16_and_float32():
    model = make_model([helper.make_node("Add", ["h", "f"], ["y"], name="mixed_add")],
                       [vi("h", F16, [2]), vi("f", F32, [2])], [vi("y", F16, [2])])
    f = only(findings(model), "strongly-typed", "mixed_add")[0]
    assert "FP16 and FP32" in f.message and "Cast" in f.message and f.versions == ("10", "11")


def test_attribute_values_the_importers_refuse():
    roi = numpy_helper.from_array(np.zeros(8, np.float32), "roi")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    k = numpy_helper.from_array(np.array([2], np.int64), "k")
    model = make_model(
        [helper.make_node("Resize", ["x", "roi", "scales"], ["r"], mode="linear",
                          coordinate_transformation_mode="tf_crop_and_resize", name="resize"),
         helper.make_node("TopK", ["v", "k"], ["tv", "ti"], sorted=0, name="topk"),
         helper.make_node("Einsum", ["p", "q"], ["e"], equation="BQ,QC->BC", name="einsum"),
         helper.make_node("MaxPool", ["x"], ["mp"], kernel_shape=[2, 2], dilations=[2, 2], name="pool")],
        [vi("x", F32, [1, 1, 4, 4]), vi("v", F32, [1, 8]), vi("p", F32, [2, 3]), vi("q", F32, [3, 4])],
        [vi("r", F32, None), vi("tv", F32, None), vi("ti", I64, None), vi("e", F32, None), vi("mp", F32, None)],
        [roi, scales, k])
    found = findings(model)
    assert "coordinate_transformation_mode='tf_crop_and_resize'" in only(found, "attribute", "resize")[0].message
    assert "sorted=0" in only(found, "attribute", "topk")[0].message
    assert "lower-case" in only(found, "attribute", "einsum")[0].message
    assert "dilations=[2, 2]" in only(found, "attribute", "pool")[0].message


def test_inputs_that_must_be_constants_and_unsupported_outputs():
    model = make_model(
        [helper.make_node("ReduceSum", ["x", "axes"], ["s"], name="reduce"),
         helper.make_node("LayerNormalization", ["x", "g", "b"], ["ln", "mean"], name="ln"),
         helper.make_node("MaxPool", ["x1d"], ["mp"], kernel_shape=[2], name="pool1d")],
        [vi("x", F32, [2, 4]), vi("axes", I64, [1]), vi("x1d", F32, [1, 1, 8])],
        [vi("s", F32, None), vi("ln", F32, None), vi("mean", F32, None), vi("mp", F32, None)],
        [numpy_helper.from_array(np.ones(4, np.float32), "g"), numpy_helper.from_array(np.zeros(4, np.float32), "b")])
    found = findings(model)
    assert "input 1 ('axes') must be an initializer" in only(found, "constant-input", "reduce")[0].message
    assert "outputs [1]" in only(found, "output", "ln")[0].message
    assert "rank 3" in only(found, "input-rank", "pool1d")[0].message


def test_gridsample_rank_and_opset_20_modes():
    five_d = make_model([helper.make_node("GridSample", ["x", "g"], ["y"], name="gs5", mode="bilinear")],
                        [vi("x", F32, [1, 1, 2, 4, 4]), vi("g", F32, [1, 2, 4, 4, 3])], [vi("y", F32, None)], opset=18)
    assert only(findings(five_d), "input-rank", "gs5")[0].versions == ("10",)  # 5-D since the 11.2 parser
    model = make_model([helper.make_node("GridSample", ["x", "g"], ["y"], name="gs", mode="linear")],
                       [vi("x", F32, [1, 1, 4, 4]), vi("g", F32, [1, 4, 4, 2])], [vi("y", F32, None)], opset=20)
    f = only(findings(model), "gridsample-opset20", "gs")[0]
    assert "samples nearest" in f.message and f.versions == ("10", "11")
    at_19 = make_model([helper.make_node("GridSample", ["x", "g"], ["y"], name="gs", mode="bilinear")],
                       [vi("x", F32, [1, 1, 4, 4]), vi("g", F32, [1, 4, 4, 2])], [vi("y", F32, None)], opset=19)
    assert findings(at_19) == []


def msda_model(index_type=I32, value_type=F32, location_type=None, attrs=None, name="MSDeformAttn_0"):
    location_type = location_type or value_type
    attrs = {"plugin_namespace": "instancevg", "plugin_version": "1"} if attrs is None else attrs
    shapes = numpy_helper.from_array(np.array([[4, 4]], helper.tensor_dtype_to_np_dtype(index_type)), "shapes")
    starts = numpy_helper.from_array(np.array([0], helper.tensor_dtype_to_np_dtype(index_type)), "starts")
    node = helper.make_node("MSDeformAttn", ["value", "shapes", "starts", "loc", "w"], ["out"], name=name,
                            domain="instancevg", **attrs)
    return make_model([node], [vi("value", value_type, [1, 16, 2, 4]), vi("loc", location_type, [1, 3, 2, 1, 2, 2]),
                               vi("w", value_type, [1, 3, 2, 1, 2])],
                      [vi("out", value_type, [1, 3, 8])], [shapes, starts], extra_opsets=[("instancevg", 1)])


def point_select_model(**attrs):
    fields = {"plugin_namespace": "instancevg", "plugin_version": "1", "num_points": 3, "w_dist": 0.003}
    fields.update(attrs)
    fields = {k: v for k, v in fields.items() if v is not None}
    node = helper.make_node("PointSelect", ["scores"], ["idx", "pts"], name="PointSelect_0", domain="instancevg",
                            **fields)
    return make_model([node], [vi("scores", F32, [1, 8, 8])], [vi("idx", I32, [1, 3]), vi("pts", F32, [1, 3, 2])],
                      extra_opsets=[("instancevg", 1)])


def test_our_plugin_nodes_pass_the_contract():
    assert findings(msda_model()) == [] and findings(msda_model(value_type=F16)) == []
    assert findings(point_select_model()) == []


@pytest.mark.parametrize("model, rule, text", [
    (point_select_model(plugin_version="2"), "plugin-contract", "plugin_version='2', expected '1'"),
    (point_select_model(plugin_namespace=None), "plugin-contract", "plugin_namespace missing"),
    (point_select_model(im2col_step=64), "plugin-contract", "not a field of the PointSelect creator"),
    (point_select_model(num_points=3.0), "plugin-contract", "num_points is FLOAT, the creator expects INT"),
    (point_select_model(w_dist=None), "plugin-contract", "field w_dist missing"),
    (point_select_model(num_points=2**40), "plugin-int32", "does not fit int32"),
    (msda_model(index_type=I64), "plugin-int32", "spatial_shapes is INT64, expected INT32"),
    (msda_model(value_type=F16, location_type=F32), "plugin-contract", "sampling_locations is FP32, expected FP16"),
    (msda_model(attrs={"plugin_namespace": "instancevg", "plugin_version": 1}), "plugin-contract",
     "plugin_version is INT, expected the STRING '1'"),
])
def test_plugin_node_contract_violations(model, rule, text):
    node = model.graph.node[0].name
    assert any(text in f.message for f in only(findings(model), rule, node)), [f.line() for f in findings(model)]


def test_other_custom_nodes_are_flagged_with_their_caveats():
    node = helper.make_node("MyPlugin", ["x", "i"], ["y"], name="mine", domain="my.ops", big=2**40)
    model = make_model([node], [vi("x", F32, [2]), vi("i", I64, [2])], [vi("y", F32, [2])],
                       extra_opsets=[("my.ops", 1)])
    found = findings(model)
    assert only(found, "custom-operator", "mine")[0].severity == "warning"
    assert any("does not fit int32" in f.message for f in only(found, "plugin-int32", "mine"))
    assert any("INT64 inputs ['i']" in f.message for f in only(found, "plugin-int32", "mine"))


def test_dynamic_shapes_the_build_cannot_handle():
    model = make_model(
        [helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
         helper.make_node("Squeeze", ["z"], ["sq"], name="squeeze")],
        [vi("x", F32, ["batch", 3, "height"]), vi("shape", I64, [2]), vi("z", F32, ["n", 1])],
        [vi("r", F32, None), vi("sq", F32, None)])
    found = findings(model)
    graph_level = [f.message for f in only(found, "dynamic-shape") if f.node is None]
    assert any("'x' has symbolic dimensions on axes [2]" in m for m in graph_level)
    assert any("'shape' feeds input 1 of Reshape node 'reshape' as a shape tensor" in m for m in graph_level)
    assert only(found, "dynamic-shape", "squeeze")[0].versions == ("10",)  # fixed in the 11.5 parser
    unknown_rank = make_model([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                              [helper.make_tensor_value_info("x", F32, None)], [vi("y", F32, None)])
    assert "no known rank" in only(findings(unknown_rank), "dynamic-shape")[0].message


def test_extra_rules_plug_in_and_versions_can_be_restricted():
    extra = rule_from_messages("qdq-placement", lambda model: [f"{len(model.graph.node)} nodes, no Q/DQ"])
    report = check_tensorrt_compatibility(relu_model(), versions=("11",), extra_rules=[extra])
    (f,) = report.findings
    assert f.rule == "qdq-placement" and f.message == "1 nodes, no Q/DQ" and f.versions == ("11",)
    assert not report.passed and "TensorRT 10.x" not in report.format()
    with pytest.raises(ValueError, match="unknown TensorRT major"):
        check_tensorrt_compatibility(relu_model(), versions=("9",))


def test_cli_check_exit_codes_and_report(tmp_path, capsys):
    good, bad = tmp_path / "good.onnx", tmp_path / "bad.onnx"
    onnx.save(relu_model(), good)
    onnx.save(point_select_model(plugin_version="2"), bad)
    assert main(["--check", str(good)]) == 0
    out = capsys.readouterr().out
    assert ": passed" in out and "TensorRT 10.x" in out and "TensorRT 11.x" in out
    assert main(["--check", str(bad), "--tensorrt-major", "11"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "[plugin-contract] node 'PointSelect_0' (instancevg::PointSelect)" in out
    assert "(TensorRT 11.x)" in out and "TensorRT 10.x" not in out
    assert main(["--check", str(tmp_path / "missing.onnx")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "junk.onnx").write_bytes(b"\x00junk")
    assert main(["--check", str(tmp_path / "junk.onnx")]) == 2
    assert "is not an ONNX model" in capsys.readouterr().err


def test_support_table_records_versions_sources_and_our_ops():
    table = load_support_table()
    assert set(table["tensorrt"]) == {"10", "11"}
    assert table["tensorrt"]["10"]["opset"] == [9, 24] and table["tensorrt"]["11"]["opset"] == [9, 25]
    sources = json.dumps(table["sources"])
    assert "onnx/onnx-tensorrt" in sources and "docs/operators.md" in sources and "NVIDIA/TensorRT" in sources
    for op in EXPORTED_OPS:
        entry = table["operators"][op]
        assert entry["supported"] == ["10", "11"] and entry["types"], op
    for name, entry in table["operators"].items():  # the named checks exist
        from engines.compat_rules import OP_CHECKS
        assert set(entry.get("checks", [])) <= set(OP_CHECKS), name


def test_engines_compat_imports_without_torch_tensorrt_or_instancevg():
    import subprocess
    import sys

    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'tensorrt', 'instancevg', 'export'):\n"
            "            raise ImportError('blocked ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import engines.compat, engines.plugin_contract\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
