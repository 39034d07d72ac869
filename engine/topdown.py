"""Top-down's middle step: crops of the frame around each centroid, for the centered-instance model.

Crops are cut by the engine from the uint8 frames already in host memory, on
whole pixels (no resampling): the anchor lands within half a pixel of the crop
centre, which training's translation augmentation covers. Cutting them here
rather than inside the graph keeps the two exported models independent and
runs the second one only on the animals found (the README's export section
compares the bytes this moves with in-graph crops).
"""

from __future__ import annotations

import numpy as np

from .postprocess import Instances


def crop_origins(anchors: np.ndarray, crop_size: tuple[int, int]) -> np.ndarray:
    """Top-left pixel (x, y) of the crop centred on each anchor (M, 2) -> (M, 2) int."""
    height, width = crop_size
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    return np.rint(np.asarray(anchors, np.float64) - centre).astype(np.int64).reshape(-1, 2)


def extract_crops(frames: np.ndarray, frame_of: np.ndarray, origins: np.ndarray,
                  crop_size: tuple[int, int]) -> np.ndarray:  # fmt: skip
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


def crops_around(frames: np.ndarray, anchors: list[np.ndarray], crop_size: tuple[int, int]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Crops around every anchor of every frame: anchors[n] is (m_n, 2) for frames[n].

    Returns crops (M, h, w, C) uint8, their origins (M, 2) and frame_of (M,) (index into frames).
    """
    frame_of = np.repeat(np.arange(len(anchors)), [len(a) for a in anchors])
    origins = crop_origins(np.concatenate(anchors) if len(frame_of) else np.zeros((0, 2)), crop_size)
    return extract_crops(frames, frame_of, origins, crop_size), origins, frame_of


def instances_from_crops(crops: list[Instances], origins: np.ndarray, frame_of: np.ndarray, n_frames: int,
                         n_nodes: int) -> list[Instances]:  # fmt: skip
    """Per-frame instances from per-crop ones (in crop pixels), moved back into frame pixels."""
    parts: list[list[Instances]] = [[] for _ in range(n_frames)]
    for crop, origin, n in zip(crops, origins, frame_of):
        parts[n].append(Instances(crop.points + origin.astype(np.float32), crop.point_scores, crop.instance_scores))
    return [Instances.concat(frame_parts, n_nodes) for frame_parts in parts]
