"""One camera's 2D poses (an analysis HDF5 or .slp, as ``track`` and ``batch`` write them), and the views of
a rig joined into arrays by camera, frame, track and node."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestream.core.errors import ConfigError
from posestream.engine.sinks.analysis_h5 import AnalysisH5Reader
from posestream.engine.sinks.predictions import open_predictions
from posestream.engine.types import Skeleton


@dataclass
class View:
    """One camera's poses, frame-first."""

    camera: str
    path: Path
    points: np.ndarray  # (F, T, N, 2) pixels, NaN where unseen
    scores: np.ndarray  # (F, T, N)
    track_names: list[str]
    skeleton: Skeleton
    tracked: bool = True  # slots are identities (False: a frame's instances in no lasting order)


@dataclass
class JoinedViews:
    """Every camera's poses on one frame, track and node axis."""

    pixels: np.ndarray  # (C, F, T, N, 2)
    scores: np.ndarray  # (C, F, T, N)
    track_names: list[str]
    skeleton: Skeleton


def read_view(camera: str, path: str | Path) -> View:
    """The poses of ``path`` for camera ``camera``: its tracks as slots (untracked: one instance a frame)."""
    path = Path(path)
    with open_predictions(path) as reader:
        if isinstance(reader, AnalysisH5Reader):
            arrays = reader.read()
            points, scores = arrays["tracks"].astype(np.float64), arrays["point_scores"].astype(np.float64)
            names = reader.track_names or [f"track_{i}" for i in range(points.shape[1])]
            return View(
                camera, path, points, scores, names[: points.shape[1]], reader.skeleton, reader.tracked
            )
        return _view_of_frames(camera, path, reader)


def _view_of_frames(camera: str, path: Path, reader) -> View:
    """A view from a reader that gives frames (.slp): instances placed in their track's slot."""
    frames = list(reader.iter_frames())
    n_frames = max((f.frame_idx for f in frames), default=-1) + 1
    names = list(reader.track_names) or ["track_0"]
    points = np.full((n_frames, len(names), reader.skeleton.n_nodes, 2), np.nan)
    scores = np.zeros(points.shape[:3])
    for frame in frames:
        slots = frame.track_ids
        if (slots < 0).any():
            if len(slots) > 1 or reader.track_names:
                raise ConfigError(
                    f"{path}: frame {frame.frame_idx} has {len(slots)} instances without a track; give the "
                    "views tracks first (posestream retrack) so that each animal keeps one slot"
                )
            slots = np.zeros(1, dtype=np.int64)
        points[frame.frame_idx, slots] = frame.points
        scores[frame.frame_idx, slots] = frame.point_scores
    return View(camera, path, points, scores, names, reader.skeleton, reader.tracked)


def check_views(views: list[View]) -> None:
    """Every view has poses, and all share one skeleton; each problem is named with its camera and file."""
    for view in views:
        if not np.isfinite(view.points).any():
            raise ConfigError(
                f"camera {view.camera}: {view.path} has no poses in any frame; check that it is this "
                "camera's file, or leave the camera out"
            )
    first = views[0]
    for view in views[1:]:
        if view.skeleton.nodes != first.skeleton.nodes:
            raise ConfigError(
                f"camera {view.camera} ({view.path}) has nodes {list(view.skeleton.nodes)}, camera "
                f"{first.camera} ({first.path}) {list(first.skeleton.nodes)}: the views need one skeleton"
            )


def join_views(views: list[View]) -> JoinedViews:
    """The views on common axes: frames padded with NaN to the longest, tracks aligned by name: views of
    one track each, or views matched first (``matching.match_views`` names every view's tracks alike)."""
    check_views(views)
    first = views[0]
    names = _common_tracks(views)
    n_frames = max(v.points.shape[0] for v in views)
    shape = (len(views), n_frames, len(names), first.skeleton.n_nodes)
    pixels, scores = np.full((*shape, 2), np.nan), np.zeros(shape)
    for c, view in enumerate(views):
        slots = [0] if len(view.track_names) == 1 else [view.track_names.index(n) for n in names]
        frames = view.points.shape[0]
        in_order = slots == list(range(view.points.shape[1]))  # no reordering copy
        pixels[c, :frames] = view.points if in_order else view.points[:, slots]
        scores[c, :frames] = view.scores if in_order else view.scores[:, slots]
    return JoinedViews(pixels, scores, names, first.skeleton)


def tracks_agree(views: list[View]) -> bool:
    """Whether the views join as they are: one track each. Several tracks are matched by geometry even
    when their names agree, since each camera's tracker names its own (``track_0`` of one camera need not be
    ``track_0`` of another)."""
    return all(len(v.track_names) == 1 for v in views)


def _common_tracks(views: list[View]) -> list[str]:
    named = [sorted(v.track_names) for v in views]
    if all(len(n) == 1 for n in named) or all(n == named[0] for n in named):
        return list(views[0].track_names)
    listed = "; ".join(f"{v.camera}: {v.track_names}" for v in views)
    raise ConfigError(
        f"the views name different tracks ({listed}); match them across views first "
        "(posestream.multiview.matching.match_views)"
    )
