"""Tracking where it runs: inside the pipeline, `posestream retrack` on files, the files SLEAP's reader
loads, tracking metrics in `posestream evaluate`, and clear errors. The embedded demo model on a
synthetic video of two animals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posestream.engine.commands.retrack import retrack
from posestream.engine.commands.track import TrackOptions, track
from posestream.engine.sinks import AnalysisH5Writer, read_analysis_h5
from posestream.engine.synth import SYNTH_SKELETON, SynthConfig, write_synthetic_video
from posestream.engine.tracking import TrackerConfig
from posestream.engine.types import FramePredictions

sio = pytest.importorskip("sleap_io")
POSESTREAM = str(Path(sys.executable).with_name("posestream"))
TRACKING = TrackerConfig(max_tracks=2)


def run(*args):
    return subprocess.run([POSESTREAM, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """90 frames of two animals at the demo model's size, with ground truth."""
    config = SynthConfig(frames=90, width=384, height=384, animals=2, seed=21)
    return write_synthetic_video(tmp_path_factory.mktemp("clip") / "pair.mp4", config, progress=False)


@pytest.fixture(scope="module")
def tracked(clip, tmp_path_factory):
    """The clip tracked by the pipeline (.h5 and .slp), and untracked (.h5)."""
    out = tmp_path_factory.mktemp("tracked")
    track(clip.video, ["demo"], out / "plain.h5", TrackOptions(progress=False))
    track(
        clip.video,
        ["demo"],
        out / "tracked.h5",
        TrackOptions(tracking=TRACKING, formats=("analysis-h5", "slp"), progress=False),
    )
    return out


def poses_by_identity(path) -> dict[tuple[int, str], np.ndarray]:
    """(frame, track name) -> points, read by sleap-io (SLEAP's reader), for .slp and analysis .h5 alike."""
    labels = sio.load_slp(str(path)) if str(path).endswith(".slp") else sio.load_analysis_h5(str(path))
    return {
        (lf.frame_idx, inst.track.name): inst.numpy()
        for lf in labels.labeled_frames
        for inst in lf.instances
        if inst.track is not None
    }


def test_pipeline_tracked_output_equals_retrack_of_its_untracked_output(tracked, tmp_path):
    summary = retrack(tracked / "plain.h5", tmp_path / "again.h5", TRACKING, progress=False)
    assert summary.frames == 90 and summary.identities == 2 and summary.input_tracks == 0
    online, offline = read_analysis_h5(tracked / "tracked.h5"), read_analysis_h5(tmp_path / "again.h5")
    assert online.track_names == offline.track_names == ["track_0", "track_1"]
    for name in (
        "tracks",
        "track_occupancy",
        "point_scores",
        "instance_scores",
        "tracking_scores",
        "frame_status",
    ):
        np.testing.assert_array_equal(getattr(online, name), getattr(offline, name), err_msg=name)
    assert online.track_occupancy.sum() > 150  # both animals found on most frames


def test_slot_is_one_identity_and_sleap_io_reads_both_files_with_the_same_identities(tracked, clip):
    data = read_analysis_h5(tracked / "tracked.h5")
    truth = read_analysis_h5(clip.analysis_h5)
    for slot in range(2):  # each slot follows one animal: its nearest true animal never changes
        nearest = [
            np.argmin(np.nanmean(np.linalg.norm(truth.tracks[f] - data.tracks[f, slot], axis=-1), axis=1))
            for f in range(90)
            if data.track_occupancy[f, slot]
        ]
        assert len(set(nearest)) == 1, f"slot {slot} holds more than one animal"
    from_h5, from_slp = poses_by_identity(tracked / "tracked.h5"), poses_by_identity(tracked / "tracked.slp")
    assert from_h5.keys() == from_slp.keys() and {name for _, name in from_h5} == {"track_0", "track_1"}
    for key, points in from_h5.items():
        np.testing.assert_allclose(points, from_slp[key], atol=1e-4, err_msg=str(key))
    labels = sio.load_slp(str(tracked / "tracked.slp"))
    scores = [inst.tracking_score for lf in labels.labeled_frames for inst in lf.instances]
    assert all(score is not None and 0 <= score <= 1 for score in scores) and max(scores) > 0.5


@pytest.mark.parametrize("source,target", [("h5", "h5"), ("slp", "slp"), ("h5", "slp")])
def test_retrack_round_trips(tracked, tmp_path, source, target):
    """Retracking a tracked file gives the same identities, whatever the formats."""
    summary = retrack(tracked / f"tracked.{source}", tmp_path / f"re.{target}", TRACKING, progress=False)
    assert summary.input_tracks == 2 and summary.identities == 2
    assert (
        poses_by_identity(tmp_path / f"re.{target}").keys()
        == poses_by_identity(tracked / "tracked.h5").keys()
    )


def test_evaluate_reports_tracking_metrics(tracked, clip, tmp_path):
    result = run(
        "evaluate", tracked / "tracked.h5", "--labels", clip.analysis_h5, "--json", tmp_path / "m.json"
    )
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert {"id_switches", "idf1", "mota", "motp", "hota"} <= metrics.keys()
    assert metrics["id_switches"] == 0 and metrics["idf1"] > 0.9 and "IDF1" in result.stdout
    from_slp = run("evaluate", tracked / "tracked.slp", "--labels", clip.slp, "--json", tmp_path / "s.json")
    # SLEAP labels with tracks as ground truth, .slp predictions
    assert from_slp.returncode == 0, from_slp.stderr
    assert json.loads((tmp_path / "s.json").read_text())["idf1"] == pytest.approx(metrics["idf1"], abs=1e-6)
    untracked = run("evaluate", tracked / "plain.h5", "--labels", clip.slp, "--json", tmp_path / "u.json")
    assert untracked.returncode == 0, untracked.stderr
    assert "idf1" not in json.loads((tmp_path / "u.json").read_text())  # no identities: nothing to score


