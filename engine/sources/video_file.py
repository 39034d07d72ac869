"""Video files decoded with PyAV (FFmpeg), frame-exact.

Frame ``i`` is the i-th frame in presentation order, the same frame SLEAP and
sleap-io call ``i``. On open, the reader demuxes the stream once (no decoding;
milliseconds per thousand frames) to list every frame's presentation timestamp.
That list gives the exact frame count, exact seeks (seek to the keyframe before,
decode forward to the wanted timestamp) and the index of each decoded frame, so
a frame the decoder drops shows up as a gap instead of shifting every later
index by one. When the container's index promises more frames than the file
holds (an mp4 cut off after its index), the frame count is the promised one
and the frames past the cut are reported as missing, starting at the frame
where the data ends.

Gray output reads the luma plane directly and expands it from video range
(16-235) to full range with a lookup table: the same values as the red channel
of an RGB conversion of a gray video (what SLEAP feeds its models), without a
colour conversion.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import av
import numpy as np
from av.codec.hwaccel import HWAccel

from posestream.core.errors import FrameIndexError, VideoDecodeError, VideoNotFoundError, VideoOpenError
from posestream.engine.frame_ranges import FrameRanges
from posestream.engine.sources.base import Color, FrameSource, MissingPolicy, resolve_frames
from posestream.engine.types import VideoMetadata

log = logging.getLogger("posestream")

# Pixel formats whose plane 0 is luma (Y), plus plain gray.
_LUMA_FIRST_FORMATS = {
    "gray",
    "yuv420p",
    "yuvj420p",
    "yuv422p",
    "yuvj422p",
    "yuv444p",
    "yuvj444p",
    "yuv440p",
    "yuvj440p",
    "yuv411p",
    "yuv410p",
    "nv12",
    "nv21",
    "nv16",
    "nv24",
}
_FULL_RANGE_FORMATS = {"gray", "yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p"}
_COLOR_RANGE_JPEG = 2  # AVCOL_RANGE_JPEG: full range


def _video_range_lut() -> np.ndarray:
    """uint8 -> uint8 table expanding video-range luma (16-235) to 0-255.  # (256,)"""
    levels = (np.arange(256, dtype=np.float64) - 16.0) * 255.0 / 219.0
    return np.clip(np.rint(levels), 0, 255).astype(np.uint8)


_VIDEO_RANGE_LUT = _video_range_lut()


def plane_view(plane: av.video.plane.VideoPlane) -> np.ndarray:
    """A plane's pixels as a (height, width) uint8 view (row padding cut off), without copying."""
    rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def frame_to_gray(frame: av.VideoFrame, out: np.ndarray | None = None) -> np.ndarray:
    """Full-range gray image of a decoded frame.  # (H, W, 1) uint8"""
    if out is None:
        out = np.empty((frame.height, frame.width, 1), np.uint8)
    name = frame.format.name
    if name in _LUMA_FIRST_FORMATS:
        luma = plane_view(frame.planes[0])
        if name in _FULL_RANGE_FORMATS or frame.color_range == _COLOR_RANGE_JPEG:
            np.copyto(out[:, :, 0], luma)
        else:
            np.take(_VIDEO_RANGE_LUT, luma, out=out[:, :, 0])
    else:
        np.copyto(out[:, :, 0], frame.to_ndarray(format="gray"))
    return out


def frame_to_rgb(frame: av.VideoFrame, out: np.ndarray | None = None) -> np.ndarray:
    """RGB image of a decoded frame.  # (H, W, 3) uint8"""
    rgb = frame.to_ndarray(format="rgb24")
    if out is None:
        return rgb
    np.copyto(out, rgb)
    return out


def frame_is_gray(frame: av.VideoFrame, tolerance: int = 3) -> bool:
    """True when a frame carries no colour (gray format, or flat chroma planes)."""
    name = frame.format.name
    if name == "gray":
        return True
    if name in _LUMA_FIRST_FORMATS and len(frame.planes) >= 3:
        for plane in frame.planes[1:3]:
            chroma = plane_view(plane)
            if np.abs(chroma.astype(np.int16) - 128).max() > tolerance:
                return False
        return True
    rgb = frame.to_ndarray(format="rgb24").astype(np.int16)
    return bool(
        np.abs(rgb[..., 0] - rgb[..., 1]).max() <= tolerance
        and np.abs(rgb[..., 0] - rgb[..., 2]).max() <= tolerance
    )


