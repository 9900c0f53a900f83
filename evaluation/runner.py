"""The evaluation runner: one benchmark split through one backend, scored by the split's metric suite.

Every backend gets the same preprocessed inputs (``instancevg.data``) and its RawOutputs go through the
same post-processing (``instancevg.postprocess``), so metric differences between backends are
differences in the network's numbers. Under ``torchrun`` the samples are sharded rank::world, and the
evaluator records and predictions are gathered back in dataset order, so the metrics are exactly the
single-process ones.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from instancevg.data.tokenizer import Tokenizer
from instancevg.data.transforms import preprocess_image
from instancevg.postprocess import postprocess

from . import distributed
from .metrics import build_evaluator, merge_records
from .predictions import PredictionsHeader, PredictionsWriter, load_predictions, prediction_to_json, read_header


@dataclass
class SplitResult:
    """Metrics of one benchmark split: {evaluator name: {metric: value}} plus what produced them."""

    benchmark: str
    split: str
    metrics: dict[str, dict]
    samples: int
    options: dict[str, dict] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    backend: dict = field(default_factory=dict)
    resolution: tuple[int, int] = (0, 0)
    postprocess: dict = field(default_factory=dict)  # thr_q, thr_m, output mask mode, NMS of the predictions

    def to_json(self) -> dict:
        return {"benchmark": self.benchmark, "split": self.split, "samples": self.samples,
                "resolution": list(self.resolution), "postprocess": self.postprocess, "metrics": self.metrics,
                "options": self.options, "timings": self.timings, "backend": self.backend}


class _ShardInputs(Dataset):
    """This rank's samples as network inputs + evaluation targets (built in DataLoader workers)."""

    def __init__(self, dataset, indices: Sequence[int], tokenizer_path: str, max_tokens: int, size: int):
        self.dataset, self.indices = dataset, list(indices)
        self.tokenizer_path, self.max_tokens, self.size = tokenizer_path, max_tokens, size
        self._tokenizer = None

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        if self._tokenizer is None:  # one per worker process
            self._tokenizer = Tokenizer(self.tokenizer_path, self.max_tokens)
        sample = self.dataset[self.indices[i]]
        try:
            ids, pad = self._tokenizer.encode(sample.expression)
        except ValueError as err:
            raise ValueError(f"sample {sample.sample_id!r} of {self.dataset!r}: {err}") from None
        return (sample.sample_id, preprocess_image(sample.load_image(), self.size), ids, pad,
                sample.to_target(self.size))


def _collate(items):
    ids, images, text, pads, targets = zip(*items)
    return list(ids), {"image": np.stack(images), "text_ids": np.stack(text), "text_pad_mask": np.stack(pads)}, \
        list(targets)


def _evaluate_records(metrics: Sequence[str], options: Mapping[str, dict], parts: Mapping[str, list],
                      order: list) -> tuple[dict, dict]:
    """Fresh evaluators fed the gathered records in dataset order: identical sums for any world size."""
    results, used = {}, {}
    for name in metrics:
        evaluator = build_evaluator(name, **options.get(name, {}))
        evaluator.load_records(merge_records(parts[name], order=order))
        results[name] = evaluator.evaluate()
        used[name] = evaluator.options()
    return results, used


def _check_compatible(backends) -> None:
    first = backends[0]
    for other in backends[1:]:
        a, b = first.config, other.config
        if (a.image_size, a.max_tokens, a.num_queries) != (b.image_size, b.max_tokens, b.num_queries):
            raise ValueError(f"backends {first.name} ({a.name}: {a.image_size} px, {a.max_tokens} tokens, "
                             f"{a.num_queries} queries) and {other.name} ({b.name}: {b.image_size} px, "
                             f"{b.max_tokens} tokens, {b.num_queries} queries) do not run the same model shape")


