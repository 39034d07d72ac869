"""``posestream bench``: each stage alone, then the whole pipeline, on one video in one run.

- decode-only: the source decoding the selected frames, nothing else;
- model-only: the inference step (``Predictor.infer``) on batches preloaded in memory;
- postprocess-only: ``Predictor.postprocess`` on stored model outputs, on as many threads
  as the pipeline's postprocessing pool;
- end-to-end: the pipeline writing an analysis HDF5 file (to a temporary folder);
- with a tracker config: each chunk also runs end-to-end with the tracker (which of the two goes first
  alternates), so tracked and untracked FPS compare under the same machine state, and the tracker's own
  time per frame is reported;
- peak RSS of the process (``ru_maxrss``) after the first end-to-end round, before the frames and
  outputs of the stage-alone runs are held in memory.

The pipeline is as fast as its slowest stage at best; ``end_to_end / min(stages)`` says how close it
gets. That holds where stages run on their own hardware (inference on a GPU). Where every stage
takes the same CPU cores, the stages' work adds up: each stage-alone figure uses the whole machine,
so the shared-CPU bound is ``1 / sum(1 / stage_fps)``, and ``end_to_end / bound`` says what the
pipeline itself (threads, queues, copies, the writer) costs on top of the work.

A machine's speed drifts (other tenants, clocks) by tens of percent over a minute, so the
end-to-end and model-only figures are taken in alternating rounds: the selection is split into
``rounds`` consecutive chunks, and after each chunk runs end-to-end the model runs alone for a
slice of time. Each round's ratio compares its chunk with the model-only slices next to it; the
spread of those ratios shows how much of the figure is the machine.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from posestream.core.errors import ConfigError, VideoDecodeError
from posestream.engine import kernels
from posestream.engine.commands.track import open_video
from posestream.engine.frame_ranges import FrameRanges
from posestream.engine.model.predictor import Predictor
from posestream.engine.pipeline import PipelineConfig, RunSummary, assemble, default_batch_size
from posestream.engine.sinks.analysis_h5 import AnalysisH5Writer
from posestream.engine.sources import open_source
from posestream.engine.sources.base import resolve_frames
from posestream.engine.threads import load_warning
from posestream.engine.tracking import TrackerConfig

PRELOAD_FRAMES = (
    128  # frames held in memory for the model-only and postprocess-only runs (fewer if the video is shorter)
)
STORED_OUTPUTS = 8  # batches of model outputs kept for the postprocess-only run
ROUNDS = 6  # end-to-end chunks, each followed by a model-only slice
MODEL_SLICE_SECONDS = 5.0  # at least this long per model-only slice
SHORT_ROUND_BATCHES = 8  # end-to-end chunks of fewer batches than this get a note: start-up weighs on them


@dataclass
class BenchRound:
    """One chunk of the selection end-to-end and the model-only slice run right after it."""

    frames: int
    end_to_end_fps: float
    model_fps: float
    end_to_end_over_model: float  # against the mean of the model-only slices before and after the chunk


@dataclass
class BenchResult:
    model: str
    video: str
    frames: int
    batch_size: int
    decode_fps: float
    model_fps: float  # over every model-only slice
    postprocess_fps: float
    end_to_end_fps: float  # over every end-to-end chunk
    peak_rss_mb: float
    rounds: list[BenchRound]
    threads: str  # the thread budget the run had (engine/threads.py)
    kernels: str  # how the compiled kernels were built (engine/kernels)
    # each stage's busy time end-to-end, per frame (postprocess: its workers summed)
    stage_us_per_frame: dict[str, float]
    end_to_end_tracked_fps: float | None = None  # with the tracker, over the same chunks (None: not asked)
    tracking_ms_per_frame: float | None = None  # the tracker's own time in the tracked runs
    load_warning: str = ""  # other work loaded the machine during the run (engine/threads.py), in words

    def to_dict(self) -> dict:
        data = asdict(self)
        if self.end_to_end_tracked_fps is not None:
            data["tracked_over_untracked"] = self.end_to_end_tracked_fps / self.end_to_end_fps
        stages = (self.decode_fps, self.model_fps, self.postprocess_fps)
        data["end_to_end_over_slowest_stage"] = self.end_to_end_fps / min(stages)
        data["shared_cpu_bound_fps"] = 1.0 / sum(1.0 / fps for fps in stages)
        data["end_to_end_over_shared_cpu_bound"] = self.end_to_end_fps / data["shared_cpu_bound_fps"]
        data["end_to_end_over_shared_cpu_bound_by_round"] = self.over_bound_by_round()
        return data

    def over_bound_by_round(self) -> float:
        """The median over rounds of each chunk's end-to-end over the shared-CPU bound with the model-only
        figure measured around that chunk: the machine's drift between the two measurements cancels."""
        # e2e_k / bound_k, with 1 / model_k = over_model_k / e2e_k
        ratios = [
            r.end_to_end_fps * (1 / self.decode_fps + 1 / self.postprocess_fps) + r.end_to_end_over_model
            for r in self.rounds
        ]
        return float(np.median(ratios))


