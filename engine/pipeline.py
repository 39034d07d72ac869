"""The streaming pipeline: decode -> batch -> infer -> postprocess -> ordered results -> tracker.

    pipeline = Pipeline(source, predictor, PipelineConfig(batch_size=8),
    tracker=Tracker(fps=source.metadata.fps))
    for frame in pipeline:            # FramePredictions in frame order, missing frames included
        ...
    summary = pipeline.run([AnalysisH5Writer(...)])   # or: write every batch's FrameBlock to sinks

Results move as one ``FrameBlock`` per batch (arrays with a frame axis) from postprocessing through the
reorder and the tracker to the sinks (``write_block``); one ``FramePredictions`` per frame is made only for
a caller that iterates.

Threads and the queues between them (each bounded, each with its policy):

    decode ── batches (block, 2 x workers) ──> infer ── raw (block, 2 x workers) ──> postprocess x W
        ^                                        |                                        |
        └──── free frame buffers (block) <───────┘   results (reordered, bounded) ──> tracker ──> caller

- decode: the source (with its decoder's own threads) decodes frames, which are
  copied into a pool of preallocated (batch, H, W, C) buffers; a frame that
  fails to decode is recorded as missing (never silently skipped). Files fill
  every batch. Live sources choose each batch themselves (what is waiting) and
  end it with FLUSH. With ``latency_first`` there is no decode thread and one
  frame buffer: the infer stage takes the next batch from the source when it
  is free for one, so frames wait in the source (which drops its oldest when
  full), never in the pipeline's queues.
- infer: one session per device runs each batch; the buffer goes back to the
  pool as soon as the network(s) are done with it. A backend that overlaps its
  copies with the network (torch on CUDA) gets the next batch before this one's
  outputs are collected: one batch in flight.
- postprocess: W threads decode outputs into instances (numpy and the compiled
  kernels, which release the GIL); with W = 0 the infer stage does it (live: one hand-over less).
- tracker (optional): in the caller's thread, each block's frames in order get
  their track ids (``engine/tracking``) before they are yielded or written.
- the caller's thread receives frames in exact order and writes the sinks, so
  Ctrl-C lands there and the sinks close cleanly with every frame done.

Any stage's error stops every stage (they poll a shared stop signal) and is
raised to the caller as ``PipelineError`` naming the stage and the frame.
"""

from __future__ import annotations

import collections
import contextlib
import resource
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from posestream.core.errors import ConfigError, PosestreamError
from posestream.engine import kernels
from posestream.engine.frame_ranges import FrameRanges
from posestream.engine.model.instances import InstanceBatch
from posestream.engine.model.predictor import Predictor, RawBatch
from posestream.engine.model.warmup import warm_up
from posestream.engine.queues import END, StageQueue, Stopped, StopSignal
from posestream.engine.sinks.base import Sink
from posestream.engine.sources.base import FLUSH, IDLE, FrameSource, resolve_frames
from posestream.engine.tracking import Tracker, TrackerConfig
from posestream.engine.types import UNTRACKED, FrameBlock, FramePredictions, ModelMetadata


class PipelineError(PosestreamError, RuntimeError):
    """A stage failed; ``stage`` names it and ``frame_idx`` the first frame of the batch it was on."""

    def __init__(self, message: str, stage: str, frame_idx: int | None):
        self.stage, self.frame_idx = stage, frame_idx
        super().__init__(message)


CPU_BATCH_PIXELS = 4 * 192 * 192  # network-input pixels per batch on CPU


def default_batch_size(device: str, metadata: ModelMetadata) -> int:
    """Frames per batch when the user gives none, for a model whose (first) network takes ``metadata``'s
    input.

    On a GPU 16 (it needs large batches to be busy). On CPU onnxruntime parallelises inside each frame,
    so batches help only small networks (fewer calls) while activations grow with the batch (about 80
    MB per 384x384 frame for a bottom-up UNet): the largest power of two up to 16 whose batch holds at
    most CPU_BATCH_PIXELS network-input pixels. Measured on 2 cores, fly video: the demo network
    (192x192 input) 141-148 FPS at batch 4 against 124-137 at 1; a 384x384 UNet as fast at 1 as at 4
    (18.3 against 20.2 ms a frame, model alone) with 330 MB peak RSS instead of 515.
    """
    if device != "cpu":
        return 16
    height, width = metadata.input_shape[:2]
    pixels = height * width * metadata.input_scale**2
    batch = 1
    while batch < 16 and 2 * batch * pixels <= CPU_BATCH_PIXELS:
        batch *= 2
    return batch