class VideoFileReader(FrameSource):
    """Frame-exact reader of a video file.

    color: "gray" (H, W, 1), "rgb" (H, W, 3), or "auto" (gray when the video has no colour). threads: FFmpeg
    decoder threads; 0 lets FFmpeg choose (frame + slice threads), 1 decodes on the calling thread. hwaccel:
    "cuda" or "cuda:N" decodes on that GPU (NVDEC, through FFmpeg's CUDA hardware acceleration) when the
    device and the video's codec allow it, else on the CPU with a one-line note; ``self.hwaccel`` says where
    it decodes (None: the CPU). Frames come back to system memory either way.
    """

    def __init__(
        self, path: str | os.PathLike, color: Color = "auto", threads: int = 0, hwaccel: str | None = None
    ):
        self.path = os.fspath(path)
        if color not in ("auto", "gray", "rgb"):
            raise ValueError(f"color must be 'auto', 'gray' or 'rgb', got {color!r}")
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0 = let FFmpeg choose), got {threads}")
        self.threads = threads
        _check_file(self.path)
        # (n_readable,) int64, presentation order
        self._pts, self._key_pts, declared = self._index_timestamps()
        self._n_frames = max(len(self._pts), declared)
        self._decoded: Iterator[tuple[int, av.VideoFrame]] | None = None
        self._pending: tuple[int, av.VideoFrame] | None = None
        self._next_idx = 0
        self.hwaccel = self._open_decoder(hwaccel)
        try:
            first = self._first_frame()
        except BaseException:
            self._container.close()
            raise
        channels = 1 if (color == "gray" or (color == "auto" and frame_is_gray(first))) else 3
        self._convert = frame_to_gray if channels == 1 else frame_to_rgb
        stream = self._stream
        self.metadata = VideoMetadata(
            path=self.path,
            width=first.width,
            height=first.height,
            channels=channels,
            fps=float(stream.average_rate or stream.guessed_rate or 0.0),
            n_frames=self._n_frames,
            codec=stream.codec_context.name,
        )

    # -- opening ------------------------------------------------------------

    def _open_decoder(self, hwaccel: str | None) -> str | None:
        """Open the decoding container on the GPU ``hwaccel`` names when it decodes there, else on the CPU;
        returns where it decodes."""
        if hwaccel:
            device_type, _, index = hwaccel.partition(":")
            try:
                self._container, self._stream = self._open(
                    HWAccel(device_type, device=index or None, allow_software_fallback=False)
                )
                self._first_frame()  # it must decode there
                return hwaccel
            except (OSError, ValueError, av.error.FFmpegError, VideoDecodeError) as exc:
                if getattr(self, "_container", None) is not None:
                    self._container.close()
                log.warning(
                    "%s: GPU decoding on %s is not available (%s); decoding on the CPU",
                    self.path,
                    hwaccel,
                    exc,
                )
        self._container, self._stream = self._open()
        return None

    def _open(
        self, hwaccel: HWAccel | None = None
    ) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
        try:
            container = av.open(self.path, mode="r", **({"hwaccel": hwaccel} if hwaccel else {}))
        except av.error.FFmpegError as exc:
            if hwaccel is not None:
                raise  # the device, not the file: the caller decodes on the CPU
            raise VideoOpenError(
                f"{self.path}: not a readable video ({exc}). If it was copied or recorded "
                "and cut off, its index may be missing: re-copy it, or repair it with "
                "'ffmpeg -i IN -c copy OUT.mp4'."
            ) from exc
        if not container.streams.video:
            container.close()
            raise VideoOpenError(f"{self.path}: the file has no video stream (is it an audio or data file?)")
        stream = container.streams.video[0]
        stream.thread_count = self.threads
        if self.threads != 1:
            stream.thread_type = "AUTO"  # frame and slice threads
        return container, stream

    def _index_timestamps(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Timestamps of the frames the file holds, sorted, from one demux pass, those of its keyframes, and
        the frame count the container's index declares (0 if it declares none).  # (n_readable,), (n_keys,)"""
        container, stream = self._open()
        declared = stream.frames
        stamps, keys = [], []
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the flush packet at the end
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None:
                    raise VideoOpenError(
                        f"{self.path}: the stream has no timestamps, so frames cannot be "
                        "indexed exactly. Put it in a container: 'ffmpeg -i IN -c copy OUT.mp4'."
                    )
                stamps.append(stamp)
                if packet.is_keyframe:
                    keys.append(stamp)
        except av.error.FFmpegError as exc:
            raise VideoDecodeError(
                f"{self.path}: reading the stream broke after {len(stamps)} frames ({exc}); "
                "the file is truncated or corrupt. Re-copy it, or cut it to the readable part "
                "with 'ffmpeg -i IN -c copy OUT.mp4'.",
                path=self.path,
                frame_idx=len(stamps),
            ) from exc
        finally:
            container.close()
        if not stamps:
            raise VideoOpenError(f"{self.path}: the video stream holds no frames")
        return (
            np.sort(np.asarray(stamps, dtype=np.int64)),
            np.sort(np.asarray(keys, dtype=np.int64)),
            declared,
        )

    def timestamps(self) -> np.ndarray:
        """Each frame's time in seconds from the first, from the stream's own timestamps (frames past the
        readable ones: at the frame rate).  # (n_frames,) float64"""
        seconds = (self._pts - self._pts[0]) * float(self._stream.time_base)
        return _continued(seconds, len(self), self.metadata.fps)

    def keyframes(self) -> np.ndarray:
        """Indices of the frames decoding can start at (a read from one decodes nothing before it).  # (K,)"""
        return np.searchsorted(self._pts, self._key_pts).astype(np.int64)

    # -- decoding -----------------------------------------------------------
    #
    # The live decoder is a generator of (index, frame) from the container's
    # current position (``_decoded``), with one frame of lookahead (``_pending``)
    # and the index the next delivered item will have (``_next_idx``). Reading
    # on from ``_next_idx`` needs no seek, so sequential reads never seek.

    def _first_frame(self) -> av.VideoFrame:
        """Peek at the first decodable frame (for size and colour) without consuming it."""
        self._seek(0)
        if self._pending is None:
            raise VideoDecodeError(f"{self.path}: no frame could be decoded", path=self.path, frame_idx=0)
        return self._pending[1]

    def _seek(self, start: int) -> None:
        """Position the decoder so that its next frames lead up to frame ``start``."""
        target = self._pts[min(start, len(self._pts) - 1)]  # past the data: decode to its end
        self._container.seek(int(target), stream=self._stream, backward=True)
        self._decoded = self._decode_packets()
        self._pending = next(self._decoded, None)
        if start > 0 and self._pending is not None and self._pending[0] > start:
            # The seek landed past the target (a missing keyframe index): decode from the start.
            self._container.seek(int(self._pts[0]), stream=self._stream, backward=True)
            self._decoded = self._decode_packets()
            self._pending = next(self._decoded, None)
        self._next_idx = start

    def _decode_packets(self) -> Iterator[tuple[int, av.VideoFrame]]:
        """Decode from the container's position, tagging each frame with its index."""
        last_idx = -1
        for packet in self._container.demux(self._stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                continue  # frames lost here show up as a gap in the indices
            for frame in frames:
                last_idx = self._frame_index(frame.pts, fallback=last_idx + 1)
                yield last_idx, frame

    def _frame_index(self, pts: int | None, fallback: int) -> int:
        if pts is None:
            return fallback
        idx = int(np.searchsorted(self._pts, pts))
        return idx if idx < len(self._pts) and self._pts[idx] == pts else fallback

    def _frames_from(self, start: int) -> Iterator[tuple[int, av.VideoFrame | None]]:
        """Yield (index, frame) from ``start`` on; frame is None where one was lost."""
        if self._decoded is None or start != self._next_idx:
            self._seek(start)
        while self._next_idx < self._n_frames:
            while self._pending is not None and self._pending[0] < self._next_idx:
                self._pending = next(self._decoded, None)  # decoded from the keyframe before
            idx = self._next_idx
            self._next_idx += 1
            if self._pending is not None and self._pending[0] == idx:
                frame = self._pending[1]
                self._pending = next(self._decoded, None)
                yield idx, frame
            else:
                yield idx, None  # dropped by the decoder, or the stream ended early

    # -- public API ---------------------------------------------------------

    def __len__(self) -> int:
        return self._n_frames

    def read(self, frame_idx: int) -> np.ndarray:
        """One frame.  # (H, W, C) uint8"""
        if not 0 <= frame_idx < len(self):
            raise FrameIndexError(f"{self.path}: frame {frame_idx} is outside 0-{len(self) - 1}")
        _, image = next(self.iter_frames(FrameRanges(((frame_idx, frame_idx + 1),))))
        return image  # type: ignore[return-value]

    def iter_frames(
        self, frames: FrameRanges | None = None, missing: MissingPolicy = "raise"
    ) -> Iterator[tuple[int, np.ndarray | None]]:
        """Yield ``(frame_idx, image)`` for the selected frames, in order.

        missing: "raise" stops with VideoDecodeError at the first frame that cannot be
        decoded; "yield" gives ``(frame_idx, None)`` for it and goes on.
        """
        for start, stop in resolve_frames(frames, len(self), self.path).spans:
            decoded = self._frames_from(start)
            for _ in range(start, stop):  # type: ignore[arg-type]
                idx, frame = next(decoded)
                if frame is not None:
                    yield idx, self._convert(frame)
                elif missing == "raise":
                    raise VideoDecodeError(
                        f"{self.path}: frame {idx} could not be decoded (the file is truncated "
                        "or corrupt there). Use missing='yield' to record such frames as "
                        "missing and go on.",
                        path=self.path,
                        frame_idx=idx,
                    )
                else:
                    yield idx, None

    def close(self) -> None:
        self._decoded = None
        self._container.close()


def _continued(seconds: np.ndarray, n: int, fps: float) -> np.ndarray:
    """``seconds`` extended to ``n`` frames at ``fps``.  # (n,)"""
    if len(seconds) >= n:
        return seconds[:n]
    step = 1.0 / fps if fps else 1.0
    return np.concatenate([seconds, seconds[-1] + step * np.arange(1, n - len(seconds) + 1)])


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise VideoNotFoundError(
            f"{path}: no such video file; check the path (it is read relative to {os.getcwd()})"
        )
    if os.path.isdir(path):
        raise VideoOpenError(f"{path}: is a directory, not a video file")
    if os.path.getsize(path) == 0:
        raise VideoOpenError(f"{path}: the file is empty (0 bytes)")