def bench(
    video: str | os.PathLike,
    model_dirs: list[str],
    batch_size: int | None = None,
    frames: str | None = None,
    workers: int | None = None,
    device: str = "cpu",
    backend: str = "auto",
    rounds: int | None = None,
    tracking: TrackerConfig | None = None,
    threads: int = 0,
    decode_threads: int | None = None,
) -> BenchResult:
    """Measure one video with one pose model; see the module docstring. ``batch_size`` None:
    ``default_batch_size``; ``rounds`` None: ``ROUNDS``; ``tracking``: also end-to-end with it; ``threads``,
    ``decode_threads``: replace the thread budget's (engine/threads.py)."""
    rounds = ROUNDS if rounds is None else rounds
    if rounds < 1:
        raise ConfigError(f"rounds (--rounds) must be at least 1, got {rounds}; the default is {ROUNDS}")
    loaded = load_warning()  # before the run: its own threads would count in the load average after
    with Predictor(model_dirs, device, threads, backend=backend, decode_threads=decode_threads) as predictor:
        if batch_size is None:
            batch_size = default_batch_size(device, predictor.first.metadata)
        workers = predictor.threads.postprocess_workers(batch_size) if workers is None else workers
        result = _measure(video, predictor, batch_size, frames, workers, rounds, tracking, device)
    result.load_warning = loaded
    return result


def _measure(
    video: str | os.PathLike,
    predictor: Predictor,
    batch_size: int,
    frames: str | None,
    workers: int,
    rounds: int,
    tracking: TrackerConfig | None,
    device: str,
) -> BenchResult:
    """Decode-only, then end-to-end chunks alternating with model-only slices, then postprocess-only."""
    with open_video(video, predictor, device) as source:
        selection = resolve_frames(frames, source.metadata.n_frames, source.metadata.path)
        decode_fps = _decode_only(source, selection)
        warm_up = _preload(source, min(batch_size, len(selection)), selection)
    # first-run allocations and the kernels' first calls, outside the timing
    predictor.postprocess(predictor.infer(warm_up))
    e2e: list[tuple[int, float]] = []  # (frames, seconds) per chunk
    tracked: list[tuple[int, float]] = []  # (frames, seconds) per chunk, with the tracker
    tracker_seconds = 0.0
    busy: dict[str, float] = {}  # seconds per stage over the untracked end-to-end chunks
    model: list[tuple[int, float]] = []  # (frames, seconds) per slice
    batches: list[np.ndarray] = []
    peak_rss_mb = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for k, chunk in enumerate(_split(selection, rounds)):
            order = [None] if tracking is None else [None, tracking][:: 1 if k % 2 == 0 else -1]
            for config in order:
                out = Path(tmp) / f"round{k}.h5"
                summary = _end_to_end(video, predictor, chunk, batch_size, workers, out, config, device)
                (e2e if config is None else tracked).append((summary.frames, summary.wall_seconds))
                tracker_seconds += summary.stage_seconds.get("track", 0.0)
                for stage, seconds in summary.stage_seconds.items() if config is None else ():
                    busy[stage] = busy.get(stage, 0.0) + seconds
            if not batches:
                peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
                batches = _preloaded_batches(video, selection, batch_size, predictor.input_shape[2])
            model.append(_model_only(predictor, batches, MODEL_SLICE_SECONDS))
    postprocess_fps = _postprocess_only(predictor, batches, workers)
    e2e_frames = sum(n for n, _ in e2e)
    result = BenchResult(
        predictor.kind,
        str(video),
        e2e_frames,
        batch_size,
        decode_fps,
        _fps(model),
        postprocess_fps,
        _fps(e2e),
        peak_rss_mb,
        _rounds(e2e, model),
        predictor.threads.describe(),
        kernels.how_compiled(),
        {stage: 1e6 * seconds / e2e_frames for stage, seconds in busy.items()},
    )
    if tracked:
        result.end_to_end_tracked_fps = _fps(tracked)
        result.tracking_ms_per_frame = 1000 * tracker_seconds / sum(n for n, _ in tracked)
    return result


