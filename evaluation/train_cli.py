"""instancevg-train: train (or fine-tune) InstanceVG as the official code does, on one process or under
torchrun (DDP: gloo on CPU, nccl on CUDA).

    instancevg-train --config gres-base --dataset grefcoco --data-root DATA --device cuda \\
        --pretrained-beit3 beit3_base_patch16_224.pth --tokenizer beit3.spm --work-dir runs/gres-base
    torchrun --nproc_per_node 8 -m evaluation.train_cli --config gres-base --device cuda ...   (same arguments)

Defaults follow the official config of the dataset's family (gRefCOCO / Ref-ZOM / R-RefCOCO: 10 epochs,
warm-up 1, decay x0.1 at 7; RefCOCO: 20 epochs, warm-up 3, decay at 15), batch 16 per process, lr 5e-4
(BEiT-3 encoder: lr / 10), grad-norm clip 0.15, seed 6666. --device is cpu unless given, as in every
command: pass --device cuda to train on GPUs. After every epoch the model is evaluated on --eval-split with
the official metrics (sharded over the processes under torchrun), latest.pth and the best checkpoints are
written (rank 0, official format) and a line goes to metrics.jsonl. --resume WORK_DIR/latest.pth
continues a run exactly. Every input is checked (config, dataset, files, work dir, pretrained weights)
before training starts.

The command lives in the evaluation stage because it composes both: the training stack of instancevg
and, after every epoch, the evaluation runner; instancevg itself imports no later stage.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from instancevg import bundled
from instancevg.cli.arguments import (add_data_arguments, add_model_arguments, add_progress_argument,
                                     add_runtime_arguments, check_writable, make_parser, model_config, run_command)

# official checkpoint selection per family: (file, "evaluator/metric")
BEST_METRICS = {
    "grefcoco": (("det_best.pth", "grec/F1score"), ("segm_best.pth", "gres/cIoU")),
    "refzom": (("det_best.pth", "refzom/mIoU"), ("segm_best.pth", "refzom/Acc")),
    "refcoco": (("det_best.pth", "rec/Pr@0.5"), ("segm_best.pth", "res/mIoU")),
    "rrefcoco": (),  # the official run keeps latest.pth only
}


def build_parser() -> argparse.ArgumentParser:
    p = make_parser("instancevg-train", __doc__)
    p.add_argument("--dataset", required=True, help="benchmark to train on (grefcoco, refcoco, refzom, ...)")
    p.add_argument("--split", help="training split (default: the benchmark's train split)")
    p.add_argument("--work-dir", help="output folder: checkpoints, metrics.jsonl; checked writable before any work "
                                      "starts (default: work_dirs/<config>-<dataset>)")
    init = p.add_argument_group("initial weights")
    init.add_argument("--pretrained-beit3", metavar="PTH",
                      help="official BEiT-3 weights (e.g. beit3_base_patch16_224.pth)")
    init.add_argument("--load-from", metavar="PTH",
                      help="initialise from an InstanceVG checkpoint (fine-tuning; not a resume)")
    init.add_argument("--resume", metavar="PTH",
                      help="continue a run from its latest.pth (exact: optimizer, schedule, RNG)")
    schedule = p.add_argument_group("schedule")
    schedule.add_argument("--epochs", type=int, help="epochs (default: official for the family, 10 or 20)")
    schedule.add_argument("--warmup-epochs", type=int, help="warm-up epochs (default: official, 1 or 3)")
    schedule.add_argument("--decay-epochs", type=int, nargs="*",
                          help="epochs (1-based) from which the lr is multiplied by 0.1 (default: official, 7 or 15)")
    schedule.add_argument("--batch-size", type=int, default=16, help="batch size per process (default: 16)")
    schedule.add_argument("--lr", type=float, default=5e-4, help="learning rate of the head (default: 5e-4)")
    schedule.add_argument("--lr-vis-enc", type=float, help="learning rate of the BEiT-3 encoder (default: lr / 10)")
    schedule.add_argument("--grad-clip", type=float, default=0.15,
                          help="gradient L2-norm clip, 0 = off (default: 0.15)")
    schedule.add_argument("--amp", action="store_true",
                          help="mixed precision (float16 + grad scaling on CUDA, bfloat16 on CPU); losses stay "
                               "float32")
    schedule.add_argument("--seed", type=int, default=6666, help="seed (default: 6666, official)")
    schedule.add_argument("--workers", type=int, default=2, help="data-loading workers per process (default: 2)")
    schedule.add_argument("--threads", type=int, help="torch CPU threads per process (default: torch's choice)")
    schedule.add_argument("--train-limit", type=int, help="use only the first N training samples (smoke tests)")
    schedule.add_argument("--log-interval", type=int, default=10, help="steps per metrics.jsonl line (default: 10)")
    evaluation = p.add_argument_group("evaluation after each epoch")
    evaluation.add_argument("--eval-split", help="split evaluated after each epoch (default: the benchmark's first "
                                                 "evaluation split); 'none' disables evaluation")
    evaluation.add_argument("--eval-batch-size", type=int, default=16, help="evaluation batch size (default: 16)")
    add_data_arguments(p)
    add_model_arguments(p, checkpoint=False, random_weights=False)
    add_runtime_arguments(p, ops=False)
    add_progress_argument(p)
    return p


def make_evaluate_fn(dataset, metrics: tuple[str, ...], tokenizer, device, batch_size: int):
    """The per-epoch evaluation callback: the evaluation runner on ``dataset``."""
    from .backends import PyTorchBackend
    from .runner import evaluate_split

    def evaluate(model):
        backend = PyTorchBackend(model, tokenizer, post=None, device=str(device))
        return evaluate_split(backend, dataset, metrics, batch_size=batch_size, workers=0, progress=False).metrics

    return evaluate


def run(args: argparse.Namespace) -> dict:
    """Check every input, build everything, train; returns the last evaluation metrics."""
    import torch

    from instancevg.checkpoint import load_beit3_pretrained, load_checkpoint
    from instancevg.config import get_config
    from instancevg.data.datasets import get_benchmark, open_dataset
    from instancevg.data.tokenizer import Tokenizer
    from instancevg import distributed
    from instancevg.model import build_model
    from instancevg.training.data import GroundingTrainSet
    from instancevg.training.schedule import OFFICIAL_SCHEDULES
    from instancevg.training.trainer import TrainConfig, Trainer, seed_everything

    # ---- cheap checks first: nothing is built before every input is known to be usable
    cfg = get_config(model_config(args))
    benchmark = get_benchmark(args.dataset)
    work_dir = check_writable(args.work_dir or Path("work_dirs") / f"{cfg.name}-{benchmark.name}", "--work-dir",
                              "folder")
    if args.threads:
        torch.set_num_threads(args.threads)
    epochs, warmup, decay = OFFICIAL_SCHEDULES[benchmark.family]
    train_cfg = TrainConfig(
        epochs=args.epochs or epochs, batch_size=args.batch_size, lr=args.lr, lr_vis_enc=args.lr_vis_enc,
        warmup_epochs=warmup if args.warmup_epochs is None else args.warmup_epochs,
        decay_steps=tuple(decay if args.decay_epochs is None else args.decay_epochs), grad_clip=args.grad_clip,
        seed=args.seed, workers=args.workers, amp=args.amp, log_interval=args.log_interval,
        progress=not args.no_progress, best_metrics=BEST_METRICS[benchmark.family])
    for name in ("pretrained_beit3", "load_from", "resume"):
        path = getattr(args, name)
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"--{name.replace('_', '-')} {path}: file not found")
    tokenizer_path = args.tokenizer or bundled.default_tokenizer(cfg.name)
    if tokenizer_path is None:
        raise ValueError(f"config {cfg.name!r} needs --tokenizer (BEiT-3's SentencePiece model beit3.spm)")
    tokenizer = Tokenizer(tokenizer_path, cfg.max_tokens)
    if tokenizer.vocab_size > cfg.encoder.vocab_size:
        raise ValueError(f"tokenizer {tokenizer_path} emits {tokenizer.vocab_size} ids but config {cfg.name!r} "
                         f"embeds only {cfg.encoder.vocab_size}")
    device = torch.device(args.device)
    distributed.init_distributed(device)
    device = distributed.local_device(device)

    train_samples = open_dataset(benchmark.name, args.split or benchmark.train_split, args.data_root, args.format)
    if args.train_limit:
        train_samples = [train_samples[i] for i in range(min(args.train_limit, len(train_samples)))]
    eval_split = args.eval_split or benchmark.splits[0]
    evaluate_fn = None
    if eval_split.lower() != "none":
        eval_samples = open_dataset(benchmark.name, eval_split, args.data_root, args.format)
        evaluate_fn = make_evaluate_fn(eval_samples, benchmark.metrics, tokenizer, device, args.eval_batch_size)

    seed_everything(train_cfg.seed)  # same seed on every process (official): identical initial weights
    model = build_model(cfg)
    if args.pretrained_beit3:
        load_beit3_pretrained(model, args.pretrained_beit3, args.trust_checkpoint)  # raises CheckpointMismatchError when it does not fit
    if args.load_from:
        load_checkpoint(model, args.load_from, args.trust_checkpoint)
    train_set = GroundingTrainSet(train_samples, tokenizer, cfg.image_size, seed=train_cfg.seed)
    trainer = Trainer(model, train_set, train_cfg, work_dir, device, evaluate_fn)
    if args.resume:
        trainer.resume(args.resume, trusted=args.trust_checkpoint)
    try:
        return trainer.fit()
    finally:
        distributed.cleanup()


def train(args: argparse.Namespace) -> int:
    run(args)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("instancevg-train", train, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
