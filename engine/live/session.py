"""``posestream live``: cameras in, poses and identities out, on the one pipeline with a latency-first policy.

    cameras ─ZeroMQ─> receiver ─> waiting queue ─> [pipeline: batch what waits ─> infer ─> postprocess
    (drop-oldest) ─> tracker per camera] ─> hook ─> publish ─> steps ─> record    stats + status line: once
    a second

- One predictor serves every camera; a batch is whatever frames are waiting, up to ``max_batch``.
- Each camera has its own tracker (its own identities) and its own recording.
- Steps (``LiveStep``) join what the cameras saw after the poses are out, before the recording: the layers
  above give them (``posestream.multiview.live_sink``: 3D poses of a calibrated rig, ``live --calibration``).
- Stops on ``stop()``, SIGINT, SIGTERM or after ``duration`` seconds: the frames waiting are finished,
  the files closed, and the final figures returned (and written to ``stats_json``).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from posestream.core.errors import ConfigError
from posestream.engine.interrupts import StopRequests
from posestream.engine.live.hooks import HookRunner, Processor, load_processor
from posestream.engine.live.publisher import PosePublisher
from posestream.engine.live.recorder import LiveRecorder
from posestream.engine.live.source import CameraInput, CameraSource
from posestream.engine.live.stats import StatsBoard, camera_stats
from posestream.engine.live.trackers import CameraTrackers
from posestream.engine.model.predictor import Predictor
from posestream.engine.model.warmup import warm_up
from posestream.engine.pipeline import PipelineConfig, assemble
from posestream.engine.tracking import TrackerConfig
from posestream.engine.types import FrameBlock, FramePredictions
from posestream.live.security import Curve

log = logging.getLogger("posestream.live")
SWITCH_INTERVAL = 0.0005  # s: a stage that wakes gets the interpreter within this (Python's default: 5 ms)


@dataclass(frozen=True)
class LiveOptions:
    cameras: tuple[str, ...]
    publish: str | None = None  # address the poses go out on (PUB, bound)
    record: str | None = None  # OUT.h5: one OUT.cam<id>.h5 per camera
    tracking: TrackerConfig | None = None
    processor: str | None = None  # module:Class, the closed-loop hook
    max_batch: int = 4
    duration: float | None = None  # seconds; None: until stopped
    queue_frames: int = 4  # per camera
    gather_ms: float = 1.0
    silent_after: float = 2.0
    hook_slow_ms: float = 5.0
    stats_json: str | None = None
    allow_remote: bool = False
    curve: str | None = None  # key directory (posestream keys)
    device: str = "cpu"
    backend: str = "auto"
    threads: int = 0  # the model's CPU threads; 0: the thread budget's (engine/threads.py)
    peak_threshold: float | None = None  # None: the model's
    max_instances: int | None = None  # None: the model's
    status: bool = True  # a status line on stderr once a second
    lossless: bool = False  # queues block instead of dropping (replays and tests; engine/live/source.py)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cameras", tuple(self.cameras))
        if self.max_batch < 1:
            raise ConfigError(f"--max-batch must be >= 1, got {self.max_batch}")
        if self.duration is not None and not self.duration > 0:
            raise ConfigError(f"--duration must be > 0 seconds, got {self.duration}")


class LiveStep(Protocol):
    """A sink the live run calls after publishing each block's poses (sinks/base.py), with a run's ends."""

    name: str  # its figures' key in the summary and --stats-json
    path: Path | None  # what it records, if anything

    def write_block(self, block: FrameBlock) -> None: ...

    def finish(self) -> None:
        """The cameras are done: the last outputs, then ``close``."""

    def close(self) -> None:
        """Release everything (also after an error, instead of ``finish``); once."""

    def figures(self) -> dict: ...

    def publish_stats(self) -> None:
        """Once a second, beside the cameras' statistics."""

    def status(self) -> str:
        """Its part of the status line."""


StepFactory = Callable[["LiveSession"], LiveStep]
"""Makes a step once the session has its model, publisher and options (and ``stop`` for its errors)."""


@dataclass
class LiveSummary:
    cameras: dict[int, dict] = field(default_factory=dict)  # per camera: the --stats-json figures
    malformed: dict[str, int] = field(default_factory=dict)  # messages refused, by reason
    hook_errors: int = 0
    seconds: float = 0.0
    recordings: list[Path] = field(default_factory=list)
    steps: dict[str, dict] = field(default_factory=dict)  # each step's figures, by its name

    def to_dict(self) -> dict:
        out = asdict(self)
        out["cameras"] = {str(k): v for k, v in self.cameras.items()}
        out["recordings"] = [str(p) for p in self.recordings]
        return out