@dataclass(frozen=True)
class PipelineConfig:
    batch_size: int = 8
    frames: FrameRanges | str | None = None  # None: every frame
    postprocess_workers: int = 2  # threads; 0: the infer stage postprocesses each batch (one hand-over less)
    queue_batches: int = 0  # batches each queue holds; 0: 2 x postprocess_workers
    stop_timeout: float = 30.0  # seconds a stage may take to stop once asked
    latency_first: bool = False  # one frame buffer: a batch is chosen only when the model is free for it

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        if self.postprocess_workers < 0:
            raise ConfigError(f"postprocess workers must be >= 0, got {self.postprocess_workers}")
        if isinstance(self.frames, str):
            object.__setattr__(self, "frames", FrameRanges.parse(self.frames))


@dataclass
class Batch:
    """A batch of consecutive selected frames: ``slots[i]`` is frame ``indices[i]``'s row in
    ``frames``, or -1 when it failed to decode."""

    seq: int
    indices: list[int]
    slots: list[int]
    # (batch_size, H, W, C) pool buffer, rows [0, n_decoded) valid; None once returned
    frames: np.ndarray | None
    n_decoded: int
    infos: list = field(default_factory=list)  # live sources: each frame's LiveInfo (else None)
    infer_ns: tuple[int, int] = (0, 0)  # when the model started and finished the batch (monotonic ns)


@dataclass
class RunSummary:
    frames: int = 0
    missing_frames: list[int] = field(default_factory=list)
    converted: str = ""  # the source's colour conversion for the model, in words ("" if none)
    wall_seconds: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)  # busy time per stage (pool: summed)
    interrupted: bool = False
    model: str = ""  # the predictor's kind: single_instance, bottomup or top-down
    identities: int | None = None  # identities the tracker started (None: no tracker)
    warmup_seconds: float = (
        0.0  # compiling (first run after an install) or loading the kernels, before the clock
    )
    peak_rss_mb: float = 0.0  # the process's peak resident memory when the run ended
    threads: str = ""  # the predictor's thread budget (engine/threads.py), in words
    kernels: str = ""  # how the compiled kernels were built (engine/kernels), in words

    @property
    def fps(self) -> float:
        return self.frames / self.wall_seconds if self.wall_seconds else 0.0

    def bottleneck(self) -> str:
        return max(self.stage_seconds, key=self.stage_seconds.get) if self.stage_seconds else ""


