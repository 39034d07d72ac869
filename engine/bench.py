"""``posestream bench``: each stage alone, then the whole pipeline, on one video in one run.

- decode-only: the source decoding the selected frames, nothing else;
- model-only: the inference step (``Predictor.infer``) on batches preloaded in memory, cycled for
  at least 10 s so the figure is steady;
- postprocess-only: ``Predictor.postprocess`` on stored model outputs, on as many threads
  as the pipeline's postprocessing pool;
- end-to-end: the pipeline writing an analysis HDF5 file (to a temporary folder);
- peak RSS of the process (``ru_maxrss``) after the end-to-end run, before the frames and outputs
  of the stage-alone runs are held in memory.

The pipeline is as fast as its slowest stage at best; ``end_to_end / min(stages)`` says how
close it gets.
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

from .frame_ranges import FrameRanges
from .pipeline import Pipeline, PipelineConfig, default_batch_size
from .predictor import Predictor
from .sinks.analysis_h5 import AnalysisH5Writer
from .sources import open_source
from .sources.base import resolve_frames

PRELOAD_FRAMES = 128  # frames held in memory for the model-only and postprocess-only runs (fewer if the video is shorter)
STORED_OUTPUTS = 8  # batches of model outputs kept for the postprocess-only run


@dataclass
class BenchResult:
    model: str
    video: str
    frames: int
    batch_size: int
    decode_fps: float
    model_fps: float
    postprocess_fps: float
    end_to_end_fps: float
    peak_rss_mb: float

    def to_dict(self) -> dict:
        data = asdict(self)
        stages = min(self.decode_fps, self.model_fps, self.postprocess_fps)
        data["end_to_end_over_slowest_stage"] = self.end_to_end_fps / stages if stages else 0.0
        return data


def bench(video: str | os.PathLike, model_dirs: list[str], batch_size: int | None = None, frames: str | None = None,
          workers: int = 2, device: str = "cpu", backend: str = "auto") -> BenchResult:  # fmt: skip
    """Measure one video with one pose model; see the module docstring. ``batch_size`` None:
    ``default_batch_size(device)``."""
    batch_size = default_batch_size(device) if batch_size is None else batch_size
    with Predictor(model_dirs, device, backend=backend) as predictor:
        return _measure(video, predictor, batch_size, frames, workers)


def _measure(video: str | os.PathLike, predictor: Predictor, batch_size: int, frames: str | None,
             workers: int) -> BenchResult:  # fmt: skip
    """The four figures and peak RSS, in that order (RSS before preloading frames for model-only)."""
    with open_source(video) as source:
        selection = resolve_frames(frames, source.metadata.n_frames, source.metadata.path)
        decode_fps = _decode_only(source, selection)
    with open_source(video) as source, tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline(source, predictor, PipelineConfig(batch_size, frames, postprocess_workers=workers))
        with AnalysisH5Writer(Path(tmp) / "bench.h5", predictor.skeleton) as sink:
            summary = pipeline.run([sink])
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux; before preloading
    with open_source(video) as source:
        first = FrameRanges.parse(f"0-{min(PRELOAD_FRAMES, source.metadata.n_frames) - 1}")
        preloaded = np.stack([image for _, image in source.iter_frames(first, missing="yield") if image is not None])
    batches = [preloaded[i : i + batch_size] for i in range(0, len(preloaded), batch_size)]
    model_fps, outputs = _model_only(predictor, batches)
    postprocess_fps = _postprocess_only(predictor, outputs, workers)
    return BenchResult(predictor.kind, str(video), summary.frames, batch_size, decode_fps, model_fps,
                       postprocess_fps, summary.fps, peak_rss_mb)  # fmt: skip


def _decode_only(source, selection) -> float:
    """Decode FPS over the selection."""
    count = 0
    started = time.perf_counter()
    for _ in source.iter_frames(selection, missing="yield"):
        count += 1
    return count / (time.perf_counter() - started)


def _model_only(predictor: Predictor, batches: list[np.ndarray], min_seconds: float = 10.0) -> tuple[float, list]:
    """Inference FPS on preloaded batches, cycled for at least ``min_seconds`` (after one warm-up batch);
    keeps a few batches' outputs for the postprocess-only run."""
    predictor.infer(batches[0])
    outputs, count = [], 0
    started = time.perf_counter()
    while count == 0 or time.perf_counter() - started < min_seconds:
        for batch in batches:
            raw = predictor.infer(batch)
            count += len(batch)
            if len(outputs) < STORED_OUTPUTS:
                outputs.append(raw)
    return count / (time.perf_counter() - started), outputs


def _postprocess_only(predictor: Predictor, outputs: list, workers: int, rounds: int = 4) -> float:
    """Postprocessing FPS of ``workers`` threads over the stored outputs (after a warm-up pass)."""
    for raw in outputs:
        predictor.postprocess(raw)
    jobs = outputs * rounds
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(predictor.postprocess, jobs))
    return sum(raw.n_frames for raw in jobs) / (time.perf_counter() - started)


def format_result(result: BenchResult) -> str:
    data = result.to_dict()
    return "\n".join([
        f"{result.model} on {result.video}: {result.frames} frames, batch {result.batch_size}",
        f"  decode-only       {result.decode_fps:8.1f} FPS",
        f"  model-only        {result.model_fps:8.1f} FPS",
        f"  postprocess-only  {result.postprocess_fps:8.1f} FPS",
        f"  end-to-end        {result.end_to_end_fps:8.1f} FPS  "
        f"({data['end_to_end_over_slowest_stage']:.2f} x the slowest stage)",
        f"  peak RSS          {result.peak_rss_mb:8.1f} MB",
    ])  # fmt: skip
