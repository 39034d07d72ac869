"""A pyramid encoder (ConvNeXt or Swin) made into a backbone: a bottleneck at stride 32, then a decoder that
climbs back to the finest stride the heads read, joining the encoder's features at each stride on the way,
as sleap-nn builds these backbones (so that its checkpoints import with exact parity: export/importers).

- bottleneck: 2x2 max pooling of the deepest features (stride 16 -> 32), ``convs_per_block - 1`` 3x3
  convolutions to ``filters_rate`` times the channels, then one more, each with ReLU;
- decoder block b (stride 32 / 2**b -> half of it): upsample x2 (bilinear, or a transposed convolution with
  ``up_interpolate: false``), concatenate the encoder's features of that stride (the output of its
  downsampling layer, or the stem's at stride 2) before it, two 3x3 convolutions with ReLU to
  ``int(C0 * filters_rate ** max(0, 3 - b))`` channels (C0: the encoder's first channels). Below stride 2
  there are no encoder features: upsample and one convolution.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from posestream.train.config import BackboneConfig

STRIDE = 32  # the bottleneck's, for a stem at stride 2


def _conv_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True))


class UpBlock(nn.Module):
    """Upsample x2, join the encoder's features of the new stride (if any), refine.  -> (N, out, 2h, 2w)"""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, interpolate: bool):
        super().__init__()
        self.upsample = (
            None
            if interpolate
            else nn.Sequential(
                nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1),
                nn.ReLU(inplace=True),
            )
        )
        joined = (in_channels if interpolate else out_channels) + skip_channels
        self.refine = nn.Sequential(
            _conv_relu(joined, out_channels),
            *([_conv_relu(out_channels, out_channels)] if skip_channels else []),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        if self.upsample is None:
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        else:
            x = self.upsample(x)
        if skip is not None:
            if x.shape[2:] != skip.shape[2:]:
                x = F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=False)
            x = torch.cat([skip, x], dim=1)
        return self.refine(x)


class PyramidBackbone(nn.Module):
    """``encoder`` (its outputs at strides 2, 2, 4, 4, 8, 8, 16, 16) with the bottleneck and decoder; returns
    the features at each requested stride, {stride: (N, C, H / stride, W / stride)}."""

    def __init__(self, encoder: nn.Module, cfg: BackboneConfig, output_strides: list[int]):
        super().__init__()
        self.encoder = encoder
        deepest = encoder.channels[-1]
        widened = int(deepest * cfg.filters_rate)
        self.middle = nn.Sequential(
            *(_conv_relu(deepest if j == 0 else widened, widened) for j in range(cfg.convs_per_block - 1)),
            _conv_relu(widened, widened),
        )
        self.max_stride = STRIDE
        self.out_channels = {STRIDE: widened}
        self.up = nn.ModuleList()
        skips = {
            s: c for s, c in zip(encoder.strides[::2], encoder.channels[::2])
        }  # the stem and downsamplers
        channels, stride = widened, STRIDE
        while stride > min(output_strides):
            stride //= 2
            width = int(encoder.channels[0] * cfg.filters_rate ** max(0, 3 - len(self.up)))
            self.up.append(UpBlock(channels, skips.get(stride, 0), width, cfg.up_interpolate))
            channels = self.out_channels[stride] = width
        self.output_strides = sorted(set(output_strides))

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        outputs = self.encoder(x)
        skips = {s: out for s, out in zip(self.encoder.strides[::2], outputs[::2])}
        x = self.middle(F.max_pool2d(outputs[-1], 2))
        features, stride = {STRIDE: x}, STRIDE
        for block in self.up:
            stride //= 2
            x = features[stride] = block(x, skips.get(stride))
        return {s: features[s] for s in self.output_strides}
