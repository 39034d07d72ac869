"""``posestream render``: poses drawn on their video, a colour per identity, with optional trails.

    render("session1.mp4", "session1.mp4.predictions.slp", "overlay.mp4", RenderOptions(trails=15))

Reads our analysis HDF5 or any ``.slp`` (SLEAP's, sleap-nn's, ours). Each instance's skeleton is drawn in
its track's colour (untracked instances in white), nodes as discs, edges as lines, anti-aliased; a trail
is each track's centroid over the last ``trails`` frames, fading. The output is H.264 at the video's frame
rate, one output frame per selected frame (frames the file has no poses for are written as they are).
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numba
import numpy as np

from posestream.core.errors import ConfigError, OutputFileError
from posestream.engine.drawing import capsule_box, capsule_coverage
from posestream.engine.progress import progress_bar
from posestream.engine.sinks.predictions import open_predictions
from posestream.engine.sources import open_source
from posestream.engine.sources.base import resolve_frames
from posestream.engine.types import UNTRACKED, FramePredictions

# Colours of identities 0, 1, 2, ... (then around again), RGB; untracked instances are white.
PALETTE = np.array(
    [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (188, 189, 34),
        (23, 190, 207),
        (127, 127, 127),
    ],
    np.float32,
)
UNTRACKED_COLOR = np.array((255, 255, 255), np.float32)


@dataclass(frozen=True)
class RenderOptions:
    frames: str | None = None  # "A-B" selection (default every frame)
    trails: int = 0  # frames of each track's centroid trail (0: none)
    line_width: float = 0.0  # pixels; 0: from the frame size
    crf: int = 20  # H.264 quality (lower is better, larger)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.trails < 0:
            raise ConfigError(f"--trails must be >= 0 frames, got {self.trails}")
        if self.line_width < 0:
            raise ConfigError(f"--line-width must be >= 0 pixels, got {self.line_width}")


def render(
    video: str | os.PathLike,
    predictions,
    out: str | os.PathLike,
    options: RenderOptions = RenderOptions(),
) -> int:
    """Draw ``predictions`` on ``video`` into ``out`` (.mp4); returns the frames written.

    ``predictions``: a predictions file's path, or an open reader of the same kind (``skeleton``,
    ``iter_frames()``, a context manager), e.g. multiview's 3D poses projected into one camera."""
    out = Path(out)
    if out.suffix.lower() not in (".mp4", ".mkv", ".mov", ".avi"):
        raise OutputFileError(f"{out}: the overlay must be a video file (.mp4, .mkv, .mov or .avi)")
    opened = open_predictions(predictions) if isinstance(predictions, (str, os.PathLike)) else predictions
    with open_source(video, color="rgb") as source, opened as reader:
        selection = resolve_frames(options.frames, source.metadata.n_frames, source.metadata.path)
        poses = _poses_by_frame(reader.iter_frames())
        edges = np.array(reader.skeleton.edges, np.int64).reshape(-1, 2)
        width = options.line_width or max(1.5, source.metadata.width / 300)
        trails = _Trails(options.trails)
        with (
            _Encoder(out, source.metadata, options.crf) as encoder,
            progress_bar(len(selection), "render", enabled=options.progress) as advance,
        ):
            written = 0
            for frame_idx, image in source.iter_frames(selection):
                canvas = np.array(image, np.uint8, copy=True)
                frame = poses.get(frame_idx)
                if frame is not None and frame.n_instances:
                    trails.add(frame)
                    draw_frame(canvas, frame, edges, width, trails.paths())
                encoder.write(canvas)
                written += 1
                advance(1)
    return written


def _poses_by_frame(frames) -> dict[int, FramePredictions]:
    """Every frame the file holds, by index (poses are small: a long video's fit in memory)."""
    return {f.frame_idx: f for f in frames if f.n_instances}


class _Trails:
    """Each track's centroid over its last ``length`` frames with poses."""

    def __init__(self, length: int):
        self.length = length
        self._paths: dict[int, deque] = {}

    def add(self, frame: FramePredictions) -> None:
        if not self.length:
            return
        for k, track in enumerate(frame.track_ids):
            visible = frame.points[k][~np.isnan(frame.points[k]).any(axis=1)]
            if track != UNTRACKED and len(visible):
                self._paths.setdefault(int(track), deque(maxlen=self.length)).append(visible.mean(axis=0))

    def paths(self) -> dict[int, np.ndarray]:
        return {t: np.array(p, np.float32) for t, p in self._paths.items() if len(p) > 1}


def track_color(track: int) -> np.ndarray:
    return UNTRACKED_COLOR if track == UNTRACKED else PALETTE[track % len(PALETTE)]


def draw_frame(
    canvas: np.ndarray,
    frame: FramePredictions,
    edges: np.ndarray,
    width: float,
    trails: dict[int, np.ndarray],
) -> None:
    """Trails, then each instance's edges and nodes, onto canvas (H, W, 3) uint8."""
    for track, path in trails.items():
        color = track_color(track)
        for i in range(1, len(path)):
            fade = i / len(path)
            draw_segment(
                canvas, path[i - 1, 0], path[i - 1, 1], path[i, 0], path[i, 1], width * 0.6, color, 0.8 * fade
            )
    for k in range(frame.n_instances):
        points, color = frame.points[k], track_color(int(frame.track_ids[k]))
        for a, b in edges:
            if not (np.isnan(points[a]).any() or np.isnan(points[b]).any()):
                draw_segment(
                    canvas, points[a, 0], points[a, 1], points[b, 0], points[b, 1], width, color, 1.0
                )
        for x, y in points:
            if not (np.isnan(x) or np.isnan(y)):
                draw_segment(canvas, x, y, x, y, width * 1.8, color, 1.0)  # a disc


@numba.njit(cache=True, nogil=True)
def draw_segment(
    canvas: np.ndarray,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    radius: float,
    color: np.ndarray,
    opacity: float,
) -> None:
    """An anti-aliased round-capped segment of ``radius`` (a disc when the ends meet), blended at
    ``opacity`` onto canvas (H, W, 3) uint8."""
    height, width = canvas.shape[0], canvas.shape[1]
    xmin, xmax, ymin, ymax = capsule_box(x0, y0, x1, y1, radius + 1.0, height, width)
    for y in range(ymin, ymax):
        for x in range(xmin, xmax):
            alpha = opacity * capsule_coverage(x, y, x0, y0, x1, y1, radius, radius)
            if alpha > 0.0:
                for c in range(3):
                    canvas[y, x, c] = np.uint8(canvas[y, x, c] + alpha * (color[c] - canvas[y, x, c]) + 0.5)


class _Encoder:
    """H.264 (yuv420p) at the source's frame rate; even width and height (padded by one pixel if needed)."""

    def __init__(self, path: Path, metadata, crf: int):
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(path), mode="w")
        except (OSError, av.error.FFmpegError) as exc:
            raise OutputFileError(f"{path}: cannot create the overlay video ({exc})") from exc
        rate = Fraction(metadata.fps or 30.0).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width, self._stream.height = (
            metadata.width + metadata.width % 2,
            metadata.height + metadata.height % 2,
        )
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        self._pad = (metadata.height % 2, metadata.width % 2)

    def write(self, rgb: np.ndarray) -> None:
        if any(self._pad):
            rgb = np.pad(rgb, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def __enter__(self) -> _Encoder:
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
        finally:
            self._container.close()


__all__ = ["RenderOptions", "render"]
