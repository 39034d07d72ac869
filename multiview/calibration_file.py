"""anipose's ``calibration.toml``: one ``[cam_N]`` table per camera and a ``[metadata]`` table.

Fields per camera, as anipose and sleap-anipose write and read them: ``name``, ``size`` ([width, height]),
``matrix`` (3x3), ``distortions`` (5: k1 k2 p1 p2 k3), ``rotation`` (Rodrigues vector, world to camera),
``translation`` (board units, e.g. mm).
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

import numpy as np

from posestream.core.errors import ConfigError, OutputFileError
from posestream.multiview.camera import Camera
from posestream.multiview.rig import Rig

FIELDS = ("name", "size", "matrix", "distortions", "rotation", "translation")


def read_calibration(path: str | Path) -> Rig:
    """The rig a calibration.toml describes; a missing or malformed entry is named with its fix."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such calibration file; make one with `posestream calibrate`")
    try:
        table = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a TOML file ({exc}); expected anipose's calibration.toml") from exc
    keys = sorted((k for k in table if re.fullmatch(r"cam_\d+", k)), key=lambda k: int(k[4:]))
    if not keys:
        raise ConfigError(f"{path}: no [cam_N] tables; expected anipose's calibration.toml")
    return Rig([_camera(path, key, table[key]) for key in keys], dict(table.get("metadata", {})))


def _camera(path: Path, key: str, entry: dict) -> Camera:
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: {key} is not a table; expected [{key}] with {list(FIELDS)}")
    if entry.get("fisheye"):
        raise ConfigError(
            f"{path}: [{key}] is a fisheye camera; posestream's camera model is OpenCV's pinhole"
        )
    missing = [f for f in FIELDS if f not in entry]
    if missing:
        raise ConfigError(f"{path}: [{key}] lacks {missing}; each camera needs {list(FIELDS)}")
    try:
        camera = Camera(**{f: entry[f] for f in FIELDS})
    except (TypeError, ValueError, IndexError) as exc:
        raise ConfigError(f"{path}: [{key}] ({entry['name']}) has a malformed field: {exc}") from exc
    if not np.isfinite(camera.matrix).all() or camera.matrix[0, 0] <= 0 or camera.matrix[1, 1] <= 0:
        raise ConfigError(f"{path}: [{key}] ({camera.name}) has no valid focal length in its matrix")
    return camera


def write_calibration(rig: Rig, path: str | Path) -> Path:
    """Write ``rig`` as anipose's calibration.toml (read by ``read_calibration``, anipose, sleap-anipose)."""
    path = Path(path)
    lines = []
    for index, camera in enumerate(rig.cameras):
        lines += [
            f"[cam_{index}]",
            f"name = {_value(camera.name)}",
            f"size = {_value(list(camera.size))}",
            f"matrix = {_value(camera.matrix.tolist())}",
            f"distortions = {_value(camera.distortions.tolist())}",
            f"rotation = {_value(camera.rotation.tolist())}",
            f"translation = {_value(camera.translation.tolist())}",
            "",
        ]
    lines.append("[metadata]")
    lines += [f"{key} = {_value(value)}" for key, value in rig.metadata.items()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    except OSError as exc:
        raise OutputFileError(f"{path}: cannot write the calibration ({exc.strerror or exc})") from exc
    return path


def _value(value) -> str:
    """A TOML value: strings, booleans, finite numbers and (nested) lists of them."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return repr(float(value))
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
