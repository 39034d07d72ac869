"""3D poses seen by one calibrated camera: a 3D file's points projected into that camera's pixels, as frames
of 2D poses, which ``render`` draws over the camera's video like any predictions file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from posestream.engine.types import FramePredictions, Skeleton
from posestream.multiview.calibration_file import read_calibration
from posestream.multiview.points3d_file import read_points3d


class ProjectedPoses:
    """A 3D poses file as ``camera`` of ``calibration`` sees it: ``skeleton``, ``iter_frames()`` (each 3D
    track its own track id), like the predictions readers of engine/sinks."""

    def __init__(self, points3d: str | Path, calibration: str | Path, camera: str):
        data = read_points3d(points3d)
        self.camera = read_calibration(calibration).select([camera], source=f"--camera {camera}").cameras[0]
        nodes = data.node_names
        self.skeleton = Skeleton.from_names(nodes, [(nodes[a], nodes[b]) for a, b in data.edges])
        self.track_names = data.track_names
        self.pixels = self.camera.project(data.points).astype(np.float32)  # (F, T, N, 2)

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def iter_frames(self) -> Iterator[FramePredictions]:
        for frame_idx, frame in enumerate(self.pixels):
            present = np.isfinite(frame[..., 0]).any(axis=1)
            yield FramePredictions(
                frame_idx=frame_idx,
                points=frame[present],
                point_scores=np.isfinite(frame[present, :, 0]).astype(np.float32),
                instance_scores=np.ones(int(present.sum()), np.float32),
                track_ids=np.flatnonzero(present).astype(np.int32),
            )

    def __enter__(self) -> ProjectedPoses:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass
