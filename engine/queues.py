"""Bounded queues between pipeline stages, and the stop signal they all watch.

Every wait (a put on a full queue, a get on an empty one) wakes up every
``POLL_SECONDS`` to check the pipeline's ``StopSignal``, so when any stage fails
or the user interrupts, every other stage notices within that time: no put,
get or join waits forever.

Policies (stated per queue where it is built):
- ``block``: a full queue makes the producer wait (files: nothing is lost, the
  slowest stage sets the pace);
- ``drop_oldest``: a full queue drops its oldest item to take the new one (live
  cameras: the newest frames win; drops are counted).
"""

from __future__ import annotations

import collections
import threading
from typing import Any, Literal

POLL_SECONDS = 0.05

Policy = Literal["block", "drop_oldest"]


class Stopped(Exception):
    """Raised inside a stage when the pipeline is stopping; the stage just returns."""


class StopSignal:
    """Set once, by the first stage that fails or by the caller; remembers why."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.error: BaseException | None = None
        self.stage: str | None = None

    def stop(self, stage: str | None = None, error: BaseException | None = None) -> None:
        with self._lock:
            if not self._event.is_set():
                self.stage, self.error = stage, error
                self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)


END = object()
"""Put by a producer after its last item; the consumer stops on it."""


class StageQueue:
    """FIFO of at most ``maxsize`` items between two stages, with a stated ``policy``."""

    def __init__(self, name: str, maxsize: int, stop: StopSignal, policy: Policy = "block"):
        if maxsize < 1:
            raise ValueError(f"queue {name!r}: maxsize must be >= 1, got {maxsize}")
        self.name, self.maxsize, self.policy, self._stop = name, maxsize, policy, stop
        self._items: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self.dropped = 0

    def put(self, item: Any) -> None:
        """Add ``item`` (waiting for room under ``block``); raises Stopped if the pipeline stops first."""
        with self._cond:
            while len(self._items) >= self.maxsize and item is not END:
                if self.policy == "drop_oldest":
                    self._items.popleft()
                    self.dropped += 1
                    break
                self._wait()
            self._items.append(item)
            self._cond.notify_all()

    def get(self) -> Any:
        """The oldest item (END after the producer's last); raises Stopped if the pipeline stops first."""
        with self._cond:
            while not self._items:
                self._wait()
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def _wait(self) -> None:
        if self._stop.is_set():
            raise Stopped(self.name)
        self._cond.wait(POLL_SECONDS)
