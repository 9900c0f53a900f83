"""SimFPN (four levels from the stride-16 map) and the UNet decoder that fuses them to S_global."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LayerNorm2d


class ConvNorm(nn.Module):
    """Conv without bias + LN2d, no activation (mmcv ConvModule with an LN2d norm: ``conv``, ``norm_layer``)."""

    def __init__(self, cin: int, cout: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)
        self.norm_layer = LayerNorm2d(cout, eps=1e-5)

    def forward(self, x):
        return self.norm_layer(self.conv(x))


class SimpleFPN(nn.Module):
    """F_v [B, C, g, g] -> levels at strides 4, 8, 16, 32: [B, C, 4g, 4g], [B, C, 2g, 2g], [B, C, g, g],
    [B, C, g/2, g/2]."""

    def __init__(self, dim: int):
        super().__init__()
        self.fpn1 = nn.Sequential(nn.ConvTranspose2d(dim, dim // 2, 2, 2), LayerNorm2d(dim // 2, eps=1e-5),
                                  nn.GELU(), nn.ConvTranspose2d(dim // 2, dim // 4, 2, 2))
        self.fpn2 = nn.Sequential(nn.ConvTranspose2d(dim, dim // 2, 2, 2))
        self.fpn3 = nn.Identity()
        self.fpn4 = nn.MaxPool2d(2, 2)
        in_dims = (dim // 4, dim // 2, dim, dim)
        self.lateral_convs = nn.ModuleList(ConvNorm(c, dim, 1) for c in in_dims)
        self.fpn_convs = nn.ModuleList(ConvNorm(dim, dim, 3) for _ in in_dims)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        levels = (self.fpn1(x), self.fpn2(x), self.fpn3(x), self.fpn4(x))
        return [out(lat(f)) for f, lat, out in zip(levels, self.lateral_convs, self.fpn_convs)]


class UnetDecoder(nn.Module):
    """Coarse-to-fine fusion: three stages of [upsample (bilinear, align_corners) ; concat skip ;
    (conv3x3-BN-ReLU) x2]; returns S_global [B, C, 4g, 4g]."""

    def __init__(self, dim: int):
        super().__init__()
        for stage in (4, 3, 2):
            setattr(self, f"conv1_{stage}", nn.Conv2d(2 * dim, dim, 3, padding=1, bias=False))
            setattr(self, f"bn1_{stage}", nn.BatchNorm2d(dim))
            setattr(self, f"conv2_{stage}", nn.Conv2d(dim, dim, 3, padding=1, bias=False))
            setattr(self, f"bn2_{stage}", nn.BatchNorm2d(dim))

    def _stage(self, stage: int, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != skip.shape[-2:]:
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
        x = torch.cat([x, skip], dim=1)
        x = F.relu(getattr(self, f"bn1_{stage}")(getattr(self, f"conv1_{stage}")(x)))
        return F.relu(getattr(self, f"bn2_{stage}")(getattr(self, f"conv2_{stage}")(x)))

    def forward(self, c1, c2, c3, c4) -> torch.Tensor:
        x = self._stage(4, c4, c3)
        x = self._stage(3, x, c2)
        return self._stage(2, x, c1)
