"""Load the engine's compiled kernels, and run each once, before a run's clock starts.

The first run on a machine builds the kernels (about 15 s, ``engine/kernels``); every run loads them and
makes its first calls. Done inside a stage, that time made the stage that first called a kernel
(postprocessing) look like the run's bound. ``warm_up`` makes those first calls on made-up data before the
stages start: every decoder decodes one output of its own network with a peak planted in every channel (so
peak refinement, PAF scoring and grouping all run), and the tracker updates a scratch copy of itself over two
frames. Building or loading the kernels is then never counted as a stage's work.
"""

from __future__ import annotations

import time

import numpy as np

from posestream.engine.model.predictor import Predictor
from posestream.engine.tracking import Tracker
from posestream.engine.types import FramePredictions, OutputMode


def warm_up(predictor: Predictor, tracker=None) -> float:
    """Run every kernel the predictor's decoders (and the tracker stage: a Tracker, or the live mode's
    per-camera trackers, anything with a TrackerConfig ``config``) use once; returns the seconds taken."""
    started = time.perf_counter()
    for model in predictor.models:
        outputs = model.backend.run(np.zeros((1, *model.metadata.input_shape), np.uint8))
        model.decoder.decode(with_planted_peaks(outputs, model.metadata.output_mode))
    if tracker is not None:
        scratch = Tracker(tracker.config)
        n_nodes = predictor.skeleton.n_nodes
        for idx in range(2):
            points = np.full((2, n_nodes, 2), 10.0 + idx, np.float32) + np.array([[[0, 0]], [[50, 50]]], np.float32)
            scratch.update(FramePredictions(idx, points, np.ones((2, n_nodes), np.float32), np.ones(2, np.float32)))
    return time.perf_counter() - started


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
