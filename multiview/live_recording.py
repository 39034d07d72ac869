"""A live run's 3D poses recorded group after group (OUT.3d.h5), by the engine (``live -o``) and by
``listen -o`` (``MessageRecording``) alike: the layout of ``triangulate``'s files (points3d_file.py), one
frame per group.

Each animal has its own column (a track of the file) by the reference camera and that camera's track id,
``<camera>_track_<id>``: the reference is the first camera of the rig that saw someone, and each camera's
tracker numbers its own. Untracked instances go by their place in the group (``<camera>_instance_<k>``). Per
group also: each calibrated camera's frame counter (-1: no frame in the group), capture time, and the time the
3D poses were published. Groups are written ``WRITE_EVERY`` at a time (and at the end): a crash loses at most
those.
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path

import numpy as np

from posestream.engine.types import Skeleton
from posestream.multiview.points3d_file import Points3DWriter

WRITE_EVERY = 64  # groups (about 2 s at 30 Hz)


class Live3DRecording:
    """Groups into a 3D file; camera id k is ``camera_names[k]`` (the live run's numbering)."""

    def __init__(self, path: str | Path, skeleton: Skeleton, camera_names: list[str]):
        self.path = Path(path)
        self.n_nodes, self.n_cameras = skeleton.n_nodes, len(camera_names)
        self.writer = Points3DWriter(
            self.path,
            list(skeleton.nodes),
            list(skeleton.edges),
            list(camera_names),
            frame_data={
                "camera_counters": ("int64", (self.n_cameras,)),
                "capture_ns": ("int64", (self.n_cameras,)),
                "publish_ns": ("int64", ()),
            },
        )
        self.camera_names = list(camera_names)
        self.track_names: list[str] = []
        self.columns: dict[str, int] = {}  # track name -> its column
        self.pending: list[tuple] = []

    def add(
        self,
        points,
        cameras_used,
        reprojection_error,
        track_ids,
        reference,
        cameras,
        counters,
        captures,
        publish_ns,
    ):
        """One group: points (T, N, 3), cameras_used (T, N), reprojection_error (T, N, C) or None, track_ids
        (T,) of the reference camera (its id; -1: none); the camera ids, counters and capture times of its
        frames; when it was published (ns)."""
        if reprojection_error is None:
            reprojection_error = np.full((*np.shape(cameras_used), self.n_cameras), np.nan)
        row_counters = np.full(self.n_cameras, -1, np.int64)
        row_captures = np.zeros(self.n_cameras, np.int64)
        row_counters[list(cameras)], row_captures[list(cameras)] = counters, captures
        columns = np.array(
            [self._column(reference, t, k) for k, t in enumerate(np.asarray(track_ids).tolist())], int
        )
        self.pending.append(
            (points, cameras_used, reprojection_error, columns, row_counters, row_captures, publish_ns)
        )
        if len(self.pending) >= WRITE_EVERY:
            self.flush()

    def flush(self) -> None:
        """Write the groups kept."""
        if not self.pending:
            return
        width, n = len(self.track_names), len(self.pending)
        points = np.full((n, width, self.n_nodes, 3), np.nan)
        errors = np.full((n, width, self.n_nodes, self.n_cameras), np.nan)
        used = np.zeros((n, width, self.n_nodes), np.uint8)
        for row, (group_points, group_used, group_errors, columns, *_) in enumerate(self.pending):
            points[row, columns], used[row, columns], errors[row, columns] = (
                group_points,
                group_used,
                group_errors,
            )
        *_, counters, captures, published = zip(*self.pending)
        self.pending = []
        self.writer.append(
            points, errors, used, self.track_names, camera_counters=np.stack(counters),
            capture_ns=np.stack(captures), publish_ns=np.array(published, np.int64),
        )  # fmt: skip

    def _column(self, reference: int, track: int, place: int) -> int:
        camera = self.camera_names[reference]
        name = f"{camera}_track_{track}" if track >= 0 else f"{camera}_instance_{place}"
        if name not in self.columns:
            self.columns[name] = len(self.track_names)
            self.track_names.append(name)
        return self.columns[name]

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self.writer.close()


class MessageRecording:
    """``listen -o``'s 3D file: the 3D messages a client receives, recorded once the engine's 3D statistics
    (``stats3d``) have named the cameras and the skeleton; until then they wait, at most ``WAIT_GROUPS``."""

    WAIT_GROUPS = 10_000

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.recording: Live3DRecording | None = None
        self.waiting: collections.deque = collections.deque(maxlen=self.WAIT_GROUPS)
        self.refused = 0  # messages that do not fit the engine's statistics (cameras, nodes)

    def add(self, message, stats3d: dict) -> None:
        """A ``Pose3DMessage`` (posestream.live.pose3d), with the last 3D statistics received. Messages come
        off the network: one that does not fit the statistics is counted (``refused``) and left out."""
        self.waiting.append(message)
        if self.recording is None and "cameras" in stats3d and "skeleton" in stats3d:
            names = [stats3d["cameras"].get(str(k), f"camera {k}") for k in range(len(stats3d["cameras"]))]
            self.recording = Live3DRecording(self.path, Skeleton.from_dict(stats3d["skeleton"]), names)
        while self.recording is not None and self.waiting:
            m = self.waiting.popleft()
            fits = (
                m.points.shape[1] == self.recording.n_nodes and (m.cameras < self.recording.n_cameras).all()
            )
            if not fits or m.header.reference >= self.recording.n_cameras:
                self.refused += 1
                continue
            arrays = (m.points, m.cameras_used, None, m.track_ids, m.header.reference, m.cameras, m.counters)
            self.recording.add(*arrays, m.captures, m.header.publish_ns)

    def close(self) -> list[Path]:
        if self.recording is None:
            if self.waiting:
                print(
                    f"listen: no 3D statistics named the cameras; {len(self.waiting)} groups not recorded",
                    file=sys.stderr,
                )
            return []
        self.recording.close()
        if self.refused:
            print(
                f"listen: {self.refused} 3D groups did not fit the engine's cameras or skeleton",
                file=sys.stderr,
            )
        return [self.path]