class Pipeline:
    """Frames of ``source`` through ``predictor``; iterate for ordered FramePredictions, or ``run(sinks)``.

    tracker: gives every frame's instances their identities, in frame order (it keeps its state across
    iterations: give a new one, or ``reset()`` it, to track another video).
    """

    def __init__(
        self,
        source: FrameSource,
        predictor: Predictor,
        config: PipelineConfig = PipelineConfig(),
        tracker: Tracker | None = None,
    ):
        shape = (source.metadata.height, source.metadata.width, source.metadata.channels)
        if shape != tuple(predictor.input_shape):
            fix = (
                f"re-export it with --input-size {shape[0]}x{shape[1]}"
                if shape[:2] != tuple(predictor.input_shape[:2])
                else f"open the video with open_source(..., channels={predictor.input_shape[2]}) to convert "
                "its colour"
            )
            raise ConfigError(
                f"{source.metadata.path}: frames are (height, width, channels) {shape}, the model takes "
                f"{tuple(predictor.input_shape)}; {fix}"
            )
        self.source, self.predictor, self.config, self.tracker = source, predictor, config, tracker
        self.selection = (
            None
            if source.live
            else resolve_frames(config.frames, source.metadata.n_frames, source.metadata.path)
        )
        self.summary = RunSummary(converted=source.converted)
        self._busy: dict[str, float] = {}
        self.warmup_seconds = 0.0
        self._busy_lock = threading.Lock()

    def __len__(self) -> int:
        """Frames selected (0 for a live source, whose frames come until it stops)."""
        return 0 if self.selection is None else len(self.selection)

    # -- the caller's side ----------------------------------------------------

    def __iter__(self) -> Iterator[FramePredictions]:
        """Run the stages and yield every selected frame's predictions in frame order."""
        for block in self.blocks():
            yield from block.frames()

    def blocks(self) -> Iterator[FrameBlock]:
        """Run the stages and yield each batch's predictions, in frame order."""
        cfg = self.config
        producers = max(cfg.postprocess_workers, 1)  # stages that hand results over
        depth = cfg.queue_batches or 2 * producers
        stop = StopSignal()
        buffers = 1 if cfg.latency_first else depth + 2
        free = StageQueue("free buffers", buffers, stop)  # block: decode waits for a buffer
        shape = (cfg.batch_size, *self.predictor.input_shape)
        for _ in range(buffers):
            free.put(np.empty(shape, np.uint8))
        raw = StageQueue("model outputs", depth, stop)  # block
        results = _Reorder(depth * 2, stop)
        self.warmup_seconds = warm_up(self.predictor, self.tracker)  # never counted as a stage's work
        if cfg.latency_first:  # the infer stage takes each batch from the source when it is free for one
            threads = [
                threading.Thread(
                    target=self._guard,
                    daemon=True,
                    args=("infer", stop, self._infer, self._batches(stop, free), raw, results, free),
                )
            ]
        else:
            batches = StageQueue("decoded batches", depth, stop)  # block: nothing is dropped from files
            threads = [
                threading.Thread(
                    target=self._guard, args=("decode", stop, self._decode, free, batches), daemon=True
                ),
                threading.Thread(
                    target=self._guard,
                    daemon=True,
                    args=("infer", stop, self._infer, iter(batches.get, END), raw, results, free),
                ),
            ]
        threads += [
            threading.Thread(
                target=self._guard, args=("postprocess", stop, self._postprocess, raw, results), daemon=True
            )
            for _ in range(cfg.postprocess_workers)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        try:
            for block in results.in_order(producers):
                if self.tracker is not None:
                    self._track(block)
                yield block
        except GeneratorExit:  # the caller stopped iterating
            stop.stop("caller")
            raise
        except BaseException as exc:  # Ctrl-C in the caller's thread, or a stage's error
            stop.stop("caller", exc)
            raise
        finally:
            stop.stop()
            self._join(threads)
            self.summary.wall_seconds = time.perf_counter() - started
            self.summary.stage_seconds = dict(self._busy)
        if stop.error is not None and stop.stage != "caller":
            raise self._stage_error(stop)

    def run(
        self,
        sinks: Sequence[Sink] = (),
        progress: bool | Callable[[int], None] = False,
        stop: threading.Event | None = None,
    ) -> RunSummary:
        """Write each batch's frames to every sink (``write_block(FrameBlock)``) and return the run's summary.

        progress: True for a progress bar on stderr, or a function called with the frames of each batch done.
        stop: checked after each batch; once set, the run stops as on Ctrl-C (KeyboardInterrupt).
        """
        from posestream.engine.progress import progress_bar

        self.summary = RunSummary(
            model=self.predictor.kind,
            threads=self.predictor.threads.describe(),
            converted=self.source.converted,
        )
        blocks = self.blocks()
        bar = progress_bar(len(self), "track", enabled=progress is True)
        try:
            with bar if not callable(progress) else contextlib.nullcontext(progress) as advance:
                for block in blocks:
                    started = time.perf_counter()
                    for sink in sinks:
                        sink.write_block(block)
                    self._add_busy("write", time.perf_counter() - started)
                    self.summary.frames += len(block)
                    if block.missing.any():
                        self.summary.missing_frames += block.frame_idx[block.missing].tolist()
                    advance(len(block))
                    if stop is not None and stop.is_set():
                        raise KeyboardInterrupt
        finally:
            blocks.close()  # a sink's error or Ctrl-C here: stop and join every stage before leaving
            if self.tracker is not None:
                self.summary.identities = self.tracker.identities
        self.summary.stage_seconds = dict(self._busy)
        self.summary.warmup_seconds = self.warmup_seconds
        self.summary.kernels = kernels.how_compiled()
        self.summary.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        return self.summary

    # -- stages ---------------------------------------------------------------

    def _guard(self, stage: str, stop: StopSignal, body, *queues) -> None:
        """Run a stage body; on failure, stop the pipeline with the stage's name and error."""
        try:
            body(stop, *queues)
        except Stopped:
            pass  # another stage (or the caller) stopped the pipeline; it reports why
        except BaseException as exc:  # noqa: BLE001 - every error must reach the caller
            stop.stop(stage, exc)

    def _decode(self, stop: StopSignal, free: StageQueue, batches: StageQueue) -> None:
        for batch in self._batches(stop, free):
            batches.put(batch)
        batches.put(END)

    def _batches(self, stop: StopSignal, free: StageQueue) -> Iterator[Batch]:
        """The source's frames copied into pool buffers, a batch at a time (a live source says when a batch
        ends); each buffer is taken from ``free`` before its frames are read."""
        size, seq, batch = self.config.batch_size, 0, None
        frames = self.source.iter_frames(self.selection, missing="yield")
        while True:
            if batch is None:  # a buffer the infer stage has finished with; live frames wait in the source
                batch = Batch(seq, [], [], free.get(), 0)
            started = time.perf_counter()
            item = next(frames, None)
            if item is None:
                break
            if item is IDLE:  # a live source with no frame yet
                if stop.is_set():
                    raise Stopped("decode")
                continue
            if item is FLUSH:  # a live source's batch is complete (and not yet sent for being full)
                if batch.indices:
                    yield batch
                    batch, seq = None, seq + 1
                continue
            idx, image, *info = item
            batch.indices.append(idx)
            batch.infos.append(info[0] if info else None)
            if image is None:
                batch.slots.append(-1)
            else:
                batch.frames[batch.n_decoded] = image
                batch.slots.append(batch.n_decoded)
                batch.n_decoded += 1
            self._add_busy("decode", time.perf_counter() - started)
            if len(batch.indices) == size:
                yield batch
                batch, seq = None, seq + 1
            if stop.is_set():
                raise Stopped("decode")
        if batch is not None and batch.indices:
            yield batch

    def _infer(
        self, stop: StopSignal, batches: Iterator[Batch], raw: StageQueue, results: _Reorder, free: StageQueue
    ) -> None:
        """Each batch through the network(s). A backend that overlaps (CUDA) gets the next batch before this
        one's outputs are collected, so its copy in runs while this one's network does."""
        in_flight = 1 if self.predictor.overlaps and not self.config.latency_first else 0
        pending: collections.deque = collections.deque()
        for batch in batches:
            started, started_ns = time.perf_counter(), time.monotonic_ns()
            try:
                handle = self.predictor.submit(batch.frames[: batch.n_decoded]) if batch.n_decoded else None
            except Exception as exc:
                raise _AtFrame(batch.indices[0], exc) from exc
            free.put(batch.frames)
            batch.frames = None  # back in the pool: the next batch will overwrite it
            self._add_busy("infer", time.perf_counter() - started)
            pending.append((batch, handle, started_ns))
            while len(pending) > in_flight:
                self._collect(*pending.popleft(), raw, results)
        while pending:
            self._collect(*pending.popleft(), raw, results)
        for _ in range(self.config.postprocess_workers):
            raw.put(END)
        if not self.config.postprocess_workers:
            results.put_end()

    def _collect(self, batch: Batch, handle, started_ns: int, raw: StageQueue, results: _Reorder) -> None:
        """A submitted batch's outputs, to the postprocessing pool (or postprocessed here without one)."""
        started = time.perf_counter()
        try:
            outputs = handle.result() if handle is not None else None
        except Exception as exc:
            raise _AtFrame(batch.indices[0], exc) from exc
        batch.infer_ns = (started_ns, time.monotonic_ns())
        self._add_busy("infer", time.perf_counter() - started)
        if self.config.postprocess_workers:
            raw.put((batch, outputs))
        else:
            results.put(batch.seq, self._block(batch, outputs))

    def _postprocess(self, stop: StopSignal, raw: StageQueue, results: _Reorder) -> None:
        while (item := raw.get()) is not END:
            batch, outputs = item
            results.put(batch.seq, self._block(batch, outputs))
        results.put_end()

    def _block(self, batch: Batch, outputs: RawBatch | None) -> FrameBlock:
        """A batch's model outputs decoded into its frames' instances (missing frames: none)."""
        started = time.perf_counter()
        try:
            found = self.predictor.postprocess(outputs) if outputs is not None else None
        except Exception as exc:
            raise _AtFrame(batch.indices[0], exc) from exc
        block = _frame_block(batch, found, self.predictor.skeleton.n_nodes)
        if batch.infos and batch.infos[0] is not None:
            _stamp_live(block, batch)
        self._add_busy("postprocess", time.perf_counter() - started)
        return block

    def _track(self, block: FrameBlock) -> None:
        """Identities for one batch's frames, in order (the caller's thread: blocks arrive in order there)."""
        started = time.perf_counter()
        try:
            self.tracker.update_block(block)
        except Exception as exc:
            frame = getattr(exc, "frame_idx", int(block.frame_idx[0]))
            raise PipelineError(
                f"track stage failed at frame {frame}: {type(exc).__name__}: {exc}", "track", frame
            ) from exc
        if block.live is not None:
            done = time.monotonic_ns()
            for info in block.live:
                info.track_ns = done
        self._add_busy("track", time.perf_counter() - started)

    # -- helpers --------------------------------------------------------------

    def _add_busy(self, stage: str, seconds: float) -> None:
        with self._busy_lock:
            self._busy[stage] = self._busy.get(stage, 0.0) + seconds

    def _join(self, threads: list[threading.Thread]) -> None:
        deadline = time.monotonic() + self.config.stop_timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            raise PipelineError(
                f"pipeline threads did not stop within {self.config.stop_timeout} s", "join", None
            )

    def _stage_error(self, stop: StopSignal) -> PipelineError:
        error = stop.error
        frame = error.frame_idx if isinstance(error, _AtFrame) else getattr(error, "frame_idx", None)
        cause = error.__cause__ if isinstance(error, _AtFrame) else error
        where = f" at frame {frame}" if frame is not None else ""
        exc = PipelineError(
            f"{stop.stage} stage failed{where}: {type(cause).__name__}: {cause}", stop.stage or "", frame
        )
        exc.__cause__ = cause
        return exc


def assemble(
    source: FrameSource, predictor: Predictor, config: PipelineConfig, tracking: TrackerConfig | None
) -> Pipeline:
    """The one assembly of a run (track, batch's units, bench's rounds, live): the pipeline, with the
    source's own tracker stage when ``tracking`` is given (a video's frame rate; a tracker per camera)."""
    return Pipeline(source, predictor, config, source.tracker(tracking) if tracking is not None else None)


def _frame_block(batch: Batch, found: InstanceBatch | None, n_nodes: int) -> FrameBlock:
    """The block of a batch's frames from the instances of its decoded frames (``found``: None when none
    decoded); frames that failed to decode are missing, with no instances."""
    slots = np.array(batch.slots, np.int64)
    decoded = slots >= 0
    counts = np.zeros(len(slots), np.int64)
    if found is None:
        found = InstanceBatch.empty(0, n_nodes)
    counts[decoded] = found.counts[slots[decoded]]  # decoded frames keep their order in the batch
    rows = found.instances
    track_ids = (
        rows.identities if rows.identities is not None else np.full(len(rows.points), UNTRACKED, np.int32)
    )
    scores = (
        rows.identity_scores
        if rows.identity_scores is not None
        else np.full(len(rows.points), np.nan, np.float32)
    )
    return FrameBlock(
        np.array(batch.indices, np.int64),
        counts,
        rows.points,
        rows.point_scores,
        rows.instance_scores,
        track_ids,
        scores,
        ~decoded,
    )


def _stamp_live(block: FrameBlock, batch: Batch) -> None:
    """Give a live batch's frames their LiveInfo, with the model's and postprocessing's times."""
    done = time.monotonic_ns()
    for info in batch.infos:
        info.infer_start_ns, info.infer_end_ns = batch.infer_ns
        info.postprocess_ns, info.batch = done, len(batch.indices)
    block.live = list(batch.infos)


class _AtFrame(Exception):
    """Wraps a stage's error with the first frame of the batch it was working on."""

    def __init__(self, frame_idx: int, error: BaseException):
        self.frame_idx = frame_idx
        super().__init__(str(error))


class _Reorder:
    """Results of batches finished in any order, handed out in ``seq`` order.

    Bounded: a worker whose batch is more than ``window`` ahead of the next one
    due waits, so memory does not grow when one batch is slow.
    """

    def __init__(self, window: int, stop: StopSignal):
        self._window, self._stop = window, stop
        self._done: dict[int, FrameBlock] = {}
        self._next = 0
        self._ended = 0
        self._cond = threading.Condition()

    def put(self, seq: int, block: FrameBlock) -> None:
        with self._cond:
            while seq >= self._next + self._window:
                self._wait()
            self._done[seq] = block
            self._cond.notify_all()

    def put_end(self) -> None:
        with self._cond:
            self._ended += 1
            self._cond.notify_all()

    def in_order(self, producers: int) -> Iterator[FrameBlock]:
        """Yield each batch's block in order until every producer has ended and all are out."""
        while True:
            with self._cond:
                while self._next not in self._done and not (self._ended == producers and not self._done):
                    if self._stop.is_set():
                        return
                    self._cond.wait(0.05)
                if self._next not in self._done:
                    return
                block = self._done.pop(self._next)
                self._next += 1
                self._cond.notify_all()
            yield block

    def _wait(self) -> None:
        if self._stop.is_set():
            raise Stopped("results")
        self._cond.wait(0.05)
