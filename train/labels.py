"""SLEAP labels (.slp, .pkg.slp), and DeepLabCut's through train/dlc_labels.py, as arrays of keypoints plus
the frames they label.

Labels are read with sleap-io. Frames of videos the labels reference are read
with posestream's own PyAV reader; images embedded in a ``.pkg.slp`` come from
sleap-io. Labels made on another machine name video paths that do not exist
here: like SLEAP, we look for the same file name beside the labels file, and
``video_paths`` ("OLD=NEW", or one "NEW" when the labels have one video) maps
them explicitly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from posestream.core.errors import ConfigError, VideoNotFoundError
from posestream.engine.extras import require
from posestream.engine.frame_ranges import FrameRanges
from posestream.engine.sinks.slp import skeleton_from_sio
from posestream.engine.sources import VideoFileReader
from posestream.engine.types import Skeleton
from posestream.train.dlc_labels import is_dlc_labels, read_dlc_labels


@dataclass
class LabeledImage:
    """One labelled frame. points: (n_instances, n_nodes, 2) float32 pixels, NaN where unlabelled;
    track_ids: (n_instances,) identity of each instance, -1 where it has none."""

    video: int
    frame_idx: int
    points: np.ndarray
    track_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.track_ids is None:
            self.track_ids = np.full(len(self.points), -1, np.int32)


@dataclass
class LabelSet:
    """Labelled frames of one skeleton, and access to their images. ``track_names``: the name of each track
    id the frames' instances carry (the labels' tracks, in order)."""

    skeleton: Skeleton
    frames: list[LabeledImage]
    labels_path: str
    video_paths: list[str]
    track_names: list[str] = field(default_factory=list)
    _images: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)
    _sio_videos: list = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.frames)

    def image(self, i: int) -> np.ndarray:
        """Image of labelled frame ``i``.  # (H, W, C) uint8"""
        frame = self.frames[i]
        key = (frame.video, frame.frame_idx)
        if key not in self._images:
            self.load_images()
        return self._images[key]

    @property
    def image_bytes(self) -> int:
        """Memory held by the decoded frames."""
        return sum(image.nbytes for image in self._images.values())

    def load_images(self) -> None:
        """Decode every labelled frame once (sequentially per video) and keep it in memory."""
        for video in sorted({f.video for f in self.frames}):
            cached = {idx for v, idx in self._images if v == video}
            wanted = sorted({f.frame_idx for f in self.frames if f.video == video} - cached)
            if not wanted:
                continue
            path = self.video_paths[video]
            sio_video = self._sio_videos[video] if self._sio_videos else None
            if sio_video is not None:  # embedded images, an image sequence
                for idx in wanted:
                    image = np.asarray(sio_video[idx])
                    self._images[(video, idx)] = image if image.ndim == 3 else image[..., None]
                continue
            with VideoFileReader(path) as reader:
                ranges = FrameRanges.from_spans([(i, i + 1) for i in wanted])
                for idx, image in reader.iter_frames(ranges):
                    self._images[(video, idx)] = image

    def subset(self, indices: Sequence[int]) -> LabelSet:
        """A LabelSet of some of these frames, sharing the image cache."""
        return LabelSet(
            self.skeleton,
            [self.frames[i] for i in indices],
            self.labels_path,
            self.video_paths,
            self.track_names,
            self._images,
            self._sio_videos,
        )

    def in_ranges(self, ranges: FrameRanges) -> list[int]:
        """Indices of labelled frames whose frame index lies in ``ranges``."""
        return [i for i, f in enumerate(self.frames) if f.frame_idx in ranges]

    @property
    def channels(self) -> int:
        return self.image(0).shape[2]


