"""SLEAP's UNet: an encoder-decoder of plain convolution blocks with skip connections."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from posestream.train.config import BackboneConfig


def _conv_block(in_channels: int, out_channels: int, n_convs: int, batch_norm: bool) -> nn.Sequential:
    """``n_convs`` 3x3 convolutions, each followed by batch norm (optional) and ReLU."""
    layers: list[nn.Module] = []
    for i in range(n_convs):
        layers.append(
            nn.Conv2d(
                in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=not batch_norm
            )
        )
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """Encoder-decoder with skip connections; returns features at each requested stride.

    Down blocks halve the resolution ``log2(max_stride)`` times; up blocks restore it
    down to the smallest requested stride.
    """

    def __init__(self, in_channels: int, cfg: BackboneConfig, output_strides: list[int]):
        super().__init__()
        n_down = int(math.log2(cfg.max_stride))
        self.min_stride = min(output_strides)
        n_up = int(math.log2(cfg.max_stride // self.min_stride))
        width = [int(round(cfg.filters * cfg.filters_rate**i)) for i in range(n_down + 1)]
        self.down = nn.ModuleList()
        channels = in_channels
        for i in range(n_down):
            self.down.append(_conv_block(channels, width[i], cfg.convs_per_block, cfg.batch_norm))
            channels = width[i]
        self.middle = (
            _conv_block(channels, width[n_down], cfg.convs_per_block, cfg.batch_norm)
            if cfg.middle_block
            else nn.Identity()
        )
        channels = width[n_down] if cfg.middle_block else channels
        self.up_interpolate = cfg.up_interpolate
        self.upsample = nn.ModuleList()
        self.up = nn.ModuleList()
        for j in range(n_up):
            level = n_down - 1 - j  # encoder level whose skip joins here
            if cfg.up_interpolate:
                self.upsample.append(nn.Identity())
            else:
                self.upsample.append(nn.ConvTranspose2d(channels, channels, 2, stride=2))
            self.up.append(
                _conv_block(channels + width[level], width[level], cfg.convs_per_block, cfg.batch_norm)
            )
            channels = width[level]
        self.max_stride = cfg.max_stride
        self.out_channels = {cfg.max_stride: width[n_down] if cfg.middle_block else width[n_down - 1]}
        for j in range(n_up):
            self.out_channels[cfg.max_stride >> (j + 1)] = width[n_down - 1 - j]
        self.output_strides = sorted(set(output_strides))

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.middle(x)
        features = {self.max_stride: x}
        stride = self.max_stride
        for upsample, block in zip(self.upsample, self.up):
            x = (
                F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
                if self.up_interpolate
                else upsample(x)
            )
            x = block(torch.cat([_dense_gradient(x), _dense_gradient(skips.pop())], dim=1))
            stride //= 2
            features[stride] = x
        return {s: features[s] for s in self.output_strides}


def _dense_gradient(x: torch.Tensor) -> torch.Tensor:
    """``x``, with its gradient made dense in x's memory format before it flows back.

    The concatenation hands each input a channel slice of its gradient; in channels-last that slice is
    strided, and the upsampling's backward takes a slow path on it (8x, a tenth of a bf16 training step).
    Only while training: tracing for export sees ``x`` unchanged.
    """
    if (
        x.requires_grad
        and torch.is_grad_enabled()
        and not (torch.jit.is_tracing() or torch.compiler.is_compiling())
    ):
        layout = torch.channels_last if _is_channels_last(x) else torch.contiguous_format
        x.register_hook(lambda grad: grad.contiguous(memory_format=layout))
    return x


def _is_channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
