"""A failed verification or a contract violation writes nothing."""
from __future__ import annotations

import copy

import pytest

from export import ExportError, Tolerance, VerificationError, finish_export
from export.verify import TOLERANCES


def test_failed_verification_leaves_nothing(traced, tmp_path, capsys):
    graph = traced("tensorrt-fp32")
    impossible = {name: Tolerance(0.0, 0.0) for name in TOLERANCES["fp32"]}
    with pytest.raises(VerificationError, match="class_logits"):
        finish_export(graph, tmp_path / "model.onnx", tolerances=impossible)
    printed = capsys.readouterr().out
    assert "max abs" in printed and "FAIL" in printed  # per-output errors are printed before failing
    assert list(tmp_path.iterdir()) == []


def test_a_graph_that_breaks_the_plugin_contract_is_not_written(traced, tmp_path):
    graph = copy.copy(traced("tensorrt-fp32"))
    graph.model = copy.deepcopy(graph.model)
    node = next(n for n in graph.model.graph.node if n.op_type == "PointSelect")
    next(a for a in node.attribute if a.name == "plugin_version").s = b"2"
    with pytest.raises(ExportError, match="plugin_version='2'"):
        finish_export(graph, tmp_path / "model.onnx", log=None)
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_graph_fails_verification(traced, tmp_path):
    """A perturbed weight (the patch embedding x 1.5: a real error, not a tolerance of 0) is caught."""
    import numpy as np
    from onnx import numpy_helper

    graph = copy.copy(traced("portable-fp16"))
    graph.model = copy.deepcopy(graph.model)
    inits = graph.model.graph.initializer
    patch_embed = next(i for i, t in enumerate(inits) if t.name.endswith("vision_embed.proj.weight"))
    array = numpy_helper.to_array(inits[patch_embed])
    inits[patch_embed].CopyFrom(numpy_helper.from_array((array * 1.5).astype(array.dtype), inits[patch_embed].name))
    with pytest.raises(VerificationError):
        finish_export(graph, tmp_path / "model.onnx", log=None)
    assert list(tmp_path.iterdir()) == []
