"""The training loop of the official code (``tools/train.py`` + ``apis/train.py``), single process or DDP.

Per step: forward (train mode) -> InstanceVGCriterion -> backward -> clip_grad_norm_(all, 0.15) -> Adam.
Per epoch: evaluation callback (every process) -> checkpoints (rank 0) -> scheduler.step() (official order).
Optimiser: Adam (amsgrad, betas 0.9/0.98, eps 1e-9, wd 0), parameters whose name contains ``vis_enc``
at ``lr_vis_enc`` (official: lr / 10), the rest at ``lr``.

Files under ``work_dir`` (rank 0 only, each written atomically):
    latest.pth           every epoch: official format {"state_dict", "optimizer", "scheduler", "lr", "epoch",
                         metric keys} + what exact resume needs (RNG states, step, best values, config);
    <name>_best.pth      a copy of latest.pth when its tracked metric improves (``best_metrics``, official:
                         det_best.pth on GREC F1score and segm_best.pth on GRES cIoU for gRefCOCO);
    metrics.jsonl        one JSON object per line: "train" (every ``log_interval`` steps: mean of every
                         loss term since the last line, lr), "epoch" (epoch means, evaluation metrics, time);
    train_config.json    the TrainConfig of the run.

Exact resume: model, optimizer, scheduler, AMP scaler, epoch, step, best values and the RNG states (torch,
CUDA, numpy, python) are restored; the data order is a function of (seed, epoch) (DistributedSampler with
the run's seed; the expression draw of ``GroundingTrainSet``), so a resumed run repeats the uninterrupted
one step for step.

The library never imports ``evaluation``: the caller passes ``evaluate_fn(model) -> {evaluator: {metric:
value}}`` (the CLI builds it from the evaluation runner).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from ..checkpoint import atomic_torch_save, read_file
from ..io import atomic_path, unwritable_reason, write_json_atomic
from .. import distributed
from .data import GroundingTrainSet, collate
from .losses import InstanceVGCriterion, LossOutput
from .schedule import multistep_lr_warmup

EvaluateFn = Callable[[nn.Module], dict]
LATEST = "latest.pth"
METRICS_LOG = "metrics.jsonl"


@dataclass
class TrainConfig:
    """Hyper-parameters of a run (official defaults: gRefCOCO schedule, batch 16 per process)."""

    epochs: int = 10
    batch_size: int = 16
    lr: float = 5e-4
    lr_vis_enc: Optional[float] = None  # None: lr / 10 (official)
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-9
    weight_decay: float = 0.0
    amsgrad: bool = True
    warmup_epochs: int = 1
    decay_steps: tuple[int, ...] = (7,)
    decay_ratio: float = 0.1
    grad_clip: float = 0.15  # L2 norm over all parameters; 0 disables
    seed: int = 6666
    workers: int = 0
    amp: bool = False
    log_interval: int = 10
    progress: bool = True
    # (checkpoint file, "evaluator/metric"): copy latest.pth there when the metric improves
    best_metrics: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        for name in ("epochs", "batch_size", "log_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {self.workers}")
        if self.lr <= 0 or (self.lr_vis_enc is not None and self.lr_vis_enc < 0):
            raise ValueError(f"learning rates must be positive, got lr={self.lr}, lr_vis_enc={self.lr_vis_enc}")
        self.betas = tuple(self.betas)
        self.decay_steps = tuple(int(s) for s in self.decay_steps)
        self.best_metrics = tuple(tuple(pair) for pair in self.best_metrics)

    @property
    def encoder_lr(self) -> float:
        return self.lr / 10.0 if self.lr_vis_enc is None else self.lr_vis_enc

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def seed_everything(seed: int) -> None:
    """python, numpy and torch (CPU and CUDA) generators (official ``set_random_seed``)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def rng_state() -> dict:
    """Every global RNG state as tensors and lists (loadable with torch.load(weights_only=True))."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
            "python": [py_state[0], list(py_state[1]), py_state[2]]}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam with the official groups: ``vis_enc`` parameters at the encoder lr, the rest at ``lr``."""
    encoder = [p for n, p in model.named_parameters() if "vis_enc" in n and p.requires_grad]
    rest = [p for n, p in model.named_parameters() if "vis_enc" not in n and p.requires_grad]
    groups = [{"params": encoder, "lr": cfg.encoder_lr, "name": "vis_enc"},
              {"params": rest, "lr": cfg.lr, "name": "rest"}]
    return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay,
                            amsgrad=cfg.amsgrad)


