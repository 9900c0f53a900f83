"""Tensorrt-target graphs in ONNX Runtime, their plugin nodes running the plugins' host kernels as custom
operators, against the independent runtime: onnx.reference with the Python plugin ops (which call the
reference ops).

Tolerances, relative to each output's range: FP32 1e-5 (the two runtimes differ in summation order only;
measured ~1e-6); FP16 2e-2 (onnx.reference rounds every FP16 intermediate its own way: measured ~1e-3).
Selections identical in both.
"""
import hashlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from export.graph import strip_debug_outputs
from export.ort_session import onnxruntime_session, run_session, with_custom_ops
from export.reference_runtime import reference_session

pytestmark = pytest.mark.usefixtures("plugin_kernels")


@pytest.mark.parametrize("combination,limit", [("tensorrt-fp32", 1e-5), ("tensorrt-fp16", 2e-2)])
def test_custom_operators_agree_with_onnx_reference(traced, combination, limit):
    graph = traced(combination)
    feeds = dict(graph.inputs, image=graph.inputs["image"].astype(
        np.float16 if graph.options.fp16_io else np.float32))
    ours = run_session(onnxruntime_session(graph.model), feeds)
    names = [o.name for o in graph.model.graph.output]
    independent = dict(zip(names, reference_session(graph.model).run(names, feeds)))
    for name in ("debug_point_index", "debug_text_index", "points"):
        assert np.array_equal(ours[name], independent[name]), name
    for name in ("class_logits", "boxes", "instance_mask_logits", "global_mask_logits", "exist_logits"):
        ref = independent[name].astype(np.float64)
        assert np.abs(ours[name] - ref).max() <= limit * np.abs(ref).max(), name


def test_the_file_on_disk_is_not_changed(traced, tmp_path):
    path = tmp_path / "tensorrt.onnx"
    onnx.save(strip_debug_outputs(traced("tensorrt-fp16").model), path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    session = onnxruntime_session(path)
    assert {o.name for o in session.get_outputs()} >= {"boxes", "points"}
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert {n.domain for n in onnx.load(path).graph.node} >= {"instancevg"}


def test_float16_nodes_run_the_float32_kernel_between_casts(traced):
    copy = with_custom_ops(traced("tensorrt-fp16").model)
    kernels = [n for n in copy.graph.node if n.domain == "ai.onnx.contrib"]
    assert sorted({n.op_type for n in kernels}) == ["InstanceVGMSDeformAttn", "InstanceVGPointSelect"]
    casts = [n for n in copy.graph.node if n.op_type == "Cast" and n.name.startswith("MSDeformAttn")]
    assert len(casts) == 4 * sum(n.op_type == "InstanceVGMSDeformAttn" for n in kernels)  # 3 in, 1 out each


def test_an_unknown_plugin_node_is_refused():
    node = helper.make_node("Warp", ["x"], ["y"], domain="instancevg", name="Warp_0")
    model = helper.make_model(helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]),
                              opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("instancevg", 1)])
    with pytest.raises(ValueError, match="plugin node Warp_0 .Warp. has no ONNX Runtime custom operator"):
        onnxruntime_session(model)
