"""posestream batch: many videos, mirrored outputs, the manifest, resume, failures, shares; local and Ray.
Real videos (synthetic, at the demo model's 384x384), the embedded demo model, real HDF5 files."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_pipeline import wait_for_flushed_frames

from posestream.core.errors import ConfigError, OutputFileError
from posestream.engine.batch import BatchOptions, run_batch
from posestream.engine.batch.inputs import find_videos, parse_shard, shard
from posestream.engine.batch.manifest import MANIFEST_NAME, Manifest
from posestream.engine.commands.track import TrackOptions, track
from posestream.engine.model.model_dir import BUILTIN_MODELS
from posestream.engine.sinks import read_analysis_h5
from posestream.engine.synth import SynthConfig, write_synthetic_video
from posestream.engine.tracking import TrackerConfig

POSESTREAM = str(Path(sys.executable).with_name("posestream"))
TRACK = TrackOptions(workers=1, progress=False, tracking=TrackerConfig(max_tracks=2))
VIDEOS = {"a/v1.mp4": (40, 1), "a/sub/v2.mp4": (30, 2), "b/v1.mp4": (25, 3)}  # same name in two folders


def make_video(path: Path, frames: int, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    config = SynthConfig(frames=frames, width=384, height=384, animals=2, seed=seed)
    return write_synthetic_video(path, config, slp=False, progress=False).video


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Three videos in nested folders and a corrupt one in the middle; each good video's `track` output."""
    root = tmp_path_factory.mktemp("archive")
    for name, (frames, seed) in VIDEOS.items():
        make_video(root / "videos" / name, frames, seed)
    (root / "videos" / "a" / "broken.mp4").write_bytes(b"not a video at all")
    reference = {}
    for name in VIDEOS:
        _, paths = track(root / "videos" / name, ["demo"], root / "reference" / (name + ".h5"), TRACK)
        reference[name] = read_analysis_h5(paths["analysis-h5"])
    return root, reference


def options(**overrides) -> BatchOptions:
    return BatchOptions(**{"track": TRACK, "workers": 2, "progress": False, **overrides})


def assert_same_output(path: Path, reference) -> None:
    data = read_analysis_h5(path)
    assert (data.frame_status == 1).all() and len(data.frame_status) == len(reference.frame_status)
    np.testing.assert_array_equal(data.tracks, reference.tracks)
    np.testing.assert_array_equal(data.track_names, reference.track_names)


def test_outputs_mirror_the_inputs_equal_track_and_a_corrupt_video_fails_alone(archive, tmp_path):
    root, reference = archive
    summary = run_batch([str(root / "videos")], ["demo"], tmp_path / "out", options())
    assert summary.exit_code == 1 and [r.unit for r in summary.failed] == ["a/broken.mp4"]
    assert "broken.mp4" in summary.failed[0].error and "not a readable video" in summary.failed[0].error
    for name in VIDEOS:
        assert_same_output(tmp_path / "out" / (name + ".predictions.h5"), reference[name])
    assert not list((tmp_path / "out").rglob("*.partial.*"))
    records = Manifest(tmp_path / "out").records
    assert sorted(records) == sorted([*VIDEOS, "a/broken.mp4"])
    done = records["a/sub/v2.mp4"]
    assert (done.status, done.frames, done.video) == (
        "done",
        30,
        str(root / "videos" / "a" / "sub" / "v2.mp4"),
    )
    assert done.size == (root / "videos/a/sub/v2.mp4").stat().st_size and done.mtime_ns > 0 and done.fps > 0
    assert len(done.models) == 1 and len(done.models[0]) == 16 and done.options
    assert done.outputs == [str(tmp_path / "out" / "a/sub/v2.mp4.predictions.h5")] and done.wall_s > 0
    assert records["a/broken.mp4"].status == "failed" and records["a/broken.mp4"].outputs == []


