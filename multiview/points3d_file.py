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
from posestream.engine.sinks.analysis_h5.layout import decode, encode


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
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            f.create_dataset("points3d", data=data.points.astype(np.float64))
            f["tracks"] = f["points3d"]  # sleap-anipose's name, linked
            f.create_dataset("reprojection_error", data=data.reprojection_error.astype(np.float32))
            f.create_dataset("cameras_used", data=data.cameras_used.astype(np.uint8))
            f.create_dataset("node_names", data=encode(data.node_names))
            f.create_dataset("edge_inds", data=np.asarray(data.edges, dtype=np.int32).reshape(-1, 2))
            f.create_dataset("track_names", data=encode(data.track_names))
            f.create_dataset("camera_names", data=encode(data.camera_names))
            f.attrs["calibration"] = data.calibration
            f.attrs["smoothing"] = data.smoothing
    except OSError as exc:
        raise OutputFileError(f"{path}: cannot write the 3D poses ({exc})") from exc
    return path


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
