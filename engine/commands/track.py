"""``posestream track``: a video through exported models into SLEAP output files.

A thin layer over ``Pipeline``: open the source, load the models, open the
sinks, run, print a summary naming the stage that bounded the run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from posestream.core.errors import ConfigError
from posestream.engine.interrupts import StopRequests
from posestream.engine.model.backends import BACKENDS
from posestream.engine.model.predictor import Predictor
from posestream.engine.pipeline import PipelineConfig, RunSummary, assemble, default_batch_size
from posestream.engine.sinks import close_sinks, open_sinks, prepare_outputs
from posestream.engine.sources import FrameSource, open_source
from posestream.engine.tracking import TrackerConfig

OUTPUT_FORMATS = ("analysis-h5", "slp", "nwb")
SUFFIXES = {"analysis-h5": ".h5", "slp": ".slp", "nwb": ".nwb"}  # format -> file suffix


@dataclass(frozen=True)
class TrackOptions:
    frames: str | None = None
    batch_size: int | None = None  # None: default_batch_size(device, the model's metadata)
    backend: str = "auto"
    device: str = "cpu"
    peak_threshold: float | None = None
    max_instances: int | None = None
    formats: tuple[str, ...] = ("analysis-h5",)
    workers: int | None = (
        None  # postprocessing threads; None: the thread budget's (ThreadBudget.postprocess_workers)
    )
    progress: bool = True
    tracking: TrackerConfig | None = None  # None: no identities (instances fill the track slots in order)
    threads: int = 0  # the network's CPU threads; 0: the thread budget's (engine/threads.py)
    decode_threads: int | None = None  # FFmpeg's decoder threads (0: FFmpeg chooses); None: the budget's
    overwrite: bool = False  # replace outputs that exist and do not hold predictions posestream wrote
    max_missing: float = (
        0.01  # fraction of the frames that may fail to decode before the run counts as failed
    )

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in OUTPUT_FORMATS]
        if unknown or not self.formats:
            raise ConfigError(f"--format must be among {OUTPUT_FORMATS}, got {list(self.formats)}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend must be one of {BACKENDS}, got {self.backend!r}")
        if not 0 <= self.max_missing <= 1:
            raise ConfigError(
                f"--max-missing is a fraction of the frames, from 0 to 1; got {self.max_missing}"
            )


def too_many_missing(frames: int, missing: int, options: TrackOptions) -> str:
    """Why a run of ``frames`` frames counts as failed for the ``missing`` ones that failed to decode (more
    than ``max_missing`` of them), or ""."""
    if not frames or missing / frames <= options.max_missing:
        return ""
    return (
        f"{missing} of {frames} frames ({missing / frames:.0%}) failed to decode, more than --max-missing "
        f"{options.max_missing:g}; the outputs hold the frames decoded (the video may be cut short or "
        "damaged)"
    )


def default_output(video: str | os.PathLike) -> Path:
    """Where outputs go without -o: beside the video, VIDEO.predictions.h5 (.slp), the names SLEAP and
    ``posestream batch`` use."""
    return Path(str(video) + ".predictions.h5")


def formats_for(out: str | os.PathLike | None) -> tuple[str, ...]:
    """Formats when --format is not given: what -o's suffix names (OUT.slp -> slp, as sleap-track does;
    OUT.nwb -> nwb), else the analysis HDF5."""
    suffix = Path(out).suffix if out is not None else ""
    return next(((f,) for f, s in SUFFIXES.items() if s == suffix and f != "analysis-h5"), ("analysis-h5",))


def output_paths(out: str | os.PathLike, formats: Sequence[str]) -> dict[str, Path]:
    """OUT.h5 for analysis-h5, OUT.slp for slp and OUT.nwb for nwb (the same stem)."""
    out = Path(out)
    stem = out.name[: -len(out.suffix)] if out.suffix in SUFFIXES.values() else out.name  # keeps other dots
    return {f: out.parent / (stem + SUFFIXES[f]) for f in formats}


def track(
    video: str | os.PathLike,
    model_dirs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    options: TrackOptions = TrackOptions(),
) -> tuple[RunSummary, dict[str, Path]]:
    """Predict every selected frame of ``video`` and write the outputs; returns the summary and the paths."""
    paths = output_paths(out, options.formats)
    stop = threading.Event()
    notice = "stopping: the output keeps every frame done so far"
    with load_predictor(model_dirs, options) as predictor, StopRequests(stop.set, notice):
        return track_video(predictor, video, paths, options, stop=stop), paths


def load_predictor(model_dirs: Sequence[str | os.PathLike], options: TrackOptions) -> Predictor:
    """The models of a track run, loaded once, with the options' threads (or the thread budget's)."""
    return Predictor(
        model_dirs,
        options.device,
        threads=options.threads,
        peak_threshold=options.peak_threshold,
        max_instances=options.max_instances,
        backend=options.backend,
        decode_threads=options.decode_threads,
    )


def track_video(
    predictor: Predictor,
    video: str | os.PathLike,
    paths: dict[str, Path],
    options: TrackOptions,
    progress: bool | Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> RunSummary:
    """One video through a loaded predictor into ``paths`` (format -> file).

    progress: None for ``options.progress``'s bar, or a function called with each frame count done (a run
    over many videos counts them). Stopped (``stop`` set, or Ctrl-C), the outputs keep every frame done and
    the summary says ``interrupted``.
    """
    tracked = predictor.tracked_with(options.tracking)
    prepare_outputs(paths, options.overwrite)
    batch_size = options.batch_size
    if batch_size is None:
        batch_size = default_batch_size(options.device, predictor.first.metadata)
    workers = (
        predictor.threads.postprocess_workers(batch_size) if options.workers is None else options.workers
    )
    config = PipelineConfig(batch_size=batch_size, frames=options.frames, postprocess_workers=workers)
    provenance = {
        "models": [str(m.model_dir.path.resolve()) for m in predictor.models],
        "frames": options.frames or "all",
    }
    if options.tracking is not None:
        provenance["tracking"] = asdict(options.tracking)
    with open_video(video, predictor, options.device) as source:
        sinks = open_sinks(
            paths,
            predictor.skeleton,
            str(Path(video).resolve()),
            provenance,
            tracked,
            predictor.class_names,
            timestamps=source.timestamps,
        )
        pipeline = assemble(source, predictor, config, options.tracking)
        try:
            return pipeline.run(sinks, progress=options.progress if progress is None else progress, stop=stop)
        except KeyboardInterrupt:
            pipeline.summary.interrupted = True
            return pipeline.summary
        finally:
            close_sinks(sinks)


def open_video(video: str | os.PathLike, predictor: Predictor, device: str = "cpu") -> FrameSource:
    """``video`` decoded as ``predictor`` takes it: its thread budget's decoder threads, the model's colour,
    and NVDEC on CUDA where the codec allows."""
    hwaccel = device if device.startswith("cuda") else None
    return open_source(
        video, threads=predictor.threads.decode, hwaccel=hwaccel, channels=predictor.input_shape[2]
    )


def format_summary(summary: RunSummary, paths: dict[str, Path]) -> str:
    busy = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in sorted(summary.stage_seconds.items()))
    lines = [
        f"{summary.model}: {summary.frames} frames in {summary.wall_seconds:.1f} s = {summary.fps:.1f} FPS",
        f"stage busy time: {busy} (bound by {summary.bottleneck()}; postprocess sums its workers)",
        f"peak memory (RSS): {summary.peak_rss_mb:.0f} MB",
        f"threads: {summary.threads}",
        f"kernels: {summary.kernels}",
    ]
    if summary.identities is not None:
        lines.append(f"tracking: {summary.identities} identities")
    if summary.warmup_seconds > 1.0:
        lines.append(
            f"loaded the engine's kernels in {summary.warmup_seconds:.1f} s before the run (built on the "
            "first run on a machine, kept for the next runs; not counted above)"
        )
    if summary.converted:
        lines.append(f"colour: {summary.converted} (the model was trained on those)")
    if summary.interrupted:
        lines.append("interrupted: the output holds every frame done before the stop")
    if summary.missing_frames:
        shown = ", ".join(map(str, summary.missing_frames[:10])) + (
            " ..." if len(summary.missing_frames) > 10 else ""
        )
        lines.append(f"{len(summary.missing_frames)} frames failed to decode and are marked missing: {shown}")
    lines += [f"output: {path}" for path in paths.values()]
    return "\n".join(lines)
