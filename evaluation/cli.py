"""instancevg-eval: score a backend (or a predictions file) on the benchmarks of the paper, and prove
that two backends score the same.

    instancevg-eval --backend pytorch --dataset grefcoco --split val --data-root DATA \\
        --checkpoint CKPT --config gres-base --tokenizer beit3.spm --output report.json
    instancevg-eval --backend onnxruntime --onnx model.onnx --dataset grefcoco --data-root DATA
    instancevg-eval --backend tensorrt --engine model.engine --compare pytorch --checkpoint CKPT \\
        --suite paper --data-root DATA --output parity.json          # + parity.md and parity.html
    instancevg-eval --predictions preds.jsonl --dataset grefcoco --split val --data-root DATA

Prints one table per paper table (or, with --compare, the parity summary and verdict) and writes a
JSON report (-o; with --compare also the .md and .html parity report next to it) atomically. With
--compare the command exits with status 1 when a metric delta exceeds the tolerance. Under
torchrun --nproc_per_node N the samples are sharded and gathered back in dataset order.
"""
from __future__ import annotations

import argparse
import sys

from instancevg import notices
from instancevg.cli.arguments import (CommandError, add_data_arguments, add_model_arguments, add_output_argument,
                                     add_plugins_argument, add_progress_argument, add_runtime_arguments, apply_plugins,
                                     check_writable, make_parser, model_config, run_command, runtime_options)
from instancevg.data.datasets import DatasetError, available_benchmarks, get_benchmark, open_dataset
from instancevg.notices import warn_once

from . import distributed
from .report import build_report, paper_tables, write_report
from .runner import evaluate_split, score_predictions

BACKENDS = ("pytorch", "onnxruntime", "tensorrt", "triton")


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("instancevg-eval", __doc__)
    what = p.add_argument_group("what to evaluate")
    what.add_argument("--dataset", help="benchmark name (refcoco, refcoco+, refcocog, grefcoco, refzom, rrefcoco, "
                                        "rrefcoco+, rrefcocog)")
    what.add_argument("--split", help="split (default: every evaluation split of the benchmark)")
    what.add_argument("--suite", choices=("paper",), help="every benchmark/split of the paper found under --data-root")
    what.add_argument("--max-samples", type=int, help="evaluate only the first N samples of each split (smoke runs)")
    add_data_arguments(p)
    backend = p.add_argument_group("backend")
    backend.add_argument("--backend", default="pytorch", choices=BACKENDS,
                         help="what runs the model (default: %(default)s)")
    add_graph_arguments(backend)
    backend.add_argument("--predictions", help="score this predictions file instead of running a model")
    backend.add_argument("--batch-size", type=int, default=8, help="samples per batch (default: %(default)s)")
    backend.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default: 0)")
    add_plugins_argument(backend)
    add_model_arguments(p)
    add_runtime_arguments(p)
    parity = p.add_argument_group("parity")
    parity.add_argument("--compare", choices=BACKENDS, help="reference backend to compare with")
    parity.add_argument("--compare-onnx", help="ONNX graph of an onnxruntime reference")
    parity.add_argument("--compare-engine", help="engine of a tensorrt reference")
    parity.add_argument("--tolerance", type=float,
                        help="largest allowed metric delta in points (default: 0.5 for FP32 graphs, 2.0 for FP16, "
                             "1.0 for INT8)")
    out = p.add_argument_group("outputs")
    add_output_argument(out, "JSON report (with --compare also the .md and .html summaries next to it)")
    out.add_argument("--save-predictions", help="predictions file (JSON Lines); with several splits, '{dataset}' and "
                                                "'{split}' in the name are filled in; checked writable before any "
                                                "work starts")
    add_progress_argument(out)
    return p


def add_graph_arguments(group) -> None:
    """--onnx, --engine, --url, --triton-model: the exported model a backend runs (eval and bench)."""
    group.add_argument("--onnx", help="ONNX graph exported by instancevg-export (backend onnxruntime): portable, or "
                                      "tensorrt target with the plugin kernels (instancevg-bench: several, "
                                      "comma-separated, timed side by side)")
    group.add_argument("--engine", help="TensorRT engine built by instancevg-build-engine (backend tensorrt)")
    group.add_argument("--url", help="Triton server of an instancevg-triton deployment (backend triton): "
                                     "http://HOST:PORT or grpc://HOST:PORT")
    group.add_argument("--triton-model", default="instancevg_core",
                       help="core model of the Triton deployment (backend triton; default: %(default)s)")


def _splits(args) -> list[tuple[str, str]]:
    if args.suite:
        found = available_benchmarks(args.data_root)
        if not found:
            raise DatasetError(f"no benchmark found under {args.data_root} (expected the unified JSONs or the "
                               "original releases; see instancevg/data/datasets/registry.py)")
        return [(name, split) for name in found for split in get_benchmark(name).splits]
    if not args.dataset:
        raise CommandError("give --dataset (with an optional --split) or --suite paper")
    splits = [args.split] if args.split else list(get_benchmark(args.dataset).splits)
    return [(args.dataset, s) for s in splits]


def _predictions_path(template: str | None, name: str, split: str, several: bool) -> str | None:
    if template is None:
        return None
    if several and "{split}" not in template:
        raise CommandError("--save-predictions needs '{dataset}' and '{split}' in its name when several splits run")
    return template.format(dataset=name, split=split)


