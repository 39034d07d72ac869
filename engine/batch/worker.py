"""A batch worker: loads the models once, then runs units one at a time (in a local thread or a Ray actor).

A unit writes its outputs under partial names and renames them when every frame is done, so an output
under its final name is always complete, and a unit that dies half-way can simply be run again (the
partial files are overwritten; nothing is appended twice).
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from posestream.core.errors import PosestreamError
from posestream.engine.batch.manifest import DONE, FAILED, INTERRUPTED
from posestream.engine.batch.plan import Unit
from posestream.engine.commands.track import TrackOptions, load_predictor, too_many_missing, track_video

HEARTBEAT_S = 0.5
"""How often an engine's ``results`` yields None while units run (the driver refreshes its progress)."""


@dataclass
class UnitResult:
    """What a worker sends back for a unit: small, never frames."""

    unit: str
    status: str
    frames: int = 0
    frames_missing: int = 0  # of ``frames``: failed to decode (marked missing in the outputs)
    wall_s: float = 0.0
    error: str = ""
    disk_full: bool = False  # the outputs' filesystem is full: no more units should go there
    outputs: list[str] = field(default_factory=list)
    worker: str = ""
    part: int | None = None  # the part of the unit it ran (None: the whole video)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s else 0.0


class UnitWorker:
    """The models of a run, loaded once; ``run(unit)`` for each unit given to this worker."""

    def __init__(
        self,
        model_dirs: list[str],
        options: TrackOptions,
        threads: int = 0,
        decode_threads: int | None = None,
    ):
        self.options = replace(options, progress=False, threads=threads, decode_threads=decode_threads)
        self.predictor = load_predictor(model_dirs, self.options)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.frames_done = 0  # over every unit, for the driver's progress bar
        self._lock = threading.Lock()

    def run(self, unit: Unit, part: int | None = None, stop: threading.Event | None = None) -> UnitResult:
        """Run one unit, or one part of it; a failure is its result (the worker goes on with the next)."""
        started = time.perf_counter()
        result = UnitResult(unit.name, DONE, worker=self.name, part=part)
        advance = self._counter(result)
        if part is None:
            partials, finals, options = unit.partials, unit.outputs, self.options
        else:  # a part: its frames (with the overlap), into its own analysis HDF5
            partials = {"analysis-h5": str(unit.part_file(part, partial=True))}
            finals = {"analysis-h5": str(unit.part_file(part))}
            options = replace(self.options, frames=unit.parts[part].frames, formats=("analysis-h5",))
        try:
            for partial in partials.values():
                Path(partial).unlink(missing_ok=True)  # a dead attempt's leftovers: start clean
            summary = track_video(
                self.predictor,
                unit.video,
                {f: Path(p) for f, p in partials.items()},
                options,
                progress=advance,
                stop=stop,
            )
            result.frames_missing = len(summary.missing_frames)
            if summary.interrupted:
                result.status = INTERRUPTED
            else:
                for fmt, partial in partials.items():
                    os.replace(partial, finals[fmt])
                result.outputs = list(finals.values())
                failed = too_many_missing(summary.frames, result.frames_missing, options)
                if part is None and failed:  # a part is judged with the others, once merged
                    result.status, result.error = FAILED, failed
        except (PosestreamError, OSError, ValueError, RuntimeError) as exc:
            result.status, result.error = FAILED, f"{type(exc).__name__}: {exc}"
            result.disk_full = is_disk_full(exc)
        result.wall_s = time.perf_counter() - started
        return result

    def _counter(self, result: UnitResult) -> Callable[[int], None]:
        """Counts the unit's frames written (and the worker's, for the driver's progress)."""

        def advance(n: int = 1) -> None:
            result.frames += n
            with self._lock:
                self.frames_done += n

        return advance

    def close(self) -> None:
        self.predictor.close()


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether an error (or one it was raised from) is "no space left on device"."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
