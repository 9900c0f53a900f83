"""Training of InstanceVG as the official code trains it: matcher, losses, schedule, trainer (README.md).

The library takes an evaluation callback and never imports the ``evaluation`` stage itself.
"""
from .losses import InstanceVGCriterion, LossOutput
from .matcher import HungarianMatcher
from .schedule import multistep_lr_warmup
from .targets import TrainTargets, make_targets
from .trainer import TrainConfig, Trainer, slim_checkpoint

__all__ = ["HungarianMatcher", "InstanceVGCriterion", "LossOutput", "TrainConfig", "Trainer", "TrainTargets",
           "make_targets", "multistep_lr_warmup", "slim_checkpoint"]
