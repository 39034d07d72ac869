"""posestream batch on a real local Ray (posestream[ray]): actors with fake GPUs, a worker killed mid-unit."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
from test_batch import TRACK, make_video
from waiting import wait_until

from posestream.engine.batch import BatchOptions, run_batch
from posestream.engine.batch.inputs import find_videos
from posestream.engine.batch.manifest import Manifest
from posestream.engine.batch.plan import plan_units
from posestream.engine.batch.ray_engine import RayEngine
from posestream.engine.commands.track import TrackOptions, track
from posestream.engine.sinks import read_analysis_h5

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray of 2 CPUs and 2 fake GPUs, no dashboard."""
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray_videos")
    paths = [make_video(root / "in" / f"v{i}.mp4", frames, i) for i, frames in enumerate((30, 20, 200))]
    reference = {
        p.name: read_analysis_h5(track(p, ["demo"], root / "ref" / (p.name + ".h5"), TRACK)[1]["analysis-h5"])
        for p in paths
    }
    return root / "in", reference


def assert_same(path: Path, reference) -> None:
    data = read_analysis_h5(path)
    assert (data.frame_status == 1).all()
    np.testing.assert_array_equal(data.tracks, reference.tracks)


def test_ray_actors_sharing_gpus_give_the_local_outputs(local_ray, videos, tmp_path):
    folder, reference = videos
    options = BatchOptions(TRACK, engine="ray", workers=4, gpus_per_worker=0.5, progress=False)
    summary = run_batch([str(folder)], ["demo"], tmp_path / "out", options)
    assert summary.exit_code == 0 and len(summary.ran) == 3
    assert len({r.worker for r in summary.ran}) >= 2  # the units went to several actors
    for name, ref in reference.items():
        assert_same(tmp_path / "out" / (name + ".predictions.h5"), ref)
    assert ray.is_initialized()  # the run joined the caller's Ray and left it running


def test_a_worker_killed_mid_unit_is_restarted_and_its_unit_redone(local_ray, videos, tmp_path):
    folder, reference = videos
    out = tmp_path / "out"
    units, _ = plan_units(find_videos([str(folder)]), out, ("analysis-h5",), Manifest(out), [], "")
    engine = RayEngine(["demo"], TrackOptions(workers=1, progress=False, tracking=TRACK.tracking), workers=1)
    engine.start()
    pid = ray.get(engine.actors[0].pid.remote())
    results, killed = [], threading.Event()

    def kill_when_the_long_video_runs() -> None:
        running = lambda: list(out.glob("v2.mp4.predictions.partial.h5")) and engine.frames_done() > 60  # noqa: E731
        wait_until(running, 120, "the long video to run", every=0.05)
        os.kill(pid, signal.SIGKILL)
        killed.set()

    killer = threading.Thread(target=kill_when_the_long_video_runs, daemon=True)
    killer.start()
    try:
        results = [r for r in engine.results([(u, None) for u in units]) if r is not None]
    finally:
        engine.close()
    assert killed.is_set(), "the worker was not killed mid-unit"
    # each once: none lost or doubled
    assert sorted(r.unit for r in results) == [
        "v0.mp4",
        "v1.mp4",
        "v2.mp4",
    ]
    assert all(r.status == "done" for r in results)
    for name, ref in reference.items():
        assert_same(out / (name + ".predictions.h5"), ref)
    assert not list(out.rglob("*.partial.*"))
