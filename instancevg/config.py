"""Model configurations: frozen dataclasses and the named presets.

Presets mirror the official configs: ``gres-base`` / ``gres-large`` (gRefCOCO, Ref-ZOM,
R-RefCOCO: N_q 10, 50 tokens), ``refcoco-base`` / ``refcoco-large`` (RefCOCO/+/g: N_q 1, 20 tokens) and
``tiny``, which runs every code path of the others with small dimensions (tests, demos, the bundled
model).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

IMAGE_MEAN = (123.675, 116.28, 103.53)
IMAGE_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class EncoderConfig:
    """BEiT-3 multiway encoder (torchscale layout)."""

    embed_dim: int = 768
    layers: int = 12
    heads: int = 12
    ffn_dim: int = 3072
    vocab_size: int = 64010
    patch_size: int = 16
    max_text_positions: int = 1024
    drop_path_rate: float = 0.1
    layernorm_eps: float = 1e-5


@dataclass(frozen=True)
class PostprocessConfig:
    """Official post-processing defaults (score-weighted, strict thr_q, merge)."""

    thr_q: float = 0.7
    thr_m: float = 0.5
    score_weighted: bool = True
    nms: bool = False
    nms_iou: float = 0.7
    out_mask: str = "merge"  # merge | global | instance

    def __post_init__(self):
        if self.out_mask not in ("merge", "global", "instance"):
            raise ValueError(f"out_mask must be 'merge', 'global' or 'instance', got {self.out_mask!r}")
        for name in ("thr_q", "thr_m", "nms_iou"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")


@dataclass(frozen=True)
class LossConfig:
    """Official loss weights (the official head's defaults)."""

    cost_class: float = 1.0
    cost_bbox: float = 5.0
    cost_giou: float = 2.0
    cost_point: float = 2.0
    loss_class: float = 1.0
    loss_bbox: float = 5.0
    loss_giou: float = 2.0
    no_object_weight: float = 0.1
    det_scale: float = 0.1
    mask_dice: float = 1.0
    mask_bce: float = 1.0
    neg_mask: float = 0.2
    attn_map: float = 0.1
    exist: float = 0.2
    exist_class_weights: tuple[float, float] = (0.9, 1.1)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    image_size: int = 320
    max_tokens: int = 50
    num_queries: int = 10
    hidden_dim: int = 256
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    t2i_heads: int = 8
    t2i_ffn_dim: int = 512
    decoder_layers: int = 3
    decoder_heads: int = 8
    decoder_ffn_dim: int = 1024
    num_levels: int = 4
    num_points: int = 4
    dropout: float = 0.1
    w_dist: float = 0.003
    dynamic_point_selection: bool = True
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self):
        if self.image_size % self.encoder.patch_size:
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of patch_size {self.encoder.patch_size}")
        if self.grid_size % 2:
            raise ValueError(f"the patch grid ({self.grid_size}) must be even for the stride-32 FPN level")
        if self.num_queries > self.max_tokens or self.num_queries > self.grid_size ** 2:
            raise ValueError(
                f"num_queries {self.num_queries} exceeds max_tokens {self.max_tokens} or the "
                f"{self.grid_size}x{self.grid_size} grid")
        if self.hidden_dim % 4 or self.hidden_dim % self.decoder_heads or self.hidden_dim % self.t2i_heads:
            raise ValueError(f"hidden_dim {self.hidden_dim} must be divisible by 4 and by the head counts")

    @property
    def grid_size(self) -> int:
        """Side of the BEiT-3 patch grid (20 at 320 px)."""
        return self.image_size // self.encoder.patch_size

    @property
    def mask_size(self) -> int:
        """Side of the stride-4 mask logits (80 at 320 px)."""
        return self.image_size // 4

    @property
    def level_shapes(self) -> tuple[tuple[int, int], ...]:
        """(H, W) of the four FPN levels, strides 4, 8, 16, 32."""
        g = self.grid_size
        return ((4 * g, 4 * g), (2 * g, 2 * g), (g, g), (g // 2, g // 2))[: self.num_levels]

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """Inverse of ``to_dict`` (sidecars record the full config); unknown keys are an error."""
        nested = {"encoder": EncoderConfig, "postprocess": PostprocessConfig, "loss": LossConfig}
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {unknown}")
        values = dict(data)
        for key, kind in nested.items():
            if isinstance(values.get(key), dict):
                sub = dict(values[key])
                if key == "loss" and "exist_class_weights" in sub:
                    sub["exist_class_weights"] = tuple(sub["exist_class_weights"])
                values[key] = kind(**sub)
        return cls(**values)


_BASE = EncoderConfig()
_LARGE = EncoderConfig(embed_dim=1024, layers=24, heads=16, ffn_dim=4096,
                       drop_path_rate=0.0)  # the official large config's typo disables drop-path
_TINY = EncoderConfig(embed_dim=64, layers=2, heads=4, ffn_dim=128, vocab_size=512, drop_path_rate=0.0)

PRESETS: dict[str, ModelConfig] = {
    "gres-base": ModelConfig("gres-base", max_tokens=50, num_queries=10, encoder=_BASE),
    "gres-large": ModelConfig("gres-large", max_tokens=50, num_queries=10, encoder=_LARGE),
    "refcoco-base": ModelConfig("refcoco-base", max_tokens=20, num_queries=1, encoder=_BASE,
                                loss=LossConfig(neg_mask=0.0)),
    "refcoco-large": ModelConfig("refcoco-large", max_tokens=20, num_queries=1, encoder=_LARGE,
                                 loss=LossConfig(neg_mask=0.0)),
    "tiny": ModelConfig("tiny", image_size=128, max_tokens=16, num_queries=5, hidden_dim=64, encoder=_TINY,
                        t2i_ffn_dim=128, decoder_ffn_dim=128),
}


def get_config(name: str) -> ModelConfig:
    """Return the preset called ``name``; the error lists the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown config {name!r}; expected one of {', '.join(PRESETS)}") from None
