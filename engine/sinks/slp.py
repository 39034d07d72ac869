"""SLEAP labels (``.slp``) output through sleap-io (``pip install 'posestream[train]'``).

sleap-io writes a labels file in one go, so this sink keeps every frame's
arrays until ``close`` (a few hundred bytes per instance); the analysis HDF5
sink is the streaming one.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import OutputFileError
from ..extras import require
from ..types import FramePredictions, Skeleton


class SlpWriter:
    """Collect FramePredictions and save them as PredictedInstances (``user=True``: user Instances)."""

    def __init__(self, path: str | os.PathLike, skeleton: Skeleton, video_path: str, user: bool = False,
                 provenance: dict | None = None):  # fmt: skip
        self.sio = require("sleap_io", extra="train", feature="writing .slp files")
        self.path, self.skeleton, self.video_path, self.user = os.fspath(path), skeleton, video_path, user
        self.provenance = provenance or {}
        self._frames: list[FramePredictions] = []

    def write(self, frame: FramePredictions) -> None:
        if frame.n_instances:
            self._frames.append(frame)

    def close(self) -> None:
        sio = self.sio
        skeleton = sio.Skeleton(nodes=list(self.skeleton.nodes), edges=self.skeleton.edge_names,
                                symmetries=self.skeleton.symmetry_names, name=self.skeleton.name)  # fmt: skip
        video = sio.Video.from_filename(self.video_path)
        tracks: dict[int, object] = {}
        labeled = []
        for frame in self._frames:
            instances = []
            for k in range(frame.n_instances):
                track_id = int(frame.track_ids[k])
                track = tracks.setdefault(track_id, sio.Track(name=f"track_{track_id}")) if track_id >= 0 else None
                instances.append(self._instance(frame, k, skeleton, track))
            labeled.append(sio.LabeledFrame(video=video, frame_idx=frame.frame_idx, instances=instances))
        labels = sio.Labels(labeled_frames=labeled, videos=[video], skeletons=[skeleton], tracks=list(tracks.values()))
        labels.provenance.update(self.provenance)
        try:
            sio.save_slp(labels, self.path)
        except OSError as exc:
            raise OutputFileError(f"{self.path}: cannot write the labels file ({exc})") from exc

    def _instance(self, frame: FramePredictions, k: int, skeleton, track):
        if self.user:
            return self.sio.Instance.from_numpy(frame.points[k], skeleton=skeleton, track=track)
        tracking = float(frame.tracking_scores[k]) if np.isfinite(frame.tracking_scores[k]) else None
        return self.sio.PredictedInstance.from_numpy(
            frame.points[k], skeleton=skeleton, point_scores=np.nan_to_num(frame.point_scores[k]),
            score=float(frame.instance_scores[k]), track=track, tracking_score=tracking,
        )  # fmt: skip

    def __enter__(self) -> SlpWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
