"""The live run's 3D step (``posestream live --calibration``): a step of the live session (engine/live/
session.py ``LiveStep``), a sink after the 2D poses are out.

    [pipeline] ─> Serving (2D poses published) ─> Live3D: each frame joins its moment's group (live_groups)
                                                   ─> a group that leaves is triangulated (live_3d) ─> pose3d
                                                   message published ─> recorded (OUT.3d.h5) ─> counted

- Frames arrive in the pipeline's thread (``write_block``); a group that every camera has joined leaves
  there and then. A group still waiting for a late or silent camera leaves from the step's own thread at its
  deadline (``max_wait_ms`` after its first frame), so nothing waits longer than stated when frames stop.
  Both threads share the grouper under one lock; the thread waits on a condition with a timeout, never
  longer than the next deadline.
- Cameras are the calibration's by name: camera id k is the k-th of ``names``. A frame of a camera id beyond
  them is counted (``uncalibrated``) and left out of 3D.
- Counted exactly: every frame that arrives is grouped, late (its moment already left) or uncalibrated;
  every group that leaves is triangulated and published (complete or partial).
- The step's own time, from a group's leaving to its message sent, is in ``step_ms`` (and the CPU time its
  thread spent on it in ``step_cpu_ms``: on a machine the model saturates, the wall time's tail is the OS
  giving the cores to the model's threads); the camera to 3D latency of every frame in ``latency_ms``, beside
  the 2D figures of its camera.
- An error in the step's thread stops the live run (``on_error``) and is raised by ``finish``/``write_block``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from posestream.engine.live.stats import LatencyHistogram
from posestream.engine.types import FrameBlock, Skeleton
from posestream.live.pose3d import Pose3DHeader, pose3d_parts, stats3d_parts
from posestream.multiview.live_3d import GroupTriangulator, Poses3D
from posestream.multiview.live_groups import FrameGroup, FrameGrouper, check_policy
from posestream.multiview.live_recording import Live3DRecording
from posestream.multiview.rig import Rig

IDLE_WAIT = 0.5  # s: how long the step's thread sleeps with no group open (it also wakes on stop)


@dataclass
class Ledger3D:
    """The 3D step's figures (the ``three_d`` part of ``--stats-json``, and the ``stats3d`` message)."""

    frames: int = 0  # frames that arrived at the step
    uncalibrated: Counter = field(default_factory=Counter)  # camera id -> frames of a camera not in the rig
    groups: int = 0  # groups triangulated and published
    cameras_per_group: Counter = field(default_factory=Counter)  # cameras with a frame -> groups
    unsolved_points: int = 0  # points of the reference camera's animals with no 3D position
    solve: LatencyHistogram = field(default_factory=LatencyHistogram)  # ms, triangulation alone
    step: LatencyHistogram = field(default_factory=LatencyHistogram)  # ms, a group's leaving to its message
    step_cpu: LatencyHistogram = field(default_factory=LatencyHistogram)  # ms of CPU the step's thread spent
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)  # ms, each frame's capture to 3D

    def figures(self, grouper: FrameGrouper) -> dict:
        counts = grouper.counts
        return {
            "frames_arrived": self.frames,
            "frames_grouped": self.frames - counts.late - sum(self.uncalibrated.values()),
            "frames_late": counts.late,
            "frames_uncalibrated": {str(k): v for k, v in sorted(self.uncalibrated.items())},
            "groups_open": len(grouper.open),
            "groups_complete": counts.complete,
            "groups_partial": counts.partial,
            "groups_published": self.groups,
            "cameras_per_group": {str(k): v for k, v in sorted(self.cameras_per_group.items())},
            "unsolved_points": self.unsolved_points,
            "solve_ms": self.solve.summary(),
            "step_ms": self.step.summary(),
            "step_cpu_ms": self.step_cpu.summary(),
            "latency_ms": self.latency.summary(),
        }