class LiveSession:
    """A live run; ``run()`` serves until stopped. Build it, then run it (from the main thread for
    signals)."""

    def __init__(
        self,
        model_dirs,
        options: LiveOptions,
        processor: Processor | None = None,
        steps: Sequence[StepFactory] = (),
    ):
        self.options = options
        self.steps: list[LiveStep] = []
        self.board = StatsBoard()
        self._done = threading.Event()
        self._closed = False
        self.predictor = self.hook = self.publisher = self.recorder = self.source = None
        try:
            self._open(model_dirs, processor, steps)
        except BaseException:
            self.close()
            raise

    def _open(self, model_dirs, processor: Processor | None, steps: Sequence[StepFactory]) -> None:
        """The model, the hook, the outputs and steps, then (warm) the cameras and the pipeline."""
        options = self.options
        curve = Curve(options.curve) if options.curve else None
        self.predictor = Predictor(
            model_dirs,
            options.device,
            threads=options.threads,
            backend=options.backend,
            peak_threshold=options.peak_threshold,
            max_instances=options.max_instances,
        )
        tracked = self.predictor.tracked_with(options.tracking)  # an identity model's classes are identities
        processor = processor or (load_processor(options.processor) if options.processor else None)
        self.hook = HookRunner(processor, options.hook_slow_ms) if processor else None
        if options.publish:
            self.publisher = PosePublisher(options.publish, allow_remote=options.allow_remote, curve=curve)
        if options.record:
            self.recorder = LiveRecorder(
                options.record,
                self.predictor.skeleton,
                tracked,
                self._provenance(),
                self.predictor.class_names,
            )
        for make in steps:
            self.steps.append(make(self))
        self.warm_up()  # before subscribing to the cameras
        cameras = CameraInput(
            options.cameras,
            options.queue_frames,
            options.max_batch,
            options.gather_ms,
            silent_after=options.silent_after,
            allow_remote=options.allow_remote,
            curve=curve,
            lossless=options.lossless,
        )
        self.source = CameraSource(cameras, self.predictor.input_shape)
        self.serving = Serving(self.board, self.hook, self.publisher, self._extra)
        config = PipelineConfig(
            batch_size=options.max_batch, postprocess_workers=0, queue_batches=1, latency_first=True
        )
        self.pipeline = assemble(self.source, self.predictor, config, options.tracking)

    def _provenance(self) -> dict:
        options = {
            k: v for k, v in asdict(self.options).items() if k in ("cameras", "max_batch", "processor")
        }
        return {
            "models": [str(m.model_dir.path.resolve()) for m in self.predictor.models],
            "live": options,
            "tracking": asdict(self.options.tracking) if self.options.tracking else None,
        }

    def warm_up(self) -> None:
        """Run the model(s) once per batch size on blank frames, so no camera frame pays a first call's cost
        (onnxruntime plans each new batch shape on its first run), and compile or load every kernel the
        decoders and trackers use (engine/model/warmup.py), all before any camera frame can wait for it."""
        tracking = self.options.tracking
        batch_sizes = tuple(range(1, self.options.max_batch + 1))
        warm_up(self.predictor, CameraTrackers(tracking) if tracking is not None else None, batch_sizes)

    def stop(self) -> None:
        """Stop taking frames; ``run`` returns once those waiting are done (any thread, or a signal
        handler)."""
        self.source.stop()

    def run(self) -> LiveSummary:
        """Serve until stopped; returns the final figures per camera."""
        started = time.monotonic()
        sys.setswitchinterval(SWITCH_INTERVAL)
        reporter = threading.Thread(target=self._report, name="live stats", daemon=True)
        timer = threading.Timer(self.options.duration, self.stop) if self.options.duration else None
        with StopRequests(self.stop):
            reporter.start()
            if timer:
                timer.start()
            try:
                self.pipeline.run(
                    [self.serving, *self.steps, *(s for s in (self.recorder,) if s is not None)]
                )
                for step in self.steps:
                    step.finish()
                self._count_ends()
            finally:
                self._done.set()
                if timer:
                    timer.cancel()
                reporter.join(5.0)
                self.close()
                summary = self.summary(time.monotonic() - started)
                if self.options.stats_json:  # also after an error: the figures up to it
                    Path(self.options.stats_json).write_text(json.dumps(summary.to_dict(), indent=2))
        return summary

    def _count_ends(self) -> None:
        """Frames a camera sent after the last one received (its end message says how many) are dropped."""
        for camera, last in self.source.ended.items():
            if camera in self.board.cameras:
                gap = self.board.cameras[camera].ended(last)
                if self.recorder is not None:
                    self.recorder.write_dropped(camera, gap)

    def _report(self) -> None:
        """Once a second: each camera's statistics published, and the status line."""
        last_line = 0.0
        while not self._done.wait(1.0):
            stats = self.board.snapshot(dict(self.source.evicted), set(self.source.silent), self._extra())
            if self.publisher is not None:
                for camera, figures in stats.items():
                    self.publisher.publish_stats(camera, figures)
                for step in self.steps:
                    step.publish_stats()
            if self.options.status and stats and (sys.stderr.isatty() or time.monotonic() - last_line >= 10):
                end = "\r" if sys.stderr.isatty() else "\n"
                line = " | ".join(
                    [status_line(stats, self.source.malformed), *(s.status() for s in self.steps)]
                )
                print(line, end=end, file=sys.stderr, flush=True)
                last_line = time.monotonic()

    def _extra(self) -> dict:
        """What every statistics message also carries."""
        return {
            "hook_errors": self.hook.errors if self.hook else 0,
            "malformed": sum(self.source.malformed.values()),
            "skeleton": self.predictor.skeleton.to_dict(),
            "tracked": self.options.tracking is not None or bool(self.predictor.class_names),
            "track_names": list(self.predictor.class_names),  # an identity model's: track id i is name i
        }

    def summary(self, seconds: float) -> LiveSummary:
        cameras = {
            camera: camera_stats(ledger, self.source.evicted.get(camera, 0), camera in self.source.silent)
            for camera, ledger in sorted(self.board.cameras.items())
        }
        recordings = self.recorder.paths if self.recorder else []
        return LiveSummary(
            cameras,
            dict(self.source.malformed),
            self.hook.errors if self.hook else 0,
            seconds,
            recordings + [s.path for s in self.steps if s.path is not None],
            {s.name: s.figures() for s in self.steps},
        )

    def close(self) -> None:
        """Release sockets, files and the model (after ``run``, or instead of it); once."""
        if self._closed:
            return
        self._closed = True
        for closing in (self.source, *self.steps, self.publisher, self.recorder, self.hook, self.predictor):
            if closing is not None:
                closing.close()


