"""The compiled kernels (posestream.engine.kernels): built ahead of time once per machine, or by numba's JIT,
with the same results; a run that loads the ahead-of-time module never loads numba; a failed build falls back
to the JIT with a warning that says where the reason is."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from posestream.core.errors import ConfigError
from posestream.engine import kernels
from posestream.engine.synth import SynthConfig, write_synthetic_video

needs_compiler = pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None,
    reason="the ahead-of-time build needs a C compiler (cc)",
)


def _python(
    code: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _random_inputs(seed: int) -> dict[str, tuple]:
    """Arguments for every kernel, on random data; output arrays are filled in place."""
    rng = np.random.default_rng(seed)
    maps = (rng.random((2, 4, 24, 20), dtype=np.float32) ** 4).astype(np.float32)
    k = 5
    values, flat = np.full((2, 4, k), -1e4, np.float32), np.zeros((2, 4, k), np.int64)
    patches = rng.random((2, 4, k, 3, 3), dtype=np.float32)
    rows, cols = rng.integers(0, 20, (2, 4, k)), rng.integers(0, 20, (2, 4, k))
    points = rng.uniform(0, 40, (2, 4, k, 2)).astype(np.float32)
    edges = np.array([[0, 1], [1, 2], [3, 1]], np.int64)
    pafs = rng.uniform(-1, 1, (2, 6, 12, 10)).astype(np.float32)
    dots = rng.uniform(-0.2, 1, (2, 3, k, k, 10)).astype(np.float32)
    present = rng.random((2, 4, k)) > 0.3
    detections, predicted = rng.uniform(0, 50, (3, 4, 2)), rng.uniform(0, 50, (2, 4, 2))
    detections[0, 1] = np.nan
    scores = rng.random((2, 4, k), dtype=np.float32)
    return {
        "candidates": (maps, np.float32(0.2), values, flat, np.zeros((2, 4, k, 3, 3), np.float32)),
        "refine": (
            patches,
            maps,
            rng.random((2, 4, k), dtype=np.float32),
            rows,
            cols,
            24,
            20,
            2.0,
            0.3,
            2,
            np.zeros((2, 4, k, 2), np.float32),
        ),
        "pair_dots": (
            points,
            present,
            pafs,
            edges,
            np.float32(4.0),
            np.linspace(0, 1, 10, dtype=np.float32),
            np.zeros((2, 3, k, k, 10), np.float32),
        ),
        "group": (
            points,
            scores,
            points.copy(),
            dots,
            edges,
            np.float32(0.05),
            0.5,
            30.0,
            2,
            np.full((2, 6, 4, 2), np.nan, np.float32),
            np.zeros((2, 6, 4), np.float32),
            np.zeros((2, 6), np.float32),
            np.zeros(2, np.int64),
        ),
        "oks": (detections, predicted, np.array([5.0, 9.0])),
        "centroid": (detections, predicted, np.array([5.0, 9.0])),
        "iou": (detections, predicted, np.array([5.0, 9.0])),
        "observe": (predicted.copy(), np.array([1, 0]), detections[:2].copy(), 4.0),
        **_geometry_inputs(rng),
    }


def _geometry_inputs(rng: np.random.Generator) -> dict[str, tuple]:
    """Three cameras around a 100-unit box, their views of 20 points (one unseen by two cameras)."""
    points = rng.uniform(-50, 50, (20, 3))
    extrinsics = np.zeros((3, 3, 4))
    extrinsics[:, :, :3] = np.eye(3)
    extrinsics[:, :, 3] = [[0.0, 0.0, 400.0], [30.0, 0.0, 420.0], [0.0, -30.0, 380.0]]
    extrinsics[1, :, :3] = [[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
    intrinsics = np.tile(np.array([[900.0, 0.0, 640.0], [0.0, 900.0, 512.0], [0.0, 0.0, 1.0]]), (3, 1, 1))
    distortions = np.tile(np.array([-0.2, 0.05, 0.001, -0.001, 0.0]), (3, 1))
    pixels = np.stack([rng.uniform(0, 1280, (20, 2)) for _ in range(3)])
    pixels[1:, 4] = np.nan
    return {
        "project_points": (
            points,
            extrinsics[0].copy(),
            intrinsics[0].copy(),
            distortions[0].copy(),
            np.zeros((20, 2)),
        ),
        "undistort_points": (
            pixels[0].copy(),
            intrinsics[0].copy(),
            distortions[0].copy(),
            np.zeros((20, 2)),
        ),
        "triangulate_points": (
            pixels,
            rng.random((3, 20)),
            extrinsics,
            intrinsics,
            distortions,
            20.0,
            2,
            np.zeros((20, 3)),
            np.zeros((3, 20), np.uint8),
            np.zeros((3, 20)),
        ),
        "pair_costs": (
            pixels[0].reshape(2, 2, 5, 2).copy(),  # 2 frames, 2 instances, 5 nodes
            pixels[1, :15].reshape(1, 3, 5, 2).repeat(2, axis=0),  # camera 1: 3 instances
            extrinsics[:2].copy(),
            intrinsics[:2].copy(),
            distortions[:2].copy(),
            np.zeros((2, 2, 3)),
        ),
        "triangulate_group": (
            pixels[:, :15].reshape(3, 3, 5, 2).copy(),  # 3 cameras, 3 instance slots, 5 nodes
            rng.random((3, 3, 5)),
            np.array([2, 3, 1]),  # instances per camera (the reference has 2)
            extrinsics,
            intrinsics,
            distortions,
            20.0,
            2,
            np.zeros((3, 5, 3)),
            np.zeros((3, 3, 5), np.uint8),
            np.zeros((3, 3, 5)),
            np.zeros((3, 3), np.int64),
        ),
    }


def _results(compiled, seed: int) -> dict[str, list[np.ndarray]]:
    """Each kernel's return value and its arguments after the call (the in-place outputs)."""
    out = {}
    for name, args in _random_inputs(seed).items():
        returned = getattr(compiled, name)(*args)
        returned = list(returned) if isinstance(returned, tuple) else [returned]
        out[name] = [np.asarray(a) for a in returned + list(args) if a is not None]
    return out


