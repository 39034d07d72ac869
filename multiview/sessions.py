"""``batch --calibration``: every session of a batch's output triangulated, each into its own 3D file.

A session is a folder with one subfolder per calibrated camera, named after it, each holding one video (the
layout sleap-anipose and anipose use). ``batch`` writes each video's poses to
OUT_DIR/<session>/<camera>/<video>.predictions.h5; this writes OUT_DIR/<session>/points3d.h5 beside them.
Resumable: a session whose 3D file is newer than its cameras' files is left as it is.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from posestream.core.errors import PosestreamError
from posestream.multiview.calibration_file import read_calibration
from posestream.multiview.triangulate import DEFAULT_THRESHOLD_PX
from posestream.multiview.triangulate_command import triangulate_files

POSES_SUFFIX = ".predictions.h5"  # batch's finished outputs (engine/batch/plan.py: OUTPUT_SUFFIX + .h5)
OUTPUT_NAME = "points3d.h5"


@dataclass
class SessionResult:
    session: Path
    status: str  # "done", "up to date" or "failed"
    cameras: list[str] = field(default_factory=list)
    output: Path | None = None
    reason: str = ""  # why it failed


def find_sessions(out_dir: Path, cameras: list[str]) -> dict[Path, dict[str, list[Path]]]:
    """{session folder: {camera: its poses files}} for the files of ``out_dir`` in a calibrated camera's
    folder (partial outputs of an unfinished run are not counted)."""
    sessions: dict[Path, dict[str, list[Path]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(out_dir.rglob(f"*{POSES_SUFFIX}")):
        if path.parent.name in cameras and ".partial" not in path.name:
            sessions[path.parent.parent][path.parent.name].append(path)
    return sessions


def triangulate_sessions(
    out_dir: str | Path,
    calibration: str | Path,
    threshold_px: float | None = DEFAULT_THRESHOLD_PX,
    min_cameras: int = 2,
    threads: int = 1,
) -> list[SessionResult]:
    """Triangulate each session of ``out_dir`` that at least ``min_cameras`` calibrated cameras filmed."""
    rig = read_calibration(calibration)
    results = []
    for session, found in find_sessions(Path(out_dir), rig.names).items():
        cameras = sorted(found, key=rig.names.index)
        output = session / OUTPUT_NAME
        several = [f"{c} ({len(found[c])} videos)" for c in cameras if len(found[c]) > 1]
        if several or len(cameras) < min_cameras:
            reason = (
                f"cameras {several} have more than one video; keep one video per camera per session"
                if several
                else f"only {cameras} filmed it; triangulation needs {min_cameras} cameras"
            )
            results.append(SessionResult(session, "failed", cameras, reason=reason))
            continue
        inputs = {c: found[c][0] for c in cameras}
        if output.exists() and all(output.stat().st_mtime >= p.stat().st_mtime for p in inputs.values()):
            results.append(SessionResult(session, "up to date", cameras, output))
            continue
        try:
            triangulate_files(calibration, inputs, output, threshold_px, min_cameras, threads)
        except (PosestreamError, OSError, ValueError) as exc:  # one session's bad file fails that session
            results.append(SessionResult(session, "failed", cameras, reason=f"{type(exc).__name__}: {exc}"))
            continue
        results.append(SessionResult(session, "done", cameras, output))
    return results
