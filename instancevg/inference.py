"""PyTorch inference: model + tokenizer + preprocessing + the shared post-processing."""
from __future__ import annotations

import contextlib
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
from .ops import use_ops
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


@contextlib.contextmanager
def tf32_mode(enabled: bool):
    """Inside the block, float32 matrix products and convolutions on CUDA use TF32 (``enabled``) or full
    IEEE float32 (torch's own default lets cuDNN convolutions use TF32); the previous settings come back
    after. No effect on the CPU."""
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    if hasattr(matmul, "fp32_precision"):
        saved = (matmul.fp32_precision, conv.fp32_precision)
        matmul.fp32_precision = conv.fp32_precision = "tf32" if enabled else "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision, conv.fp32_precision = saved
    else:  # torch < 2.9: the flags
        saved = (matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
        try:
            yield
        finally:
            matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def compute_dtype(model: InstanceVG) -> torch.dtype:
    """The type the encoder computes in: float32, or float16 under the FP16 policy."""
    return model.vis_enc.beit3.vision_embed.proj.weight.dtype


class CudaGraphForward:
    """``model(image, text_ids, text_pad_mask)`` replayed from a CUDA graph, captured once per input shape
    into static buffers (the model copies nothing from the host and never synchronises inside forward).
    Returns float32 RawOutputs that stay valid until the next call."""

    def __init__(self, model: InstanceVG, warmup: int = 2):
        self.model, self.warmup = model, warmup
        self.graphs: dict[tuple, tuple] = {}

    def _capture(self, inputs: tuple[torch.Tensor, ...]):
        static = tuple(x.clone() for x in inputs)
        side = torch.cuda.Stream(static[0].device)
        side.wait_stream(torch.cuda.current_stream(static[0].device))
        with torch.cuda.stream(side):  # warm-up off the capture: lazy inits, allocator pools, kernel choices
            for _ in range(self.warmup):
                self.model(*static)
        torch.cuda.current_stream(static[0].device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = self.model(*static)
        return graph, static, outputs

    @torch.no_grad()
    def __call__(self, *inputs: torch.Tensor) -> RawOutputs:
        key = tuple((tuple(x.shape), x.dtype) for x in inputs)
        if key not in self.graphs:
            self.graphs[key] = self._capture(inputs)
        graph, static, outputs = self.graphs[key]
        for buffer, value in zip(static, inputs):
            buffer.copy_(value)
        graph.replay()
        return outputs


@torch.no_grad()
def run_model(model: InstanceVG, inputs: dict[str, np.ndarray], device: torch.device,
              graph: CudaGraphForward | None = None) -> RawOutputs:
    """The model on numpy inputs (names of structures.INPUT_NAMES), outputs as float32 torch tensors. The
    image is cast to the model's compute type (FP16 policy); ``graph`` replays a CUDA graph of the model."""
    tensors = [torch.from_numpy(np.ascontiguousarray(inputs[k])).to(device) for k in INPUT_NAMES]
    tensors[0] = tensors[0].to(compute_dtype(model))
    out = (graph or model)(*tensors)
    return RawOutputs(**{name: value.float() for name, value in out.as_dict().items()})


class Predictor:
    """Ground expressions in images with the PyTorch model.

    ``predict`` takes RGB uint8 images of any size and returns Predictions at the model's square
    resolution (use ``instancevg.postprocess.rescale_prediction`` for original-size outputs). ``ops``
    selects the custom ops' implementation (``instancevg.ops.use_ops``), ``tf32`` TF32 on CUDA.
    """

    def __init__(self, model: InstanceVG, tokenizer: Tokenizer, post: PostprocessConfig | None = None,
                 device: str | torch.device = "cpu", ops: str = "reference", tf32: bool = False):
        if tokenizer.max_tokens != model.cfg.max_tokens:
            raise ValueError(f"tokenizer max_tokens {tokenizer.max_tokens} != config max_tokens "
                             f"{model.cfg.max_tokens}")
        if tokenizer.vocab_size > model.cfg.encoder.vocab_size:
            raise ValueError(f"tokenizer {tokenizer.spm_path} emits {tokenizer.vocab_size} ids but config "
                             f"{model.cfg.name!r} embeds only {model.cfg.encoder.vocab_size}")
        self.model, self.tokenizer = model, tokenizer
        self.post = post or model.cfg.postprocess
        self.device = torch.device(device)
        self.ops, self.tf32 = ops, tf32

    def predict(self, images: Sequence[np.ndarray], expressions: Sequence[str]) -> list[Prediction]:
        inputs = prepare_inputs(images, expressions, self.tokenizer, self.model.cfg.image_size)
        with use_ops(self.ops), tf32_mode(self.tf32):
            raw = run_model(self.model, inputs, self.device)
        return postprocess(raw, self.post, self.model.cfg.image_size)