def test_a_second_run_checks_and_skips_done_videos_and_redoes_what_changed(archive, tmp_path):
    root, reference = archive
    videos = tmp_path / "videos"
    shutil.copytree(root / "videos", videos)
    (videos / "a" / "broken.mp4").unlink()
    model = tmp_path / "model"
    shutil.copytree(BUILTIN_MODELS["demo"], model)
    out = tmp_path / "out"
    first = run_batch([str(videos)], [str(model)], out, options())
    assert first.exit_code == 0 and len(first.ran) == 3
    again = run_batch([str(videos)], [str(model)], out, options())
    assert again.ran == [] and len(again.skipped) == 3 and again.exit_code == 0
    (out / "b/v1.mp4.predictions.h5").unlink()  # an output lost
    make_video(videos / "a" / "v1.mp4", 40, 1)  # the same video written again: a new mtime
    redo = run_batch([str(videos)], [str(model)], out, options())
    assert redo.reasons == {"a/v1.mp4": "video changed", "b/v1.mp4": "output missing (v1.mp4.predictions.h5)"}
    (model / "README").write_text("re-exported")  # the model directory changed
    models_changed = run_batch([str(videos)], [str(model)], out, options())
    assert set(models_changed.reasons.values()) == {"models changed"} and len(models_changed.ran) == 3
    tracking_off = run_batch(
        [str(videos)], [str(model)], out, options(track=TrackOptions(workers=1, progress=False))
    )
    assert set(tracking_off.reasons.values()) == {"options changed"}
    for name in VIDEOS:
        assert read_analysis_h5(out / (name + ".predictions.h5")).tracked is False


def test_list_files_and_missing_videos(archive, tmp_path):
    root, _ = archive
    listing = tmp_path / "todo.txt"
    listing.write_text(
        f"# my videos\n{root / 'videos/a/v1.mp4'}\n\n{root / 'videos/b/v1.mp4'}\n"
        f"{root / 'videos/a/gone.mp4'}\n"
    )
    summary = run_batch([str(listing)], ["demo"], tmp_path / "out", options())
    assert sorted(r.unit for r in summary.ran if r.status == "done") == ["a/v1.mp4", "b/v1.mp4"]
    assert [r.unit for r in summary.failed] == ["a/gone.mp4"] and "gone.mp4" in summary.failed[0].error
    assert (tmp_path / "out" / "b/v1.mp4.predictions.h5").exists()


def test_shares_hold_every_video_exactly_once(tmp_path):
    for i in range(40):
        (tmp_path / f"day{i % 5}").mkdir(exist_ok=True)
        (tmp_path / f"day{i % 5}" / f"cam{i}.mp4").write_bytes(b"")
    videos = find_videos([str(tmp_path)])
    assert len(videos) == 40 and len({v.relative for v in videos}) == 40
    shares = [shard(videos, i, 4) for i in range(4)]
    names = [v.relative for share in shares for v in share]
    assert sorted(names) == sorted(v.relative for v in videos)
    assert all(share for share in shares)  # 40 videos over 4 shares: none is empty
    assert shard(find_videos([str(tmp_path)]), 2, 4) == shares[2]  # deterministic
    assert parse_shard("3/4") == (3, 4)
    for bad in ("4/4", "-1/4", "1", "a/b"):
        with pytest.raises(ConfigError, match="--shard"):
            parse_shard(bad)


def test_bad_output_folder_and_options_are_clear_errors(archive, tmp_path):
    root, _ = archive
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFileError, match="is a file"):
        run_batch([str(root / "videos")], ["demo"], tmp_path / "file", options())
    with pytest.raises(ConfigError, match="--engine ray"):
        options(gpus_per_worker=0.5)
    with pytest.raises(ConfigError, match="--jobs"):
        options(workers=0)


