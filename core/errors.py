"""Exceptions raised by posestream.

Each error also inherits the builtin exception it matches (as PyAV does), so
callers can catch ``FileNotFoundError`` or ``ValueError`` without knowing our
types, and catch ``PosestreamError`` to handle everything of ours.
"""

from __future__ import annotations

import errno


class PosestreamError(Exception):
    """Base class of every error posestream raises on purpose."""


class ConfigError(PosestreamError, ValueError):
    """A configuration value is invalid; the message names the key and the fix."""


class MissingExtraError(PosestreamError, ImportError):
    """A feature needs an optional dependency group that is not installed."""

    def __init__(self, feature: str, extra: str, module: str, hint: str = ""):
        self.feature, self.extra, self.module = feature, extra, module
        super().__init__(
            f"{feature} needs the optional package '{module}', which is not installed. "
            f"Install it with: pip install 'posestream[{extra}]'" + (f", {hint}" if hint else "")
        )


class VideoNotFoundError(PosestreamError, FileNotFoundError):
    """A video file or dataset does not exist."""


class VideoOpenError(PosestreamError, ValueError):
    """A file exists but is not a readable video (no video stream, unknown format)."""


class VideoDecodeError(PosestreamError, ValueError):
    """Decoding broke part-way through a video.

    ``path`` names the file and ``frame_idx`` the first frame that could not be
    read (None when the break could not be tied to a frame).
    """

    def __init__(self, message: str, path: str, frame_idx: int | None = None):
        self.path, self.frame_idx = path, frame_idx
        super().__init__(message)


class FrameIndexError(PosestreamError, IndexError):
    """A frame index or frame range lies outside the video."""


class OutputFileError(PosestreamError, OSError):
    """An output file cannot be created, written or read back."""


class DiskFullError(OutputFileError):
    """The output's filesystem is (nearly) full; nothing was written past the frames the file already
    holds."""

    def __init__(self, message: str):
        super().__init__(message)
        self.errno = errno.ENOSPC


class ModelNotFoundError(PosestreamError, FileNotFoundError):
    """A model directory or the model file its metadata needs does not exist."""


class ModelLoadError(PosestreamError, RuntimeError):
    """Workers elsewhere (Ray actors) could not load the models; the message carries their error."""


class ModelFormatError(PosestreamError, ValueError):
    """A model directory is not usable: missing or inconsistent metadata, a model file that does not load,
    or frames that do not match what the model was exported for."""


class TrainingExampleError(PosestreamError, RuntimeError):
    """A training example could not be made (augmentation, targets); names the labelled frame."""
