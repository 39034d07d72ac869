"""Which units a batch run does, and why: a unit is skipped only when its manifest record says done, the
video and models are those it was made with, and its outputs are there and complete (validated, not just
listed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import PosestreamError
from ..sinks.analysis_h5 import FRAME_NOT_PROCESSED, AnalysisH5Reader
from ..track import output_paths
from .inputs import VideoInput
from .manifest import DONE, Manifest, UnitRecord, video_fingerprint

OUTPUT_SUFFIX = ".predictions"
PARTIAL_SUFFIX = ".partial"


@dataclass(frozen=True)
class Unit:
    """One video to run: where its outputs go (written under the partial names, renamed when complete)."""

    name: str  # the video's relative path
    video: str
    outputs: dict[str, str]  # format -> final path
    partials: dict[str, str]  # format -> the path written while the unit runs
    reason: str  # why it runs: "new", or what changed since it was done


def unit_paths(out_dir: Path, relative: str, formats: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
    """OUT_DIR/<relative>.predictions.{h5,slp} and their partial names (…predictions.partial.{h5,slp})."""
    base = out_dir / (relative + OUTPUT_SUFFIX)
    final = output_paths(base.with_name(base.name + ".h5"), formats)
    partial = output_paths(base.with_name(base.name + PARTIAL_SUFFIX + ".h5"), formats)
    return {f: str(p) for f, p in final.items()}, {f: str(p) for f, p in partial.items()}


def plan_units(videos: list[VideoInput], out_dir: Path, formats: tuple[str, ...], manifest: Manifest,
               models: list[str], options: str) -> tuple[list[Unit], list[UnitRecord]]:  # fmt: skip
    """(units to run, records of the units already done)."""
    todo, done = [], []
    for video in videos:
        outputs, partials = unit_paths(out_dir, video.relative, formats)
        record = manifest.records.get(video.relative)
        reason = redo_reason(record, video, outputs, models, options)
        if reason is None:
            done.append(record)
        else:
            todo.append(Unit(video.relative, str(video.path), outputs, partials, reason))
    return todo, done


def redo_reason(record: UnitRecord | None, video: VideoInput, outputs: dict[str, str], models: list[str],
                options: str) -> str | None:  # fmt: skip
    """Why a unit must run (None: it is done and its outputs check out)."""
    if record is None:
        return "new"
    if record.status != DONE:
        return f"{record.status} before"
    if video_fingerprint(video.path) != (record.size, record.mtime_ns):
        return "video changed"
    if record.models != models:
        return "models changed"
    if record.options != options:
        return "options changed"
    for fmt, path in outputs.items():
        problem = output_problem(fmt, Path(path), record.frames)
        if problem:
            return problem
    return None


def output_problem(fmt: str, path: Path, frames: int) -> str | None:
    """What is wrong with a finished unit's output file (None: it is complete)."""
    if not path.is_file() or path.stat().st_size == 0:
        return f"output missing ({path.name})"
    if fmt != "analysis-h5":
        return None
    try:
        with AnalysisH5Reader(path) as reader:
            status = reader.frame_status()
    except (OSError, PosestreamError) as exc:
        return f"output unreadable ({path.name}: {exc})"
    if len(status) != frames or np.any(status == FRAME_NOT_PROCESSED):
        return f"output incomplete ({path.name})"
    return None