def test_ctrl_c_stops_the_run_and_the_same_command_finishes_it(archive, tmp_path):
    root, reference = archive
    videos = tmp_path / "videos"
    for name in VIDEOS:
        (videos / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / "videos" / name, videos / name)
    make_video(videos / "long.mp4", 900, 9)
    command = [
        POSESTREAM,
        "batch",
        str(videos),
        "-m",
        "demo",
        "-o",
        str(tmp_path / "out"),
        "--jobs",
        "1",
        "--tracking",
        "--max-tracks",
        "2",
        "--quiet",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # 5 s of 900 frames
    wait_for_flushed_frames(tmp_path / "out" / "long.mp4.predictions.partial.h5", process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    records = Manifest(tmp_path / "out").records
    assert records["long.mp4"].status == "interrupted" and 0 < records["long.mp4"].frames < 900
    assert "run the same command again" in stdout
    done_before = {u for u, r in records.items() if r.status == "done"}
    manifest = tmp_path / "out" / MANIFEST_NAME
    lines_before = len(manifest.read_text().splitlines())
    finish = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finish.returncode == 0, finish.stderr
    second = [json.loads(line) for line in manifest.read_text().splitlines()[lines_before:]]
    assert {r["unit"] for r in second} == {*VIDEOS, "long.mp4"} - done_before  # only what was left
    assert all(r["status"] == "done" for r in second)
    assert "continued from frame" in finish.stdout  # the long video went on from its last flushed frame
    _, reference_long = track(videos / "long.mp4", ["demo"], tmp_path / "long_reference.h5", TRACK)
    assert_same_output(
        tmp_path / "out" / "long.mp4.predictions.h5", read_analysis_h5(reference_long["analysis-h5"])
    )
    for name in VIDEOS:
        assert_same_output(tmp_path / "out" / (name + ".predictions.h5"), reference[name])


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    """240 frames with a keyframe at least every 30, and its tracked `track` output."""
    from posestream.engine.synth import SynthConfig, write_synthetic_video

    root = tmp_path_factory.mktemp("long")
    video = write_synthetic_video(
        root / "in" / "long.mp4",
        SynthConfig(frames=240, width=384, height=384, seed=11),
        slp=False,
        progress=False,
        keyint=30,
    ).video
    _, paths = track(video, ["demo"], root / "reference.h5", TRACK)
    return video, read_analysis_h5(paths["analysis-h5"])


def test_split_frames_runs_parts_in_parallel_into_the_unsplit_output(long_video, tmp_path):
    video, reference = long_video
    summary = run_batch([str(video.parent)], ["demo"], tmp_path / "out", options(split_frames=60))
    assert summary.exit_code == 0 and [r.frames for r in summary.ran] == [240]
    output = tmp_path / "out" / "long.mp4.predictions.h5"
    assert_same_output(output, reference)  # poses and identities, stitched across the cuts
    parts = read_analysis_h5(output).provenance["parts"]
    assert len(parts) >= 3 and parts[0].startswith("0-")
    assert not list((tmp_path / "out").glob("*.part*"))  # the part files are gone once merged


def test_a_part_done_before_is_not_run_again(long_video, tmp_path):
    from posestream.engine.batch.local import LocalEngine
    from posestream.engine.batch.plan import plan_units

    video, reference = long_video
    out = tmp_path / "out"

    def plan():
        return plan_units(
            find_videos([str(video.parent)]), out, ("analysis-h5",), Manifest(out), [], "", 60, True
        )

    (unit,), _ = plan()
    assert len(unit.parts) >= 3 and unit.todo == tuple(range(len(unit.parts)))
    engine = LocalEngine(["demo"], TRACK, workers=1, threads=1, decode_threads=1)
    # part 1 only, then stopped
    assert [r.status for r in engine.results([(unit, 1)]) if r is not None] == ["done"]
    (unit,), _ = plan()
    assert 1 not in unit.todo and 0 in unit.todo
    summary = run_batch([str(video.parent)], ["demo"], out, options(split_frames=60))
    assert summary.exit_code == 0
    assert_same_output(out / "long.mp4.predictions.h5", reference)
