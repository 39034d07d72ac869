"""The closed-loop hook: user code called with every frame's poses and identities, as soon as they exist.

    class Laser:                                        # posestream live ... --processor mylab.rig:Laser
        def process(self, frame, meta):                 # frame: FramePredictions, meta: LiveInfo
            if frame.n_instances and frame.points[0, 0, 0] > 200:
                trigger()                               # your hardware call
        def close(self):                                # optional: called once when the engine stops
            ...

Policy:
- ``process`` runs in the pipeline's last thread, after tracking and before publishing, once per frame in
  the order frames were captured (per camera). Its time counts into the latency, so keep it short; hand
  slow work to your own thread.
- A call slower than ``slow_ms`` is warned with its time (at most once every 10 s, with how many were slow).
- A call that raises is logged with its traceback (every distinct error in full, repeats counted) and
  counted (``hook_errors`` in the statistics); the frame is still published and recorded, and
  the engine keeps serving.
"""

from __future__ import annotations

import importlib
import logging
import time
import traceback

from posestream.core.errors import ConfigError
from posestream.engine.types import FramePredictions
from posestream.live.processor import Processor

log = logging.getLogger("posestream.live")
WARN_EVERY_SECONDS = 10.0


def load_processor(spec: str) -> Processor:
    """An instance of ``module:Class`` (built with no arguments), checked to have ``process``."""
    module_name, _, class_name = spec.partition(":")
    if not module_name or not class_name:
        raise ConfigError(f"--processor {spec!r} must look like module:Class (e.g. mylab.rig:Laser)")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"--processor {spec!r}: cannot load it ({type(exc).__name__}: {exc}); the module must "
            "be importable (on PYTHONPATH or installed)"
        ) from exc
    processor = cls()
    if not callable(getattr(processor, "process", None)):
        raise ConfigError(f"--processor {spec!r}: {class_name} has no process(frame, meta) method")
    return processor


class HookRunner:
    """Calls a processor for each frame under the policy of the module docstring, and times it."""

    def __init__(self, processor: Processor, slow_ms: float = 5.0):
        self.processor, self.slow_ms = processor, slow_ms
        self.errors = 0
        self.slow = 0
        self._seen_errors: set[str] = set()
        self._slow_since_warning = 0
        self._last_warning = -WARN_EVERY_SECONDS

    def run(self, frame: FramePredictions) -> None:
        started = time.perf_counter()
        try:
            self.processor.process(frame, frame.live)
        except Exception as exc:  # noqa: BLE001 - the policy: report, count, keep serving
            self._failed(frame, exc)
        ms = (time.perf_counter() - started) * 1000.0
        if ms > self.slow_ms:
            self._was_slow(frame, ms)

    def _failed(self, frame: FramePredictions, exc: Exception) -> None:
        self.errors += 1
        where = (
            f"camera {frame.live.camera} frame {frame.live.counter}"
            if frame.live
            else f"frame {frame.frame_idx}"
        )
        key = f"{type(exc).__name__}: {exc}"
        if key not in self._seen_errors:
            self._seen_errors.add(key)
            log.error(
                "processor failed at %s (the frame is still published):\n%s",
                where,
                "".join(traceback.format_exception(exc)).rstrip(),
            )
        elif self.errors % 100 == 0:
            log.error("processor has failed %d times (last at %s: %s)", self.errors, where, key)

    def _was_slow(self, frame: FramePredictions, ms: float) -> None:
        self.slow += 1
        self._slow_since_warning += 1
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY_SECONDS:
            log.warning(
                "processor took %.1f ms on frame %s (over %.1f ms; %d slow calls since the last warning); "
                "its time adds to the latency",
                ms,
                frame.live.counter if frame.live else frame.frame_idx,
                self.slow_ms,
                self._slow_since_warning,
            )
            self._last_warning, self._slow_since_warning = now, 0

    def close(self) -> None:
        close = getattr(self.processor, "close", None)
        if callable(close):
            close()