class _ForwardAll(nn.Module):
    """Routes ``forward`` to ``InstanceVG.forward_all`` so DDP sees the training outputs (its gradient
    hooks and unused-parameter search run through ``forward``). Holds the model as ``model``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image, text_ids, text_pad_mask):
        return self.model.forward_all(image, text_ids, text_pad_mask)


def check_work_dir(work_dir: str | Path) -> Path:
    """Prove ``work_dir`` writable (a clear error before any training starts) and create it."""
    work_dir = Path(work_dir)
    reason = unwritable_reason(work_dir, "folder")
    if reason is not None:
        raise PermissionError(f"work dir {work_dir} is not writable: {reason}")
    work_dir.mkdir(parents=True, exist_ok=True)
    return work_dir


def flatten_metrics(metrics: dict) -> dict[str, float]:
    """{"grec": {"F1score": 50.0}} -> {"grec/F1score": 50.0} (numbers only: an undefined metric, None,
    is left out, so it never becomes a best value nor a checkpoint key)."""
    flat = {}
    for evaluator, values in (metrics or {}).items():
        if isinstance(values, dict):
            for name, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    flat[f"{evaluator}/{name}"] = float(value)
        elif isinstance(values, (int, float)) and not isinstance(values, bool):
            flat[str(evaluator)] = float(values)
    return flat


class Trainer:
    """Trains ``model`` on ``train_set`` (a GroundingTrainSet) under ``cfg``.

    Args:
        model: an InstanceVG on ``device`` (seed before building it for a reproducible init).
        train_set: the training data; work_dir: output folder (checked writable here);
        evaluate_fn: called with the bare model (eval mode, no grad) after each epoch on every process (the
            evaluation runner shards the split under DDP; None: no evaluation);
        device: where to train; under torchrun call ``distributed.init_distributed`` first.
    """

    def __init__(self, model: nn.Module, train_set: GroundingTrainSet, cfg: TrainConfig, work_dir: str | Path,
                 device: torch.device | str = "cpu", evaluate_fn: Optional[EvaluateFn] = None):
        self.cfg = cfg
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.train_set = train_set
        self.evaluate_fn = evaluate_fn
        self.main = distributed.is_main_process()
        self.work_dir = check_work_dir(work_dir) if self.main else Path(work_dir)
        self.criterion = InstanceVGCriterion(model.cfg.loss)
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = multistep_lr_warmup(self.optimizer, cfg.warmup_epochs, cfg.decay_steps, cfg.decay_ratio)
        self.use_scaler = cfg.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_scaler)
        wrapped = _ForwardAll(self.model)
        if distributed.is_distributed():
            ids = [self.device.index] if self.device.type == "cuda" else None
            # the official model has parameters no output uses (query_embedding, level_embeds, ...)
            wrapped = nn.parallel.DistributedDataParallel(wrapped, device_ids=ids, find_unused_parameters=True)
        self.forward = wrapped
        self.sampler = DistributedSampler(train_set, num_replicas=distributed.world_size(),
                                          rank=distributed.rank(), shuffle=True, seed=cfg.seed, drop_last=False)
        self.start_epoch = 0
        self.global_step = 0
        self.best: dict[str, float] = {}
        self.last_metrics: dict = {}

    # ------------------------------------------------------------------ data
    def loader(self, epoch: int) -> DataLoader:
        self.sampler.set_epoch(epoch)
        self.train_set.set_epoch(epoch)
        # a generator of its own, so building the loader draws nothing from the global torch RNG
        generator = torch.Generator().manual_seed(self.cfg.seed * 1000 + epoch)
        return DataLoader(self.train_set, batch_size=self.cfg.batch_size, sampler=self.sampler,
                          num_workers=self.cfg.workers, collate_fn=collate, drop_last=False,
                          pin_memory=self.device.type == "cuda", generator=generator,
                          persistent_workers=False)

    # ------------------------------------------------------------------ one step
    def autocast(self):
        if not self.cfg.amp:
            return contextlib.nullcontext()
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

    def train_step(self, batch: dict) -> LossOutput:
        """Forward, loss, backward, clip, Adam step on one batch; returns the losses."""
        image = batch["image"].to(self.device, non_blocking=True)
        text_ids = batch["text_ids"].to(self.device, non_blocking=True)
        pad_mask = batch["text_pad_mask"].to(self.device, non_blocking=True)
        targets = batch["targets"].to(self.device)
        with self.autocast():
            outputs = self.forward(image, text_ids, pad_mask)
        losses = self.criterion(outputs, targets)  # float32 whatever the autocast dtype
        if not torch.isfinite(losses.total):
            bad = {k: v for k, v in losses.scalars().items() if not math.isfinite(v)}
            raise FloatingPointError(f"non-finite loss at step {self.global_step} (samples "
                                     f"{batch['index'].tolist()}): {bad}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses.total).backward()
        if self.cfg.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.global_step += 1
        return losses

    # ------------------------------------------------------------------ one epoch
    def train_one_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the data; returns the mean of every loss term (averaged over processes)."""
        self.model.train()
        loader = self.loader(epoch)
        sums: dict[str, float] = {}
        window: dict[str, float] = {}
        window_steps = 0
        bar = None
        if self.main and self.cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(loader), desc=f"epoch {epoch + 1}/{self.cfg.epochs}", unit="step",
                       dynamic_ncols=True, leave=False)
        for i, batch in enumerate(loader):
            scalars = self.reduce_scalars(self.train_step(batch).scalars())
            for k, v in scalars.items():
                sums[k] = sums.get(k, 0.0) + v
                window[k] = window.get(k, 0.0) + v
            window_steps += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{scalars['loss']:.4f}", det=f"{scalars['loss_det']:.3f}",
                                mask=f"{scalars['loss_mask']:.3f}", nt=f"{scalars['loss_label_nt']:.3f}")
            if window_steps == self.cfg.log_interval or i + 1 == len(loader):
                self.log({"event": "train", "epoch": epoch, "step": self.global_step, "iter": i + 1,
                          "iters": len(loader), "lr": self.optimizer.param_groups[1]["lr"],
                          "lr_vis_enc": self.optimizer.param_groups[0]["lr"],
                          **{k: v / window_steps for k, v in window.items()}})
                window, window_steps = {}, 0
        if bar is not None:
            bar.close()
        return {k: v / max(len(loader), 1) for k, v in sums.items()}

    def reduce_scalars(self, scalars: dict[str, float]) -> dict[str, float]:
        """Average the logged terms over the processes (official ``reduce_mean`` of the losses)."""
        if not distributed.is_distributed():
            return scalars
        names = sorted(scalars)
        values = distributed.all_reduce_mean(torch.tensor([scalars[n] for n in names], dtype=torch.float64,
                                                          device=self.device))
        return dict(zip(names, values.tolist()))

    # ------------------------------------------------------------------ the run
    def fit(self) -> dict:
        """Train from ``start_epoch`` to ``cfg.epochs``; returns the last evaluation metrics."""
        if self.main:
            write_json_atomic(self.work_dir / "train_config.json", self.cfg.to_dict())
        for epoch in range(self.start_epoch, self.cfg.epochs):
            start = time.time()
            train_means = self.train_one_epoch(epoch)
            metrics = self.evaluate()
            lr = self.optimizer.param_groups[1]["lr"]
            if self.main:
                self.save(epoch, metrics, lr)
                self.log({"event": "epoch", "epoch": epoch, "step": self.global_step, "lr": lr,
                          "time_s": round(time.time() - start, 3), "train": train_means, "eval": metrics})
            self.scheduler.step()  # official: after evaluation and saving, once per epoch
            distributed.barrier()
        return self.last_metrics

    def evaluate(self) -> dict:
        """Run the callback on every process with the bare model in eval mode. Under DDP the evaluation
        runner shards the split over the processes and gathers the records (a collective call, so every
        process must take part); a single-process callback simply runs on each process."""
        metrics = {}
        if self.evaluate_fn is not None:
            self.model.eval()
            with torch.no_grad():
                metrics = self.evaluate_fn(self.model) or {}
            self.model.train()
        distributed.barrier()
        self.last_metrics = metrics
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_dict(self, epoch: int, metrics: dict, lr: float) -> dict:
        flat = flatten_metrics(metrics)
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        return {"state_dict": state, "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "lr": lr, "epoch": epoch, **flat,
                "metrics": metrics, **{f"best_{k}": v for k, v in self.best.items()},
                "best": dict(self.best), "global_step": self.global_step, "rng": rng_state(),
                "scaler": self.scaler.state_dict(), "train_config": self.cfg.to_dict(),
                "config": self.model.cfg.name}

    def save(self, epoch: int, metrics: dict, lr: float) -> None:
        """latest.pth, then the best copies whose metric improved (rank 0)."""
        flat = flatten_metrics(metrics)
        improved = []
        for file_name, key in self.cfg.best_metrics:
            if key in flat and flat[key] > self.best.get(key, -math.inf):
                self.best[key] = flat[key]
                improved.append(file_name)
        latest = self.work_dir / LATEST
        atomic_torch_save(self.checkpoint_dict(epoch, metrics, lr), latest)
        for file_name in improved:
            with atomic_path(self.work_dir / file_name) as tmp:
                shutil.copyfile(latest, tmp)

    def resume(self, path: str | Path, trusted: bool = False) -> None:
        """Restore a checkpoint written by ``save``; training continues at its epoch + 1. ``trusted``:
        unpickle a file that safe loading refuses (``instancevg.checkpoint.read_file``)."""
        ckpt = read_file(path, trusted)
        missing = [k for k in ("state_dict", "optimizer", "scheduler", "epoch", "rng") if k not in ckpt]
        if missing:
            raise ValueError(f"{path}: not a resumable instancevg-train checkpoint (lacks {missing}); load "
                             "weights-only files with --pretrained-beit3 or instancevg.checkpoint.load_checkpoint")
        if ckpt.get("config", self.model.cfg.name) != self.model.cfg.name:
            raise ValueError(f"{path} was trained with config {ckpt['config']!r}, not {self.model.cfg.name!r}")
        from ..checkpoint import load_checkpoint

        load_checkpoint(self.model, {"state_dict": ckpt["state_dict"]})
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if "scaler" in ckpt and self.use_scaler:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.start_epoch = int(ckpt["epoch"]) + 1
        self.global_step = int(ckpt.get("global_step", 0))
        self.best = dict(ckpt.get("best", {}))
        self.last_metrics = ckpt.get("metrics", {})
        set_rng_state(ckpt["rng"])
        if self.main:
            self.log({"event": "resume", "from": str(path), "epoch": self.start_epoch, "step": self.global_step})

    # ------------------------------------------------------------------ log
    def log(self, record: dict) -> None:
        """Append one JSON line to metrics.jsonl (rank 0; one write per line, flushed)."""
        if not self.main:
            return
        with open(self.work_dir / METRICS_LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()


def slim_checkpoint(source: str | Path, destination: str | Path, dtype: Optional[torch.dtype] = None,
                    trusted: bool = False) -> dict:
    """Write a deployable copy of a training checkpoint: {"state_dict", "epoch", "metrics", "config"} (no
    optimizer or RNG state); ``dtype`` casts floating tensors (e.g. torch.float16 to halve the size)."""
    ckpt = read_file(source, trusted)
    state = ckpt["state_dict"]
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    slim = {"state_dict": state, "epoch": ckpt.get("epoch"), "metrics": ckpt.get("metrics", {}),
            "config": ckpt.get("config")}
    atomic_torch_save(slim, destination)
    return slim