@needs_compiler
@pytest.mark.parametrize("seed", range(3))
def test_ahead_of_time_and_jit_kernels_give_the_same_results(seed):
    ahead, _ = kernels.ahead_of_time_kernels()
    jit = kernels.jit_kernels()
    ours, theirs = _results(ahead, seed), _results(jit, seed)
    assert ours.keys() == theirs.keys() == set(kernels.jit.REGISTRY)
    for name in ours:
        for a, b in zip(ours[name], theirs[name], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert np.isfinite(ours["group"][-4]).any()  # the grouping found instances: the comparison saw real work


@needs_compiler
def test_a_tracking_run_on_the_ahead_of_time_kernels_loads_neither_numba_nor_llvm(tmp_path):
    video = write_synthetic_video(
        tmp_path / "pair.mp4", SynthConfig(frames=30, width=384, height=384, animals=2), progress=False
    ).video  # the demo model's frame size
    code = (
        "import sys\n"
        "from posestream.engine import kernels\n"
        "from posestream.engine.commands.track import TrackOptions, track\n"
        "from posestream.engine.tracking import TrackerConfig\n"
        f"track({str(video)!r}, ['demo'], {str(tmp_path / 'out.h5')!r},\n"
        "      TrackOptions(progress=False, tracking=TrackerConfig()))\n"
        "print(kernels.how_compiled())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'llvmlite')))\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    how, loaded = result.stdout.strip().splitlines()[-2:]
    assert how.startswith("ahead of time") and loaded == "[]", result.stdout
    assert (tmp_path / "out.h5").stat().st_size > 0


@needs_compiler
def test_processes_that_start_at_once_build_the_module_once(tmp_path):
    """Two processes with an empty cache: one builds (under a lock), the other waits and imports the same
    file."""
    code = "from posestream.engine import kernels\nkernels.load()\nprint(kernels.how_compiled())\n"
    env = {**os.environ, "POSESTREAM_CACHE_DIR": str(tmp_path)}
    started = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in started]
    assert all(p.returncode == 0 for p in started), outputs
    assert outputs[0][0] == outputs[1][0] and outputs[0][0].startswith("ahead of time"), outputs
    assert sum(err.count("compiling the engine's kernels") for _, err in outputs) == 1
    assert len(list((tmp_path / "kernels").glob("*/posestream_kernels*.so"))) == 1


@needs_compiler
def test_a_failed_build_falls_back_to_the_jit_says_why_and_is_not_retried(tmp_path):
    code = "from posestream.engine import kernels\nkernels.load()\nprint(kernels.how_compiled())\n"
    env = {"POSESTREAM_CACHE_DIR": str(tmp_path), "CC": "/bin/false"}  # a C compiler that always fails
    first = _python(code, env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "numba JIT (no ahead-of-time module: see the warning)"
    failed = next((tmp_path / "kernels").glob("*.failed"))
    assert "the ahead-of-time build failed" in first.stderr and str(failed) in first.stderr
    assert "posestream.engine.kernels.build" in failed.read_text()
    again = _python(code, env)  # no second build: the record says it failed
    assert "compiling the engine's kernels" not in again.stderr and "delete it to try again" in again.stderr
    strict = _python(code, {**env, "POSESTREAM_KERNELS": "aot"})
    assert strict.returncode != 0 and "KernelBuildError" in strict.stderr


def test_an_unknown_kernels_mode_is_a_config_error_that_names_the_choices(monkeypatch):
    monkeypatch.setenv("POSESTREAM_KERNELS", "fast")
    with pytest.raises(ConfigError, match="POSESTREAM_KERNELS='fast': use one of auto, aot, jit"):
        kernels.mode()


@needs_compiler
@pytest.mark.parametrize("way", ["ahead of time", "jit"])
def test_both_compilations_refuse_arrays_their_signature_does_not_name(way):
    """A float64 map, a Fortran-order pose array or a read-only output is a caller's bug: a TypeError that
    names the argument, never a second compilation (JIT) or a crash (the ahead-of-time module only compares
    item sizes)."""
    compiled = kernels.jit_kernels() if way == "jit" else kernels.ahead_of_time_kernels()[0]
    inputs = _random_inputs(0)
    wrong = {
        "candidates": (0, inputs["candidates"][0].astype(np.float64)),
        "oks": (1, np.asfortranarray(inputs["oks"][1])),
        "group": (12, np.zeros(2, np.int32)),
    }
    for name, (position, value) in wrong.items():
        args = list(inputs[name])
        args[position] = value
        with pytest.raises(TypeError):
            getattr(compiled, name)(*args)
    readonly = inputs["observe"][0]
    readonly.flags.writeable = False
    with pytest.raises(TypeError):
        compiled.observe(*inputs["observe"])


@needs_compiler
def test_a_build_killed_by_a_signal_is_not_recorded_as_failed(tmp_path):
    """Out of memory or a stopped job is not a missing compiler: the next run tries again."""
    killer = tmp_path / "cc"
    killer.write_text("#!/bin/sh\nkill -9 $PPID\n")
    killer.chmod(0o755)
    code = "from posestream.engine import kernels\nkernels.load()\nprint(kernels.how_compiled())\n"
    result = _python(code, {"POSESTREAM_CACHE_DIR": str(tmp_path / "cache"), "CC": str(killer)})
    assert result.returncode == 0, result.stderr
    assert "stopped by signal 9" in result.stderr and "the next run tries again" in result.stderr
    assert not list((tmp_path / "cache" / "kernels").glob("*.failed"))
    assert not list((tmp_path / "cache" / "kernels").glob("*.building-*"))  # the staging folder is gone
