"""The InstanceVG network (DETR-style: one module per file)."""
from .instancevg import InstanceVG, build_model

__all__ = ["InstanceVG", "build_model"]
