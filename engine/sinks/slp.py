"""SLEAP labels (``.slp``) through sleap-io (``pip install 'posestream[slp]'``, no torch): a writer and a
reader.

sleap-io writes a labels file in one go, so this sink keeps every frame's
arrays until ``close`` (a few hundred bytes per instance); the analysis HDF5
sink is the streaming one. The room on disk is checked when the writer is made
and again before saving, and the file is saved under a partial name
(``OUT.partial.slp``) that replaces ``OUT.slp`` only once complete, so a full
disk never leaves an unreadable file at the final name. ``SlpReader`` gives the predictions of any SLEAP
labels file (ours, SLEAP's, sleap-nn's) frame by frame, as FramePredictions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np

from posestream.core.errors import ConfigError
from posestream.engine.extras import require
from posestream.engine.sinks.space import check_room, save_complete
from posestream.engine.types import UNTRACKED, FrameBlock, FramePredictions, Skeleton

MIN_BYTES = 1 << 20  # skeleton, videos, tracks and metadata, with room to spare
INSTANCE_BYTES, NODE_BYTES = 64, 32  # an upper bound of what sleap-io stores per instance and per point


class SlpWriter:
    """Collect FramePredictions and save them as PredictedInstances (``user=True``: user Instances)."""

    def __init__(
        self,
        path: str | os.PathLike,
        skeleton: Skeleton,
        video_path: str,
        user: bool = False,
        provenance: dict | None = None,
        track_names: Sequence[str] = (),
    ):
        self.sio = require("sleap_io", extra="slp", feature="writing .slp files")
        self.path, self.skeleton, self.video_path, self.user = os.fspath(path), skeleton, video_path, user
        self.provenance = provenance or {}
        # name of identity i (an identity model's classes); else track_<i>
        self.track_names = list(track_names)
        self._blocks: list[FrameBlock] = []
        check_room(self.path, MIN_BYTES, "the labels file", "nothing was run; make room or write elsewhere")

    def write(self, frame: FramePredictions) -> None:
        self.write_block(FrameBlock.from_frames([frame], self.skeleton.n_nodes))

    def write_block(self, block: FrameBlock) -> None:
        if block.counts.any():
            self._blocks.append(block)

    def close(self) -> None:
        sio = self.sio
        skeleton = sio.Skeleton(
            nodes=list(self.skeleton.nodes),
            edges=self.skeleton.edge_names,
            symmetries=self.skeleton.symmetry_names,
            name=self.skeleton.name,
        )
        video = sio.Video.from_filename(self.video_path)
        tracks: dict[int, object] = {}
        labeled = []
        for frame in (block.frame(f) for block in self._blocks for f in np.flatnonzero(block.counts)):
            instances = []
            for k in range(frame.n_instances):
                track_id = int(frame.track_ids[k])
                track = (
                    tracks.setdefault(track_id, sio.Track(name=self._track_name(track_id)))
                    if track_id >= 0
                    else None
                )
                instances.append(self._instance(frame, k, skeleton, track))
            labeled.append(sio.LabeledFrame(video=video, frame_idx=frame.frame_idx, instances=instances))
        labels = sio.Labels(
            labeled_frames=labeled, videos=[video], skeletons=[skeleton], tracks=list(tracks.values())
        )
        labels.provenance.update(self.provenance)
        self._save(labels)

    def _save(self, labels) -> None:
        """Save under the partial name, then replace the final one (after checking the room it needs)."""
        instances = sum(int(block.counts.sum()) for block in self._blocks)
        needed = MIN_BYTES + instances * (INSTANCE_BYTES + NODE_BYTES * self.skeleton.n_nodes)
        outcome = "the predictions were not saved; make room (or write elsewhere) and run again"
        check_room(self.path, needed, f"{instances} instances", outcome)
        save_complete(
            self.path, lambda partial: self.sio.save_slp(labels, partial), "the labels file", outcome
        )

    def _track_name(self, track_id: int) -> str:
        return self.track_names[track_id] if track_id < len(self.track_names) else f"track_{track_id}"

    def _instance(self, frame: FramePredictions, k: int, skeleton, track):
        if self.user:
            return self.sio.Instance.from_numpy(frame.points[k], skeleton=skeleton, track=track)
        tracking = float(frame.tracking_scores[k]) if np.isfinite(frame.tracking_scores[k]) else None
        return self.sio.PredictedInstance.from_numpy(
            frame.points[k],
            skeleton=skeleton,
            point_scores=np.nan_to_num(frame.point_scores[k]),
            score=float(frame.instance_scores[k]),
            track=track,
            tracking_score=tracking,
        )

    def __enter__(self) -> SlpWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SlpReader:
    """The predicted instances of a SLEAP labels file (user instances on frames that have no predicted ones),
    frame by frame in frame order, with their tracks as track ids (index in the file's track list).

    One video per file; its path is ``video_path`` as the file names it.
    """

    def __init__(self, path: str | os.PathLike):
        sio = require("sleap_io", extra="slp", feature="reading .slp files")
        self.path = os.fspath(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{self.path}: no such labels file")
        try:
            self._labels = sio.load_slp(self.path, open_videos=False)
        except Exception as exc:  # sleap-io raises many types for a bad file
            raise ConfigError(f"{self.path}: cannot read SLEAP labels ({type(exc).__name__}: {exc})") from exc
        labels = self._labels
        if len(labels.skeletons) != 1 or len(labels.videos) != 1:
            raise ConfigError(
                f"{self.path}: holds {len(labels.skeletons)} skeletons and {len(labels.videos)} videos; "
                "one of each is supported (split it with sleap-io first)"
            )
        self.skeleton = skeleton_from_sio(labels.skeletons[0])
        self.video_path = str(labels.videos[0].filename)
        self.track_names = [track.name for track in labels.tracks]
        self.tracked = bool(labels.tracks)
        self._track_index = {id(track): i for i, track in enumerate(labels.tracks)}
        self._frames = sorted(labels.labeled_frames, key=lambda lf: lf.frame_idx)

    def __len__(self) -> int:
        return len(self._frames)

    def iter_frames(self) -> Iterator[FramePredictions]:
        n_nodes = self.skeleton.n_nodes
        for lf in self._frames:
            instances = lf.predicted_instances or lf.user_instances
            if not instances:
                yield FramePredictions.empty(int(lf.frame_idx), n_nodes)
                continue
            yield FramePredictions(
                frame_idx=int(lf.frame_idx),
                points=np.stack([inst.numpy()[:, :2] for inst in instances]),
                point_scores=np.stack([_point_scores(inst, n_nodes) for inst in instances]),
                instance_scores=np.array([getattr(inst, "score", 1.0) for inst in instances], np.float32),
                track_ids=np.array(
                    [self._track_index.get(id(inst.track), UNTRACKED) for inst in instances], np.int32
                ),
                tracking_scores=np.array(
                    [_or_nan(getattr(inst, "tracking_score", None)) for inst in instances]
                ),
            )

    def close(self) -> None:
        self._frames = []

    def __enter__(self) -> SlpReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def skeleton_from_sio(sk) -> Skeleton:
    """Our Skeleton from a sleap-io one: nodes, edges and the symmetries it names."""
    nodes = [n.name for n in sk.nodes]
    symmetries = [(list(s.nodes)[0].name, list(s.nodes)[1].name) for s in sk.symmetries]
    edges = [(e.source.name, e.destination.name) for e in sk.edges]
    return Skeleton.from_names(nodes, edges, symmetries, name=sk.name or "skeleton")


def _point_scores(instance, n_nodes: int) -> np.ndarray:
    """Per-node scores of a predicted instance; 1 for a user instance's labelled nodes.  # (n_nodes,)"""
    if hasattr(instance, "score"):
        return instance.numpy(scores=True)[:, 2]
    return np.where(np.isfinite(instance.numpy()[:, 0]), 1.0, np.nan)


def _or_nan(value) -> float:
    return float("nan") if value is None else float(value)
