"""Top-down's middle step: crops of the frame around each centroid, for the centered-instance model.

Crops are cut by the engine from the uint8 frames already in host memory, on
whole pixels (no resampling): the anchor lands within half a pixel of the crop
centre, which training's translation augmentation covers. Cutting them here
rather than inside the graph keeps the two exported models independent and
runs the second one only on the animals found (the README's export section
compares the bytes this moves with in-graph crops).

Imported models are cut as the tool that trained them cuts (``ModelMetadata.crop_convention``), so they
give that tool's poses. With the ideal top-left ``t = anchor - (size - 1) / 2``:

| convention | crop | points move back by |
|---|---|---|
| posestream | whole pixels from round(t) | round(t) |
| sleap_nn | whole pixels from floor(t) | t |
| sleap (1.x) | bilinear samples at t + k, truncated to uint8 | t - 0.5 |
"""

from __future__ import annotations

import numpy as np

from posestream.engine.model.instances import InstanceBatch

CROP_CONVENTIONS = ("posestream", "sleap_nn", "sleap")


def crop_origins(
    anchors: np.ndarray, crop_size: tuple[int, int], convention: str = "posestream"
) -> np.ndarray:
    """Top-left pixel (x, y) of the whole-pixel crop around each anchor (M, 2) -> (M, 2) int."""
    top_left = ideal_top_left(anchors, crop_size)
    return (np.floor(top_left) if convention == "sleap_nn" else np.rint(top_left)).astype(np.int64)


def ideal_top_left(anchors: np.ndarray, crop_size: tuple[int, int]) -> np.ndarray:
    """Where a crop centred on each anchor (M, 2) starts, in fractional pixels.  # (M, 2)"""
    height, width = crop_size
    return np.asarray(anchors, np.float64).reshape(-1, 2) - np.array([(width - 1) / 2, (height - 1) / 2])


def resampled_crops(
    frames: np.ndarray, frame_of: np.ndarray, top_left: np.ndarray, crop_size: tuple[int, int]
) -> np.ndarray:
    """SLEAP 1.x's crops (M, h, w, C) uint8: bilinear samples at top_left + (col, row), zero outside the
    frame, truncated to uint8."""
    # on first use: scipy's import costs memory most runs never need
    from scipy.ndimage import (
        map_coordinates,
    )

    height, width = crop_size
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    crops = np.zeros((len(top_left), height, width, frames.shape[3]), np.uint8)
    for m, ((x0, y0), n) in enumerate(zip(top_left, frame_of)):
        for c in range(frames.shape[3]):
            samples = map_coordinates(
                frames[n, :, :, c].astype(np.float64),
                [y0 + rows, x0 + cols],
                order=1,
                mode="constant",
                cval=0.0,
            )
            crops[m, :, :, c] = samples.astype(np.uint8)
    return crops


def extract_crops(
    frames: np.ndarray, frame_of: np.ndarray, origins: np.ndarray, crop_size: tuple[int, int]
) -> np.ndarray:
    """Crops (M, h, w, C) uint8 of frames (N, H, W, C) at ``origins`` (M, 2) from frames ``frame_of`` (M,);
    zero past the frame's border."""
    height, width = crop_size
    crops = np.zeros((len(origins), height, width, frames.shape[3]), frames.dtype)
    frame_h, frame_w = frames.shape[1:3]
    for m, ((x0, y0), n) in enumerate(zip(origins, frame_of)):
        top, left = max(y0, 0), max(x0, 0)
        bottom, right = min(y0 + height, frame_h), min(x0 + width, frame_w)
        if bottom > top and right > left:
            crops[m, top - y0 : bottom - y0, left - x0 : right - x0] = frames[n, top:bottom, left:right]
    return crops


def crops_around(
    frames: np.ndarray, anchors: list[np.ndarray], crop_size: tuple[int, int], convention: str = "posestream"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops around every anchor of every frame: anchors[n] is (m_n, 2) for frames[n].

    Returns crops (M, h, w, C) uint8, the offsets (M, 2) that move their points back into the frame (see
    the module docstring) and frame_of (M,) (index into frames).
    """
    frame_of = np.repeat(np.arange(len(anchors)), [len(a) for a in anchors])
    anchors = np.concatenate(anchors) if len(frame_of) else np.zeros((0, 2))
    top_left = ideal_top_left(anchors, crop_size)
    if convention == "sleap":
        return resampled_crops(frames, frame_of, top_left, crop_size), top_left - 0.5, frame_of
    origins = crop_origins(anchors, crop_size, convention)
    offsets = top_left if convention == "sleap_nn" else origins
    return extract_crops(frames, frame_of, origins, crop_size), offsets, frame_of


def instances_from_crops(
    crops: InstanceBatch, origins: np.ndarray, frame_of: np.ndarray, n_frames: int
) -> InstanceBatch:
    """The batch's frames' instances from its crops' (in crop pixels, crops in frame order), moved back into
    frame pixels by each crop's ``origins`` (M, 2); ``frame_of`` (M,) is each crop's frame."""
    crop_of_row = np.repeat(np.arange(len(crops.counts)), crops.counts)  # (rows,)
    moved = crops.instances.moved(origins[crop_of_row][:, None, :])
    return InstanceBatch(moved, np.bincount(frame_of[crop_of_row], minlength=n_frames).astype(np.int64))
