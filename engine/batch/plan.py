"""Which units a batch run does, and why: a unit is skipped only when its manifest record says done, the
video and models are those it was made with, and its outputs are there and complete (validated, not just
listed). A long video is cut into parts (``split``); a part whose file is complete is not run again."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posestream.core.errors import PosestreamError
from posestream.engine.batch.inputs import VideoInput
from posestream.engine.batch.manifest import DONE, Manifest, UnitRecord, video_fingerprint
from posestream.engine.batch.split import Part, make_parts, overlap_frames, split_ranges
from posestream.engine.commands.track import output_paths
from posestream.engine.sinks.analysis_h5 import FRAME_NOT_PROCESSED, AnalysisH5Reader

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
    parts: tuple[Part, ...] = ()  # () : the whole video in one go, written straight to ``partials``
    todo: tuple[int, ...] = ()  # the parts to run (the others' files are complete)

    def part_file(self, index: int, partial: bool = False) -> Path:
        """Part ``index``'s analysis HDF5 (…predictions.part003.h5; …part003.partial.h5 while it runs)."""
        final = Path(
            self.outputs.get("analysis-h5") or Path(next(iter(self.outputs.values()))).with_suffix(".h5")
        )
        stem = final.name[: -len(".h5")]
        return final.with_name(f"{stem}.part{index:03d}{PARTIAL_SUFFIX if partial else ''}.h5")


def unit_paths(
    out_dir: Path, relative: str, formats: tuple[str, ...]
) -> tuple[dict[str, str], dict[str, str]]:
    """OUT_DIR/<relative>.predictions.{h5,slp} and their partial names (…predictions.partial.{h5,slp})."""
    base = out_dir / (relative + OUTPUT_SUFFIX)
    final = output_paths(base.with_name(base.name + ".h5"), formats)
    partial = output_paths(base.with_name(base.name + PARTIAL_SUFFIX + ".h5"), formats)
    return {f: str(p) for f, p in final.items()}, {f: str(p) for f, p in partial.items()}


def plan_units(
    videos: list[VideoInput],
    out_dir: Path,
    formats: tuple[str, ...],
    manifest: Manifest,
    models: list[str],
    options: str,
    split_frames: int | None = None,
    tracking: bool = False,
) -> tuple[list[Unit], list[UnitRecord]]:
    """(units to run, records of the units already done); with ``split_frames``, videos longer than that
    are cut into parts (each at least ``split_frames`` long, starting at a keyframe)."""
    todo, done = [], []
    for video in videos:
        outputs, partials = unit_paths(out_dir, video.relative, formats)
        record = manifest.records.get(video.relative)
        reason = redo_reason(record, video, outputs, models, options)
        if reason is None:
            done.append(record)
            continue
        unit = Unit(video.relative, str(video.path), outputs, partials, reason)
        parted = _with_parts(unit, split_frames, tracking) if split_frames else unit
        todo.append(parted if parted.parts else _continued(unit, tracking))
    return todo, done


def _continued(unit: Unit, tracking: bool) -> Unit:
    """A video interrupted before: its frames flushed so far become part 0 and the rest part 1 (then
    merged), so the run goes on from its last flushed frame. Unchanged when nothing was flushed."""
    from posestream.engine.sources.video_file import VideoFileReader

    first = unit.part_file(0)
    partial = Path(unit.partials.get("analysis-h5", ""))
    source = first if first.is_file() else partial if partial.is_file() else None
    flushed = _flushed_prefix(source) if source else 0
    if not flushed:
        return unit
    try:
        with VideoFileReader(unit.video) as reader:
            n_frames, fps = len(reader), reader.metadata.fps
    except (OSError, PosestreamError):
        return unit
    if source == partial:
        os.replace(partial, first)
    reason = f"{unit.reason}, continued from frame {min(flushed, n_frames)}"
    if flushed >= n_frames:
        return Unit(
            unit.name, unit.video, unit.outputs, unit.partials, reason, (Part(0, 0, n_frames, 0),), ()
        )
    parts = make_parts([(0, flushed), (flushed, n_frames)], overlap_frames(fps) if tracking else 0)
    return Unit(unit.name, unit.video, unit.outputs, unit.partials, reason, parts, (1,))


def _flushed_prefix(path: Path) -> int:
    """How many frames from the first one an analysis HDF5 holds without a gap (0: none, or unreadable)."""
    try:
        with AnalysisH5Reader(path) as reader:
            status = reader.frame_status()
    except (OSError, PosestreamError):
        return 0
    gaps = np.flatnonzero(status == FRAME_NOT_PROCESSED)
    return int(gaps[0]) if len(gaps) else len(status)


def _with_parts(unit: Unit, every: int, tracking: bool) -> Unit:
    """The unit cut into parts, those with complete files not to run again (one piece: unchanged)."""
    from posestream.engine.sources.video_file import VideoFileReader

    try:
        with VideoFileReader(unit.video) as reader:
            n_frames, fps, keyframes = len(reader), reader.metadata.fps, reader.keyframes().tolist()
    except (OSError, PosestreamError):
        return unit  # the video does not open: its run says why
    ranges = split_ranges(n_frames, keyframes, every)
    if len(ranges) == 1:
        return unit
    parts = make_parts(ranges, overlap_frames(fps) if tracking else 0)
    todo = tuple(p.index for p in parts if not part_complete(unit.part_file(p.index), p))
    return Unit(unit.name, unit.video, unit.outputs, unit.partials, unit.reason, parts, todo)


def part_complete(path: Path, part: Part) -> bool:
    """Whether a part's file holds every frame it runs."""
    if not path.is_file():
        return False
    try:
        with AnalysisH5Reader(path) as reader:
            status = reader.frame_status()
    except (OSError, PosestreamError):
        return False
    return len(status) >= part.stop and not np.any(status[part.warm : part.stop] == FRAME_NOT_PROCESSED)


def redo_reason(
    record: UnitRecord | None, video: VideoInput, outputs: dict[str, str], models: list[str], options: str
) -> str | None:
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
