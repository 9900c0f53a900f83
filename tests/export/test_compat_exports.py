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


def test_plugin_contract_matches_the_creators_and_the_exporter():
    """engines.plugin_contract (what the checks enforce) against what the C++ creators register and what the
    ops emit: names, namespace, version, field names and field types."""
    import re
    from pathlib import Path

    from onnx import AttributeProto

    from engines import plugin_contract
    from instancevg.ops import export_target

    assert (export_target.PLUGIN_DOMAIN, export_target.PLUGIN_NAMESPACE, export_target.PLUGIN_VERSION) == (
        plugin_contract.PLUGIN_DOMAIN, plugin_contract.PLUGIN_NAMESPACE, plugin_contract.PLUGIN_VERSION)
    root = Path(__file__).resolve().parents[2] / "plugins"
    utils = (root / "common" / "pluginUtils.h").read_text()
    assert f'kPLUGIN_NAMESPACE[] = "{plugin_contract.PLUGIN_NAMESPACE}"' in utils
    assert f'kPLUGIN_VERSION[] = "{plugin_contract.PLUGIN_VERSION}"' in utils
    field_types = {"kINT32": AttributeProto.INT, "kFLOAT32": AttributeProto.FLOAT}
    for folder, name in (("msDeformAttnPlugin", "MSDeformAttn"), ("pointSelectPlugin", "PointSelect")):
        header = (root / folder / f"{folder}.h").read_text()
        source = (root / folder / f"{folder}.cpp").read_text()
        assert f'kNAME[] = "{name}"' in header
        names = dict(re.findall(r'constexpr char (k\w+)\[\] = "(\w+)";', source))
        # the creator's getFieldNames(): mFieldNames[i] = PluginField(kNAME, nullptr, PluginFieldType::kTYPE, 1)
        advertised = {names[k]: field_types[t] for k, t in
                      re.findall(r"mFieldNames\[\d\] = PluginField\((k\w+), nullptr, PluginFieldType::(k\w+)", source)}
        assert advertised == plugin_contract.PLUGINS[name].fields, name
