"""export stage of the instancevg toolchain: PyTorch -> ONNX (see README.md in this folder).

Python API (the CLI ``instancevg-export`` is a thin layer over it)::

    from export import BatchSpec, CalibrationSpec, ExportOptions, export_onnx
    result = export_onnx("model.onnx", "tiny", ExportOptions(target="tensorrt", fp16=True), random_weights=True)
    result = export_onnx("int8.onnx", "tiny", ExportOptions(int8=True, calibration=CalibrationSpec("data")))
"""
from .calibration import CalibrationError, CalibrationSpec
from .exporter import ExportError, ExportResult, build_graph, export_onnx, finish_export
from .options import BatchSpec, ExportOptions
from .verify import TOLERANCES, Tolerance, VerificationError

__all__ = ["export_onnx", "build_graph", "finish_export", "ExportOptions", "BatchSpec", "ExportResult",
           "ExportError", "VerificationError", "TOLERANCES", "Tolerance", "CalibrationSpec", "CalibrationError"]
