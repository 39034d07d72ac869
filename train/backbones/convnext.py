"""ConvNeXt's encoder (Liu et al. 2022), laid out as torchvision lays it out, so that its ImageNet weights
load by name (train/backbones/pretrained.py), with sleap-nn's stem: a 4x4 convolution at stride 2 (padding 1),
not ImageNet's stride 4, so the features reach stride 2 for fine confidence maps.

``features``: [stem, stage 1, down, stage 2, down, stage 3, down, stage 4]; outputs at strides 2, 2, 4, 4, 8,
8, 16, 16 (channels dims[0], dims[0], dims[1], ...).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SIZES = {  # sleap-nn's (and the paper's) sizes: blocks per stage, channels per stage
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "small": ((3, 3, 27, 3), (96, 192, 384, 768)),
}


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of (N, C, H, W) maps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ToChannelsLast(nn.Module):
    """(N, C, H, W) -> (N, H, W, C), and back with ``back=True``."""

    def __init__(self, back: bool = False):
        super().__init__()
        self.order = (0, 3, 1, 2) if back else (0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.order)


class ConvNeXtBlock(nn.Module):
    """x + layer_scale * pointwise MLP(layer norm(7x7 depthwise conv(x))).  (N, C, H, W) -> same"""

    def __init__(self, dim: int, layer_scale: float = 1e-6):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim),
            ToChannelsLast(),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            ToChannelsLast(back=True),
        )
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), layer_scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layer_scale * self.block(x)


class ConvNeXtEncoder(nn.Module):
    """The eight ``features`` stages; ``forward`` returns every stage's output (N, C_i, H / s_i, W / s_i)."""

    def __init__(
        self, in_channels: int, depths: tuple[int, ...], dims: tuple[int, ...], stem_stride: int = 2
    ):
        super().__init__()
        stem = nn.Sequential(
            nn.Conv2d(in_channels, dims[0], kernel_size=4, stride=stem_stride, padding=1),
            LayerNorm2d(dims[0], eps=1e-6),
        )
        layers: list[nn.Module] = [stem]
        for i, (depth, dim) in enumerate(zip(depths, dims)):
            layers.append(nn.Sequential(*(ConvNeXtBlock(dim) for _ in range(depth))))
            if i + 1 < len(dims):
                layers.append(
                    nn.Sequential(
                        LayerNorm2d(dim, eps=1e-6), nn.Conv2d(dim, dims[i + 1], kernel_size=2, stride=2)
                    )
                )
        self.features = nn.Sequential(*layers)
        self.channels = [d for d in dims for _ in range(2)]  # each output's channels
        self.strides = [stem_stride * 2 ** (i // 2) for i in range(len(layers))]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for layer in self.features:
            x = layer(x)
            outputs.append(x)
        return outputs
