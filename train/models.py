"""Networks: a SLEAP-style UNet backbone, 1x1-convolution heads for maps and, for identity models, a class
vector head.

Models are plain ``torch.nn.Module``s whose forward has no data-dependent
Python control flow, so ``torch.onnx.export`` and ``torch.export`` trace them.
Input: (N, C, H, W) float in [0, 1], H and W multiples of ``max_stride``.
Output: a tuple of maps (and class logits (N, n_classes)), one per head, in the order of ``head_specs``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from posestream.engine.types import ModelType
from posestream.train.backbones import build_backbone
from posestream.train.config import BackboneConfig, TrainConfig


@dataclass(frozen=True)
class HeadSpec:
    """One output of the network: its name, stride and channel count."""

    name: str  # "confmaps", "pafs", "class_maps" or "class_vectors" (engine/model/postprocess.py)
    stride: int  # class vectors: the stride of the features they are scored from
    channels: int


def head_specs(config: TrainConfig, n_nodes: int, n_edges: int, n_classes: int = 0) -> list[HeadSpec]:
    """The outputs a model of this config predicts (``n_classes``: an identity model's classes)."""
    head = config.head
    if config.type is ModelType.CENTROID:
        return [HeadSpec("confmaps", head.output_stride, 1)]
    specs = [HeadSpec("confmaps", head.output_stride, n_nodes)]
    if config.type is ModelType.BOTTOMUP and head.classes:
        specs.append(HeadSpec("class_maps", head.paf_output_stride, n_classes))
    elif config.type is ModelType.BOTTOMUP:
        specs.append(HeadSpec("pafs", head.paf_output_stride, 2 * n_edges))
    elif head.classes:
        specs.append(HeadSpec("class_vectors", config.backbone.max_stride, n_classes))
    return specs


class ClassVectorHead(nn.Module):
    """Logits of each class for the animal a crop is centred on, from the deepest features (N, C, h, w):
    their centre cells (where the animal is) beside their mean over the crop, then two linear layers.
    Returns (N, n_classes)."""

    def __init__(self, channels: int, n_classes: int, hidden: int = 64):
        super().__init__()
        self.classify = nn.Sequential(
            nn.Linear(2 * channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, n_classes)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        height, width = features.shape[2], features.shape[3]
        rows = slice((height - 1) // 2, height // 2 + 1)  # the middle cell, or the middle two
        cols = slice((width - 1) // 2, width // 2 + 1)
        centre = features[:, :, rows, cols].mean(dim=(2, 3))  # (N, C)
        return self.classify(torch.cat([centre, features.mean(dim=(2, 3))], dim=1))


class PoseNet(nn.Module):
    """UNet plus one head per output: a 1x1 convolution for maps, a ClassVectorHead for class vectors."""

    def __init__(self, in_channels: int, backbone: BackboneConfig, heads: list[HeadSpec]):
        super().__init__()
        self.head_specs = heads
        self.backbone = build_backbone(in_channels, backbone, [h.stride for h in heads])
        self.heads = nn.ModuleList(
            ClassVectorHead(self.backbone.out_channels[h.stride], h.channels)
            if h.name == "class_vectors"
            else nn.Conv2d(self.backbone.out_channels[h.stride], h.channels, kernel_size=1)
            for h in heads
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.backbone(x)
        return tuple(head(features[spec.stride]) for spec, head in zip(self.head_specs, self.heads))


def build_model(
    config: TrainConfig, in_channels: int, n_nodes: int, n_edges: int, n_classes: int = 0
) -> PoseNet:
    return PoseNet(in_channels, config.backbone, head_specs(config, n_nodes, n_edges, n_classes))
