"""Load the engine's compiled kernels, and run each once, before a run's clock starts.

The first run on a machine builds the kernels (about 15 s, ``engine/kernels``); every run loads them and
makes its first calls. Done inside a stage, that time made the stage that first called a kernel
(postprocessing) look like the run's bound. ``warm_up`` makes those first calls on made-up data before the
stages start: every network runs once per batch size the run will use (onnxruntime plans each new shape on
its first call), every decoder decodes one output of its own network with a peak planted in every channel (so
peak refinement, PAF scoring and grouping all run), and the tracker's kernels run, then a scratch copy of the
tracker updates over two frames. Building or loading the kernels is then never counted as a stage's work.

The one place of warm-up: ``Pipeline`` (track, batch, bench) and ``LiveSession`` call ``warm_up``.
"""

from __future__ import annotations

import time

import numpy as np

from posestream.engine.model.predictor import Predictor
from posestream.engine.tracking import Tracker, templates
from posestream.engine.tracking.similarity import similarity_matrix
from posestream.engine.types import FramePredictions, OutputMode


def warm_up(predictor: Predictor, tracker=None, batch_sizes: tuple[int, ...] = (1,)) -> float:
    """Run every network at each of ``batch_sizes``, and every kernel the predictor's decoders (and the
    tracker stage: a Tracker, or the live mode's per-camera trackers, anything with a TrackerConfig
    ``config``) use, once; returns the seconds taken."""
    started = time.perf_counter()
    for model in predictor.models:
        blank = np.zeros((max(batch_sizes), *model.metadata.input_shape), np.uint8)
        outputs = model.backend.run(blank[:1])
        for n in sorted(set(batch_sizes) - {1}):
            model.backend.run(blank[:n])
        model.decoder.decode(with_planted_peaks(outputs, model.metadata.output_mode))
    if tracker is not None:
        warm_tracking_kernels()
        scratch = Tracker(tracker.config)
        n_nodes = predictor.skeleton.n_nodes
        for idx in range(2):
            points = np.full((2, n_nodes, 2), 10.0 + idx, np.float32) + np.array(
                [[[0, 0]], [[50, 50]]], np.float32
            )
            scratch.update(
                FramePredictions(idx, points, np.ones((2, n_nodes), np.float32), np.ones(2, np.float32))
            )
    return time.perf_counter() - started


def warm_tracking_kernels() -> None:
    """Call each of the tracker's kernels (every similarity, the templates) once."""
    one = np.zeros((1, 1, 2))
    for kind in ("oks", "centroid", "iou"):
        similarity_matrix(kind, one, one, np.ones(1))
    templates.observe(one.copy(), np.zeros(1, np.int64), one, 1.0)


def with_planted_peaks(outputs: dict[str, np.ndarray], mode: OutputMode) -> dict[str, np.ndarray]:
    """A copy of one sample's outputs with a strong peak in the middle of every confidence map (maps
    mode), or as every channel's first candidate (peaks mode)."""
    planted = {name: array.copy() for name, array in outputs.items()}
    if mode is OutputMode.MAPS:
        maps = planted["confmaps"]  # (1, C, h, w)
        height, width = maps.shape[2:]
        maps[:, :, height // 2, width // 2] = 1.0
    else:
        planted["peak_values"][:, :, 0] = 1.0  # (1, C, K)
    return planted
