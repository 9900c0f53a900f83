"""InstanceVG in PyTorch: configs, model, reference ops, data, post-processing, checkpoints."""
__version__ = "0.1.0"