def load_labels(
    path: str | os.PathLike,
    video_paths: Sequence[str] = (),
    frames: str | None = None,
    need_images: bool = True,
) -> LabelSet:
    """Load labels; ``frames`` ("0-879") keeps only labelled frames in that range. With ``need_images``
    False (scoring predictions needs only the points) videos that are not here are no error."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such labels file")
    if is_dlc_labels(path):
        return label_set(read_dlc_labels(path), path, video_paths, frames, need_images)
    if path.suffix in (
        ".h5",
        ".hdf5",
    ):  # ground truth in an analysis HDF5 (posestream synth's OUT.analysis.h5)
        labels = labels_from_analysis_h5(path, frames)
        if need_images:
            labels.video_paths = resolve_video_paths(labels.video_paths, path, video_paths)
        return labels
    sio = require("sleap_io", extra="train", feature="reading SLEAP labels")
    try:
        labels = sio.load_slp(str(path), open_videos=False)
    except Exception as exc:  # sleap-io raises many types for a bad file
        raise ConfigError(f"{path}: cannot read SLEAP labels ({type(exc).__name__}: {exc})") from exc
    return label_set(labels, path, video_paths, frames, need_images)


def label_set(
    labels, path: Path, video_paths: Sequence[str], frames: str | None, need_images: bool
) -> LabelSet:
    """A sleap-io ``Labels`` of one skeleton as a LabelSet: each labelled frame's instances (user
    instances where it has them, else predicted ones) with their tracks, and where its images come from."""
    if len(labels.skeletons) != 1:
        raise ConfigError(
            f"{path}: labels with {len(labels.skeletons)} skeletons are not supported; need exactly one"
        )
    skeleton = skeleton_from_sleap(labels.skeletons[0])
    keep = FrameRanges.parse(frames) if frames else None
    track_index = {id(track): i for i, track in enumerate(labels.tracks)}
    items = []
    for lf in labels.labeled_frames:
        if keep is not None and lf.frame_idx not in keep:
            continue
        instances = [
            inst
            for inst in lf.user_instances or lf.predicted_instances
            if np.isfinite(inst.numpy()[:, :2]).all(axis=1).any()
        ]
        if instances:
            video = labels.videos.index(lf.video)
            points = np.stack([inst.numpy()[:, :2] for inst in instances]).astype(np.float32)
            ids = np.array([track_index.get(id(inst.track), -1) for inst in instances], np.int32)
            items.append(LabeledImage(video, int(lf.frame_idx), points, ids))
    if not items:
        raise ConfigError(f"{path}: no labelled instances" + (f" in frames {frames}" if frames else ""))
    items.sort(key=lambda f: (f.video, f.frame_idx))
    paths, readers = _frame_sources(labels.videos, path, video_paths, need_images)
    names = [track.name for track in labels.tracks]
    return LabelSet(skeleton, items, str(path), paths, names, _sio_videos=readers)


def _frame_sources(videos, path: Path, video_paths: Sequence[str], need_images: bool) -> tuple[list, list]:
    """For each sleap-io video: the path its frames are named by (a video file, a .pkg.slp, or an image
    sequence's folder) and, where sleap-io reads them (embedded images, image sequences), the video to read
    them from (None elsewhere, and everywhere without ``need_images``)."""
    files = [v.filename for v in videos if not _is_image_sequence(v)]
    try:
        found = iter(resolve_video_paths(files, path, video_paths))
    except VideoNotFoundError:
        if need_images:
            raise
        found = iter(files)
    paths, readers = [], []
    for video in videos:
        if _is_image_sequence(video):
            paths.append(str(Path(video.filename[0]).parent))
            readers.append(video if need_images else None)
        else:
            paths.append(next(found))
            readers.append(_open_embedded(video) if need_images and _is_embedded(paths[-1]) else None)
    return paths, readers


def _is_image_sequence(video) -> bool:
    """A sleap-io video made of image files (DeepLabCut's labelled folders), not one file."""
    return isinstance(video.filename, list)


def labels_from_analysis_h5(path: str | os.PathLike, frames: str | None = None) -> LabelSet:
    """Ground truth from an analysis HDF5 file (e.g. ``posestream synth``'s OUT.analysis.h5): every
    occupied track of every frame is a labelled instance. No images; needs no sleap-io."""
    from posestream.engine.sinks.analysis_h5 import read_analysis_h5

    data = read_analysis_h5(path)
    keep = FrameRanges.parse(frames) if frames else None
    items = [
        LabeledImage(0, i, frame.points, frame.track_ids)
        for i in range(data.n_frames)
        if data.track_occupancy[i].any() and (keep is None or i in keep)
        for frame in [data.frame(i)]
    ]
    if not items:
        raise ConfigError(f"{path}: no instances" + (f" in frames {frames}" if frames else ""))
    return LabelSet(data.skeleton, items, str(path), [data.video_path], list(data.track_names))


def skeleton_from_sleap(sk) -> Skeleton:
    """Our Skeleton from a sleap-io one; symmetries from left/right node names when it has none."""
    skeleton = skeleton_from_sio(sk)
    if skeleton.symmetries:
        return skeleton
    return Skeleton.from_names(
        skeleton.nodes, skeleton.edge_names, infer_symmetries(skeleton.nodes), name=skeleton.name
    )


def infer_symmetries(nodes: Sequence[str]) -> list[tuple[str, str]]:
    """Left/right node pairs by name: left_x/right_x, wingL/wingR, forelegL1/forelegR1, ..."""
    swaps = [("left", "right"), ("Left", "Right"), ("LEFT", "RIGHT"), ("L", "R"), ("l", "r")]
    names, pairs = set(nodes), []
    for name in nodes:
        for left, right in swaps:
            for match in re.finditer(re.escape(left), name):
                other = name[: match.start()] + right + name[match.end() :]
                if other in names and other != name and (name, other) not in pairs:
                    if len(left) > 1 or _is_side_marker(name, match.start()):
                        pairs.append((name, other))
    return pairs


def _is_side_marker(name: str, at: int) -> bool:
    """A one-letter L/l is a side only where it is its own token: wingL, L_ear, forelegL1, Lhead (not leg)."""
    letter = name[at]

    def joins(i: int) -> bool:  # a letter of the same case continues the word
        return 0 <= i < len(name) and name[i].isalpha() and name[i].isupper() == letter.isupper()

    return not joins(at - 1) and not joins(at + 1)


def resolve_video_paths(filenames: Sequence[str], labels_path: Path, mapping: Sequence[str]) -> list[str]:
    """Paths to read each labelled video from, applying ``mapping`` and SLEAP's beside-the-labels rule."""
    pairs = [m.split("=", 1) for m in mapping if "=" in m]
    singles = [m for m in mapping if "=" not in m]
    if singles and (len(singles) > 1 or len(filenames) != 1 or pairs):
        raise ConfigError(
            f"--video-path NEW (without OLD=) applies only to labels with one video; these have "
            f"{len(filenames)}. Use --video-path OLD=NEW for each."
        )
    resolved = []
    for name in filenames:
        if singles:
            candidate = singles[0]
        else:
            mapped = [new for old, new in pairs if old == name or Path(old).name == Path(name).name]
            candidate = mapped[0] if mapped else name
        path = _find_video(candidate, labels_path)
        if path is None:
            error = VideoNotFoundError(
                f"video {name!r} named in {labels_path} was not found (looked at {candidate!r} and beside "
                f"the labels, {labels_path.parent / Path(candidate).name}). Map it with --video-path OLD=NEW."
            )
            error.problem = str(error).rsplit(" Map it", 1)[0]  # for commands without --video-path
            raise error
        resolved.append(path)
    return resolved


def _find_video(candidate: str, labels_path: Path) -> str | None:
    for path in (Path(candidate), labels_path.parent / candidate, labels_path.parent / Path(candidate).name):
        if path.exists():
            return str(path)
    return None


def _is_embedded(path: str) -> bool:
    return path.endswith((".slp", ".h5", ".hdf5", ".pkg.slp"))


def _open_embedded(video):
    """The sleap-io video of images stored inside a labels package, opened."""
    video.open()
    return video