def make_backend(kind: str, args, onnx: str | None = None, engine: str | None = None, config: str | None = None,
                 reference: bool = False):
    """Instantiate a backend from the command-line arguments, on this process's device (under torchrun:
    the GPU of its LOCAL_RANK, for every backend). ``reference``: the backend of --compare, which runs the
    PyTorch model as it is defined (reference ops, float32, no TF32) whatever the candidate's settings."""
    device = distributed.local_device(args.device)
    cuda_graph = getattr(args, "cuda_graph", False)
    if kind == "onnxruntime":
        if not onnx:
            raise CommandError("--backend onnxruntime needs --onnx model.onnx (exported by instancevg-export)")
        from .backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(onnx, args.tokenizer, device)
    if kind == "triton":
        if not args.url:
            raise CommandError("--backend triton needs --url http://HOST:PORT (or grpc://HOST:PORT) of a running "
                             "instancevg-triton deployment")
        from .backends.triton import TritonBackend

        return TritonBackend(args.url, args.triton_model, args.tokenizer)
    if kind == "tensorrt":
        if not engine:
            raise CommandError("--backend tensorrt needs --engine model.engine (built by instancevg-build-engine)")
        from .backends.tensorrt import TensorRTBackend

        return TensorRTBackend(engine, args.tokenizer, args.plugins, device if device.startswith("cuda") else "cuda",
                               cuda_graph)
    from .backends.pytorch import PyTorchBackend

    options = {"cuda_graph": cuda_graph} if reference else runtime_options(args)
    return PyTorchBackend.from_files(config or model_config(args), args.checkpoint, args.tokenizer, device,
                                     args.random_weights, trusted=args.trust_checkpoint, **options)


def reference_pytorch_settings(candidate) -> tuple[str, bool]:
    """The config (and whether weights are random) of the PyTorch reference of an exported graph."""
    sidecar = getattr(candidate, "sidecar", {})
    sidecar = sidecar.get("onnx_sidecar", sidecar)
    return candidate.config.name, bool((sidecar.get("checkpoint") or {}).get("random_weights"))


def warn_token_budgets(benchmarks: list[str], config) -> None:
    """One line per run naming the benchmarks officially evaluated with another token budget."""
    budgets: dict[int, list[str]] = {}
    for name in dict.fromkeys(benchmarks):
        tokens = get_benchmark(name).max_tokens
        if tokens != config.max_tokens:
            budgets.setdefault(tokens, []).append(name)
    if budgets:
        official = "; ".join(f"{', '.join(names)} with {tokens}" for tokens, names in budgets.items())
        warn_once(("token-budget", config.name),
                  f"config {config.name!r} encodes {config.max_tokens} tokens, but the official evaluation uses "
                  f"other budgets: {official}")


def check_outputs(args, targets: list[tuple[str, str]]) -> None:
    """-o and every --save-predictions file writable, before any work."""
    if args.output:
        check_writable(args.output, "-o")
    for name, split in targets:
        path = _predictions_path(args.save_predictions, name, split, len(targets) > 1)
        if path is not None:
            check_writable(path, "--save-predictions")


def run(args) -> int:
    notices.reset()  # "once per run" warnings: a new run in this process reports afresh
    apply_plugins(args)
    targets = _splits(args)
    check_outputs(args, targets)
    datasets = [open_dataset(name, split, args.data_root, format=args.format) for name, split in targets]
    distributed.init_from_environment(args.device)
    backend = reference = None
    if not args.predictions:
        backend = make_backend(args.backend, args, args.onnx, args.engine, args.config)
        if args.compare:
            config = args.config or backend.config.name
            if args.compare == "pytorch" and args.backend != "pytorch" and not args.checkpoint:
                config, random_weights = reference_pytorch_settings(backend)
                args.random_weights = args.random_weights or random_weights
            reference = make_backend(args.compare, args, args.compare_onnx, args.compare_engine, config,
                                     reference=True)
    if backend is not None and distributed.is_main():
        warn_token_budgets([name for name, _ in targets], backend.config)
    results, parity = [], []
    for (name, split), dataset in zip(targets, datasets):
        benchmark = get_benchmark(name)
        if distributed.is_main():
            count = len(dataset) if args.max_samples is None else min(args.max_samples, len(dataset))
            print(f"{name}/{split}: {count} samples", flush=True)
        if args.predictions:
            results.append(score_predictions(args.predictions, dataset, benchmark.metrics,
                                             progress=not args.no_progress))
            continue
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
    fields = dict(suite=args.suite, data_root=args.data_root,
                  backend="predictions" if args.predictions else args.backend,
                  config=None if args.predictions else backend.config.name)
    if parity:
        from .parity_report import ParityReport, candidate_label

        report = ParityReport({candidate_label(parity[0].candidate.backend): parity}, **fields,
                              compare=args.compare)
        print(report.console(table=True))
        if args.output:
            print("reports: " + ", ".join(map(str, report.write(args.output))))
        return 0 if report.passed else 1
    print(paper_tables(results))
    if args.output:
        write_report(args.output, build_report(results, **fields))
        print(f"report written to {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("instancevg-eval", run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
