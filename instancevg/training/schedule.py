"""The official learning-rate schedule ``MultiStepLRWarmUp``: a LambdaLR stepped once per epoch.

factor(epoch) = (epoch + 1) / (warmup + 1)           for epoch < warmup   (epoch counts from 0)
              = decay_ratio ** #{s in decay_steps : epoch + 1 >= s}   otherwise
gRefCOCO (10 epochs, warm-up 1, decay at 7): 0.5, 1, 1, 1, 1, 1, 0.1, 0.1, 0.1, 0.1.
RefCOCO (20 epochs, warm-up 3, decay at 15): 0.25, 0.5, 0.75, 1 ... 1 (epochs 3-13), 0.1 (14-19).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch.optim.lr_scheduler import LambdaLR


@dataclass(frozen=True)
class WarmUpStepFactor:
    """The schedule's multiplier as a picklable callable (LambdaLR saves callable objects' state)."""

    warmup_epochs: int
    decay_steps: tuple[int, ...]
    decay_ratio: float = 0.1

    def __call__(self, epoch: int) -> float:
        if epoch < self.warmup_epochs:
            return (epoch + 1) / (self.warmup_epochs + 1)
        factor = 1.0
        for step in sorted(self.decay_steps):
            if epoch + 1 < step:
                break
            factor *= self.decay_ratio
        return factor


def multistep_lr_warmup(optimizer: torch.optim.Optimizer, warmup_epochs: int, decay_steps: Sequence[int],
                        decay_ratio: float = 0.1) -> LambdaLR:
    """LambdaLR with the official warm-up/step factor; call ``step()`` once at the end of each epoch."""
    if warmup_epochs < 0:
        raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
    if not 0.0 < decay_ratio <= 1.0:
        raise ValueError(f"decay_ratio must lie in (0, 1], got {decay_ratio}")
    return LambdaLR(optimizer, lr_lambda=WarmUpStepFactor(int(warmup_epochs), tuple(int(s) for s in decay_steps),
                                                          float(decay_ratio)))


# Official per-family schedules (the official config of each dataset family): (epochs, warm-up epochs, decay steps)
OFFICIAL_SCHEDULES = {
    "grefcoco": (10, 1, (7,)),
    "refzom": (10, 1, (7,)),
    "rrefcoco": (10, 1, (7,)),
    "refcoco": (20, 3, (15,)),
}