def test_track_and_retrack_commands(clip, tmp_path):
    result = run(
        "track",
        "-i",
        clip.video,
        "-m",
        "demo",
        "-o",
        tmp_path / "t.h5",
        "--tracking",
        "--max-tracks",
        2,
        "--similarity",
        "centroid",
        "--match",
        "greedy",
        "--track-max-age",
        0.5,
        "--kalman",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert "tracking: 2 identities" in result.stdout
    assert read_analysis_h5(tmp_path / "t.h5").provenance["tracking"]["similarity"] == "centroid"
    result = run("retrack", tmp_path / "t.h5", "-o", tmp_path / "r.slp", "--max-tracks", 2, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "2 identities" in result.stdout and "ms per frame" in result.stdout


def test_bad_tracking_input_is_a_clear_error(clip, tmp_path):
    video = clip.video
    cases = [
        (["track", "-i", video, "-m", "demo", "-o", tmp_path / "a.h5", "--max-tracks", 2], "add --tracking"),
        (
            [
                "track",
                "-i",
                video,
                "-m",
                "demo",
                "-o",
                tmp_path / "a.h5",
                "--tracking",
                "--similarity",
                "euclid",
            ],
            "--similarity must be one of oks, centroid, iou",
        ),
        (
            ["track", "-i", video, "-m", "demo", "-o", tmp_path / "a.h5", "--tracking", "--max-tracks", 0],
            "--max-tracks must be at least 1",
        ),
        (["retrack", tmp_path / "absent.h5", "-o", tmp_path / "b.h5"], "absent.h5: no such predictions file"),
        (["retrack", clip.analysis_h5, "-o", tmp_path / "b.csv"], "must end in .h5"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "a.h5").exists()


def test_retrack_of_a_file_without_poses_or_frame_rate_names_the_file(tmp_path):
    empty = tmp_path / "empty.h5"
    with AnalysisH5Writer(empty, SYNTH_SKELETON, video_path=str(tmp_path / "gone.mp4")) as writer:
        for i in range(5):
            writer.write(FramePredictions.empty(i, SYNTH_SKELETON.n_nodes))
    result = run("retrack", empty, "-o", tmp_path / "out.h5", "--fps", 30)
    assert result.returncode == 2 and f"{empty}: holds no poses" in result.stderr
    assert not (tmp_path / "out.h5").exists()
    result = run("retrack", empty, "-o", tmp_path / "out.h5")
    assert result.returncode == 2 and "gone.mp4" in result.stderr and "give --fps" in result.stderr


def test_a_tracker_error_stops_the_pipeline_and_names_the_frame(clip):
    from posestream.engine.model.predictor import Predictor
    from posestream.engine.pipeline import Pipeline, PipelineConfig, PipelineError
    from posestream.engine.sources import open_source
    from posestream.engine.tracking import Tracker

    class Failing(Tracker):
        def _track(self, frame_idx, points, instance_scores, time):
            if frame_idx == 30:
                raise ValueError("boom")
            return super()._track(frame_idx, points, instance_scores, time)

    with Predictor(["demo"]) as predictor, open_source(clip.video) as video:
        frames = []
        with pytest.raises(PipelineError, match="track stage failed at frame 30: ValueError: boom") as caught:
            for frame in Pipeline(
                video, predictor, PipelineConfig(batch_size=4), Failing(fps=video.metadata.fps)
            ):
                frames.append(frame)
    assert caught.value.stage == "track" and caught.value.frame_idx == 30
    assert [f.frame_idx for f in frames] == list(range(28))  # the frames before the failing batch, tracked
    assert all((f.track_ids >= 0).any() for f in frames)


def test_retrack_writes_nwb(tracked, tmp_path):
    """`retrack -o OUT.nwb`: the same identities as the tracked analysis HDF5, one PoseEstimation each."""
    pytest.importorskip("pynwb")
    from test_nwb import read_nwb

    summary = retrack(tracked / "tracked.h5", tmp_path / "re.nwb", TRACKING, progress=False)
    poses = read_nwb(tmp_path / "re.nwb")
    assert summary.identities == 2 and sorted(k for k in poses if k.startswith("track_")) == [
        "track_0",
        "track_1",
    ]
    assert "retracked_from" in poses["_notes"]


def test_retrack_counts_the_inputs_identities_not_its_slots(tmp_path):
    """An input of 2 identities and 2 untracked slots was said to name 4 tracks."""
    from posestream.engine.sinks import AnalysisH5Writer
    from posestream.engine.types import FramePredictions, Skeleton

    skeleton = Skeleton.from_names(["a", "b"], [("a", "b")])
    with AnalysisH5Writer(tmp_path / "in.h5", skeleton, tracked=True) as writer:
        for i in range(5):
            points = (
                np.array(
                    [
                        [[10, 10], [12, 12]],
                        [[50, 50], [52, 52]],
                        [[90, 90], [92, 92]],
                        [[130, 10], [132, 12]],
                    ],
                    np.float32,
                )
                + i
            )
            writer.write(FramePredictions(i, points, np.ones((4, 2)), np.ones(4), track_ids=[0, 1, -1, -1]))
    summary = retrack(tmp_path / "in.h5", tmp_path / "out.h5", TRACKING, fps=30.0, progress=False)
    assert summary.input_tracks == 2
