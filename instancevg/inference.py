"""PyTorch inference: model + tokenizer + preprocessing + the shared post-processing."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from . import bundled
from .checkpoint import load_checkpoint
from .config import ModelConfig, PostprocessConfig, get_config
from .data.tokenizer import Tokenizer
from .data.transforms import preprocess_image
from .model import InstanceVG, build_model
from .postprocess import postprocess
from .structures import INPUT_NAMES, Prediction, RawOutputs


def resolve_files(config: str | ModelConfig, checkpoint: str | Path | None, tokenizer: str | Path | None,
                  random_weights: bool = False) -> tuple[ModelConfig, Path | None, Path]:
    """Config, checkpoint and tokenizer paths with the bundled defaults filled in; clear errors when a
    required file is neither given nor bundled."""
    cfg = get_config(config) if isinstance(config, str) else config
    if checkpoint is None and not random_weights:
        checkpoint = bundled.default_checkpoint(cfg.name)
        if checkpoint is None:
            raise ValueError(f"no --checkpoint given and none is bundled for config {cfg.name!r}; pass "
                             "--checkpoint FILE (an official InstanceVG checkpoint) or --random-weights")
    if tokenizer is None:
        tokenizer = bundled.default_tokenizer(cfg.name)
        if tokenizer is None:
            raise ValueError(f"config {cfg.name!r} needs --tokenizer (BEiT-3's SentencePiece model beit3.spm)")
    return cfg, (Path(checkpoint) if checkpoint is not None else None), Path(tokenizer)


def load_model(cfg: ModelConfig, checkpoint: str | Path | None, device: str | torch.device = "cpu",
               seed: int = 0, trusted: bool = False) -> InstanceVG:
    """Build the model in eval mode, with the checkpoint's weights or (checkpoint None) seeded random ones.
    ``trusted``: unpickle a checkpoint that safe loading refuses (``instancevg.checkpoint.read_file``)."""
    torch.manual_seed(seed)
    model = build_model(cfg)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, trusted)
    else:
        warnings.warn(f"config {cfg.name!r} runs with RANDOM weights: its predictions mean nothing")
    return model.eval().to(device)


def prepare_inputs(images: Sequence[np.ndarray], expressions: Sequence[str], tokenizer: Tokenizer,
                   size: int) -> dict[str, np.ndarray]:
    """The three network inputs of a batch: image [B,3,S,S] float32, text_ids [B,L] int64,
    text_pad_mask [B,L] bool, from RGB uint8 images and their expressions."""
    if len(images) != len(expressions):
        raise ValueError(f"{len(images)} images but {len(expressions)} expressions")
    ids, pad = tokenizer.encode_batch(list(expressions))
    return {"image": np.stack([preprocess_image(im, size) for im in images]), "text_ids": ids, "text_pad_mask": pad}


@torch.no_grad()
def run_model(model: InstanceVG, inputs: dict[str, np.ndarray], device: torch.device) -> RawOutputs:
    """The model on numpy inputs (names of structures.INPUT_NAMES), outputs as torch tensors."""
    return model(*(torch.from_numpy(np.ascontiguousarray(inputs[k])).to(device) for k in INPUT_NAMES))


class Predictor:
    """Ground expressions in images with the PyTorch model.

    ``predict`` takes RGB uint8 images of any size and returns Predictions at the model's square
    resolution (use ``instancevg.postprocess.rescale_prediction`` for original-size outputs).
    """

    def __init__(self, model: InstanceVG, tokenizer: Tokenizer, post: PostprocessConfig | None = None,
                 device: str | torch.device = "cpu"):
        if tokenizer.max_tokens != model.cfg.max_tokens:
            raise ValueError(f"tokenizer max_tokens {tokenizer.max_tokens} != config max_tokens "
                             f"{model.cfg.max_tokens}")
        if tokenizer.vocab_size > model.cfg.encoder.vocab_size:
            raise ValueError(f"tokenizer {tokenizer.spm_path} emits {tokenizer.vocab_size} ids but config "
                             f"{model.cfg.name!r} embeds only {model.cfg.encoder.vocab_size}")
        self.model, self.tokenizer = model, tokenizer
        self.post = post or model.cfg.postprocess
        self.device = torch.device(device)

    def predict(self, images: Sequence[np.ndarray], expressions: Sequence[str]) -> list[Prediction]:
        raw = run_model(self.model, prepare_inputs(images, expressions, self.tokenizer, self.model.cfg.image_size),
                        self.device)
        return postprocess(raw, self.post, self.model.cfg.image_size)
