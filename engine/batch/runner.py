"""``posestream batch``: plan the units, run them on an engine, record each in the manifest as it finishes,
show one progress bar for the run, and end with a table per video and the failures."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from posestream.core.errors import ConfigError, OutputFileError, PosestreamError
from posestream.engine.batch.inputs import find_videos, parse_shard, shard
from posestream.engine.batch.manifest import (
    DONE,
    FAILED,
    INTERRUPTED,
    Manifest,
    UnitRecord,
    models_hash,
    options_hash,
    video_fingerprint,
)
from posestream.engine.batch.plan import Unit, plan_units
from posestream.engine.batch.worker import UnitResult, is_disk_full
from posestream.engine.commands.track import TrackOptions, too_many_missing

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class BatchOptions:
    track: TrackOptions = TrackOptions()  # formats, tracking, device, backend, thresholds of every unit
    engine: str = "local"
    workers: int = 2  # pipelines at once (local) or actors (ray): --jobs
    address: str | None = None  # --ray-address: a Ray cluster (default: RAY_ADDRESS, else a local Ray)
    gpus_per_worker: float | None = None  # ray: GPUs per actor (a fraction shares one)
    shard: str | None = None  # "I/N": the I-th of N shares of the inputs
    split_frames: int | None = None  # videos longer than this run in parts of at least this many frames
    progress: bool = True

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"--engine must be one of {ENGINES}, got {self.engine!r}")
        if self.workers < 1:
            raise ConfigError(f"--jobs must be >= 1, got {self.workers}")
        if self.engine == "local" and (self.address or self.gpus_per_worker):
            raise ConfigError("--ray-address and --gpus-per-worker are Ray's: add --engine ray")
        parse_shard(self.shard)
        if self.split_frames is not None and self.split_frames < 1:
            raise ConfigError(f"--split-frames must be >= 1 frames, got {self.split_frames}")


@dataclass
class BatchSummary:
    out_dir: Path
    skipped: list[UnitRecord] = field(default_factory=list)  # done before, outputs checked
    ran: list[UnitRecord] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # unit -> why it ran
    not_started: int = 0  # units left when the run stopped (Ctrl-C, a full disk)
    interrupted: bool = False
    disk_full: bool = False
    wall_s: float = 0.0

    @property
    def failed(self) -> list[UnitRecord]:
        return [r for r in self.ran if r.status == FAILED]

    @property
    def unfinished(self) -> int:
        """Units of this run not done (failed, interrupted or never started)."""
        return sum(r.status != DONE for r in self.ran) + self.not_started

    @property
    def exit_code(self) -> int:
        return 130 if self.interrupted else 1 if self.unfinished else 0


def run_batch(
    inputs: list[str],
    model_dirs: list[str],
    out_dir: str | os.PathLike,
    options: BatchOptions = BatchOptions(),
) -> BatchSummary:
    """Run every unit of ``inputs`` not already done in ``out_dir``; see the module docstring."""
    import time

    started = time.perf_counter()
    out = _output_dir(out_dir)
    videos = find_videos(inputs)
    if options.shard:
        videos = shard(videos, *parse_shard(options.shard))
    manifest = Manifest(out)
    models = models_hash(model_dirs)
    settings = options_hash(_output_settings(options.track))
    todo, done = plan_units(
        videos,
        out,
        options.track.formats,
        manifest,
        models,
        settings,
        options.split_frames,
        options.track.tracking is not None,
    )
    summary = BatchSummary(out, skipped=done, reasons={u.name: u.reason for u in todo})
    if todo:
        engine = _engine(model_dirs, options)
        try:
            _run_units(engine, todo, manifest, models, settings, summary, options)
        finally:
            engine.close()
    summary.wall_s = time.perf_counter() - started
    return summary


def _output_dir(out_dir: str | os.PathLike) -> Path:
    """OUT_DIR, made if needed; a clear error when it is a file or cannot be written."""
    from posestream.engine.sinks import make_folder

    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise OutputFileError(
            f"{out}: is a file, not a folder; give -o a folder for the outputs and manifest"
        )
    make_folder(out, f"output folder {out}")
    return out


def _output_settings(track: TrackOptions) -> dict:
    """What changes a unit's output (a change redoes the units done with the old settings)."""
    return {
        "formats": sorted(track.formats),
        "tracking": asdict(track.tracking) if track.tracking else None,
        "peak_threshold": track.peak_threshold,
        "max_instances": track.max_instances,
    }


