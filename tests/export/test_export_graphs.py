"""The tiny model exported in the tensorrt / portable x fp32 / fp16 combinations: verification, the plugin
node contract, FP16 typing and selections, written files."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import AttributeProto, TensorProto

from export import TOLERANCES, finish_export
from export.contract import check_plugin_nodes, check_portable, value_types
from export.graph import DEBUG_OUTPUT_NAMES
from export.options import MAX_IR_VERSION
from export.verify import run_graph
from instancevg.config import get_config
from instancevg.structures import INPUT_NAMES, RAW_OUTPUT_NAMES

from .conftest import COMBINATIONS

TINY = get_config("tiny")


@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_combination_verifies_and_is_written(name, traced, tmp_path):
    graph = traced(name)
    result = finish_export(graph, tmp_path / "model.onnx", log=None)
    report = result.verification
    assert report is not None and report.passed
    errors = {e.name: e for e in report.errors}
    assert set(errors) == set(RAW_OUTPUT_NAMES) | set(DEBUG_OUTPUT_NAMES)
    precision = graph.options.precision
    for out in RAW_OUTPUT_NAMES:
        assert errors[out].max_abs <= TOLERANCES[precision][out].limit(errors[out].scale)
    if precision == "fp32":  # tight: operator reordering only
        assert max(errors[n].max_rel for n in RAW_OUTPUT_NAMES) < 1e-4
    assert errors["points"].max_abs == 0.0
    # the written graph: the shipped I/O, IR and opset, checker-clean
    written = onnx.load(tmp_path / "model.onnx")
    onnx.checker.check_model(written, full_check=True)
    assert written.ir_version <= MAX_IR_VERSION
    assert {o.domain: o.version for o in written.opset_import}[""] == graph.options.opset
    assert [i.name for i in written.graph.input] == list(INPUT_NAMES)
    assert [o.name for o in written.graph.output] == list(RAW_OUTPUT_NAMES)
    assert len(written.graph.node) == len(graph.model.graph.node)  # no node went with the debug outputs
    assert (tmp_path / "model.json").is_file()
    assert "MiB" in result.report and "nodes:" in result.report


@pytest.mark.parametrize("name", ["tensorrt-fp32", "tensorrt-fp16"])
def test_tensorrt_plugin_nodes_follow_the_contract(name, traced):
    graph = traced(name)
    model, fp16 = graph.model, graph.options.fp16
    assert check_plugin_nodes(model, TINY, fp16) == []
    custom = [n for n in model.graph.node if n.domain not in ("", "ai.onnx")]
    assert sorted(n.op_type for n in custom) == ["MSDeformAttn"] * TINY.decoder_layers + ["PointSelect"]
    assert {n.domain for n in custom} == {"instancevg"}
    assert {o.domain: o.version for o in model.opset_import}["instancevg"] == 1
    types = value_types(model)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    value_type = TensorProto.FLOAT16 if fp16 else TensorProto.FLOAT
    for node in custom:
        attrs = {a.name: a for a in node.attribute}
        assert attrs["plugin_namespace"].type == AttributeProto.STRING and attrs["plugin_namespace"].s == b"instancevg"
        assert attrs["plugin_version"].type == AttributeProto.STRING and attrs["plugin_version"].s == b"1"
        if node.op_type == "MSDeformAttn":
            assert set(attrs) == {"plugin_namespace", "plugin_version"}
            assert len(node.input) == 5 and len(node.output) == 1
            value, shapes, starts, locations, weights = node.input
            assert [types[n].elem_type for n in (value, locations, weights, node.output[0])] == [value_type] * 4
            assert types[shapes].elem_type == TensorProto.INT32 and types[starts].elem_type == TensorProto.INT32
            assert inits[shapes].tolist() == [[32, 32], [16, 16], [8, 8], [4, 4]]
            assert inits[starts].tolist() == [0, 1024, 1280, 1344]
            assert types[value].shape[1:] == (1360, TINY.decoder_heads, TINY.hidden_dim // TINY.decoder_heads)
            assert types[node.output[0]].shape[1:] == (TINY.num_queries, TINY.hidden_dim)
        else:
            assert set(attrs) == {"plugin_namespace", "plugin_version", "num_points", "w_dist"}
            assert attrs["num_points"].type == AttributeProto.INT and attrs["num_points"].i == TINY.num_queries
            assert attrs["w_dist"].type == AttributeProto.FLOAT
            assert attrs["w_dist"].f == pytest.approx(TINY.w_dist, rel=1e-6)
            assert [types[n].elem_type for n in node.input] == [TensorProto.FLOAT]
            assert types[node.input[0]].shape[1:] == (TINY.grid_size, TINY.grid_size)
            assert [types[n].elem_type for n in node.output] == [TensorProto.INT32, TensorProto.FLOAT]


def test_portable_graphs_have_standard_ops_only(traced):
    model = traced("portable-fp16").model
    assert check_portable(model) == []
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}
    ops = {n.op_type for n in model.graph.node}
    assert "GridSample" in ops and "ArgMax" in ops


@pytest.mark.parametrize("name", ["tensorrt-fp16", "portable-fp16"])
def test_fp16_graph_selects_the_points_and_tokens_pytorch_selects(name, traced):
    graph = traced(name)
    outputs = run_graph(graph.model, graph.options.target, graph.inputs)
    for key in ("debug_point_index", "debug_text_index", "points"):
        np.testing.assert_array_equal(outputs[key], graph.reference[key], err_msg=key)
    # the test inputs cover both text-filter branches (fewer valid tokens than queries, and more)
    n_valid = (~graph.inputs["text_pad_mask"]).sum(1)
    assert n_valid.min() < TINY.num_queries <= n_valid.max()


@pytest.mark.parametrize("name", ["tensorrt-fp16", "portable-fp16"])
def test_fp16_graph_is_strongly_typed_with_float32_islands(name, traced):
    model = traced(name).model
    types = value_types(model)
    # float32 graph I/O without --fp16-io
    assert types["image"].elem_type == TensorProto.FLOAT
    assert all(types[n].elem_type == TensorProto.FLOAT for n in RAW_OUTPUT_NAMES)
    # weights FP16 except the float32 islands (LayerNorm, AQSM)
    sizes = {}
    for t in model.graph.initializer:
        sizes[t.data_type] = sizes.get(t.data_type, 0) + int(np.prod(t.dims))
    assert sizes[TensorProto.FLOAT16] > 3 * sizes.get(TensorProto.FLOAT, 0)
    # normalisation statistics in float32
    layer_norms = [n for n in model.graph.node if n.op_type == "LayerNormalization"]
    assert layer_norms and all(types[n.input[0]].elem_type == TensorProto.FLOAT for n in layer_norms)
    # the big matmuls run in FP16
    matmul_types = [types[n.input[0]].elem_type for n in model.graph.node if n.op_type == "MatMul"]
    assert matmul_types.count(TensorProto.FLOAT16) > len(matmul_types) // 2
    # the attention map before the selection (TopK of the text filter, the sigmoid before PointSelect /
    # ArgMax) is float32
    for node in model.graph.node:
        if node.op_type in ("TopK", "ArgMax", "Sigmoid"):
            assert types[node.input[0]].elem_type == TensorProto.FLOAT, node.name