def _fps(runs: list[tuple[int, float]]) -> float:
    return sum(n for n, _ in runs) / sum(s for _, s in runs)


def _rounds(e2e: list[tuple[int, float]], model: list[tuple[int, float]]) -> list[BenchRound]:
    """Round k: chunk k against the model-only slices k-1 and k (the slices around it; only k for the
    first)."""
    rounds = []
    for k, (n, seconds) in enumerate(e2e):
        around = [_fps([m]) for m in model[max(k - 1, 0) : k + 1]]
        reference = sum(around) / len(around)
        rounds.append(BenchRound(n, n / seconds, _fps([model[k]]), n / seconds / reference))
    return rounds


def _split(selection: FrameRanges, parts: int) -> list[FrameRanges]:
    """``parts`` consecutive chunks of the selection, as equal in frame count as can be (fewer if it is
    short)."""
    bounds = np.linspace(0, len(selection), min(parts, len(selection)) + 1).round().astype(int)
    return [selection.part(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def _end_to_end(
    video,
    predictor: Predictor,
    chunk: FrameRanges,
    batch_size: int,
    workers: int,
    out: Path,
    tracking: TrackerConfig | None,
    device: str,
) -> RunSummary:
    """The pipeline on ``chunk`` (with a new tracker when ``tracking`` is given), writing an analysis HDF5
    file to ``out``."""
    with open_video(video, predictor, device) as source:
        pipeline = assemble(
            source, predictor, PipelineConfig(batch_size, chunk, postprocess_workers=workers), tracking
        )
        with AnalysisH5Writer(out, predictor.skeleton, tracked=tracking is not None) as sink:
            return pipeline.run([sink])


def _preloaded_batches(video, selection: FrameRanges, batch_size: int, channels: int) -> list[np.ndarray]:
    """The selection's first ``PRELOAD_FRAMES`` decodable frames (one batch at least) in batches.  #
    [(batch_size, H, W, C), ...]"""
    with open_source(video, channels=channels) as source:
        frames = _preload(source, min(max(PRELOAD_FRAMES, batch_size), len(selection)), selection)
    return [frames[i : i + batch_size] for i in range(0, len(frames), batch_size)]


def _preload(source, count: int, selection: FrameRanges) -> np.ndarray:
    """The first ``count`` decodable frames of the selection, stacked.  # (count, H, W, C)"""
    first = selection.part(0, count)
    images = [image for _, image in source.iter_frames(first, missing="yield") if image is not None]
    if not images:
        path = str(source.metadata.path)
        raise VideoDecodeError(
            f"{path}: none of frames {first} decodes; choose other frames with --frames", path
        )
    return np.stack(images)


def _decode_only(source, selection) -> float:
    """Decode FPS over the selection."""
    count = 0
    started = time.perf_counter()
    for _ in source.iter_frames(selection, missing="yield"):
        count += 1
    return count / (time.perf_counter() - started)


def _model_only(predictor: Predictor, batches: list[np.ndarray], min_seconds: float) -> tuple[int, float]:
    """(frames, seconds) of inference on preloaded batches, cycled for at least ``min_seconds``. Outputs
    are dropped as they come, as the pipeline's are (holding them would time page faults)."""
    count = 0
    started = time.perf_counter()
    while count == 0 or time.perf_counter() - started < min_seconds:
        for batch in batches:
            predictor.infer(batch)
            count += len(batch)
    return count, time.perf_counter() - started


def _postprocess_only(
    predictor: Predictor, batches: list[np.ndarray], workers: int, rounds: int = 4
) -> float:
    """Postprocessing FPS of ``workers`` threads over the model outputs of the first few batches (after
    a warm-up pass)."""
    outputs = [predictor.infer(batch) for batch in batches[:STORED_OUTPUTS]]
    for raw in outputs:
        predictor.postprocess(raw)
    jobs = outputs * rounds
    started = time.perf_counter()
    with ThreadPoolExecutor(max(workers, 1)) as pool:  # 0: the infer stage postprocesses, one thread
        list(pool.map(predictor.postprocess, jobs))
    return sum(raw.n_frames for raw in jobs) / (time.perf_counter() - started)


def _stage_costs(result: BenchResult) -> str:
    """Each stage's busy time per frame in the pipeline, beside its time alone: the difference is that stage's
    glue (copies, hand-overs, Python per batch) and its share of the cores with the others."""
    alone = {"decode": result.decode_fps, "infer": result.model_fps, "postprocess": result.postprocess_fps}
    return ", ".join(
        f"{stage} {us:.1f}" + (f" ({1e6 / alone[stage]:.1f})" if stage in alone else "")
        for stage, us in result.stage_us_per_frame.items()
    )


def format_result(result: BenchResult) -> str:
    data = result.to_dict()
    shortest = min(r.frames for r in result.rounds)
    warning = [f"  warning: {result.load_warning}"] if result.load_warning else []
    if shortest < SHORT_ROUND_BATCHES * result.batch_size:
        warning += [
            f"  note: rounds of {shortest} frames are mostly start-up and draining; give more frames "
            f"(--frames) or fewer --rounds for a steady end-to-end figure"
        ]
    return "\n".join(
        [
            f"{result.model} on {result.video}: {result.frames} frames, batch {result.batch_size}",
            f"  decode-only       {result.decode_fps:8.1f} FPS",
            f"  model-only        {result.model_fps:8.1f} FPS",
            f"  postprocess-only  {result.postprocess_fps:8.1f} FPS",
            f"  end-to-end        {result.end_to_end_fps:8.1f} FPS  "
            f"({data['end_to_end_over_slowest_stage']:.2f} x the slowest stage, "
            f"{data['end_to_end_over_shared_cpu_bound']:.2f} x the shared-CPU bound of "
            f"{data['shared_cpu_bound_fps']:.1f} FPS; "
            f"{data['end_to_end_over_shared_cpu_bound_by_round']:.2f} by round)",
            *(
                [
                    f"  with tracking     {result.end_to_end_tracked_fps:8.1f} FPS  "
                    f"({data['tracked_over_untracked']:.3f} x untracked; the tracker "
                    f"{result.tracking_ms_per_frame:.3f} ms/frame)"
                ]
                if result.end_to_end_tracked_fps is not None
                else []
            ),
            f"  peak RSS          {result.peak_rss_mb:8.1f} MB",
            f"  threads           {result.threads}",
            f"  kernels           {result.kernels}",
            "  each stage end-to-end, us a frame (alone): " + _stage_costs(result),
            "  rounds (end-to-end / model-only around it): "
            + ", ".join(f"{r.end_to_end_over_model:.2f}" for r in result.rounds),
            *warning,
        ]
    )
