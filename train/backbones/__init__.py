"""Backbones: the network between the input image and the heads, chosen by ``backbone.type``.

- ``unet`` (unet.py): SLEAP's UNet, sized by ``filters``, ``filters_rate`` and ``max_stride``;
- ``convnext`` (convnext.py) and ``swint`` (swint.py): pyramid encoders of sleap-nn's sizes
  (``backbone.size``: tiny, small), each with a bottleneck and a decoder to the heads' stride (pyramid.py),
  optionally from ImageNet weights in a local file (``backbone.pretrained``, pretrained.py).

Each returns {stride: features (N, C, H / stride, W / stride)} for the strides its heads read, and states
``out_channels`` per stride and its ``max_stride`` (the input's sides are multiples of it).
"""

from __future__ import annotations

from torch import nn

from posestream.train.backbones import convnext, swint
from posestream.train.backbones.pyramid import PyramidBackbone
from posestream.train.backbones.unet import UNet
from posestream.train.config import BackboneConfig


def build_backbone(in_channels: int, cfg: BackboneConfig, output_strides: list[int]) -> nn.Module:
    if cfg.type == "unet":
        return UNet(in_channels, cfg, output_strides)
    if cfg.type == "convnext":
        encoder = convnext.ConvNeXtEncoder(in_channels, *convnext.SIZES[cfg.size])
    else:
        encoder = swint.SwinEncoder(in_channels, *swint.SIZES[cfg.size])
    backbone = PyramidBackbone(encoder, cfg, output_strides)
    if cfg.pretrained:
        from posestream.train.backbones.pretrained import load_pretrained

        load_pretrained(encoder, cfg.pretrained)
    return backbone
