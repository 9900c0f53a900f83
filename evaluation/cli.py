"""``instancevg-eval``: score a backend (or a predictions file) on the benchmarks of the paper.

    instancevg-eval --backend pytorch --dataset grefcoco --split val --data-root DATA \\
        --checkpoint CKPT --config gres-base --tokenizer beit3.spm --output report.json
    instancevg-eval --suite paper --data-root DATA --config tiny          # every benchmark/split found
    instancevg-eval --predictions preds.jsonl --dataset grefcoco --split val --data-root DATA

Prints one table per paper table and writes a JSON report (``--output``) atomically. Under
``torchrun --nproc_per_node N`` the samples are sharded and gathered back in dataset order.
"""
from __future__ import annotations

import argparse
import sys
import warnings

from instancevg.config import PRESETS
from instancevg.data.datasets import DatasetError, available_benchmarks, get_benchmark, open_dataset

from . import distributed
from .report import build_report, paper_tables, write_report
from .runner import evaluate_split, score_predictions

BACKENDS = ("pytorch",)


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
    model = p.add_argument_group("model")
    model.add_argument("--backend", default="pytorch", choices=BACKENDS)
    model.add_argument("--predictions", help="score this predictions file instead of running a model")
    model.add_argument("--config", default="tiny", choices=sorted(PRESETS))
    model.add_argument("--checkpoint", help="InstanceVG checkpoint (default: bundled for tiny)")
    model.add_argument("--tokenizer", help="SentencePiece model (default: bundled for tiny)")
    model.add_argument("--random-weights", action="store_true", help="no checkpoint (smoke test)")
    model.add_argument("--device", default="cpu")
    model.add_argument("--batch-size", type=int, default=8)
    model.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    out = p.add_argument_group("outputs")
    out.add_argument("--output", "-o", help="JSON report path")
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


def run(args) -> list:
    distributed.init_from_environment(args.device)
    targets = _splits(args)
    backend = None
    if not args.predictions:
        from .backends.pytorch import PyTorchBackend

        backend = PyTorchBackend.from_files(args.config, args.checkpoint, args.tokenizer, args.device,
                                            args.random_weights)
    results = []
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
        results.append(evaluate_split(
            backend, dataset, benchmark.metrics, args.batch_size, args.workers, not args.no_progress,
            save_predictions=_predictions_path(args.save_predictions, name, split, len(targets) > 1),
            max_samples=args.max_samples))
    if distributed.is_main():
        print(paper_tables(results))
        if args.output:
            report = build_report(results, suite=args.suite, config=None if args.predictions else args.config,
                                  backend="predictions" if args.predictions else args.backend,
                                  data_root=args.data_root)
            write_report(args.output, report)
            print(f"report written to {args.output}")
    return results


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (ValueError, FileNotFoundError, OSError) as exc:
        print(f"instancevg-eval: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
