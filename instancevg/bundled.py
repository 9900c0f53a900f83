"""Files shipped inside the package: the tiny model's tokenizer (and checkpoint, once trained) and a
sample image with its expression, so that every command runs out of the box."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

ASSETS = Path(str(resources.files("instancevg") / "assets"))
TINY_TOKENIZER = ASSETS / "tiny.spm"
TINY_CHECKPOINT = ASSETS / "tiny.pth"
SAMPLE_IMAGE = ASSETS / "sample.jpg"
SAMPLE_META = ASSETS / "sample.json"


def default_tokenizer(config_name: str) -> Path | None:
    """The bundled tokenizer for ``tiny``; None for the official configs (users supply beit3.spm)."""
    return TINY_TOKENIZER if config_name == "tiny" and TINY_TOKENIZER.is_file() else None


def default_checkpoint(config_name: str) -> Path | None:
    """The bundled checkpoint for ``tiny`` when the package ships one, else None."""
    return TINY_CHECKPOINT if config_name == "tiny" and TINY_CHECKPOINT.is_file() else None


def sample() -> tuple[Path, str]:
    """The bundled sample image and its expression."""
    return SAMPLE_IMAGE, json.loads(SAMPLE_META.read_text())["expression"]
