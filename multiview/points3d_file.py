"""The 3D HDF5 file `posestream triangulate` writes: sleap-anipose's layout, and how each point was made.

Datasets (frames first, as sleap-anipose writes ``tracks``):

- ``points3d`` (frames, tracks, nodes, 3), float64, calibration units (e.g. mm); NaN where unsolved.
  ``tracks`` is the same dataset under sleap-anipose's name (an HDF5 link, not a copy).
- ``reprojection_error`` (frames, tracks, nodes, cameras), pixels; NaN where that camera did not see it.
- ``cameras_used`` (frames, tracks, nodes), uint8: cameras the point was solved from.
- ``node_names``, ``edge_inds``, ``track_names``, ``camera_names``; attributes ``calibration`` (its path)
  and ``smoothing`` (the temporal smoothing applied, "" for none).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from posestream.core.errors import OutputFileError
from posestream.engine.sinks.analysis_h5.layout import LIBVER, NAME_DTYPE, decode, encode


@dataclass
class Points3D:
    """A 3D pose file's contents."""

    points: np.ndarray  # (F, T, N, 3)
    reprojection_error: np.ndarray  # (F, T, N, C)
    cameras_used: np.ndarray  # (F, T, N)
    node_names: list[str]
    edges: list[tuple[int, int]]
    track_names: list[str]
    camera_names: list[str]
    calibration: str = ""
    smoothing: str = ""  # the temporal smoothing applied ("" for none)


def write_points3d(path: str | Path, data: Points3D) -> Path:
    """Write ``data`` to ``path`` (replacing it); a failure names the file."""
    with Points3DWriter(
        path, data.node_names, data.edges, data.camera_names, data.calibration, data.smoothing
    ) as out:
        out.append(data.points, data.reprojection_error, data.cameras_used, data.track_names)
    return Path(path)


CHUNK = 256  # frames per chunk (one track, every node): a small file stays small


class Points3DWriter:
    """Writes a 3D pose file a block of frames at a time (``write_points3d``: all at once; a live run: group
    after group), crash-safe as the analysis files are (SWMR; the frames flushed are in the file).

    The frames and tracks axes grow as frames and tracks come. ``frame_data``: more datasets with one row per
    frame, {name: (dtype, shape of a row)} (a live run's camera counters and times).
    """

    def __init__(
        self,
        path: str | Path,
        node_names: list[str],
        edges: list[tuple[int, int]],
        camera_names: list[str],
        calibration: str = "",
        smoothing: str = "",
        frame_data: dict[str, tuple[str, tuple[int, ...]]] | None = None,
    ):
        self.path = Path(path)
        self.frames, self.tracks = 0, 0
        nodes, cameras = len(node_names), len(camera_names)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = f = h5py.File(self.path, "w", libver=LIBVER)
        except OSError as exc:
            raise OutputFileError(f"{self.path}: cannot write the 3D poses ({exc})") from exc
        try:
            for name, dtype, row, fill in (
                ("points3d", np.float64, (nodes, 3), np.nan),
                ("reprojection_error", np.float32, (nodes, cameras), np.nan),
                ("cameras_used", np.uint8, (nodes,), 0),
            ):  # a track that comes later is NaN (0 cameras) in the frames before it
                shape, chunks = (None, None, *row), (CHUNK, 1, *row)
                f.create_dataset(name, (0, 0, *row), dtype, maxshape=shape, chunks=chunks, fillvalue=fill)
            f["tracks"] = f["points3d"]  # sleap-anipose's name, linked
            f.create_dataset("node_names", data=encode(node_names))
            f.create_dataset("edge_inds", data=np.asarray(edges, dtype=np.int32).reshape(-1, 2))
            f.create_dataset("track_names", (0,), NAME_DTYPE, maxshape=(None,), chunks=(256,))
            f.create_dataset("camera_names", data=encode(camera_names))
            for name, (dtype, row) in (frame_data or {}).items():
                f.create_dataset(name, (0, *row), dtype, maxshape=(None, *row), chunks=(CHUNK, *row))
            f.attrs["calibration"] = calibration
            f.attrs["smoothing"] = smoothing
            f.swmr_mode = True
        except BaseException as exc:
            f.close()
            if isinstance(exc, OSError):
                raise OutputFileError(f"{self.path}: cannot write the 3D poses ({exc})") from exc
            raise

    def append(
        self,
        points: np.ndarray,
        reprojection_error: np.ndarray,
        cameras_used: np.ndarray,
        track_names: list[str],
        **frame_data: np.ndarray,
    ) -> None:
        """Add frames: points (F, T, N, 3), reprojection_error (F, T, N, C), cameras_used (F, T, N), the
        names of the T tracks (the file's so far first: tracks only ever come), ``frame_data`` (F, ...)
        each."""
        f, n, tracks = self._file, points.shape[0], max(points.shape[1], self.tracks)
        try:
            if points.shape[1] > self.tracks:
                f["track_names"].resize((tracks,))
                f["track_names"][self.tracks :] = encode(track_names[self.tracks : tracks])
            arrays = {
                "points3d": points,
                "reprojection_error": reprojection_error,
                "cameras_used": cameras_used,
            }
            for name, values in arrays.items():
                dataset = f[name]
                dataset.resize((self.frames + n, tracks, *dataset.shape[2:]))
                dataset[self.frames :, : values.shape[1]] = values
                dataset[self.frames :, values.shape[1] :] = np.nan if dataset.dtype.kind == "f" else 0
            for name, values in frame_data.items():
                f[name].resize((self.frames + n, *f[name].shape[1:]))
                f[name][self.frames :] = values
            f.flush()
        except OSError as exc:
            raise OutputFileError(
                f"{self.path}: cannot write 3D poses {self.frames}-{self.frames + n - 1} ({exc}); the ones "
                "before are in the file"
            ) from exc
        self.frames, self.tracks = self.frames + n, tracks

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Points3DWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def read_points3d(path: str | Path) -> Points3D:
    """A file ``write_points3d`` wrote; sleap-anipose's (``tracks`` alone) reads with the rest empty."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such 3D poses file")
    with h5py.File(path, "r") as f:
        name = "points3d" if "points3d" in f else "tracks"
        if name not in f:
            raise OutputFileError(f"{path}: no points3d or tracks dataset; not a 3D poses file")
        points = f[name][:]
        if points.ndim != 4 or points.shape[-1] != 3:
            raise OutputFileError(
                f"{path}: {name} is {points.shape}, not (frames, tracks, nodes, 3); not a 3D poses file"
            )
        frames, tracks, nodes = points.shape[:3]
        names = decode(f["node_names"][:]) if "node_names" in f else [f"node{i}" for i in range(nodes)]
        return Points3D(
            points=points,
            reprojection_error=f["reprojection_error"][:] if "reprojection_error" in f else np.empty(0),
            cameras_used=f["cameras_used"][:] if "cameras_used" in f else np.zeros((frames, tracks, nodes)),
            node_names=names,
            edges=[tuple(e) for e in f["edge_inds"][:].tolist()] if "edge_inds" in f else [],
            track_names=decode(f["track_names"][:]) if "track_names" in f else [],
            camera_names=decode(f["camera_names"][:]) if "camera_names" in f else [],
            calibration=str(f.attrs.get("calibration", "")),
            smoothing=str(f.attrs.get("smoothing", "")),
        )