def status_line(stats: dict[int, dict], malformed) -> str:
    parts = [
        f"cam {c}: {s['rate_hz']:5.1f} Hz, dropped {s['frames_dropped']}, p50 "
        f"{s['window_latency_ms']['p50']:.1f} "
        f"p99 {s['window_latency_ms']['p99']:.1f} ms" + (" SILENT" if s["silent"] else "")
        for c, s in sorted(stats.items())
    ]
    bad = sum(malformed.values())
    return " | ".join(parts) + (f" | {bad} malformed" if bad else "")


class Serving:
    """The live run's first sink: each frame counted by its camera's ledger (with the frames dropped before
    it), the closed-loop hook called, the frames published (the publisher is a sink), then each one's latency
    counted. The recorder, a sink of its own, comes after: a file write is never in the latency."""

    def __init__(self, board: StatsBoard, hook: HookRunner | None, publisher: PosePublisher | None, extra):
        self.board, self.hook, self.publisher, self.extra = board, hook, publisher, extra

    def write_block(self, block: FrameBlock) -> None:
        frames = list(block.frames())
        for frame in frames:
            self._arrive(frame)
        if self.publisher is not None:
            self.publisher.write_block(block)
        for frame in frames:
            info = frame.live
            ledger = self.board.ledger(info.camera)
            if self.publisher is not None:
                ledger.published += 1
            else:
                info.publish_ns = time.monotonic_ns()
            ledger.done(info)

    def _arrive(self, frame: FramePredictions) -> None:
        """Count the frame, and call the hook; a new camera's skeleton goes to the clients first."""
        info = frame.live
        if not info.track_ns:  # no tracker: the frame reached this thread now
            info.track_ns = time.monotonic_ns()
        ledger = self.board.ledger(info.camera)
        if self.publisher is not None and not ledger.received:
            self.publisher.publish_stats(info.camera, {"camera": info.camera, **self.extra()})
        info.dropped_before = ledger.arrived(info)
        if info.restarted:
            log.warning(
                "camera %d restarted (its counter went back, or jumped, to %d); counting starts again",
                info.camera,
                info.counter,
            )
        if self.hook is not None:
            self.hook.run(frame)
        info.hook_ns = time.monotonic_ns()

    def close(self) -> None:
        """The hook and publisher are the session's to close."""
