"""INT8 calibration data: real samples of a benchmark, read by our readers and preprocessed like every
backend's inputs, fed to ONNX Runtime's calibrators (``onnxruntime.quantization``).

    spec = CalibrationSpec("data/synth", dataset="grefcoco", split="train", samples=32, method="percentile")
    ranges, record = calibrate(portable_graph, spec, cfg, tokenizer, batch=1, op_types=INT8_OPS)

The samples are spread evenly over the split (deterministic: indices round(linspace(0, len-1, N))), so
that a split sorted by image does not calibrate on one image. The default split is the benchmark's
training split: calibration data should not be the data a model is evaluated on. Everything the user can
get wrong (data root, benchmark, split, sample count, method) is checked by :func:`resolve_dataset`
before any model is loaded, with one error naming the argument.
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnx
from tqdm import tqdm

from instancevg.config import ModelConfig
from instancevg.data.datasets import BENCHMARKS, DatasetError, available_benchmarks, get_benchmark, open_dataset
from instancevg.data.tokenizer import Tokenizer
from instancevg.inference import prepare_inputs
from instancevg.structures import INPUT_NAMES

METHODS = ("minmax", "entropy", "percentile")
# percentile: on the bundled model's metric parity (1630 samples) it halves the metrics moving by more
# than a point compared with minmax (export/README.md). FP16 graphs: ONNX Runtime's histogram calibrators
# (entropy, percentile) bin the FP16 tensors with numpy, which fails ("Too many bins for data range"), so
# they calibrate with minmax.
HISTOGRAM_METHODS = ("entropy", "percentile")


def default_method(float_precision: str) -> str:
    """The calibrator used when none is asked for: percentile, minmax for FP16 graphs."""
    return "minmax" if float_precision == "fp16" else "percentile"
DEFAULT_SAMPLES = 32
# Runs handed to one collect_data call. Histogram calibrators (entropy, percentile) keep every collected
# tensor of a call in memory (gres-base: ~0.5 GB per run) before binning it, so they take one run at a
# time and merge histograms; MinMax keeps two numbers per tensor and run.
RUNS_PER_COLLECT = {"minmax": 8, "entropy": 1, "percentile": 1}


class CalibrationError(ValueError):
    """Bad calibration input (data root, benchmark, split, sample count, method); nothing is written."""


@dataclass(frozen=True)
class CalibrationSpec:
    """What ``instancevg-export --int8`` calibrates on.

    data_root: folder holding the benchmarks (either input format); dataset: benchmark name (default: see
    :func:`default_dataset`); split: default the benchmark's training split; samples: how many samples
    (>= 1); method: minmax | entropy | percentile (ONNX Runtime's calibrators; default: see
    :func:`default_method`, resolved by the exporter).
    """

    data_root: str
    dataset: str | None = None
    split: str | None = None
    samples: int = DEFAULT_SAMPLES
    method: str | None = None

    def __post_init__(self):
        if self.samples < 1:
            raise CalibrationError(f"--calib-samples must be >= 1, got {self.samples}")
        if self.method is not None and self.method not in METHODS:
            raise CalibrationError(f"--calib-method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.dataset is not None and self.dataset not in BENCHMARKS:
            raise CalibrationError(f"--calib-dataset: unknown benchmark {self.dataset!r}; expected one of "
                                   f"{', '.join(BENCHMARKS)}")


def default_dataset(cfg: ModelConfig, found: Sequence[str]) -> str:
    """The first benchmark found under the data root whose official text length is the config's (gRefCOCO
    family for gres-*, RefCOCO family for refcoco-*), else the first one found (tiny)."""
    same = [name for name in found if get_benchmark(name).max_tokens == cfg.max_tokens]
    return (same or list(found))[0]


@functools.lru_cache(maxsize=2)
def _open_split(name: str, split: str, root: str):
    """open_dataset, cached: one export checks, verifies and calibrates on the same split (large annotation
    files are parsed once)."""
    return open_dataset(name, split, root)


def resolve_dataset(spec: CalibrationSpec, cfg: ModelConfig):
    """Open the calibration split and pick its samples; raises CalibrationError naming the argument.

    Returns (dataset, split, SampleDataset, indices of the chosen samples)."""
    root = spec.data_root
    if not os.path.isdir(root):
        raise CalibrationError(f"--calib-data {root}: not a directory (expected a data root holding a benchmark, "
                               "e.g. made by instancevg-synthetic --output DIR)")
    found = list(available_benchmarks(root))
    if not found:
        raise CalibrationError(f"--calib-data {root}: no benchmark found (expected the unified InstanceVG JSONs or "
                               "the original releases; see instancevg/data/datasets/registry.py)")
    name = spec.dataset or default_dataset(cfg, found)
    if name not in found:
        raise CalibrationError(f"--calib-dataset {name}: not found under {root} (found: {', '.join(found)})")
    benchmark = get_benchmark(name)
    split = spec.split or benchmark.train_split
    try:
        dataset = _open_split(name, split, os.path.abspath(root))
    except DatasetError as exc:
        raise CalibrationError(f"--calib-split {split} of {name}: {exc}") from None
    if len(dataset) == 0:
        raise CalibrationError(f"--calib-split {split} of {name} under {root} has no samples")
    if spec.samples > len(dataset):
        raise CalibrationError(f"--calib-samples {spec.samples}: {name}/{split} has only {len(dataset)} samples; "
                               f"ask for at most {len(dataset)} or choose a larger split")
    indices = np.round(np.linspace(0, len(dataset) - 1, spec.samples)).astype(int).tolist()
    return name, split, dataset, indices


class SampleBatches:
    """ONNX Runtime CalibrationDataReader over preprocessed benchmark samples, ``batch`` per run.

    get_next() -> {image [B,3,S,S] float32, text_ids [B,L] int64, text_pad_mask [B,L] bool} or None. A last
    partial batch is completed with the first samples of the selection (a fixed-batch graph takes
    exactly B); ``runs`` counts the runs."""

    def __init__(self, dataset, indices: list[int], tokenizer: Tokenizer, size: int, batch: int,
                 image_dtype=np.float32, progress: bool = True):
        self.dataset, self.tokenizer, self.size, self.image_dtype = dataset, tokenizer, size, image_dtype
        padded = indices + indices[:(-len(indices)) % batch]
        self.batches = [padded[i:i + batch] for i in range(0, len(padded), batch)]
        self.runs = len(self.batches)
        self._next = 0
        self._bar = tqdm(total=len(indices), desc="calibration", unit="sample", disable=not progress)

    def get_next(self) -> dict | None:
        if self._next >= len(self.batches):
            self._bar.close()
            return None
        chosen = self.batches[self._next]
        self._next += 1
        samples = [self.dataset[i] for i in chosen]
        try:
            inputs = prepare_inputs([s.load_image() for s in samples], [s.expression for s in samples],
                                    self.tokenizer, self.size)
        except (ValueError, OSError) as exc:
            raise CalibrationError(f"calibration sample of {self.dataset!r} "
                                   f"({', '.join(repr(s.sample_id) for s in samples)}): {exc}") from None
        inputs["image"] = inputs["image"].astype(self.image_dtype)
        self._bar.update(min(len(chosen), self._bar.total - self._bar.n))
        return {k: inputs[k] for k in INPUT_NAMES}

    def chunks(self, runs: int):
        """Yield readers of at most ``runs`` runs each (histogram calibrators collect chunk by chunk)."""
        while self._next < len(self.batches):
            yield _Chunk(self, runs)


class _Chunk:
    def __init__(self, reader: SampleBatches, runs: int):
        self.reader, self.left = reader, runs

    def get_next(self):
        if self.left == 0:
            return None
        self.left -= 1
        return self.reader.get_next()


def held_out_batches(spec: CalibrationSpec, cfg: ModelConfig, tokenizer: str | Path, count: int,
                     batch: int) -> list[dict]:
    """Network inputs of ``count`` real samples of the calibration split that calibration does not use
    (the split's first samples outside the calibration selection, cycled when there are fewer; the
    calibration samples only when the split has no others), in batches of ``batch``."""
    _, _, dataset, chosen = resolve_dataset(spec, cfg)
    taken = set(chosen)
    held_out = [i for i in range(len(dataset)) if i not in taken] or chosen
    picks = [held_out[k % len(held_out)] for k in range(count)]
    reader = SampleBatches(dataset, picks, Tokenizer(tokenizer, cfg.max_tokens), cfg.image_size, batch, progress=False)
    return [reader.get_next() for _ in range(reader.runs)]


def verification_inputs(spec: CalibrationSpec, cfg: ModelConfig, tokenizer: str | Path, batch: int) -> dict:
    """One batch of held-out samples (:func:`held_out_batches`): INT8 graphs are verified on these, since
    random inputs leave the calibrated ranges and saturate, which measures the inputs, not the graph."""
    return held_out_batches(spec, cfg, tokenizer, batch, batch)[0]


def _ort_method(name: str):
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile}[name]


def calibrate(model: onnx.ModelProto, spec: CalibrationSpec, cfg: ModelConfig, tokenizer: str | Path,
              batch: int, op_types: Sequence[str], progress: bool = True,
              log: Callable[[str], None] | None = None):
    """Run ``model`` (a portable graph: ONNX Runtime runs it) on the calibration samples and return
    (TensorsData of the float inputs/outputs of every ``op_types`` node, record for the sidecar).
    ``spec.method`` must be set (:func:`default_method`).

    The record names the dataset, split, data root, samples (count and ids), method and runs."""
    from onnxruntime.quantization import create_calibrator

    if spec.method is None:
        raise ValueError("calibrate() needs spec.method (see default_method)")
    name, split, dataset, indices = resolve_dataset(spec, cfg)
    image_type = next(i for i in model.graph.input if i.name == "image").type.tensor_type.elem_type
    reader = SampleBatches(dataset, indices, Tokenizer(tokenizer, cfg.max_tokens), cfg.image_size, batch,
                           onnx.helper.tensor_dtype_to_np_dtype(image_type), progress)
    if log is not None:
        log(f"      calibrating on {len(indices)} samples of {name}/{split} ({spec.method}, {reader.runs} runs "
            f"of batch {batch})")
    with tempfile.TemporaryDirectory(prefix="instancevg-calib-") as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(model.SerializeToString())  # (onnx.save_model with external data would alter ``model``)
        # the augmented copy is saved with external data: gres-base in float32 nears protobuf's 2 GiB limit
        calibrator = create_calibrator(path, list(op_types), augmented_model_path=os.fspath(Path(tmp) / "augmented.onnx"),
                                       calibrate_method=_ort_method(spec.method), use_external_data_format=True)
        with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print per call
            for chunk in reader.chunks(RUNS_PER_COLLECT[spec.method]):
                calibrator.collect_data(chunk)
            ranges = calibrator.compute_data()
        del calibrator
    record = {"dataset": name, "split": split, "data_root": os.path.abspath(spec.data_root),
              "samples": len(indices), "sample_ids": [dataset[i].sample_id for i in indices],
              "method": spec.method, "runs": reader.runs, "batch": batch,
              "calibrator": "onnxruntime.quantization " + {"minmax": "MinMaxCalibrater", "entropy": "EntropyCalibrater",
                                                           "percentile": "PercentileCalibrater"}[spec.method]}
    return ranges, record
