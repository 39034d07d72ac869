"""``train --preview-augment N``: a PNG grid of N training examples as the network sees them (augmented,
scaled or cropped to the input), with their keypoints and skeleton drawn, to check the augmentation before a
long run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from posestream.train.data import PoseDataset


def preview_examples(dataset: PoseDataset, count: int) -> list[int]:
    """``count`` example indices spread evenly over the set (all of them where it is smaller)."""
    n = len(dataset)
    return sorted({int(i) for i in np.linspace(0, n - 1, min(count, n))}) if n else []


def draw_augment_preview(dataset: PoseDataset, count: int, out: Path, epoch: int = 0) -> Path:
    """Draw ``count`` examples of ``epoch`` (the draws training makes then) in a grid at ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    indices = preview_examples(dataset, count)
    columns = min(4, max(len(indices), 1))
    rows = max(math.ceil(len(indices) / columns), 1)
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3 * rows), squeeze=False)
    edges = dataset.edges
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, indices):
        image, points = dataset.augmented(epoch, index)  # (C, H, W) 0-255, (n, nodes, 2)
        shown = image.permute(1, 2, 0).numpy().clip(0, 255).astype(np.uint8)
        ax.imshow(shown[..., 0] if shown.shape[2] == 1 else shown, cmap="gray", vmin=0, vmax=255)
        height, width = shown.shape[:2]
        ax.set(xlim=(-0.5, width - 0.5), ylim=(height - 0.5, -0.5))  # points outside stay outside
        for animal in points:
            for a, b in edges:
                ax.plot(animal[[a, b], 0], animal[[a, b], 1], "-", color="cyan", linewidth=0.8)
            ax.plot(animal[:, 0], animal[:, 1], ".", color="magenta", markersize=3)
        frame = dataset.labels.frames[dataset.examples[index][0]]
        ax.set_title(f"frame {frame.frame_idx}", fontsize=8)
    figure.suptitle(f"{len(indices)} training examples, augmented as in epoch {epoch}", fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out
