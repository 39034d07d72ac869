"""``--engine ray`` (``pip install 'posestream[ray]'``): units on Ray Core actors.

- One actor per worker, each holding a ``UnitWorker`` (its models loaded once, in the actor, never in the
  driver), with ``num_gpus=gpus_per_worker`` (a fraction shares a GPU; no CPU slot asked) or ``num_cpus``
  CPU slots. Workers that cannot be placed within ``ACTOR_START_S`` (too few free resources) are dropped
  with a warning; the run goes on with the others, or fails saying what was asked and what is free.
- The driver keeps every actor busy with one unit at a time from its work queue; a unit goes out as a
  small ``Unit`` and comes back as a small ``UnitResult``: the actor reads the video and writes the outputs
  itself, so no frame passes through Ray's object store.
- A dead worker (killed, out of memory, its node lost): Ray restarts the actor (``MAX_RESTARTS``) and
  retries the unit on it (``MAX_TASK_RETRIES``); a unit's outputs are written under partial names and
  renamed when complete, so running it again is safe.
- ``ray.init()`` starts a local Ray unless ``address`` (or ``RAY_ADDRESS``) names a cluster.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator

from posestream.core.errors import ConfigError, ModelLoadError
from posestream.engine.batch.plan import Unit
from posestream.engine.batch.worker import HEARTBEAT_S, UnitResult, UnitWorker
from posestream.engine.commands.track import TrackOptions
from posestream.engine.extras import require

MAX_RESTARTS = 3  # times Ray restarts a dead worker
MAX_TASK_RETRIES = 2  # times a unit whose worker died is run again
ACTOR_START_S = 120.0  # how long the workers may take to be placed and load their models

log = logging.getLogger("posestream.batch")
STOP_WAIT_S = 30.0  # after Ctrl-C: how long the driver waits for the units in progress to stop


class _Worker:
    """The actor: a UnitWorker plus a stop flag that ``stop()`` sets while ``run`` runs (two threads)."""

    def __init__(self, model_dirs, options, threads, decode_threads):
        self.worker = UnitWorker(model_dirs, options, threads, decode_threads)
        self.stopping = threading.Event()

    def run(self, unit: Unit, part: int | None) -> UnitResult:
        return self.worker.run(unit, part, self.stopping)

    def frames_done(self) -> int:
        return self.worker.frames_done

    def stop(self) -> None:
        self.stopping.set()

    def pid(self) -> int:
        return os.getpid()


class RayEngine:
    """Runs units on Ray actors; ``results`` yields each UnitResult as it comes (None: still running)."""

    def __init__(
        self,
        model_dirs: list[str],
        options: TrackOptions,
        workers: int,
        address: str | None = None,
        gpus_per_worker: float | None = None,
        cpus_per_worker: int = 1,
    ):
        self.ray = require("ray", extra="ray", feature="--engine ray")
        if gpus_per_worker is not None and not 0 < gpus_per_worker:
            raise ConfigError(
                f"--gpus-per-worker must be > 0 (e.g. 0.5 puts two workers on a GPU), got {gpus_per_worker}"
            )
        self.model_dirs, self.options, self.workers = model_dirs, options, workers
        self.gpus_per_worker, self.cpus_per_worker = gpus_per_worker, cpus_per_worker
        self.address = address or os.environ.get("RAY_ADDRESS")
        self._started_ray = False
        self.actors: list = []
        self._frames: dict[int, int] = {}
        self._drain = False

    def start(self) -> None:
        """Join (or start) Ray and create the actors; their models load as they start."""
        ray = self.ray
        if not ray.is_initialized():
            ray.init(
                address=self.address,
                include_dashboard=False,
                log_to_driver=False,
                **({} if self.address else {"num_cpus": os.cpu_count()}),
            )
            self._started_ray = True
        resources = (
            {"num_gpus": self.gpus_per_worker, "num_cpus": 0}
            if self.gpus_per_worker
            else {"num_cpus": self.cpus_per_worker}
        )
        actor = ray.remote(max_restarts=MAX_RESTARTS, max_task_retries=MAX_TASK_RETRIES)(_Worker)
        threads = 0 if self.gpus_per_worker else self.cpus_per_worker
        actors = [
            actor.options(max_concurrency=2, **resources).remote(
                self.model_dirs, self.options, threads, threads
            )
            for _ in range(self.workers)
        ]
        self.actors = self._started(actors, resources)

    def _started(self, actors: list, resources: dict) -> list:
        """The actors that were placed and loaded their models; the others are killed (see the docstring)."""
        ray = self.ray
        pings = {actor.pid.remote(): actor for actor in actors}
        ready, _ = ray.wait(list(pings), num_returns=len(pings), timeout=ACTOR_START_S)
        started = []
        for ref, actor in pings.items():
            try:
                if ref in ready:
                    ray.get(ref)
                    started.append(actor)
                    continue
            except ray.exceptions.RayActorError as exc:  # its __init__ failed: the models do not load
                for other in actors:
                    ray.kill(other)
                raise ModelLoadError(f"the batch workers cannot load the models: {exc}") from exc
            ray.kill(actor)
        asked = ", ".join(f"{k}={v}" for k, v in resources.items())
        if not started:
            raise ConfigError(
                f"no batch worker could start within {ACTOR_START_S:.0f} s: each asks {asked}, and Ray "
                f"has {ray.available_resources()} free; use fewer --workers or a smaller --gpus-per-worker"
            )
        if len(started) < len(actors):
            log.warning(
                "%d of %d workers could not be placed within %.0f s (each asks %s); running on %d",
                len(actors) - len(started),
                len(actors),
                ACTOR_START_S,
                asked,
                len(started),
            )
        return started

    def results(self, items: list[tuple[Unit, int | None]]) -> Iterator[UnitResult | None]:
        """Run each (unit, part) (part None: the whole video)."""
        ray = self.ray
        if not self.actors:
            self.start()
        todo = list(reversed(items))
        running: dict = {}  # ObjectRef -> (actor index, (unit, part))
        idle = list(range(len(self.actors)))
        while todo or running:
            while idle and todo and not self._drain:
                index = idle.pop()
                item = todo.pop()
                running[self.actors[index].run.remote(*item)] = (index, item)
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1, timeout=HEARTBEAT_S)
            if not ready:
                self._poll_frames()
                yield None
                continue
            index, item = running.pop(ready[0])
            idle.append(index)
            yield self._result(ready[0], *item)

    def _result(self, ref, unit: Unit, part: int | None) -> UnitResult:
        """The unit's result; a worker that died more often than Ray retries is the unit's failure."""
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayActorError as exc:
            return UnitResult(
                unit.name, "failed", error=f"its worker died {MAX_TASK_RETRIES + 1} times: {exc}", part=part
            )

    def _poll_frames(self) -> None:
        refs = [actor.frames_done.remote() for actor in self.actors]
        done, _ = self.ray.wait(refs, num_returns=len(refs), timeout=HEARTBEAT_S)
        for index, ref in enumerate(refs):
            if ref in done:
                try:
                    self._frames[index] = max(self._frames.get(index, 0), self.ray.get(ref))
                except self.ray.exceptions.RayError:
                    pass  # a restarting worker: its count comes back with it

    def frames_done(self) -> int:
        return sum(self._frames.values())

    def stop(self) -> None:
        """Interrupt the units running now (their partial outputs stay) and start no other."""
        self._drain = True
        for actor in self.actors:
            actor.stop.remote()

    def drain(self) -> None:
        """Finish the units running now and start no other."""
        self._drain = True

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self._started_ray:
            self.ray.shutdown()
