"""The PyTorch backend: the reference every other backend is compared with."""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from instancevg.config import ModelConfig, PostprocessConfig
from instancevg.data.tokenizer import Tokenizer
from instancevg.inference import CudaGraphForward, load_model, resolve_files, run_model, tf32_mode
from instancevg.model import InstanceVG
from instancevg.ops import IMPLEMENTATIONS, use_ops
from instancevg.structures import RawOutputs

PRECISIONS = ("fp32", "fp16")


class PyTorchBackend:
    """Runs an ``InstanceVG`` module (eval mode, no grad) on the given device.

    ``ops``: the custom ops' implementation ("reference" PyTorch, or "plugin": the TensorRT plugins'
    kernels, host build on the CPU, CUDA build on a GPU). ``precision``: "fp32", or "fp16" with the FP16
    export's policy (the same float32 islands; export/precision.py). ``tf32``: TF32 matrix products and
    convolutions on CUDA (off by default: full float32). ``cuda_graph``: replay a CUDA graph of the model.
    """

    name = "pytorch"

    def __init__(self, model: InstanceVG, tokenizer: Tokenizer | str | Path, post: PostprocessConfig | None = None,
                 device: str | torch.device = "cpu", checkpoint: str | None = None, ops: str = "reference",
                 precision: str = "fp32", tf32: bool = False, cuda_graph: bool = False):
        if ops not in IMPLEMENTATIONS:
            raise ValueError(f"ops must be one of {', '.join(IMPLEMENTATIONS)}, got {ops!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.device = torch.device(device)
        if cuda_graph and self.device.type != "cuda":
            raise ValueError("CUDA graphs need a CUDA device (--device cuda)")
        self.model = model.eval()
        if precision == "fp16":
            from instancevg.model.precision import apply_fp16_policy

            apply_fp16_policy(self.model)
        self.config: ModelConfig = model.cfg
        self.tokenizer_path = str(tokenizer.spm_path if isinstance(tokenizer, Tokenizer) else tokenizer)
        self.post = post or model.cfg.postprocess
        self.checkpoint = checkpoint
        self.ops, self.precision, self.tf32 = ops, precision, tf32
        self.model.to(self.device)
        self.graph = CudaGraphForward(self.model) if cuda_graph else None

    @classmethod
    def from_files(cls, config: str | ModelConfig, checkpoint=None, tokenizer=None, device="cpu",
                   random_weights: bool = False, post: PostprocessConfig | None = None, trusted: bool = False,
                   **options) -> "PyTorchBackend":
        """``trusted``: unpickle a checkpoint that safe loading refuses (--trust-checkpoint); ``options``: ops,
        precision, tf32, cuda_graph (see the class)."""
        cfg, checkpoint, tokenizer = resolve_files(config, checkpoint, tokenizer, random_weights)
        model = load_model(cfg, checkpoint, device, trusted=trusted)
        return cls(model, tokenizer, post, device, str(checkpoint) if checkpoint else None, **options)

    def settings(self):
        """The op implementation and TF32 mode the model runs under."""
        stack = contextlib.ExitStack()
        stack.enter_context(use_ops(self.ops))
        stack.enter_context(tf32_mode(self.tf32))
        return stack

    def forward(self, inputs: dict[str, np.ndarray]) -> RawOutputs:
        with self.settings():
            return run_model(self.model, inputs, self.device, self.graph).numpy()

    def describe(self) -> dict:
        return {"name": self.name, "device": str(self.device), "config": self.config.name,
                "checkpoint": self.checkpoint, "ops": self.ops, "precision": self.precision,
                "tf32": self.tf32 if self.device.type == "cuda" else None, "cuda_graph": self.graph is not None,
                "torch": torch.__version__}
