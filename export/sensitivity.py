"""Per-layer comparison of the INT8 graph: which weighted layers move the outputs when quantized.

    python -m export.sensitivity --calib-data DATA                       # bundled tiny model, each layer alone
    python -m export.sensitivity --calib-data DATA --mode leave-one-out  # the policy minus one layer
    python -m export.sensitivity --calib-data DATA --mode policy --calib-method entropy   # policy only

The model's portable graph is calibrated once (as ``instancevg-export --int8`` does); then, for every
candidate layer, a Q/DQ graph is built with only that layer in INT8 (``single``) or with the policy's INT8
layers except that one (``leave-one-out``) and run in ONNX Runtime on held-out samples of the calibration
split. Candidates: the policy's INT8 layers and those it keeps float for their sensitivity (the patch
embedding and the attention products). Reported per layer: the mean over samples of
max |INT8 - float| / max |float| for class_logits and instance_mask_logits, their sum (the ranking), and
the share of samples selecting the same points as the float graph. This is how the policy's sensitivity
entries were found (export/README.md, INT8).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import onnx
from tqdm import tqdm

from .calibration import DEFAULT_SAMPLES, METHODS, CalibrationSpec, calibrate, default_method, held_out_batches
from .exporter import ExportError, build_graph, resolve_tokenizer
from .options import ExportOptions
from .quantize import ACTIVATION_PRODUCT, FLOAT_MODULES, INT8_OPS, QuantPlan, onnxruntime_session, plan, quantize_graph

SENSITIVITY_REASONS = (ACTIVATION_PRODUCT, FLOAT_MODULES["vis_enc.beit3.vision_embed*"])
MEASURED = ("class_logits", "instance_mask_logits")


def _run(model: onnx.ModelProto, batches: list[dict], session: dict) -> list[dict]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    runner = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"],
                                  disabled_optimizers=list(session["disabled_optimizers"]))
    names = list(MEASURED) + ["debug_point_index"]
    return [dict(zip(names, runner.run(names, feeds))) for feeds in batches]


def compare(outputs: list[dict], reference: list[dict]) -> dict:
    """Mean relative max error per measured output and the share of samples with identical points."""
    errors = {name: float(np.mean([np.abs(o[name] - r[name]).max() / max(np.abs(r[name]).max(), 1e-12)
                                   for o, r in zip(outputs, reference)])) for name in MEASURED}
    same = np.mean([np.array_equal(o["debug_point_index"], r["debug_point_index"]) for o, r in zip(outputs, reference)])
    return {**errors, "error": sum(errors.values()), "points_identical": float(same)}


def layer_sensitivity(config: str, checkpoint: str | None, spec: CalibrationSpec, samples: int, mode: str,
                      random_weights: bool = False, tokenizer: str | None = None) -> tuple[dict, list[tuple]]:
    """({"policy": row, "all candidates": row}, [(node name, module, row)] ranked: single mode by error,
    largest first; leave-one-out mode by error, smallest first)."""
    traced = build_graph(config, ExportOptions(target="portable", verify=False), checkpoint, random_weights,
                         log=None, tokenizer=tokenizer)
    model, cfg = traced.model, traced.cfg
    tok = resolve_tokenizer(cfg, tokenizer, True)
    ranges, _ = calibrate(model, spec, cfg, tok, 1, INT8_OPS, progress=False)
    batches = held_out_batches(spec, cfg, tok, samples, 1)
    session = onnxruntime_session("fp32")
    reference = _run(model, batches, {"disabled_optimizers": []})
    policy = plan(model)
    candidates = policy.quantize + [n for n, r in policy.keep_float.items() if r in SENSITIVITY_REASONS]

    def measure(int8_nodes: list[str]) -> dict:
        chosen = set(int8_nodes)
        layers = QuantPlan([n for n in candidates if n in chosen],
                           {n: "float" for n in list(policy.keep_float) + candidates if n not in chosen}, policy.modules)
        return compare(_run(quantize_graph(model, ranges, layers), batches, session), reference)

    summary = {"policy": measure(policy.quantize), "all candidates": measure(candidates)}
    rows = []
    layers = {"single": candidates, "leave-one-out": policy.quantize, "policy": []}[mode]
    for node in tqdm(layers, desc=f"layers ({mode})", unit="layer"):
        subset = [node] if mode == "single" else [n for n in policy.quantize if n != node]
        rows.append((node, policy.modules[node], measure(subset)))
    # single: most sensitive first; leave-one-out: the largest improvement first
    return summary, sorted(rows, key=lambda row: -row[2]["error"] if mode == "single" else row[2]["error"])


def format_row(label: str, row: dict) -> str:
    return (f"{row['error']:7.4f}  class {row['class_logits']:.4f}  masks {row['instance_mask_logits']:.4f}  "
            f"points identical {100 * row['points_identical']:5.1f} %  {label}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.sensitivity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="tiny", help="model config (default: %(default)s)")
    p.add_argument("--checkpoint", help="checkpoint (default: the bundled one of the config)")
    p.add_argument("--random-weights", action="store_true", help="random weights instead of a checkpoint")
    p.add_argument("--tokenizer", help="SentencePiece model (default: the bundled one of the config)")
    p.add_argument("--calib-data", required=True, metavar="DATA", help="data root holding a benchmark")
    p.add_argument("--calib-dataset", metavar="NAME", help="benchmark (default: as instancevg-export --int8)")
    p.add_argument("--calib-split", metavar="SPLIT", help="split (default: the training split)")
    p.add_argument("--calib-samples", type=int, default=DEFAULT_SAMPLES, metavar="N",
                   help="calibration samples (default: %(default)s)")
    p.add_argument("--calib-method", choices=METHODS, default=default_method("fp32"),
                   help="calibrator (default: %(default)s)")
    p.add_argument("--samples", type=int, default=30, help="held-out samples to compare on (default: %(default)s)")
    p.add_argument("--mode", choices=("single", "leave-one-out", "policy"), default="single",
                   help="each candidate layer alone in INT8, the policy minus one layer, or only the policy and "
                        "all candidates (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        if args.samples < 1:
            raise ValueError(f"--samples must be >= 1, got {args.samples}")
        spec = CalibrationSpec(args.calib_data, args.calib_dataset, args.calib_split, args.calib_samples,
                               args.calib_method)
        summary, rows = layer_sensitivity(args.config, args.checkpoint, spec, args.samples, args.mode,
                                          args.random_weights, args.tokenizer)
    except (ExportError, ValueError, FileNotFoundError) as exc:
        print(f"export.sensitivity: error: {exc}", file=sys.stderr)
        return 2
    print("  error  (mean over samples of max |INT8 - float| / max |float|; error = class + masks)")
    for label, row in summary.items():
        print(format_row(f"[{label}]", row))
    for node, module, row in rows:
        print(format_row(f"{module} ({node})", row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
