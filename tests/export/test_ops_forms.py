"""The export-target setting of instancevg.ops and the Python plugin ops of the reference evaluator."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

from export.reference_ops import PluginContractError
from export.reference_runtime import reference_session
from instancevg import ops
from instancevg.ops.export_target import current_export_target, emit_plugin_nodes, onnx_export_target


def test_export_target_is_scoped_to_its_context():
    assert current_export_target() == "portable"
    with onnx_export_target("tensorrt"):
        assert current_export_target() == "tensorrt"
        assert not emit_plugin_nodes()  # only while torch.onnx.export traces
        with onnx_export_target("portable"):
            assert current_export_target() == "portable"
        assert current_export_target() == "tensorrt"
        seen = []
        thread = threading.Thread(target=lambda: seen.append(current_export_target()))
        thread.start()
        thread.join()
        assert seen == ["portable"]  # other threads are not affected
    assert current_export_target() == "portable"
    with pytest.raises(ValueError, match="unknown ONNX export target 'onnxruntime'"):
        with onnx_export_target("onnxruntime"):
            pass


def test_small_module_exports_plugin_nodes_only_in_the_tensorrt_context():
    class Selector(torch.nn.Module):
        def forward(self, scores):
            idx, pts = ops.select_points(scores, 3, 0.003)
            return idx, pts

    scores = torch.rand(2, 4, 4)
    kinds = {}
    for target in ("tensorrt", "portable"):
        with onnx_export_target(target):
            program = torch.onnx.export(Selector().eval(), (scores,), dynamo=True, opset_version=18, verbose=False)
        kinds[target] = {n.op_type for n in program.model_proto.graph.node}
    assert "PointSelect" in kinds["tensorrt"] and "ArgMax" not in kinds["tensorrt"]
    assert "PointSelect" not in kinds["portable"] and "ArgMax" in kinds["portable"]


def _node_model(op_type, inputs, outputs, **attrs):
    node = helper.make_node(op_type, [i.name for i in inputs], [o.name for o in outputs], domain="instancevg",
                            **attrs)
    graph = helper.make_graph([node], "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                   helper.make_opsetid("instancevg", 1)], ir_version=10)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_reference_msdeformattn_is_the_op(dtype):
    g = torch.Generator().manual_seed(0)
    shapes = [(6, 5), (3, 3)]
    B, Q, M, D, L, P = 2, 4, 2, 3, 2, 2
    S = sum(h * w for h, w in shapes)
    value = torch.randn(B, S, M, D, generator=g)
    loc = torch.rand(B, Q, M, L, P, 2, generator=g) * 1.2 - 0.1  # some samples outside: zero padding
    weights = torch.rand(B, Q, M, L, P, generator=g)
    elem = TensorProto.FLOAT16 if dtype == np.float16 else TensorProto.FLOAT
    ins = [helper.make_tensor_value_info("value", elem, None),
           helper.make_tensor_value_info("shapes", TensorProto.INT32, None),
           helper.make_tensor_value_info("starts", TensorProto.INT32, None),
           helper.make_tensor_value_info("loc", elem, None), helper.make_tensor_value_info("w", elem, None)]
    model = _node_model("MSDeformAttn", ins, [helper.make_tensor_value_info("out", elem, None)],
                        plugin_namespace="instancevg", plugin_version="1")
    feeds = {"value": value.numpy().astype(dtype), "shapes": np.array(shapes, np.int32),
             "starts": np.array([0, 30], np.int32), "loc": loc.numpy().astype(dtype),
             "w": weights.numpy().astype(dtype)}
    (out,) = reference_session(model).run(None, feeds)
    assert out.dtype == dtype and out.shape == (B, Q, M * D)
    expected = ops.ms_deform_attn(*(torch.from_numpy(feeds[k].astype(np.float32)) for k in ("value",)),
                                  shapes, torch.tensor([0, 30]),
                                  torch.from_numpy(feeds["loc"].astype(np.float32)),
                                  torch.from_numpy(feeds["w"].astype(np.float32)))
    np.testing.assert_allclose(out.astype(np.float32), expected.numpy(), rtol=1e-3 if dtype == np.float16 else 0,
                               atol=2e-3 if dtype == np.float16 else 0)


def test_reference_msdeformattn_refuses_int64_indices():
    ins = [helper.make_tensor_value_info("value", TensorProto.FLOAT, None),
           helper.make_tensor_value_info("shapes", TensorProto.INT64, None),
           helper.make_tensor_value_info("starts", TensorProto.INT32, None),
           helper.make_tensor_value_info("loc", TensorProto.FLOAT, None),
           helper.make_tensor_value_info("w", TensorProto.FLOAT, None)]
    model = _node_model("MSDeformAttn", ins, [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                        plugin_namespace="instancevg", plugin_version="1")
    feeds = {"value": np.zeros((1, 1, 1, 1), np.float32), "shapes": np.array([[1, 1]], np.int64),
             "starts": np.array([0], np.int32), "loc": np.zeros((1, 1, 1, 1, 1, 2), np.float32),
             "w": np.ones((1, 1, 1, 1, 1), np.float32)}
    with pytest.raises(PluginContractError, match="spatial_shapes must be int32"):
        reference_session(model).run(None, feeds)


@pytest.mark.parametrize("scores_dtype", [np.float32, np.float16])
def test_reference_pointselect_is_the_op(scores_dtype):
    scores = torch.rand(2, 5, 6, generator=torch.Generator().manual_seed(1)).sigmoid()
    elem = TensorProto.FLOAT16 if scores_dtype == np.float16 else TensorProto.FLOAT
    model = _node_model("PointSelect", [helper.make_tensor_value_info("s", elem, None)],
                        [helper.make_tensor_value_info("i", TensorProto.INT32, None),
                         helper.make_tensor_value_info("p", TensorProto.FLOAT, None)],
                        plugin_namespace="instancevg", plugin_version="1", num_points=4, w_dist=0.003)
    session = reference_session(model)
    if scores_dtype == np.float16:
        with pytest.raises(PluginContractError, match="scores must be float32"):
            session.run(None, {"s": scores.numpy().astype(np.float16)})
        return
    indices, points = session.run(None, {"s": scores.numpy()})
    ref_idx, ref_pts = ops.select_points(scores, 4, 0.003)
    assert indices.dtype == np.int32 and points.dtype == np.float32
    np.testing.assert_array_equal(indices, ref_idx.numpy())
    np.testing.assert_array_equal(points, ref_pts.numpy())


def test_gather_elements_fix_handles_more_than_64_choices():
    data = np.arange(2 * 400 * 3, dtype=np.float32).reshape(2, 400, 3)
    index = np.array([[[399, 0, 5]], [[-1, 7, 200]]], dtype=np.int64)
    node = helper.make_node("GatherElements", ["d", "i"], ["o"], axis=1)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("d", TensorProto.FLOAT, None),
                                            helper.make_tensor_value_info("i", TensorProto.INT64, None)],
                              [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    (out,) = reference_session(model).run(None, {"d": data, "i": index})
    np.testing.assert_array_equal(out, np.take_along_axis(data, np.where(index < 0, index + 400, index), 1))


def test_selection_gaps_accept_ties_and_measure_shortfalls():
    from export.verify import point_selection_gap, text_selection_gap

    scores = np.full(16, 0.5, np.float32)
    scores[[5, 10]] = 0.6  # two equal maxima: either first pick is a tie
    assert point_selection_gap(scores, np.array([5, 10]), (4, 4), 0.0) == 0.0
    assert point_selection_gap(scores, np.array([10, 5]), (4, 4), 0.0) == 0.0
    assert point_selection_gap(scores, np.array([0, 5]), (4, 4), 0.0) == pytest.approx(0.1, rel=1e-5)
    assert point_selection_gap(scores, np.array([5, 5]), (4, 4), 0.0) == float("inf")
    text = np.array([0.3, 0.1, 0.3, 0.2, -np.inf], np.float32)
    assert text_selection_gap(text, np.array([2, 0])) == 0.0  # equal scores in either order
    assert text_selection_gap(text, np.array([0, 3])) == pytest.approx(0.1 / 0.3, rel=1e-5)
    assert text_selection_gap(text, np.array([0, 4])) == float("inf")  # a padding token
    few = np.array([0.3, 0.1, -np.inf, -np.inf], np.float32)  # fewer valid tokens than picks: in order
    assert text_selection_gap(few, np.array([0, 1, 2])) == 0.0
    assert text_selection_gap(few, np.array([1, 0, 2])) == float("inf")
