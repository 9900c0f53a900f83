"""Heavier exports: gres-base (the official size) and --fp16-io. Run with ``-m slow``."""
from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto

from export import BatchSpec, ExportOptions, export_onnx
from export.contract import check_plugin_nodes, value_types
from instancevg.config import get_config
from instancevg.structures import RAW_OUTPUT_NAMES


@pytest.mark.slow
@pytest.mark.parametrize("target", ["tensorrt", "portable"])
def test_gres_base_exports_fp16_and_reports_size_and_nodes(target, tmp_path):
    cfg = get_config("gres-base")
    result = export_onnx(tmp_path / "gres_base.onnx", "gres-base", ExportOptions(target=target, fp16=True),
                         random_weights=True, log=None)
    assert result.verification.passed
    summary = result.summary
    # 234.3 M parameters (+ the unused 3 class/box head copies are shared): ~ 470 MB in FP16
    assert 400e6 < summary["parameter_bytes"]["total"] < 520e6
    assert summary["nodes"] > 1000
    assert "MiB" in result.report and "nodes:" in result.report
    model = onnx.load(tmp_path / "gres_base.onnx", load_external_data=False)
    if target == "tensorrt":
        assert check_plugin_nodes(model, cfg, fp16=True) == []
        assert "--stronglyTyped" in result.report


@pytest.mark.slow
def test_fp16_io_graph(tmp_path):
    result = export_onnx(tmp_path / "m.onnx", "tiny",
                         ExportOptions(target="tensorrt", fp16=True, fp16_io=True, batch=BatchSpec.fixed(2)),
                         random_weights=True, log=None)
    assert result.verification.passed
    types = value_types(onnx.load(tmp_path / "m.onnx"))
    assert types["image"].elem_type == TensorProto.FLOAT16
    assert all(types[n].elem_type == TensorProto.FLOAT16 for n in RAW_OUTPUT_NAMES)
    assert result.sidecar["io_precision"] == "fp16"
    assert result.sidecar["inputs"][0] == {"name": "image", "shape": [2, 3, 128, 128], "dtype": "float16"}


@pytest.mark.slow
@pytest.mark.parametrize("target", ["portable", "tensorrt"])
def test_gres_base_int8(target, tmp_path, synthetic_root):
    """gres-base (random weights) as an INT8 graph: calibrated on real synthetic samples, verified (ONNX
    Runtime / onnx.reference), TensorRT's Q/DQ rules, the encoder's projections and the head's convolutions
    in INT8."""
    from engines.qdq_rules import check_qdq_placement
    from export.calibration import CalibrationSpec
    from instancevg import bundled

    cfg = get_config("gres-base")
    spec = CalibrationSpec(synthetic_root(12, 0), samples=8)
    result = export_onnx(tmp_path / "gres_int8.onnx", "gres-base", ExportOptions(target=target, int8=True, calibration=spec),
                         random_weights=True, tokenizer=bundled.TINY_TOKENIZER, log=None)
    assert result.verification.passed
    model = onnx.load(tmp_path / "gres_int8.onnx")
    assert check_qdq_placement(model) == []
    # 12 layers x (q, k, v, out, fc1, fc2) x 2 experts + 3 value_proj; 14 convolutions, 3 transposed
    assert result.sidecar["int8"]["qdq"]["quantized_by_op"] == {"MatMul": 147, "Conv": 14, "ConvTranspose": 3}
    # the INT8 weights: under half the float32 graph's 937 MB (embeddings and float modules stay float32)
    assert result.summary["parameter_bytes"]["total"] < 450e6
    if target == "tensorrt":
        assert check_plugin_nodes(model, cfg, fp16=False) == []
