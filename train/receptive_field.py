"""``posestream preview-rf``: a training config's receptive field drawn on a labelled frame.

The receptive field is the square of frame pixels that one output location of the network can see.
SLEAP's training dialog draws it on a frame, with the rule of thumb that it should be about as large
as the animal: smaller, and the network cannot see a whole animal at once to tell its parts apart.
It is computed from the UNet's layers (no torch needed), along the network's deepest path:

    a k x k convolution at stride j adds (k - 1) * j pixels; a 2x2 max pooling adds j, then doubles j;
    bilinear 2x upsampling adds j (of the coarser grid), then halves j; a 2x2 stride-2 transposed
    convolution adds nothing; 1x1 heads add nothing.

and divided by the input scale to be in frame pixels. With bilinear upsampling the field of one output
location reaches one coarse pixel further left or right by its position, so it varies by a few pixels
along the map; this is its average (tests/test_receptive_field.py measures it on the network).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestream.train.config import BackboneConfig, TrainConfig
from posestream.train.labels import LabelSet

RF_COLOUR = "#ffb000"
ANIMAL_COLOUR = "#00c8ff"


def receptive_field(backbone: BackboneConfig, output_stride: int) -> int:
    """Receptive field, in network-input pixels, of one output location at ``output_stride``."""
    if backbone.type != "unet":
        return _pyramid_field(backbone, output_stride)
    size, step = 1, 1
    for _ in range(int(math.log2(backbone.max_stride))):  # down blocks: convolutions, then max pooling
        size += backbone.convs_per_block * 2 * step
        size += step
        step *= 2
    if backbone.middle_block:
        size += backbone.convs_per_block * 2 * step
    while step > output_stride:  # up blocks: upsampling, then convolutions at the finer stride
        size += step if backbone.up_interpolate else 0
        step //= 2
        size += backbone.convs_per_block * 2 * step
    return size


def _pyramid_field(backbone: BackboneConfig, output_stride: int) -> int:
    """A ConvNeXt or Swin backbone's: its 7x7 depthwise convolutions or 7x7 attention windows counted as 7x7
    kernels (a shifted window reaches further, so Swin's is a lower bound), then the bottleneck and the
    decoder's 3x3 convolutions."""
    from posestream.train.backbones import convnext, swint

    depths = (
        convnext.SIZES[backbone.size][0] if backbone.type == "convnext" else swint.SIZES[backbone.size][1]
    )
    size, step = 4, 2  # the stem: 4x4 at stride 2
    for i, depth in enumerate(depths):
        size += depth * 6 * step
        if i + 1 < len(depths):  # 2x2 downsampling
            size += step
            step *= 2
    size += step  # 2x2 max pooling to the bottleneck
    step *= 2
    size += backbone.convs_per_block * 2 * step
    while step > output_stride:  # the decoder: upsampling, then two 3x3 convolutions
        size += step
        step //= 2
        size += 2 * 2 * step
    return size


@dataclass(frozen=True)
class FieldReport:
    """The numbers the picture shows: receptive field and animal size in frame pixels."""

    field_px: float  # receptive field side in frame pixels
    input_field_px: int  # in network-input pixels
    animal_px: float  # median over labelled instances of the longer side of their bounding box
    frame_idx: int

    @property
    def advice(self) -> str:
        ratio = self.field_px / max(self.animal_px, 1e-9)
        if ratio < 0.8:
            return (
                f"the receptive field ({self.field_px:.0f} px) is smaller than an animal "
                f"({self.animal_px:.0f} px): "
                "raise backbone.max_stride or lower data.input_scale"
            )
        if ratio > 4:
            return (
                f"the receptive field ({self.field_px:.0f} px) is over 4x an animal "
                f"({self.animal_px:.0f} px): a "
                "smaller backbone.max_stride trains faster with the same view"
            )
        return (
            f"the receptive field ({self.field_px:.0f} px) covers an animal ({self.animal_px:.0f} px, "
            f"{ratio:.1f}x): good"
        )


def field_report(config: TrainConfig, labels: LabelSet, frame: int) -> FieldReport:
    """The receptive field of ``config``'s confidence maps, and the labelled animals' typical size."""
    input_field = receptive_field(config.backbone, config.head.output_stride)
    sides = animal_sides(labels)
    return FieldReport(
        input_field / config.data.input_scale,
        input_field,
        float(np.median(sides)) if sides else 0.0,
        labels.frames[frame].frame_idx,
    )


def draw_receptive_field(
    config: TrainConfig, labels: LabelSet, output: str | os.PathLike, frame: int | None = None
) -> FieldReport:
    """Write ``output`` (PNG): labelled frame ``frame`` (default: the one with most labelled points) with
    every animal's box, the receptive field drawn as a square on its most complete animal, and the
    numbers in the title."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import patches
    from matplotlib import pyplot as plt

    if frame is None:
        frame = max(range(len(labels)), key=lambda i: np.isfinite(labels.frames[i].points).all(axis=-1).sum())
    report = field_report(config, labels, frame)
    image = labels.image(frame)
    height, width = image.shape[:2]
    fig, ax = plt.subplots(figsize=(7, 7 * height / width + 0.6))
    ax.imshow(image[..., 0] if image.shape[2] == 1 else image, cmap="gray", vmin=0, vmax=255)
    points = labels.frames[frame].points  # (n_instances, n_nodes, 2)
    for instance in points:
        seen = instance[np.isfinite(instance).all(axis=1)]
        if len(seen):
            lo, hi = seen.min(axis=0), seen.max(axis=0)
            ax.add_patch(patches.Rectangle(lo, *(hi - lo), fill=False, ec=ANIMAL_COLOUR, lw=1, ls="--"))
            ax.plot(*seen.T, "o", ms=3, color=ANIMAL_COLOUR)
    fullest = points[np.argmax(np.isfinite(points).all(axis=-1).sum(axis=1))]
    centre = (np.nanmin(fullest, axis=0) + np.nanmax(fullest, axis=0)) / 2
    ax.add_patch(
        patches.Rectangle(
            centre - report.field_px / 2, report.field_px, report.field_px, fill=False, ec=RF_COLOUR, lw=2
        )
    )
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_axis_off()
    ax.set_title(
        f"{config.model_type}, max stride {config.backbone.max_stride}, input scale "
        f"{config.data.input_scale}: "
        f"receptive field {report.field_px:.0f} px (orange)\nanimals (blue, median "
        f"{report.animal_px:.0f} px); "
        f"frame {report.frame_idx}",
        fontsize=9,
    )
    fig.tight_layout()
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=100)
    plt.close(fig)
    return report


def animal_sides(labels: LabelSet) -> list[float]:
    """The longer side of every labelled animal's bounding box, frame pixels (animals with 2+ points)."""
    return [side for frame in labels.frames for side in instance_sides(frame.points)]


def instance_sides(points: np.ndarray) -> list[float]:
    """The longer side of each instance's bounding box.  points (n_instances, n_nodes, 2)"""
    sides = []
    for instance in points:
        seen = instance[np.isfinite(instance).all(axis=1)]
        if len(seen) >= 2:
            sides.append(float((seen.max(axis=0) - seen.min(axis=0)).max()))
    return sides
