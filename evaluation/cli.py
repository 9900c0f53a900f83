"""``instancevg-eval``: score a backend (or a predictions file) on the benchmarks of the paper, and prove
that two backends score the same.

    instancevg-eval --backend pytorch --dataset grefcoco --split val --data-root DATA \\
        --checkpoint CKPT --config gres-base --tokenizer beit3.spm --output report.json
    instancevg-eval --backend onnxruntime --onnx model.onnx --dataset grefcoco --data-root DATA
    instancevg-eval --backend tensorrt --engine model.engine --compare pytorch --checkpoint CKPT \\
        --suite paper --data-root DATA --output parity.json          # + parity.md and parity.html
    instancevg-eval --predictions preds.jsonl --dataset grefcoco --split val --data-root DATA

Prints one table per paper table (or the parity deltas) and writes a JSON report (``--output``)
atomically. With ``--compare`` the command exits with status 1 when a metric delta exceeds the tolerance.
Under ``torchrun --nproc_per_node N`` the samples are sharded and gathered back in dataset order.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from instancevg.config import PRESETS
from instancevg.data.datasets import DatasetError, available_benchmarks, get_benchmark, open_dataset
from instancevg.io import write_text_atomic

from . import distributed
from .report import build_report, paper_tables, write_report
from .runner import evaluate_split, score_predictions

BACKENDS = ("pytorch", "onnxruntime", "tensorrt")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="instancevg-eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_argument_group("what to evaluate")
    what.add_argument("--dataset", help="benchmark name (refcoco, refcoco+, refcocog, grefcoco, refzom, rrefcoco, "
                                        "rrefcoco+, rrefcocog)")
    what.add_argument("--split", help="split (default: every evaluation split of the benchmark)")
    what.add_argument("--suite", choices=("paper",), help="every benchmark/split of the paper found under --data-root")
    what.add_argument("--data-root", required=True, help="folder holding the datasets (either input format)")
    what.add_argument("--format", default="auto", choices=("auto", "unified", "original"), help="input format")
    what.add_argument("--max-samples", type=int, help="evaluate only the first N samples of each split (smoke runs)")
    model = p.add_argument_group("backend")
    model.add_argument("--backend", default="pytorch", choices=BACKENDS)
    model.add_argument("--onnx", help="portable ONNX graph (--backend onnxruntime)")
    model.add_argument("--engine", help="TensorRT engine (--backend tensorrt)")
    model.add_argument("--plugins", help="libinstancevg_plugins.so (default: the one recorded in the engine sidecar)")
    model.add_argument("--predictions", help="score this predictions file instead of running a model")
    model.add_argument("--config", help="model preset for the pytorch backend (default: the graph's, else tiny)",
                       choices=sorted(PRESETS))
    model.add_argument("--checkpoint", help="InstanceVG checkpoint for the pytorch backend (default: bundled for tiny)")
    model.add_argument("--tokenizer", help="SentencePiece model (default: bundled for tiny)")
    model.add_argument("--random-weights", action="store_true", help="pytorch backend without a checkpoint (smoke test)")
    model.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    model.add_argument("--batch-size", type=int, default=8)
    model.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    parity = p.add_argument_group("parity")
    parity.add_argument("--compare", choices=BACKENDS, help="reference backend to compare with")
    parity.add_argument("--compare-onnx", help="portable graph of an onnxruntime reference")
    parity.add_argument("--compare-engine", help="engine of a tensorrt reference")
    parity.add_argument("--tolerance", type=float,
                        help="largest allowed metric delta in points (default: 0.5 for FP32 graphs, 2.0 for FP16, "
                             "1.0 for INT8)")
    out = p.add_argument_group("outputs")
    out.add_argument("--output", "-o", help="JSON report path (with --compare also .md and .html summaries)")
    out.add_argument("--save-predictions", help="predictions file (JSON Lines); with several splits, "
                                                "'{dataset}' and '{split}' in the name are filled in")
    out.add_argument("--no-progress", action="store_true")
    return p


def _splits(args) -> list[tuple[str, str]]:
    if args.suite:
        found = available_benchmarks(args.data_root)
        if not found:
            raise DatasetError(f"no benchmark found under {args.data_root} (expected the unified JSONs or the "
                               "original releases; see instancevg/data/datasets/registry.py)")
        return [(name, split) for name in found for split in get_benchmark(name).splits]
    if not args.dataset:
        raise ValueError("give --dataset (with an optional --split) or --suite paper")
    splits = [args.split] if args.split else list(get_benchmark(args.dataset).splits)
    return [(args.dataset, s) for s in splits]


def _predictions_path(template: str | None, name: str, split: str, several: bool) -> str | None:
    if template is None:
        return None
    if several and "{split}" not in template:
        raise ValueError("--save-predictions needs '{dataset}' and '{split}' in its name when several splits run")
    return template.format(dataset=name, split=split)


def make_backend(kind: str, args, onnx: str | None = None, engine: str | None = None, config: str | None = None):
    """Instantiate a backend from the command-line arguments."""
    if kind == "onnxruntime":
        if not onnx:
            raise ValueError("--backend onnxruntime needs --onnx model.onnx (a --target portable export)")
        from .backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(onnx, args.tokenizer, "cuda" if args.device.startswith("cuda") else "cpu")
    if kind == "tensorrt":
        if not engine:
            raise ValueError("--backend tensorrt needs --engine model.engine (built by instancevg-build-engine)")
        from .backends.tensorrt import TensorRTBackend

        return TensorRTBackend(engine, args.tokenizer, args.plugins,
                               args.device if args.device.startswith("cuda") else "cuda")
    from .backends.pytorch import PyTorchBackend

    return PyTorchBackend.from_files(config or "tiny", args.checkpoint, args.tokenizer,
                                     args.device, args.random_weights)


def reference_pytorch_settings(candidate) -> tuple[str, bool]:
    """The config (and whether weights are random) of the PyTorch reference of an exported graph."""
    sidecar = getattr(candidate, "sidecar", {})
    sidecar = sidecar.get("onnx_sidecar", sidecar)
    return candidate.config.name, bool((sidecar.get("checkpoint") or {}).get("random_weights"))


def run(args) -> int:
    distributed.init_from_environment(args.device)
    targets = _splits(args)
    backend = reference = None
    if not args.predictions:
        backend = make_backend(args.backend, args, args.onnx, args.engine, args.config)
        if args.compare:
            config = args.config or backend.config.name
            if args.compare == "pytorch" and args.backend != "pytorch" and not args.checkpoint:
                config, random_weights = reference_pytorch_settings(backend)
                args.random_weights = args.random_weights or random_weights
            reference = make_backend(args.compare, args, args.compare_onnx, args.compare_engine, config)
    results, parity = [], []
    for name, split in targets:
        benchmark = get_benchmark(name)
        dataset = open_dataset(name, split, args.data_root, format=args.format)
        if args.predictions:
            results.append(score_predictions(args.predictions, dataset, benchmark.metrics,
                                             progress=not args.no_progress))
            continue
        if benchmark.max_tokens != backend.config.max_tokens:
            warnings.warn(f"{name} is officially evaluated with {benchmark.max_tokens} tokens; config "
                          f"{backend.config.name!r} uses {backend.config.max_tokens}")
        if reference is not None:
            from .parity import compare_split

            parity.append(compare_split(backend, reference, dataset, benchmark.metrics, args.tolerance,
                                        args.batch_size, args.workers, not args.no_progress, args.max_samples))
            results.append(parity[-1].candidate)
            continue
        results.append(evaluate_split(
            backend, dataset, benchmark.metrics, args.batch_size, args.workers, not args.no_progress,
            save_predictions=_predictions_path(args.save_predictions, name, split, len(targets) > 1),
            max_samples=args.max_samples))
    if not distributed.is_main():
        return 0
    if parity:
        from .parity import html_summary, markdown_summary

        print(markdown_summary(parity))
        violations = [v for p in parity for v in p.violations]
        print("parity: " + ("PASSED" if not violations else "FAILED\n  " + "\n  ".join(violations)))
    else:
        print(paper_tables(results))
    if args.output:
        fields = dict(suite=args.suite, data_root=args.data_root,
                      backend="predictions" if args.predictions else args.backend,
                      config=None if args.predictions else backend.config.name)
        if parity:
            report = build_report([], **fields, compare=args.compare, parity=[p.to_json() for p in parity],
                                  passed=not any(p.violations for p in parity))
            report.pop("results")
            stem = Path(args.output).with_suffix("")
            write_text_atomic(f"{stem}.md", markdown_summary(parity))
            write_text_atomic(f"{stem}.html", html_summary(parity, f"{args.backend} vs {args.compare}"))
        else:
            report = build_report(results, **fields)
        write_report(args.output, report)
        print(f"report written to {args.output}")
    return 1 if any(p.violations for p in parity) else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ValueError, FileNotFoundError, OSError, RuntimeError) as exc:
        print(f"instancevg-eval: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
