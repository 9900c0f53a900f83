"""Verification: run the exported graph on sample inputs and compare it with the PyTorch model.

portable graphs run in ONNX Runtime (CPU); tensorrt graphs too, with the plugins' host kernels as custom
operators (export/ort_session.py), or, where those kernels are not built, in
``onnx.reference.ReferenceEvaluator`` with the Python plugin ops of ``reference_ops`` (which call
``instancevg.ops``; the independent check the tests keep). The reference is always the
float32 PyTorch model on the same inputs, so FP16 graphs are measured against what the model should give.

Tolerances (per output, documented in export/README.md): an output passes when

    max |onnx - torch| <= atol + rtol * max |torch|

(errors relative to the output's range: FP16 errors scale with magnitudes). ``points`` and the debug
selection indices must match exactly in FP32 and FP16: FP16 graphs keep the AQSM selection path in
float32 precisely so that engines pick the points and text tokens PyTorch picks. INT8 graphs keep it in
float too, but its inputs (the encoder features) carry INT8 rounding, so their selection agreement is
reported rather than required: the outputs are then compared with PyTorch forced to the graph's selection.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import onnx
import torch

from instancevg import ops
from instancevg.config import ModelConfig
from instancevg.model.tracing import record_intermediates
from instancevg.structures import RAW_OUTPUT_NAMES

from .graph import DEBUG_OUTPUT_NAMES


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float

    def limit(self, scale: float) -> float:
        return self.atol + self.rtol * scale


EXACT = Tolerance(0.0, 0.0)
INT8_TOLERANCE = 0.25
FLOAT_OUTPUTS = tuple(n for n in RAW_OUTPUT_NAMES if n != "points")
TOLERANCES: dict[str, dict[str, Tolerance]] = {
    # FP32: the graph computes what PyTorch computes, up to operator reordering (measured ~5e-6 on tiny)
    "fp32": {**{n: Tolerance(1e-4, 1e-4) for n in FLOAT_OUTPUTS}, "points": EXACT,
             **{n: EXACT for n in DEBUG_OUTPUT_NAMES}},
    # FP16: weights and activations rounded to 11 bits through the whole encoder (measured: up to 1.0e-2
    # of the range with the bundled trained tiny model, 8.7e-3 with gres-base's 12 layers and random
    # weights). A sanity bound with ~5x margin: a mis-wired graph errs by the order of the range itself
    "fp16": {**{n: Tolerance(5e-2, 5e-2) for n in FLOAT_OUTPUTS}, "points": EXACT,
             **{n: EXACT for n in DEBUG_OUTPUT_NAMES}},
    # INT8: weights and activations of every INT8 layer rounded to 8 bits (1/254 of each tensor's
    # calibrated range), through the 12 encoder layers. A sanity bound: a mis-wired or mis-scaled graph errs
    # by the order of the range itself. Selections: compared after forcing (see module docstring).
    "int8": {**{n: Tolerance(INT8_TOLERANCE, INT8_TOLERANCE) for n in FLOAT_OUTPUTS}, "points": EXACT,
             **{n: EXACT for n in DEBUG_OUTPUT_NAMES}},
}


class VerificationError(RuntimeError):
    """The exported graph does not reproduce PyTorch within tolerance (the message lists the outputs)."""


@dataclass
class OutputError:
    name: str
    max_abs: float
    max_rel: float  # max_abs / max |reference|
    limit: float
    scale: float

    @property
    def passed(self) -> bool:
        return self.max_abs <= self.limit

    def line(self) -> str:
        status = "ok" if self.passed else "FAIL"
        return (f"  {self.name:<22} max abs {self.max_abs:.3e}  max rel {self.max_rel:.3e}  "
                f"(limit {self.limit:.3e})  {status}")


@dataclass
class VerificationReport:
    runtime: str
    precision: str
    batch: int
    seconds: float
    errors: list[OutputError] = field(default_factory=list)
    selection: dict = field(default_factory=dict)  # {"equal": bool[, "gaps", "tie_limits", "ties"]}

    @property
    def passed(self) -> bool:
        return all(e.passed for e in self.errors)

    def lines(self) -> list[str]:
        head = (f"verification ({self.runtime}, {self.precision}, batch {self.batch}, {self.seconds:.1f} s) "
                f"against PyTorch float32:")
        lines = [head] + [e.line() for e in self.errors]
        if not self.selection.get("equal", True) and not self.selection.get("required", True):
            gaps = ", ".join(f"{k} {v:.2e}" for k, v in self.selection["gaps"].items())
            lines.append(f"  selection differs from PyTorch's in {self.selection['differing_samples']} of "
                         f"{self.batch} samples (largest gaps of PyTorch's own scores: {gaps}); reported, not "
                         f"required for {self.precision}: outputs compared with PyTorch forced to the graph's "
                         "selection")
        elif not self.selection.get("equal", True):
            gaps = ", ".join(f"{k} {v:.2e} (tie limit {self.selection['tie_limits'][k]:.0e})"
                             for k, v in self.selection["gaps"].items())
            verdict = ("ties of PyTorch's own scores: outputs compared with PyTorch forced to the graph's "
                       "selection" if self.selection["ties"] else "NOT ties: FAIL")
            lines.append(f"  selection differs from PyTorch's; largest gaps {gaps}: {verdict}")
        return lines

    def as_dict(self) -> dict:
        return {"runtime": self.runtime, "precision": self.precision, "batch": self.batch,
                "passed": self.passed, "selection": self.selection,
                "outputs": {e.name: {"max_abs": e.max_abs, "max_rel": e.max_rel, "limit": e.limit}
                            for e in self.errors}}


def sample_inputs(cfg: ModelConfig, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic network inputs: normalised-range images, token ids inside the vocabulary, and
    padding lengths that cover both branches of the text filter (fewer valid tokens than queries, and
    at least as many)."""
    g = torch.Generator().manual_seed(seed)
    S, L, N = cfg.image_size, cfg.max_tokens, cfg.num_queries
    image = torch.randn(batch, 3, S, S, generator=g)
    ids = torch.randint(4, min(cfg.encoder.vocab_size, 30000), (batch, L), generator=g)
    # sample 0 has more valid tokens than queries (top-k branch), sample 1 fewer (in-order branch)
    lengths = [max(3, min(L, n)) for n in ((N + L) // 2, N - 1, L, N)]
    pad = torch.zeros(batch, L, dtype=torch.bool)
    for b in range(batch):
        n_valid = lengths[b % len(lengths)]
        pad[b, n_valid:] = True
        ids[b, 0], ids[b, n_valid - 1] = 0, 2  # <s> ... </s>
    ids[pad] = 1  # <pad>
    return {"image": image.numpy(), "text_ids": ids.numpy(), "text_pad_mask": pad.numpy()}


def pytorch_reference(model: torch.nn.Module, inputs: dict[str, np.ndarray], text_index: np.ndarray | None = None,
                      point_index: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The float32 model's outputs (RAW_OUTPUT_NAMES + debug indices) on ``inputs``, optionally with the
    text-token / point selections forced (``ops.forced_selection``). Also returns, under private
    keys, what the selections were made from: ``_point_scores`` [B, h*w] (sigmoid of the attention map)
    and ``_text_scores`` [B, L] (the text filter's scores, -inf beyond the valid tokens)."""
    args = [torch.from_numpy(inputs[k]) for k in ("image", "text_ids", "text_pad_mask")]
    forced = [None if v is None else torch.from_numpy(np.asarray(v, np.int64)) for v in (text_index, point_index)]
    with torch.no_grad(), ops.forced_selection(*forced), record_intermediates(model) as stages:
        out = model.forward_all(*args)
        valid = ~args[2]
        text_scores = (stages["F_t"].float() * valid.unsqueeze(-1)).mean(-1)
        text_scores = text_scores.masked_fill(~valid, float("-inf"))
    result = {n: out[n].float().numpy() for n in RAW_OUTPUT_NAMES}
    result["debug_point_index"] = out["point_index"].numpy()
    result["debug_text_index"] = out["text_index"].numpy()
    result["_point_scores"] = out["global_attn_map"].sigmoid().flatten(1).numpy()
    result["_text_scores"] = text_scores.numpy()
    return result


# How far below the best candidate a selection may be and still count as a tie of the reference's
# scores (the graph picked a different but equally good cell/token). Points: in units of the selector's
# combined score s + w_dist * d / diag (s = sigmoid(attention probability) ~ 0.5); text tokens: relative
# to the largest filter score. Random weights give exact ties (gres-base: two cells with equal s).
# INT8 (None): agreement is reported, not required.
SELECTION_TIE = {"fp32": {"points": 1e-6, "text": 1e-5}, "fp16": {"points": 1e-4, "text": 1e-2}, "int8": None}


def point_selection_gap(scores: np.ndarray, picks: np.ndarray, grid: tuple[int, int], w_dist: float) -> float:
    """Replay the greedy selector on the reference ``scores`` [h*w] following ``picks`` [N]; the largest
    shortfall of a pick below that step's best combined score (0 = every pick was a maximum)."""
    h, w = grid
    rows, cols = np.divmod(np.arange(h * w), w)
    scale = ops.distance_scale(w_dist, h, w)
    chosen = np.zeros(h * w, bool)
    dmin = np.full(h * w, np.inf)
    worst = 0.0
    for k, pick in enumerate(int(p) for p in picks):
        combined = scores.astype(np.float64) if k == 0 else np.where(chosen, -np.inf, scores + scale * dmin)
        if chosen[pick]:
            return float("inf")
        worst = max(worst, float(combined.max() - combined[pick]))
        chosen[pick] = True
        dmin = np.minimum(dmin, np.hypot(rows - rows[pick], cols - cols[pick]))
    return worst


def text_selection_gap(scores: np.ndarray, picks: np.ndarray) -> float:
    """Largest shortfall of the k-th picked token's reference score below the k-th best, relative to the
    largest |score| (inf if the pick is not a valid token or repeats one)."""
    valid = np.isfinite(scores)
    n = len(picks)
    if valid.sum() < n:  # the in-order branch: positions 0..n-1, no scores involved
        return 0.0 if list(picks) == list(range(n)) else float("inf")
    if len(set(picks.tolist())) != n or not valid[picks].all():
        return float("inf")
    best = np.sort(scores[valid])[::-1][:n]
    scale = max(float(np.abs(scores[valid]).max()), 1e-12)
    return float(np.max(best - scores[picks]) / scale)


def selection_ties(outputs: dict, reference: dict, cfg: ModelConfig) -> dict[str, float]:
    """Largest gap (see SELECTION_TIE) of the graph's point and text selections over the batch."""
    grid = (cfg.grid_size, cfg.grid_size)
    points = max(point_selection_gap(s, p, grid, cfg.w_dist)
                 for s, p in zip(reference["_point_scores"], outputs["debug_point_index"]))
    text = max(text_selection_gap(s, p) for s, p in zip(reference["_text_scores"], outputs["debug_text_index"]))
    return {"points": points, "text": text}


def graph_runtime(model: onnx.ModelProto, target: str) -> str:
    """Where :func:`run_graph` runs ``model``: ONNX Runtime (tensorrt-target graphs with the plugin kernels as
    custom operators), or onnx.reference with the Python plugin ops where those kernels are not built."""
    from .ort_session import custom_ops_unavailable

    if target == "portable":
        return "onnxruntime CPU"
    if custom_ops_unavailable(model) is None:
        return "onnxruntime CPU + plugin kernels (host build)"
    return "onnx.reference + instancevg plugin ops"


def run_graph(model: onnx.ModelProto, target: str, inputs: dict[str, np.ndarray],
              session: dict | None = None) -> dict[str, np.ndarray]:
    """Run ``model`` on ``inputs`` (image cast to the graph's input type) where :func:`graph_runtime` says;
    ``session``: the ONNX Runtime settings INT8 graphs record (``export.quantize.onnxruntime_session``)."""
    feeds = dict(inputs)
    image_type = next(i for i in model.graph.input if i.name == "image").type.tensor_type.elem_type
    feeds["image"] = inputs["image"].astype(onnx.helper.tensor_dtype_to_np_dtype(image_type))
    names = [o.name for o in model.graph.output]
    if graph_runtime(model, target).startswith("onnxruntime"):
        import onnxruntime as ort

        from .ort_session import onnxruntime_session

        options = ort.SessionOptions()
        options.log_severity_level = 3
        results = onnxruntime_session(model, ["CPUExecutionProvider"], options, session).run(names, feeds)
    else:
        from .reference_runtime import reference_session

        results = reference_session(model).run(names, feeds)
    return dict(zip(names, results))


def compare(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray], precision: str,
            tolerances: dict[str, Tolerance] | None = None) -> list[OutputError]:
    """Per-output max abs / rel error and pass/fail against the precision's tolerances."""
    tolerances = tolerances or TOLERANCES[precision]
    errors = []
    for name, ref in reference.items():
        if name.startswith("_") or name not in outputs:
            continue
        got = outputs[name]
        if got.shape != ref.shape:
            errors.append(OutputError(name, float("inf"), float("inf"), 0.0, 0.0))
            continue
        diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
        max_abs = float(diff.max()) if diff.size else 0.0
        scale = float(np.abs(ref).max()) if ref.size else 0.0
        if not np.isfinite(got.astype(np.float64)).all():
            max_abs = float("inf")
        tol = tolerances[name]
        errors.append(OutputError(name, max_abs, max_abs / max(scale, 1e-12), tol.limit(scale), scale))
    return errors


def verify(model: onnx.ModelProto, target: str, precision: str, inputs: dict[str, np.ndarray],
           reference: dict[str, np.ndarray], tolerances: dict[str, Tolerance] | None = None,
           cfg: ModelConfig | None = None, forced_reference: Callable | None = None,
           session: dict | None = None) -> VerificationReport:
    """Run and compare; the report says whether every output is within tolerance.

    When the graph selects other points / text tokens than PyTorch and every such pick ties the best
    one of PyTorch's own scores (SELECTION_TIE), the selection is accepted and the outputs are compared
    with PyTorch forced to the graph's selection (``forced_reference(text_index, point_index)``); the
    report says so. Any other selection difference fails."""
    start = time.perf_counter()
    runtime = graph_runtime(model, target)
    outputs = run_graph(model, target, inputs, session)
    report = VerificationReport(runtime, precision, int(inputs["image"].shape[0]), 0.0)
    same = all(np.array_equal(outputs[k], reference[k]) for k in DEBUG_OUTPUT_NAMES)
    if not same and cfg is not None and forced_reference is not None:
        gaps = selection_ties(outputs, reference, cfg)
        limits = SELECTION_TIE[precision]
        if limits is None:  # reported, not required
            differing = sum(not all(np.array_equal(outputs[k][b], reference[k][b]) for k in DEBUG_OUTPUT_NAMES)
                            for b in range(len(outputs[DEBUG_OUTPUT_NAMES[0]])))
            report.selection = {"equal": False, "required": False, "gaps": gaps, "differing_samples": differing}
        else:
            report.selection = {"equal": False, "gaps": gaps, "tie_limits": limits,
                                "ties": all(gaps[k] <= limits[k] for k in gaps)}
        if limits is None or report.selection["ties"]:
            reference = forced_reference(outputs["debug_text_index"], outputs["debug_point_index"])
    else:
        report.selection = {"equal": same}
    report.errors = compare(outputs, reference, precision, tolerances)
    report.seconds = time.perf_counter() - start
    return report
