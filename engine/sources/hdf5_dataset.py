"""Video stored as an image array inside an HDF5 file, as SLEAP supports.

The dataset holds uint8 frames as (N, H, W, C) ("channels_last"), (N, C, H, W)
("channels_first") or (N, H, W) (gray). Frames are read in blocks that follow
the dataset's chunks, so sequential reading touches each chunk once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import h5py
import numpy as np

from posestream.core.errors import FrameIndexError, VideoDecodeError, VideoNotFoundError, VideoOpenError
from posestream.engine.frame_ranges import FrameRanges
from posestream.engine.sources.base import Color, FrameSource, MissingPolicy, resolve_frames
from posestream.engine.types import VideoMetadata

LAYOUTS = ("channels_last", "channels_first")
_RGB_TO_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601


class HDF5DatasetReader(FrameSource):
    """Frames of one HDF5 dataset.

    dataset: path inside the file; None picks the only image-like dataset.
    layout: "channels_last" (N, H, W, C) or "channels_first" (N, C, H, W); ignored for (N, H, W).
    color: "auto" keeps the stored channels; "gray"/"rgb" convert.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        dataset: str | None = None,
        layout: str = "channels_last",
        color: Color = "auto",
        fps: float = 0.0,
    ):
        self.path = os.fspath(path)
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if not os.path.exists(self.path):
            raise VideoNotFoundError(f"{self.path}: no such HDF5 file; check the path")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise VideoOpenError(f"{self.path}: not a readable HDF5 file ({exc})") from exc
        try:
            self._describe(dataset, layout, color, fps)
        except BaseException:
            self._file.close()
            raise
        chunks = self._dataset.chunks
        self._block = max(1, chunks[0]) if chunks else 64

    def _describe(self, dataset: str | None, layout: str, color: Color, fps: float) -> None:
        """Find and check the dataset, and set ``metadata``."""
        self.dataset_name = dataset or self._find_dataset()
        self._dataset = self._open_dataset(self.dataset_name)
        self.layout = layout if self._dataset.ndim == 4 else "gray"
        stored_channels = 1 if self._dataset.ndim == 3 else self._stored_shape()[2]
        if stored_channels not in (1, 3):
            raise VideoOpenError(
                f"{self.path}:{self.dataset_name}: {stored_channels} channels under layout "
                f"{layout!r}; frames need 1 or 3. Is the layout right? (shape {self._dataset.shape})"
            )
        channels = {"auto": stored_channels, "gray": 1, "rgb": 3}[color]
        height, width = self._stored_shape()[:2]
        self.metadata = VideoMetadata(
            path=self.path,
            width=width,
            height=height,
            channels=channels,
            fps=fps,
            n_frames=self._dataset.shape[0],
            codec="hdf5",
        )

    def _find_dataset(self) -> str:
        candidates: list[str] = []

        def visit(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset) and obj.dtype == np.uint8 and obj.ndim in (3, 4):
                candidates.append(name)

        self._file.visititems(visit)
        if len(candidates) != 1:
            found = ", ".join(candidates) or "none"
            raise VideoOpenError(
                f"{self.path}: cannot tell which dataset holds the video (uint8 3-D/4-D datasets: "
                f"{found}); name it with dataset='...' (CLI: --dataset)."
            )
        return candidates[0]

    def _open_dataset(self, name: str) -> h5py.Dataset:
        obj = self._file.get(name)
        if not isinstance(obj, h5py.Dataset):
            datasets: list[str] = []
            self._file.visititems(lambda n, o: datasets.append(n) if isinstance(o, h5py.Dataset) else None)
            raise VideoNotFoundError(f"{self.path}: no dataset {name!r}; datasets in the file: {datasets}")
        if obj.dtype != np.uint8 or obj.ndim not in (3, 4):
            raise VideoOpenError(
                f"{self.path}:{name}: frames must be uint8 with 3 or 4 dimensions, "
                f"got {obj.dtype} {obj.shape}"
            )
        return obj

    def _stored_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one stored frame."""
        shape = self._dataset.shape
        if self._dataset.ndim == 3:
            return shape[1], shape[2], 1
        if self.layout == "channels_first":
            return shape[2], shape[3], shape[1]
        return shape[1], shape[2], shape[3]

    def _to_output(self, block: np.ndarray) -> np.ndarray:
        """Stored frames -> (n, H, W, C) in the output colour."""
        if block.ndim == 3:
            block = block[..., None]
        elif self.layout == "channels_first":
            block = block.transpose(0, 2, 3, 1)
        have, want = block.shape[3], self.metadata.channels
        if have == want:
            return np.ascontiguousarray(block)
        if want == 3:
            return np.repeat(block, 3, axis=3)
        luma = block.astype(np.float32) @ _RGB_TO_LUMA
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]

    def __len__(self) -> int:
        return self.metadata.n_frames

    def read(self, frame_idx: int) -> np.ndarray:
        """One frame.  # (H, W, C) uint8"""
        if not 0 <= frame_idx < len(self):
            raise FrameIndexError(
                f"{self.path}:{self.dataset_name}: frame {frame_idx} is outside 0-{len(self) - 1}"
            )
        return self._to_output(self._dataset[frame_idx : frame_idx + 1])[0]

    def iter_frames(
        self, frames: FrameRanges | None = None, missing: MissingPolicy = "raise"
    ) -> Iterator[tuple[int, np.ndarray | None]]:
        """Yield ``(frame_idx, image)`` in order, reading a chunk of frames at a time."""
        for start, stop in resolve_frames(frames, len(self), f"{self.path}:{self.dataset_name}").spans:
            for block_start in range(start, stop, self._block):  # type: ignore[arg-type]
                block_stop = min(block_start + self._block, stop)  # type: ignore[type-var]
                try:
                    images = self._to_output(self._dataset[block_start:block_stop])
                except OSError as exc:
                    if missing == "raise":
                        raise VideoDecodeError(
                            f"{self.path}:{self.dataset_name}: frames {block_start}-{block_stop - 1} "
                            f"could not be read ({exc})",
                            path=self.path,
                            frame_idx=block_start,
                        ) from exc
                    for idx in range(block_start, block_stop):
                        yield idx, None
                    continue
                for offset, image in enumerate(images):
                    yield block_start + offset, image

    def close(self) -> None:
        self._file.close()