@dataclass(frozen=True)
class Live3DOptions:
    """``live --calibration``: the rig, its cameras' names by camera id, and the grouping policy."""

    calibration: str
    camera_names: tuple[str, ...] = ()  # calibrated name of camera id 0, 1, ...; (): the calibration's order
    tolerance_ms: float = 5.0  # frames captured this close together are one moment
    max_wait_ms: float = 20.0  # how long a moment waits for a late camera before it is triangulated

    def __post_init__(self) -> None:
        object.__setattr__(self, "camera_names", tuple(self.camera_names))
        check_policy(self.tolerance_ms, self.max_wait_ms)

    def step(self, session) -> Live3D:
        """The step for a live session (its model's skeleton, its publisher, its recording's name)."""
        from posestream.engine.live.recorder import three_d_path
        from posestream.multiview.calibration_file import read_calibration

        rig = read_calibration(self.calibration)
        record = session.options.record
        return Live3D(
            rig,
            list(self.camera_names) or rig.names,
            session.predictor.skeleton,
            session.publisher,
            three_d_path(record) if record else None,
            self.tolerance_ms,
            self.max_wait_ms,
            on_error=session.stop,
        )


class Live3D:
    """Groups live frames by capture time, triangulates each group, publishes and records its 3D poses."""

    name = "three_d"

    def __init__(
        self,
        rig: Rig,
        names: list[str],  # camera id k is names[k]
        skeleton: Skeleton,
        publisher=None,  # PosePublisher, or None
        record: str | Path | None = None,  # the 3D file (OUT.3d.h5)
        tolerance_ms: float = 5.0,
        max_wait_ms: float = 20.0,
        on_error=None,  # called (any thread) when the step's thread fails: stops the live run
    ):
        self.rig, self.skeleton = rig.select(list(names), "--camera-names"), skeleton  # in camera id order
        self.camera_names = dict(enumerate(names))
        self.grouper = FrameGrouper(self.rig.names, tolerance_ms, max_wait_ms)
        self.triangulate = GroupTriangulator(self.rig, skeleton)
        self.publisher, self.on_error = publisher, on_error
        self.ledger = Ledger3D()
        self.recording = Live3DRecording(record, skeleton, self.rig.names) if record is not None else None
        self.path = self.recording.path if self.recording is not None else None
        self._cond = threading.Condition()
        self._stopping = False
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._expire, name="live 3d groups", daemon=True)
        self._thread.start()

    # -- the pipeline's thread ---------------------------------------------------

    def write_block(self, block: FrameBlock) -> None:
        """Each frame into its group; the groups complete now leave (sinks/base.py)."""
        self._raise_failure()
        with self._cond:
            for frame in block.frames():
                self.ledger.frames += 1
                name = self.camera_names.get(frame.live.camera)
                if name is None:
                    self.ledger.uncalibrated[frame.live.camera] += 1
                    continue
                self._leave(self.grouper.add(name, frame.live.capture_ns, frame, time.monotonic_ns()))
            self._cond.notify()  # a new group's deadline

    def finish(self) -> None:
        """Let every open group leave as it is (the run is over), stop the thread, close the file."""
        self._stop_thread()
        try:
            if self._failure is None:
                with self._cond:
                    self._leave(self.grouper.flush())
        finally:
            self.close()
        self._raise_failure()

    def close(self) -> None:
        """Stop the thread and close the file (after ``finish``, or instead of it after an error): nothing is
        published once it returns (the session closes the publisher next)."""
        self._stop_thread()
        if self.recording is not None:
            with self._cond:
                recording, self.recording = self.recording, None
                recording.close()

    def _stop_thread(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(10.0)

    def figures(self) -> dict:
        with self._cond:
            return {
                "cameras": {str(k): v for k, v in self.camera_names.items()},
                **self.ledger.figures(self.grouper),
            }

    def status(self) -> str:
        figures = self.figures()
        return (
            f"3D: {figures['groups_published']} groups ({figures['groups_partial']} partial), step p99 "
            f"{figures['step_ms']['p99']:.2f} ms"
        )

    def publish_stats(self) -> None:
        """The ``stats3d`` message: the figures, the camera names and the skeleton (once a second)."""
        if self.publisher is not None:
            with self._cond:
                self.publisher.publish_parts(stats3d_parts(self._stats()))

    def _stats(self) -> dict:
        """The figures, the camera names and the skeleton."""
        return {**self.figures(), "skeleton": self.skeleton.to_dict()}

    # -- the step's thread -------------------------------------------------------

    def _expire(self) -> None:
        """Let groups go at their deadlines while frames do not come."""
        try:
            with self._cond:
                while not self._stopping:
                    self._cond.wait(self._until_deadline())
                    self._leave(self.grouper.expire(time.monotonic_ns()))
        except BaseException as exc:  # noqa: BLE001 - reaches the caller by finish/write_block
            self._failure = exc
            if self.on_error is not None:
                self.on_error()

    def _until_deadline(self) -> float:
        if not self.grouper.open:
            return IDLE_WAIT
        oldest = self.grouper.open[0]  # groups leave in capture order: the first's deadline is the next one
        return max(0.0, (oldest.opened_ns + self.grouper.max_wait_ns - time.monotonic_ns()) / 1e9)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise RuntimeError(f"the live 3D step failed: {self._failure!r}") from self._failure

    # -- either thread, under the lock ------------------------------------------------

    def _leave(self, groups: list[FrameGroup]) -> None:
        for group in groups:
            left, cpu = time.monotonic_ns(), time.thread_time_ns()
            poses = self.triangulate(group)
            publish_ns = self._publish(group, poses)
            self._count(group, poses, left, publish_ns)
            self.ledger.step_cpu.add((time.thread_time_ns() - cpu) / 1e6)
            if self.recording is not None:
                frames = self._frames(group)
                self.recording.add(
                    poses.points, poses.cameras_used, poses.reprojection_error, poses.track_ids,
                    self._reference(poses), *frame_data(frames), publish_ns,
                )  # fmt: skip

    def _publish(self, group: FrameGroup, poses: Poses3D) -> int:
        frames = self._frames(group)
        n_tracks, n_nodes = poses.points.shape[:2]
        flags = Pose3DHeader.PARTIAL if len(frames) < len(self.rig.names) else 0
        publish_ns = time.monotonic_ns()
        header = Pose3DHeader(
            self.ledger.groups,
            len(frames),
            n_tracks,
            n_nodes,
            self._reference(poses),
            flags,
            group.capture_ns,
            poses.solve_ns,
            publish_ns,
        )
        if self.publisher is not None:
            if not self.ledger.groups:  # the clients learn the cameras' names and skeleton first
                self.publisher.publish_parts(stats3d_parts(self._stats()))
            arrays = (poses.points, poses.cameras_used, poses.track_ids)
            self.publisher.publish_parts(pose3d_parts(header, *frame_data(frames), *arrays))
        return publish_ns

    def _count(self, group: FrameGroup, poses: Poses3D, left_ns: int, publish_ns: int) -> None:
        ledger = self.ledger
        ledger.groups += 1
        ledger.cameras_per_group[len(group.frames)] += 1
        ledger.unsolved_points += int((poses.cameras_used == 0).sum())
        ledger.solve.add(poses.solve_ns / 1e6)
        ledger.step.add((time.monotonic_ns() - left_ns) / 1e6)
        for frame in group.frames.values():
            ledger.latency.add((publish_ns - frame.live.capture_ns) / 1e6)

    def _reference(self, poses: Poses3D) -> int:
        """The camera id of the group's reference camera (-1: no camera saw anyone)."""
        return self.rig.names.index(poses.reference) if poses.reference else -1

    def _frames(self, group: FrameGroup) -> list:
        """The group's frames, in camera id order (``names``)."""
        return [group.frames[c] for c in self.rig.names if c in group.frames]


def frame_data(frames: list) -> tuple[list[int], list[int], list[int]]:
    """The camera ids, counters and capture times of a group's frames."""
    return (
        [f.live.camera for f in frames],
        [f.live.counter for f in frames],
        [f.live.capture_ns for f in frames],
    )
