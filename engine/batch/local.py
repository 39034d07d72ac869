"""``--engine local``: ``workers`` pipelines at once in this process, each a thread with its own models,
taking units from one work queue (unbounded: units are small) and putting results on another."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

from posestream.engine.batch.plan import Unit
from posestream.engine.batch.worker import HEARTBEAT_S, UnitResult, UnitWorker
from posestream.engine.commands.track import TrackOptions


class LocalEngine:
    """Runs units on worker threads; ``results`` yields each UnitResult as it comes (None: still running)."""

    def __init__(
        self, model_dirs: list[str], options: TrackOptions, workers: int, threads: int, decode_threads: int
    ):
        self.model_dirs, self.options, self.workers = model_dirs, options, workers
        self.threads, self.decode_threads = threads, decode_threads
        self._todo: queue.SimpleQueue[tuple[Unit, int | None]] = queue.SimpleQueue()
        # UnitResult, an exception, or None when a thread ends
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()  # stop the units running now
        self._drain = threading.Event()  # hand out no more units
        self._workers: list[UnitWorker] = []

    def results(self, items: list[tuple[Unit, int | None]]) -> Iterator[UnitResult | None]:
        """Run each (unit, part) (part None: the whole video)."""
        for item in items:
            self._todo.put(item)
        threads = [
            threading.Thread(target=self._work, name=f"batch worker {i}", daemon=True)
            for i in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        running = len(threads)
        try:
            while running:
                try:
                    item = self._done.get(timeout=HEARTBEAT_S)
                except queue.Empty:
                    yield None
                    continue
                if item is None:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            self._stop.set()
            for thread in threads:
                thread.join()

    def _work(self) -> None:
        try:
            worker = UnitWorker(self.model_dirs, self.options, self.threads, self.decode_threads)
        except BaseException as exc:  # noqa: BLE001 - the models do not load: the driver stops the run
            self._done.put(exc)
            self._done.put(None)
            return
        self._workers.append(worker)
        try:
            while not (self._drain.is_set() or self._stop.is_set()):
                try:
                    unit, part = self._todo.get_nowait()
                except queue.Empty:
                    break
                result = worker.run(unit, part, self._stop)
                if result.disk_full:  # no unit more to that disk (before the driver hears of it)
                    self._drain.set()
                self._done.put(result)
        finally:
            worker.close()
            self._done.put(None)

    def frames_done(self) -> int:
        return sum(w.frames_done for w in self._workers)

    def stop(self) -> None:
        """Interrupt the units running now (their partial outputs stay) and start no other."""
        self._stop.set()

    def drain(self) -> None:
        """Finish the units running now and start no other."""
        self._drain.set()

    def close(self) -> None:
        """Nothing left to release: each worker thread closes its models when it ends."""
