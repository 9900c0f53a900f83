"""What an export is asked to do: target, precision, batch, opset; validated once, with errors naming the
argument."""
from __future__ import annotations

from dataclasses import dataclass

from instancevg.ops.export_target import TARGETS

from .calibration import HISTOGRAM_METHODS, CalibrationSpec

# torch 2.13's dynamo exporter works at opset 18 and converts to the requested one afterwards. Opset >= 20
# changes GridSample's mode names and TensorRT's parser then silently samples nearest (engines/README.md, rule gridsample-opset20): we
# stay at 17..19 for both targets (the tensorrt graph has no GridSample, but every graph we ship is one
# we verified in that range).
MIN_OPSET, MAX_OPSET, DEFAULT_OPSET = 17, 19, 18
# ONNX Runtime 1.31 rejects IR version > 13 (onnx 1.23 writes 14); 10 is what the exporter writes.
MAX_IR_VERSION = 10
# QuantizeLinear/DequantizeLinear accept FP16 inputs and scales from opset 19 (13..18: float32 only)
INT8_FP16_MIN_OPSET = 19


@dataclass(frozen=True)
class BatchSpec:
    """The batch dimension of the graph: fixed (min = opt = max) or dynamic (a TensorRT profile)."""

    min: int
    opt: int
    max: int

    @property
    def dynamic(self) -> bool:
        return self.min != self.max

    @property
    def trace_batch(self) -> int:
        """The batch the exporter traces with: torch.export specialises sizes 0 and 1, so a dynamic
        dimension is traced at >= 2."""
        return self.min if not self.dynamic else min(max(self.opt, 2), self.max)

    def describe(self) -> str:
        return f"dynamic {self.min}:{self.opt}:{self.max}" if self.dynamic else f"fixed {self.min}"

    @classmethod
    def fixed(cls, batch: int) -> "BatchSpec":
        if batch < 1:
            raise ValueError(f"--batch must be >= 1, got {batch}")
        return cls(batch, batch, batch)

    @classmethod
    def parse_dynamic(cls, text: str) -> "BatchSpec":
        """'MIN:OPT:MAX' (e.g. '1:4:8') -> a dynamic BatchSpec; MAX >= 2 so the dimension is dynamic."""
        parts = text.split(":")
        try:
            lo, opt, hi = (int(p) for p in parts)
        except ValueError:
            raise ValueError(f"--dynamic-batch must be MIN:OPT:MAX with three integers (e.g. 1:4:8), "
                             f"got {text!r}") from None
        if not 1 <= lo <= opt <= hi:
            raise ValueError(f"--dynamic-batch needs 1 <= MIN <= OPT <= MAX, got {text!r}")
        if lo == hi:
            raise ValueError(f"--dynamic-batch {text!r} has MIN == MAX: use --batch {lo} for a fixed batch")
        return cls(lo, opt, hi)


@dataclass(frozen=True)
class ExportOptions:
    """Options of one export (the CLI flags of instancevg-export).

    target: "tensorrt" (plugin nodes) or "portable" (standard ops); fp16: strongly typed FP16 graph;
    fp16_io: FP16 image input and float outputs (needs fp16); batch: fixed or dynamic; opset: 17..19;
    verify: run the graph on sample inputs (the traced batch) and compare it with PyTorch;
    int8: calibrated Q/DQ graph (export/quantize.py; with fp16 the float parts follow the FP16 policy),
    calibrated on ``calibration``.
    """

    target: str = "tensorrt"
    fp16: bool = False
    fp16_io: bool = False
    batch: BatchSpec = BatchSpec(1, 1, 1)
    opset: int = DEFAULT_OPSET
    verify: bool = True
    int8: bool = False
    calibration: CalibrationSpec | None = None

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"--target must be one of {', '.join(TARGETS)}, got {self.target!r}")
        if self.fp16_io and not self.fp16:
            raise ValueError("--fp16-io needs --fp16 (FP16 graph inputs/outputs on an FP16 graph)")
        if not MIN_OPSET <= self.opset <= MAX_OPSET:
            hint = (" opset >= 20 renames GridSample's modes and TensorRT's parser then samples nearest "
                    "(engines/README.md, rule gridsample-opset20)") if self.opset >= 20 else ""
            raise ValueError(f"--opset must lie in {MIN_OPSET}..{MAX_OPSET}, got {self.opset}.{hint}")
        if self.int8 and self.calibration is None:
            raise ValueError("--int8 needs calibration data: --calib-data DATA (a data root holding a benchmark)")
        if self.calibration is not None and not self.int8:
            raise ValueError("--calib-data and the other --calib-* options go with --int8")
        if self.int8 and self.fp16 and self.calibration.method in HISTOGRAM_METHODS:
            raise ValueError(f"--calib-method {self.calibration.method} cannot calibrate FP16 graphs (ONNX Runtime's "
                             "histogram calibrators bin FP16 tensors with numpy, which fails): use --calib-method "
                             "minmax with --fp16")
        if self.int8 and self.fp16 and self.opset < INT8_FP16_MIN_OPSET:
            raise ValueError(f"--int8 --fp16 needs --opset {INT8_FP16_MIN_OPSET}: QuantizeLinear/DequantizeLinear "
                             f"take FP16 tensors from opset 19 on (got --opset {self.opset})")

    @property
    def precision(self) -> str:
        """The graph's precision: int8 (Q/DQ graph), fp16 or fp32."""
        return "int8" if self.int8 else self.float_precision

    @property
    def float_precision(self) -> str:
        """The type of what is not INT8 (the whole graph unless int8)."""
        return "fp16" if self.fp16 else "fp32"