def run_backends(backends: Sequence, dataset, metrics: Sequence[str], batch_size: int = 8, workers: int = 0,
                 progress: bool = False, evaluator_options: Mapping[str, dict] | None = None,
                 save_predictions: Sequence[str | Path | None] | None = None, max_samples: int | None = None,
                 on_batch=None) -> list[SplitResult]:
    """Run every backend on the same preprocessed batches and score each with ``metrics``.

    ``save_predictions``: one path (or None) per backend; ``on_batch(sample_ids, predictions_per_backend,
    raw_per_backend)`` sees every batch (parity statistics).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    _check_compatible(backends)
    options = dict(evaluator_options or {})
    cfg, size = backends[0].config, backends[0].config.image_size
    total = len(dataset) if max_samples is None else min(max_samples, len(dataset))
    if total == 0:
        raise ValueError(f"{dataset!r} has no samples to evaluate")
    save = list(save_predictions or [None] * len(backends))
    evaluators = [{name: build_evaluator(name, **options.get(name, {})) for name in metrics} for _ in backends]
    inputs = _ShardInputs(dataset, list(distributed.shard(total)), backends[0].tokenizer_path, cfg.max_tokens, size)
    loader = DataLoader(inputs, batch_size=batch_size, num_workers=workers, collate_fn=_collate)
    encoded = [[] for _ in backends]
    started, forward_s = time.perf_counter(), [0.0] * len(backends)
    label = "+".join(b.name for b in backends)
    bar = tqdm(loader, total=len(loader), desc=f"{dataset.name}/{dataset.split} [{label}]", unit="batch",
               disable=not progress or not distributed.is_main())
    for sample_ids, batch, targets in bar:
        raws, preds = [], []
        for k, backend in enumerate(backends):
            t = time.perf_counter()
            raws.append(backend.forward(batch))
            forward_s[k] += time.perf_counter() - t
            preds.append(postprocess(raws[-1], backend.post, size, False))
            for sample_id, pred, target in zip(sample_ids, preds[-1], targets):
                for evaluator in evaluators[k].values():
                    evaluator.process(sample_id, pred, target)
                if save[k] is not None:
                    encoded[k].append(prediction_to_json(sample_id, pred, (size, size)))
        if on_batch is not None:
            on_batch(sample_ids, preds, raws)
    order = [dataset[i].sample_id for i in range(total)]
    elapsed = time.perf_counter() - started
    results = []
    for k, backend in enumerate(backends):
        parts = {name: distributed.gather(ev.records()) for name, ev in evaluators[k].items()}
        scores, used = _evaluate_records(metrics, options, parts, order)
        if save[k] is not None:
            _write_predictions(save[k], dataset, backend, order, distributed.gather(encoded[k]))
        results.append(SplitResult(
            dataset.name, dataset.split, scores, total, used,
            {"total_s": elapsed, "forward_s": forward_s[k], "per_sample_ms": 1000 * elapsed / total,
             "processes": distributed.world()[1]},
            backend.describe(), (size, size), dataclasses.asdict(backend.post)))
    return results


def _write_predictions(path, dataset, backend, order, gathered_parts) -> None:
    """Rank 0 writes the gathered encoded predictions in dataset order, atomically."""
    if not distributed.is_main():
        return
    by_id = {obj["sample_id"]: obj for part in gathered_parts for obj in part}
    size = backend.config.image_size
    header = PredictionsHeader(dataset=dataset.name, split=dataset.split, backend=backend.name,
                               resolution=(size, size), thr_q=backend.post.thr_q, thr_m=backend.post.thr_m)
    with PredictionsWriter(path, header) as writer:
        for sample_id in order:
            writer.write_encoded(by_id[sample_id])


def evaluate_split(backend, dataset, metrics: Sequence[str], batch_size: int = 8, workers: int = 0,
                   progress: bool = False, evaluator_options: Mapping[str, dict] | None = None,
                   save_predictions: str | Path | None = None, max_samples: int | None = None) -> SplitResult:
    """Run ``backend`` over ``dataset`` (a SampleDataset) and score it with the evaluators ``metrics``.

    ``save_predictions`` writes the predictions file (rank 0, atomically, dataset order);
    ``max_samples`` evaluates only the first samples (smoke runs).
    """
    return run_backends([backend], dataset, metrics, batch_size, workers, progress, evaluator_options,
                        [save_predictions], max_samples)[0]


def score_predictions(path: str | Path, dataset, metrics: Sequence[str],
                      evaluator_options: Mapping[str, dict] | None = None,
                      progress: bool = False) -> SplitResult:
    """Score a predictions file against ``dataset`` without any model (targets at the file's resolution)."""
    options = dict(evaluator_options or {})
    header = read_header(path)
    if (header.dataset, header.split) != (dataset.name, dataset.split):
        raise ValueError(f"{path} holds predictions for {header.dataset}/{header.split}, not "
                         f"{dataset.name}/{dataset.split}")
    order = [s.sample_id for s in dataset]
    header, predictions = load_predictions(path, expected_ids=order)
    height, width = header.resolution
    if height != width:
        raise ValueError(f"{path}: resolution {header.resolution} is not square; the evaluation resolution is "
                         "the model's square input size")
    evaluators = {name: build_evaluator(name, **options.get(name, {})) for name in metrics}
    started = time.perf_counter()
    for sample in tqdm(dataset, desc=f"{dataset.name}/{dataset.split} [predictions]", disable=not progress):
        target = sample.to_target(height)
        for evaluator in evaluators.values():
            evaluator.process(sample.sample_id, predictions[sample.sample_id], target)
    results = {name: ev.evaluate() for name, ev in evaluators.items()}
    return SplitResult(dataset.name, dataset.split, results, len(order),
                       {name: ev.options() for name, ev in evaluators.items()},
                       {"total_s": time.perf_counter() - started},
                       {"name": header.backend, "predictions": str(path), "thr_q": header.thr_q,
                        "thr_m": header.thr_m}, (height, width), {"thr_q": header.thr_q, "thr_m": header.thr_m})
