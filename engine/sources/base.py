"""What every frame source offers the pipeline."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

import numpy as np

from posestream.engine.frame_ranges import FrameRanges
from posestream.engine.types import VideoMetadata

if TYPE_CHECKING:
    from posestream.engine.tracking import Tracker, TrackerConfig

Color = Literal["auto", "gray", "rgb"]
MissingPolicy = Literal["raise", "yield"]

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")

IDLE = object()
"""Yielded by a live source's ``iter_frames`` when no frame came within its poll interval."""

FLUSH = object()
"""Yielded by a live source's ``iter_frames`` after the frames it chose for one batch."""


class FrameSource(abc.ABC):
    """A finite sequence of frames with exact indices.

    Frames are uint8 arrays of shape ``metadata.frame_shape`` = (H, W, C).
    Sources are context managers; ``close()`` releases files and decoders.

    A live source (``live = True``, e.g. cameras) has no length and ignores frame selections: its
    ``iter_frames`` chooses each batch when the pipeline asks for its first frame, yields its frames as
    ``(seq, image, LiveInfo)`` and then ``FLUSH``, and yields ``IDLE`` while no frame comes.
    """

    metadata: VideoMetadata
    live = False
    converted = ""  # how frames are converted for the model (open_source(channels=...)), in words; "" if not

    @abc.abstractmethod
    def __len__(self) -> int:
        """Exact number of frames."""

    def tracker(self, config: TrackerConfig) -> Tracker:
        """The tracker stage for this source's frames: one tracker, on the video's clock (its frame rate)."""
        from posestream.engine.tracking import Tracker

        return Tracker(config, self.metadata.fps)

    def timestamps(self) -> np.ndarray:
        """Each frame's time in seconds from the first: frame / fps (frame numbers when the rate is
        unknown); video files give their own.  # (n_frames,) float64"""
        fps = self.metadata.fps
        return np.arange(len(self), dtype=np.float64) / (fps if fps else 1.0)

    @abc.abstractmethod
    def read(self, frame_idx: int) -> np.ndarray:
        """One frame.  # (H, W, C) uint8"""

    @abc.abstractmethod
    def iter_frames(
        self, frames: FrameRanges | None = None, missing: MissingPolicy = "raise"
    ) -> Iterator[tuple[int, np.ndarray | None]]:
        """Yield ``(frame_idx, image)`` in order; ``image`` is None for a lost frame
        when ``missing="yield"``."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the underlying file."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        m = self.metadata
        return f"{type(self).__name__}({m.path!r}, {m.width}x{m.height}x{m.channels}, {m.n_frames} frames)"


def resolve_frames(frames: FrameRanges | str | None, n_frames: int, source: str) -> FrameRanges:
    """The selection ("0-99,500-", or FrameRanges) with open ends closed at the source's length (all if
    None)."""
    if isinstance(frames, str):
        frames = FrameRanges.parse(frames)
    return (FrameRanges.all() if frames is None else frames).resolve(n_frames, source)