def _engine(model_dirs: list[str], options: BatchOptions):
    cores = os.cpu_count() or 1
    per_worker = max(1, cores // options.workers)
    track = options.track
    if options.engine == "ray":
        from posestream.engine.batch.ray_engine import RayEngine

        return RayEngine(
            model_dirs, track, options.workers, options.address, options.gpus_per_worker, per_worker
        )
    from posestream.engine.batch.local import LocalEngine

    return LocalEngine(model_dirs, track, options.workers, threads=per_worker, decode_threads=per_worker)


def _run_units(
    engine,
    todo: list[Unit],
    manifest: Manifest,
    models: list[str],
    settings: str,
    summary: BatchSummary,
    options: BatchOptions,
) -> None:
    """Run the units, recording each as it ends; Ctrl-C stops the units in progress (their partial outputs
    stay)."""
    from posestream.engine.batch.progress import BatchProgress
    from posestream.engine.interrupts import StopRequests

    units = UnitParts(todo, options.track)

    def interrupt() -> None:
        summary.interrupted = True
        engine.stop()

    def record(result: UnitResult) -> None:
        entry = _record(result, units.units[result.unit], models, settings)
        manifest.append(entry)
        summary.ran.append(entry)
        bar.unit_done(entry)

    notice = "stopping: the videos in progress keep their frames done; run the same command again to finish"
    with BatchProgress(len(todo), enabled=options.progress) as bar, StopRequests(interrupt, notice):
        for result in units.merge_ready():
            record(result)
        for result in engine.results(units.items()):
            if result is not None:
                if result.disk_full and not summary.disk_full:
                    summary.disk_full = True
                    engine.drain()
                ended = units.add(result)
                if ended is not None:
                    record(ended)
            bar.frames(engine.frames_done())
    summary.not_started = len(todo) - len(summary.ran)


class UnitParts:
    """The units of a run as their results come in. A unit in parts ends when one of its parts fails or
    is interrupted, or when the last is done: its parts are then merged into its outputs."""

    def __init__(self, todo: list[Unit], track: TrackOptions):
        self.units = {u.name: u for u in todo}
        self.track, self.tracking = track, track.tracking
        self._waiting = {u.name: set(u.todo) for u in todo if u.parts}
        self._done: dict[str, list[UnitResult]] = {u.name: [] for u in todo}

    def items(self) -> list[tuple[Unit, int | None]]:
        """What the engine runs: each whole unit, and each part still to run."""
        return [(u, p) for u in self.units.values() for p in (u.todo if u.parts else (None,))]

    def merge_ready(self) -> list[UnitResult]:
        """Units whose parts were all complete before this run: merged now."""
        ready = [name for name, waiting in self._waiting.items() if not waiting]
        return [self._merge(self.units[name], []) for name in ready]

    def add(self, result: UnitResult) -> UnitResult | None:
        """A result from the engine; the unit's own result once the unit ends (else None)."""
        if result.part is None:
            return result
        if result.unit not in self._waiting:
            return None  # the unit already ended (another part failed); this part's file stays for a rerun
        self._done[result.unit].append(result)
        if result.status != DONE:
            del self._waiting[result.unit]
            return result
        self._waiting[result.unit].discard(result.part)
        if self._waiting[result.unit]:
            return None
        del self._waiting[result.unit]
        return self._merge(self.units[result.unit], self._done[result.unit])

    def _merge(self, unit: Unit, parts: list[UnitResult]) -> UnitResult:
        from posestream.engine.batch.stitch import merge_parts, remove_parts

        files = [(part, unit.part_file(part.index)) for part in unit.parts]
        result = UnitResult(
            unit.name,
            DONE,
            wall_s=sum(r.wall_s for r in parts),
            worker="driver (merge)",
            frames_missing=sum(r.frames_missing for r in parts),
        )
        tracked = self.tracking is not None
        try:
            result.frames = merge_parts(
                files,
                {f: Path(p) for f, p in unit.partials.items()},
                unit.video,
                tracked,
                self.tracking.max_tracks if tracked else None,
            )
            for fmt, partial in unit.partials.items():
                os.replace(partial, unit.outputs[fmt])
        except (OSError, PosestreamError, ValueError) as exc:
            result.status, result.error = FAILED, f"merging its parts: {type(exc).__name__}: {exc}"
            result.disk_full = is_disk_full(exc)
            return result
        remove_parts(files)
        result.outputs = list(unit.outputs.values())
        if failed := too_many_missing(result.frames, result.frames_missing, self.track):
            result.status, result.error = FAILED, failed
        return result


def _record(result: UnitResult, unit: Unit, models: list[str], settings: str) -> UnitRecord:
    size, mtime = video_fingerprint(Path(unit.video))
    return UnitRecord(
        unit.name,
        unit.video,
        size,
        mtime,
        models,
        settings,
        result.frames,
        result.frames_missing,
        result.status,
        round(result.wall_s, 3),
        round(result.fps, 2),
        result.error,
        result.outputs,
        worker=result.worker,
    )


__all__ = ["BatchOptions", "BatchSummary", "run_batch", "INTERRUPTED"]
