"""The TensorRT compatibility check on our exports: the tiny model in all four target x precision
combinations passes; a tensorrt export whose graph TensorRT's parser would refuse is not written."""
from __future__ import annotations

import copy

import pytest
from onnx import helper

from engines.compat import check_tensorrt_compatibility
from export import ExportError, finish_export
from export.graph import strip_debug_outputs


@pytest.mark.parametrize("name", ["tensorrt-fp32", "tensorrt-fp16", "portable-fp16", "portable-fp32"])
def test_our_exports_pass_for_tensorrt_10_and_11(name, traced):
    model = strip_debug_outputs(traced(name).model)
    report = check_tensorrt_compatibility(model)
    assert report.findings == [], report.format()
    assert report.versions == ("10", "11") and "passed" in report.format()


def test_tensorrt_export_records_the_check_and_a_refused_graph_is_not_written(traced, tmp_path):
    result = finish_export(traced("tensorrt-fp16"), tmp_path / "ok" / "model.onnx", log=None)
    recorded = result.sidecar["tensorrt_compatibility"]
    assert recorded["passed"] and recorded["findings"] == [] and set(recorded["checked_against"]) == {"10", "11"}

    graph = copy.copy(traced("tensorrt-fp32"))
    graph.model = copy.deepcopy(graph.model)
    einsum = next(n for n in graph.model.graph.node if n.op_type == "Einsum")
    equation = next(a for a in einsum.attribute if a.name == "equation")
    equation.CopyFrom(helper.make_attribute("equation", equation.s.decode().upper()))  # valid ONNX, not for TensorRT
    with pytest.raises(ExportError, match=rf"\[attribute\] node '{einsum.name}' \(Einsum\): equation"):
        finish_export(graph, tmp_path / "bad" / "model.onnx", log=None)
    assert not (tmp_path / "bad" / "model.onnx").exists() and not (tmp_path / "bad" / "model.json").exists()
