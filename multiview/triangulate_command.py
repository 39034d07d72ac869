"""``posestream triangulate``: one 2D predictions file per camera joined into one 3D poses file."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posestream.core.errors import ConfigError
from posestream.multiview.calibration_file import read_calibration
from posestream.multiview.matching import match_views
from posestream.multiview.points3d_file import Points3D, write_points3d
from posestream.multiview.smoothing import check_window, median_smooth
from posestream.multiview.triangulate import DEFAULT_THRESHOLD_PX, triangulate
from posestream.multiview.views import check_views, join_views, read_view, tracks_agree


@dataclass
class TriangulateSummary:
    output: Path
    frames: int
    tracks: int
    solved: int  # 3D points
    unsolved: int  # points some camera saw, without a 3D position (fewer than min_cameras)
    seconds: float  # reading, triangulating and writing
    triangulation_seconds: float
    reprojection_median: dict[str, float] = field(default_factory=dict)  # pixels, by camera
    matched: bool = False  # the views' tracks were matched by geometry (several tracks)

    @property
    def fps(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


def _median(values: np.ndarray) -> float:
    """The median of the finite values (NaN if none): np.median on them, faster than np.nanmedian."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def parse_inputs(pairs: list[str]) -> dict[str, Path]:
    """``NAME=FILE`` arguments as {camera name: file}; a malformed or repeated one is named."""
    inputs = {}
    for pair in pairs:
        name, sep, file = pair.partition("=")
        if not sep or not name or not file:
            raise ConfigError(
                f"{pair!r}: give each camera's file as NAME=FILE, NAME its name in the calibration"
            )
        if name in inputs:
            raise ConfigError(f"camera {name} is given twice ({inputs[name]}, {file}); give each camera once")
        inputs[name] = Path(file)
    if len(inputs) < 2:
        raise ConfigError(f"triangulation needs at least 2 cameras; got {list(inputs) or 'none'}")
    return inputs


def triangulate_files(
    calibration: str | Path,
    inputs: dict[str, Path],
    output: str | Path,
    threshold_px: float | None = DEFAULT_THRESHOLD_PX,
    min_cameras: int = 2,
    threads: int = 1,
    smooth: int = 0,
) -> TriangulateSummary:
    """Triangulate each camera's poses (``inputs``: camera name -> analysis .h5 or .slp) into ``output``;
    ``smooth`` > 0: then a median over that many frames (``smoothing.median_smooth``), named in the file."""
    if smooth:
        check_window(smooth)
    start = time.perf_counter()
    rig = read_calibration(calibration).select(list(inputs), source="the NAME=FILE inputs")
    views = [read_view(name, path) for name, path in inputs.items()]
    check_views(views)
    matched = not tracks_agree(views)
    views = join_views(match_views(rig, views, threshold_px=threshold_px) if matched else views)
    solving = time.perf_counter()
    result = triangulate(rig, views.pixels, views.scores, threshold_px, min_cameras, threads)
    triangulation_seconds = time.perf_counter() - solving
    data = Points3D(
        points=median_smooth(result.points, smooth) if smooth else result.points,
        reprojection_error=np.moveaxis(result.reprojection_error, 0, -1),
        cameras_used=result.cameras_used,
        node_names=list(views.skeleton.nodes),
        edges=list(views.skeleton.edges),
        track_names=views.track_names,
        camera_names=rig.names,
        calibration=str(calibration),
        smoothing=f"median over {smooth} frames" if smooth else "",
    )
    write_points3d(output, data)
    errors = result.reprojection_error.reshape(len(rig.cameras), -1)
    medians = {name: _median(e) for name, e in zip(rig.names, errors)}
    return TriangulateSummary(
        output=Path(output),
        frames=views.pixels.shape[1],
        tracks=len(views.track_names),
        solved=int(np.isfinite(result.points[..., 0]).sum()),
        unsolved=result.unsolved,
        seconds=time.perf_counter() - start,
        triangulation_seconds=triangulation_seconds,
        reprojection_median=medians,
        matched=matched,
    )
