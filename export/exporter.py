"""The export pipeline behind ``instancevg-export``:

    load model -> PyTorch float32 reference on sample inputs -> FP16 policy (--fp16) -> trace to ONNX
    -> INT8 (--int8: calibrate, Q/DQ graph by the INT8 policy, export/quantize.py)
    -> contract checks (onnx.checker, shape inference, plugin nodes / standard ops, opset, IR version,
       TensorRT's Q/DQ placement rules for INT8 graphs; tensorrt target: the TensorRT 10/11 compatibility
       check of engines.compat)
    -> verification (ONNX Runtime or onnx.reference) -> write model.onnx + model.json atomically -> report

:func:`build_graph` does everything up to the traced graph, :func:`finish_export` the rest; nothing is
written before every check and the verification have passed, so a failed export leaves no file behind.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import torch

from instancevg import bundled
from instancevg.checkpoint import CheckpointFormatError, UnsafeCheckpointError, file_digest
from instancevg.config import ModelConfig, get_config
from instancevg.inference import load_model
from engines.compat import CompatReport, check_tensorrt_compatibility
from engines.qdq_rules import check_qdq_placement
from engines.sidecar import sidecar_path
from instancevg.io import atomic_path, unwritable_reason, write_json_atomic

from . import contract
from .calibration import CalibrationError, resolve_dataset, verification_inputs
from .graph import strip_debug_outputs, trace_to_onnx
from .options import ExportOptions
from .precision import apply_fp16_policy, io_float_dtype
from .quantize import int8_graph
from .report import format_report, summary, trtexec_commands
from .sidecar import build_sidecar
from .verify import TOLERANCES, graph_runtime, Tolerance, VerificationError, VerificationReport, pytorch_reference, \
    sample_inputs, verify

# protobuf cannot serialise a ModelProto of 2 GiB or more (gres-large in float32)
PROTOBUF_LIMIT = 2**31 - 1


class ExportError(ValueError):
    """A user-facing export failure (bad argument, file, checkpoint, contract violation)."""


@dataclass
class TracedGraph:
    """A traced graph with what verification and the sidecar need. ``model`` still has the debug outputs."""

    model: onnx.ModelProto
    cfg: ModelConfig
    options: ExportOptions
    inputs: dict[str, np.ndarray]
    reference: dict[str, np.ndarray]
    checkpoint: dict
    tokenizer: dict
    trace_seconds: float
    float32_modules: list[str] = field(default_factory=list)
    reference_model: torch.nn.Module | None = None  # float32, for references with forced selections
    int8: dict | None = None  # calibration and quantization record (--int8)


def _log(log: Callable[[str], None] | None, message: str) -> None:
    if log is not None:
        log(message)


def resolve_checkpoint(cfg: ModelConfig, checkpoint: str | Path | None, random_weights: bool) -> Path | None:
    """The checkpoint file to load: the given one, else the bundled one of the config; None = random."""
    if checkpoint is not None:
        if random_weights:
            raise ExportError("give either --checkpoint or --random-weights, not both")
        path = Path(checkpoint)
        if not path.is_file():
            raise ExportError(f"--checkpoint {path}: file not found")
        return path
    if random_weights:
        return None
    default = bundled.default_checkpoint(cfg.name)
    if default is None:
        raise ExportError(f"no --checkpoint given and none is bundled for config {cfg.name!r} "
                          f"(expected {bundled.TINY_CHECKPOINT} for 'tiny'); pass --checkpoint FILE, or "
                          "--random-weights for a graph with random weights (tests, benchmarks)")
    return default


def check_output_path(output: str | Path) -> Path:
    """Fail early, before minutes of work, when the output cannot be written (creates nothing)."""
    path = Path(output)
    if path.is_dir():
        raise ExportError(f"-o {path}: is a folder; give a file name such as {path / 'model.onnx'}")
    if path.suffix != ".onnx":
        raise ExportError(f"-o {path}: the output must end in .onnx (its sidecar is the .json next to it)")
    for target in (path, sidecar_path(path)):
        reason = unwritable_reason(target)
        if reason is not None:
            raise ExportError(f"-o {path}: {reason}" if target == path else f"sidecar {target}: {reason}")
    return path


def resolve_tokenizer(cfg: ModelConfig, tokenizer: str | Path | None, needed: bool) -> Path | None:
    """The tokenizer file: the given one, else the bundled one of the config. ``needed`` (INT8
    calibration tokenizes expressions): refuse when there is none."""
    if tokenizer is not None:
        path = Path(tokenizer)
        if not path.is_file():
            raise ExportError(f"--tokenizer {path}: file not found (expected a SentencePiece model, e.g. beit3.spm)")
        return path
    path = bundled.default_tokenizer(cfg.name)
    if path is None and needed:
        raise ExportError(f"--int8 calibration tokenizes the benchmark's expressions: config {cfg.name!r} needs "
                          "--tokenizer (BEiT-3's SentencePiece model beit3.spm)")
    return path


def build_graph(config: str | ModelConfig, options: ExportOptions, checkpoint: str | Path | None = None,
                random_weights: bool = False, seed: int = 0, log: Callable[[str], None] | None = print,
                verbose: bool = False, trusted: bool = False, tokenizer: str | Path | None = None) -> TracedGraph:
    """Load the model, compute the PyTorch reference and trace the ONNX graph (with debug outputs); with
    ``options.int8`` calibrate it and make it the Q/DQ graph. ``trusted``: unpickle a checkpoint that safe
    loading refuses (--trust-checkpoint)."""
    try:
        cfg = get_config(config) if isinstance(config, str) else config
    except ValueError as exc:
        raise ExportError(f"--config: {exc}") from None
    tok_path = resolve_tokenizer(cfg, tokenizer, options.int8)
    if options.int8:  # bad calibration input fails here, before minutes of loading and tracing
        try:
            resolve_dataset(options.calibration, cfg)
        except CalibrationError as exc:
            raise ExportError(str(exc)) from None
    ckpt_path = resolve_checkpoint(cfg, checkpoint, random_weights)
    _log(log, f"[1/4] loading {cfg.name} ({ckpt_path or f'random weights, seed {seed}'})")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*RANDOM weights.*")
        try:
            model = load_model(cfg, ckpt_path, seed=seed, trusted=trusted)
        except (UnsafeCheckpointError, CheckpointFormatError) as exc:  # the message names file and remedy
            raise ExportError(f"--checkpoint {exc}") from None
        except (ValueError, FileNotFoundError) as exc:  # CheckpointMismatchError lists the keys
            raise ExportError(f"--checkpoint does not fit config {cfg.name!r}: {exc}") from None
    ckpt = ({"file": ckpt_path.name, "sha256": file_digest(ckpt_path), "random_weights": False}
            if ckpt_path else {"file": None, "sha256": None, "random_weights": True, "seed": seed})
    tokenizer_record = {"file": tok_path, "sha256": file_digest(tok_path) if tok_path else None}

    # INT8 graphs are verified on real held-out samples: random inputs would leave the calibrated ranges
    inputs = (verification_inputs(options.calibration, cfg, tok_path, options.batch.trace_batch) if options.int8
              else sample_inputs(cfg, options.batch.trace_batch))
    reference = pytorch_reference(model, inputs) if options.verify else {}
    # a float32 model stays at hand for references with forced selections (verify.py, ties)
    reference_model = (copy.deepcopy(model) if options.fp16 else model) if options.verify else None
    kept = apply_fp16_policy(model) if options.fp16 else []
    sample = (torch.from_numpy(inputs["image"]).to(io_float_dtype(options.fp16_io)),
              torch.from_numpy(inputs["text_ids"]), torch.from_numpy(inputs["text_pad_mask"]))
    _log(log, f"[2/4] tracing the model's forward to ONNX (target {options.target}, {options.precision}, "
              f"opset {options.opset}, batch {options.batch.describe()}) ...")
    start = time.perf_counter()
    proto = trace_to_onnx(model, sample, options, verbose=verbose)
    tidy_graph(proto, cfg, options)
    int8 = None
    if options.int8:
        proto, int8 = _quantize(proto, model, sample, cfg, options, tok_path, log, verbose)
    return TracedGraph(proto, cfg, options, inputs, reference, ckpt, tokenizer_record, time.perf_counter() - start,
                       kept, reference_model, int8)


def _quantize(proto: onnx.ModelProto, model: torch.nn.Module, sample, cfg: ModelConfig, options: ExportOptions,
              tokenizer: Path, log, verbose: bool) -> tuple[onnx.ModelProto, dict]:
    """The Q/DQ graph of ``proto``. ONNX Runtime calibrates: a portable graph is calibrated itself; for a
    tensorrt graph (plugin nodes ONNX Runtime cannot run) the same model is traced once more for the
    portable target, calibrated, and its ranges are carried over layer by layer (export/quantize.py)."""
    calibration_graph = proto
    if options.target != "portable":
        _log(log, "      tracing the portable form of the same model for calibration ...")
        calibration_graph = trace_to_onnx(model, sample, dataclasses.replace(options, target="portable"),
                                          verbose=verbose)
    _log(log, "[2b] INT8: calibration and Q/DQ graph (onnxruntime.quantization, INT8 policy of export/quantize.py)")
    try:
        return int8_graph(proto, calibration_graph, options.calibration, cfg, tokenizer,
                          options.batch.trace_batch, options.float_precision, log)
    except CalibrationError as exc:
        raise ExportError(str(exc)) from None


def tidy_graph(model: onnx.ModelProto, cfg: ModelConfig, options: ExportOptions) -> None:
    """Name the graph and the plugin nodes after what they are; drop the exporter's per-node stack traces
    (they hold this machine's source paths); record provenance in the model's metadata."""
    model.graph.name = f"instancevg-{cfg.name}-{options.target}-{options.precision}"
    model.producer_name = "instancevg-export"
    counters: dict[str, int] = {}
    for node in model.graph.node:
        keep = [p for p in node.metadata_props if p.key in ("namespace", "pkg.torch.onnx.name_scopes")]
        del node.metadata_props[:]
        node.metadata_props.extend(keep)
        if node.domain not in ("", "ai.onnx"):
            index = counters.get(node.op_type, 0)
            counters[node.op_type] = index + 1
            node.name = f"{node.op_type}_{index}"
    del model.metadata_props[:]
    for key, value in (("instancevg.config", cfg.name), ("instancevg.target", options.target),
                       ("instancevg.precision", options.precision)):
        model.metadata_props.add(key=key, value=value)


def check_graph(traced: TracedGraph) -> list[str]:
    """onnx.checker + strict shape inference + the contracts; returns the problems (empty = ok)."""
    model, options = traced.model, traced.options
    problems = []
    try:
        if model.ByteSize() < PROTOBUF_LIMIT:
            onnx.checker.check_model(model, full_check=False)
            onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        problems.append(f"onnx.checker / shape inference: {exc}")
    problems += contract.check_model_versions(model, options.target, options.opset)
    if options.target == "tensorrt":
        problems += contract.check_plugin_nodes(model, traced.cfg, options.fp16)
    else:
        problems += contract.check_portable(model)
    if options.int8:
        problems += check_qdq_placement(model)
    return problems


def check_tensorrt(traced: TracedGraph, log: Callable[[str], None] | None = print) -> CompatReport | None:
    """The TensorRT compatibility check (engines.compat) of a tensorrt-target graph; raises ExportError when
    TensorRT's parser would reject it or a strongly typed build would differ. None for portable graphs."""
    if traced.options.target != "tensorrt":
        return None
    report = check_tensorrt_compatibility(traced.model)
    for line in report.format().splitlines():
        _log(log, line)
    if not report.passed:
        raise ExportError("the exported graph fails the TensorRT compatibility check:\n  "
                          + "\n  ".join(f.line() for f in report.errors))
    return report


def verify_graph(traced: TracedGraph, tolerances: dict[str, Tolerance] | None = None) -> VerificationReport:
    forced = None if traced.reference_model is None else (  # PyTorch re-run with the graph's selections
        lambda text_index, point_index: pytorch_reference(traced.reference_model, traced.inputs, text_index,
                                                          point_index))
    session = traced.int8["onnxruntime_session"] if traced.int8 else None
    return verify(traced.model, traced.options.target, traced.options.precision, traced.inputs,
                  traced.reference, tolerances, traced.cfg, forced, session)


@dataclass
class ExportResult:
    onnx_path: Path
    sidecar_path: Path
    sidecar: dict
    summary: dict
    verification: VerificationReport | None
    commands: dict[str, str]
    report: str


def finish_export(traced: TracedGraph, output: str | Path, tolerances: dict[str, Tolerance] | None = None,
                  log: Callable[[str], None] | None = print) -> ExportResult:
    """Check and verify ``traced``; only then write ``output`` and its sidecar (atomically, both or none).

    Raises ExportError (contract problems) or VerificationError (outputs beyond tolerance); in both cases
    nothing is written."""
    output = check_output_path(output)
    options = traced.options
    contracts = ("plugin node contract, TensorRT 10/11 compatibility" if options.target == "tensorrt"
                 else "standard ops only")
    _log(log, f"[3/4] checking the graph (onnx.checker, shape inference, {contracts}, opset, IR version"
              f"{', Q/DQ placement' if options.int8 else ''})")
    problems = check_graph(traced)
    if problems:
        raise ExportError("the exported graph breaks its contract:\n  " + "\n  ".join(problems))
    compat = check_tensorrt(traced, log)
    report = None
    if options.verify:
        _log(log, f"[4/4] verifying in {graph_runtime(traced.model, options.target)} against PyTorch float32 ...")
        report = verify_graph(traced, tolerances)
        for line in report.lines():
            _log(log, line)
        if not report.passed:
            failed = [e.name for e in report.errors if not e.passed]
            raise VerificationError(f"verification failed for {', '.join(failed)} (tolerances of "
                                    f"{options.precision}: see export/README.md); nothing written to {output}")
    else:
        _log(log, "[4/4] verification skipped (--no-verify)")
    shipped = strip_debug_outputs(traced.model)
    model_summary = summary(shipped)
    json_path = sidecar_path(output)
    verification = None
    if report is not None:
        tol = tolerances or TOLERANCES[options.precision]
        verification = {**report.as_dict(), "tolerances": {k: {"atol": v.atol, "rtol": v.rtol}
                                                           for k, v in tol.items()}}
    sidecar = build_sidecar(shipped, output.name, traced.cfg, options, traced.checkpoint, traced.tokenizer,
                            verification, traced.int8)
    sidecar["summary"] = {"nodes": model_summary["nodes"], "node_counts": model_summary["node_counts"],
                          "parameter_bytes": model_summary["parameter_bytes"]}
    commands = trtexec_commands(output, sidecar["inputs"], options) if options.target == "tensorrt" else {}
    sidecar["trtexec"] = commands
    if compat is not None:
        sidecar["tensorrt_compatibility"] = {k: v for k, v in compat.as_dict().items() if k != "source"}
    with atomic_path(output) as tmp_onnx:
        save_onnx(shipped, tmp_onnx)
        write_json_atomic(json_path, sidecar)
    text = format_report(output, output.stat().st_size, model_summary, options, commands, traced.int8)
    _log(log, text)
    return ExportResult(output, json_path, sidecar, model_summary, report, commands, text)


def save_onnx(model: onnx.ModelProto, path: Path) -> None:
    """Save a self-contained .onnx (weights inside); graphs over protobuf's 2 GiB limit are refused with
    a clear message (they would need external data, which the consumers do not read yet)."""
    size = model.ByteSize()
    if size >= PROTOBUF_LIMIT:
        raise ExportError(f"the graph is {size / 2**30:.2f} GiB, over protobuf's 2 GiB limit for a single "
                          ".onnx file; export it with --fp16")
    onnx.save_model(model, os.fspath(path))


def export_onnx(output: str | Path, config: str | ModelConfig = "tiny", options: ExportOptions | None = None,
                checkpoint: str | Path | None = None, random_weights: bool = False, seed: int = 0,
                tolerances: dict[str, Tolerance] | None = None, log: Callable[[str], None] | None = print,
                verbose: bool = False, trusted: bool = False, tokenizer: str | Path | None = None) -> ExportResult:
    """The whole export (Python API of instancevg-export); ``trusted`` and ``tokenizer`` as in
    ``build_graph``."""
    options = options or ExportOptions()
    check_output_path(output)
    traced = build_graph(config, options, checkpoint, random_weights, seed, log, verbose, trusted, tokenizer)
    return finish_export(traced, output, tolerances, log)
