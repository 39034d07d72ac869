"""A picture of 3D poses: each track's path (the mean of its nodes) in 3D, and its skeleton every so often."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posestream.engine.extras import require
from posestream.multiview.points3d_file import Points3D

COLORS = (
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
)


def plot_trajectories(data: Points3D, out: str | Path, skeletons: int = 5) -> Path:
    """Write ``out`` (PNG): each track's path, and its skeleton on ``skeletons`` frames across the file."""
    matplotlib = require("matplotlib", extra="calibration", feature="the 3D trajectory picture")
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig = plt.figure(figsize=(7, 6))
    ax = fig.add_subplot(projection="3d")
    n_frames = data.points.shape[0]
    shown = np.unique(np.linspace(0, n_frames - 1, skeletons).astype(int))
    for track, name in enumerate(data.track_names or [f"track {t}" for t in range(data.points.shape[1])]):
        color = COLORS[track % len(COLORS)]
        path = np.nanmean(data.points[:, track], axis=1)  # (F, 3)
        ax.plot(*path.T, color=color, linewidth=0.8, label=name)
        for frame in shown:
            pose = data.points[frame, track]
            for a, b in data.edges:
                ax.plot(*pose[[a, b]].T, color=color, linewidth=1.5)
    ax.set(xlabel="x", ylabel="y", zlabel="z", title=f"{n_frames} frames; skeletons on {len(shown)} of them")
    _equal_axes(ax, data.points.reshape(-1, 3))
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _equal_axes(ax, points: np.ndarray) -> None:
    """One unit on every axis: a box around the finite points."""
    finite = points[np.isfinite(points).all(axis=1)]
    if not len(finite):
        return
    middle, half = (finite.max(0) + finite.min(0)) / 2, (finite.max(0) - finite.min(0)).max() / 2 or 1.0
    ax.set(xlim=(middle[0] - half, middle[0] + half), ylim=(middle[1] - half, middle[1] + half))
    ax.set(zlim=(middle[2] - half, middle[2] + half))
