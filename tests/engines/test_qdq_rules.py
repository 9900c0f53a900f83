"""engines.qdq_rules: TensorRT's Q/DQ placement rules on small hand-built graphs (each rule broken once, the
message naming the node), and instancevg-build-engine refusing / printing INT8 graphs."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from engines.cli import main
from engines.qdq_rules import check_qdq_placement, has_qdq, output_channel_axis


def _init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def conv_graph(weight_axis=0, zero=0, zp_type=np.int8, scale=0.05, relu_after_dq=False, plugin=False,
               float_weight=False, q_to_add=False, activation_channels=False):
    """x -> Q -> DQ -> Conv(W: INT8 DQ per channel) -> Q -> DQ -> Relu -> y (output-quantized conv)."""
    w = np.arange(4 * 3 * 1 * 1, dtype=np.int8).reshape(4, 3, 1, 1)
    inits = [_init("x_scale", np.float32(scale) if not activation_channels else np.full(3, scale, np.float32)),
             _init("x_zp", zp_type(zero) if not activation_channels else np.zeros(3, zp_type)),
             _init("w_q", w), _init("w_scale", np.full(w.shape[weight_axis], 0.01, np.float32)),
             _init("w_zp", np.zeros(w.shape[weight_axis], np.int8)),
             _init("y_scale", np.float32(0.1)), _init("y_zp", np.int8(0)), _init("w_f", w.astype(np.float32))]
    nodes = [helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["x_q"], name="q_x"),
             helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zp"], ["x_dq"], name="dq_x"),
             helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w_dq"], name="dq_w", axis=weight_axis),
             helper.make_node("Conv", ["x_dq", "w_f" if float_weight else "w_dq"], ["c"], name="conv"),
             helper.make_node("QuantizeLinear", ["c", "y_scale", "y_zp"], ["c_q"], name="q_c"),
             helper.make_node("DequantizeLinear", ["c_q", "y_scale", "y_zp"], ["c_dq"], name="dq_c"),
             helper.make_node("Relu", ["c_dq"], ["y"], name="relu")]
    if float_weight:
        nodes.remove(nodes[2])
    if relu_after_dq:  # an input Q/DQ pair that feeds no weighted op
        nodes.append(helper.make_node("Relu", ["x_dq"], ["z"], name="stray_relu"))
    if plugin:
        nodes.append(helper.make_node("MSDeformAttn", ["x_dq"], ["p"], name="msda", domain="instancevg"))
    if q_to_add:
        nodes.append(helper.make_node("Add", ["x_q", "x_q"], ["s"], name="int8_add"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("instancevg", 1)])


def test_a_conforming_graph_has_no_problems():
    model = conv_graph()
    assert has_qdq(model) and check_qdq_placement(model) == []


@pytest.mark.parametrize("kwargs,message", [
    ({"weight_axis": 1}, "per-channel axis 1 for the weight of Conv 'conv'; TensorRT quantizes its output channels, axis 0"),
    ({"zero": 3}, "QuantizeLinear 'q_x': non-zero zero point"),
    ({"zp_type": np.uint8}, "QuantizeLinear 'q_x': zero point of type uint8"),
    ({"scale": -0.5}, "QuantizeLinear 'q_x': scale 'x_scale' has non-positive or non-finite values"),
    ({"scale": np.inf}, "non-positive or non-finite"),
    ({"relu_after_dq": True}, "DequantizeLinear 'dq_x': feeds Relu 'stray_relu'"),
    ({"plugin": True}, "plugin node instancevg::MSDeformAttn 'msda'"),
    ({"float_weight": True}, "Conv 'conv': input 1 is float while another is INT8"),
    ({"q_to_add": True}, "QuantizeLinear 'q_x': its INT8 output feeds Add 'int8_add'"),
    ({"activation_channels": True}, "DequantizeLinear 'dq_x': per-channel scale on an activation"),
])
def test_each_broken_rule_is_reported_naming_the_node(kwargs, message):
    problems = check_qdq_placement(conv_graph(**kwargs))
    assert any(message in p for p in problems), problems


def test_weight_axes_follow_tensorrt():
    conv, deconv = helper.make_node("Conv", ["a", "b"], ["c"]), helper.make_node("ConvTranspose", ["a", "b"], ["c"])
    gemm_t = helper.make_node("Gemm", ["a", "b"], ["c"], transB=1)
    assert output_channel_axis(conv, 4) == 0 and output_channel_axis(deconv, 4) == 1
    assert output_channel_axis(helper.make_node("MatMul", ["a", "b"], ["c"]), 2) == 1
    assert output_channel_axis(gemm_t, 2) == 0 and output_channel_axis(helper.make_node("Gemm", ["a", "b"], ["c"]), 2) == 1


def test_unpaired_dequantize_and_non_constant_scale():
    model = conv_graph()
    dq = next(n for n in model.graph.node if n.name == "dq_x")
    dq.input[0] = "x"  # DQ of a float graph input, no Q before it
    problems = check_qdq_placement(model)
    assert any("DequantizeLinear 'dq_x': reads 'x', not the output of a QuantizeLinear" in p for p in problems)
    model = conv_graph()
    q = next(n for n in model.graph.node if n.name == "q_x")
    q.input[1] = "x"  # a computed scale
    assert any("scale 'x' is not a constant" in p for p in check_qdq_placement(model))


SIDECAR = {"inputs": [{"name": "image", "shape": [1, 3, 4, 4], "dtype": "float32"}],
           "batch": {"dynamic": False, "min": 1, "opt": 1, "max": 1}, "precision": "int8", "target": "tensorrt"}


def test_build_engine_prints_int8_lines_and_refuses_a_broken_graph(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    onnx.save(conv_graph(), path)
    (tmp_path / "m.json").write_text(json.dumps(SIDECAR))
    assert main([str(path), "--print-trtexec", "--plugins", "lib/libinstancevg_plugins.so"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# INT8 (explicit quantization, 2 Q/DQ pairs): fits TensorRT's Q/DQ placement rules")
    commands = [line for line in out.splitlines() if line.startswith("trtexec ")]
    assert len(commands) == 4 and not any("--int8" in c or "--fp16" in c for c in commands)
    assert out.count("--stronglyTyped") == 2  # TensorRT 10 only
    onnx.save(conv_graph(zero=5), path)
    assert main([str(path), "--print-trtexec"]) == 2
    err = capsys.readouterr().err
    assert "breaks TensorRT's Q/DQ placement rules" in err and "non-zero zero point" in err
