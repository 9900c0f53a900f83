"""The PyTorch backend: the reference every other backend is compared with."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from instancevg.config import ModelConfig, PostprocessConfig
from instancevg.data.tokenizer import Tokenizer
from instancevg.inference import load_model, resolve_files, run_model
from instancevg.model import InstanceVG
from instancevg.structures import RawOutputs


class PyTorchBackend:
    """Runs an ``InstanceVG`` module (eval mode, no grad) on the given device."""

    name = "pytorch"

    def __init__(self, model: InstanceVG, tokenizer: Tokenizer | str | Path, post: PostprocessConfig | None = None,
                 device: str | torch.device = "cpu", checkpoint: str | None = None):
        self.model = model.eval()
        self.config: ModelConfig = model.cfg
        self.tokenizer_path = str(tokenizer.spm_path if isinstance(tokenizer, Tokenizer) else tokenizer)
        self.post = post or model.cfg.postprocess
        self.device = torch.device(device)
        self.checkpoint = checkpoint
        self.model.to(self.device)

    @classmethod
    def from_files(cls, config: str | ModelConfig, checkpoint=None, tokenizer=None, device="cpu",
                   random_weights: bool = False, post: PostprocessConfig | None = None,
                   trusted: bool = False) -> "PyTorchBackend":
        """``trusted``: unpickle a checkpoint that safe loading refuses (--trust-checkpoint)."""
        cfg, checkpoint, tokenizer = resolve_files(config, checkpoint, tokenizer, random_weights)
        model = load_model(cfg, checkpoint, device, trusted=trusted)
        return cls(model, tokenizer, post, device, str(checkpoint) if checkpoint else None)

    def forward(self, inputs: dict[str, np.ndarray]) -> RawOutputs:
        return run_model(self.model, inputs, self.device).numpy()

    def describe(self) -> dict:
        return {"name": self.name, "device": str(self.device), "config": self.config.name,
                "checkpoint": self.checkpoint, "torch": torch.__version__}
