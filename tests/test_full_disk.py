"""A full disk, on a real small filesystem (a tmpfs mounted for the test; skipped where mounting is not
allowed): a clear error naming the file and the frames, every frame flushed before it readable, and in
batch the unit fails, no more units start, and the same command finishes once there is space."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from posestream.core.errors import DiskFullError
from posestream.engine.batch import BatchOptions, run_batch
from posestream.engine.commands.track import TrackOptions
from posestream.engine.sinks import AnalysisH5Writer, read_analysis_h5
from posestream.engine.sinks.analysis_h5.writer import RESERVE_BYTES
from posestream.engine.types import FramePredictions, Skeleton

POSESTREAM = str(Path(sys.executable).with_name("posestream"))


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A tmpfs of ``size`` mounted at ``folder`` (skips the test when this machine does not allow it)."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """A file that leaves ``leave`` bytes free on ``disk``."""
    import shutil

    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with open(filler, "ab") as f:
        f.write(b"\0" * max(free - leave, 0))
    return filler


def frame(idx: int) -> FramePredictions:
    rng = np.random.default_rng(idx)
    points = rng.uniform(0, 300, (2, 3, 2)).astype(np.float32)
    return FramePredictions(idx, points, np.ones((2, 3), np.float32), np.ones(2, np.float32))


def test_track_onto_a_full_disk_is_a_clear_error(tmp_path):
    """As a new user tries it: `posestream track` onto a 64 KB filesystem (a segmentation fault before)."""
    with small_disk(tmp_path / "disk", "64k") as disk:
        result = subprocess.run(
            [POSESTREAM, "track", "-i", "nowhere.mp4", "-m", "demo", "-o", str(disk / "o.h5")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        video_missing = result
        assert video_missing.returncode == 2  # the video is checked first
        from posestream.engine.synth import SynthConfig, write_synthetic_video

        video = write_synthetic_video(
            tmp_path / "v.mp4", SynthConfig(frames=10, width=384, height=384), slp=False, progress=False
        ).video
        result = subprocess.run(
            [POSESTREAM, "track", "-i", str(video), "-m", "demo", "-o", str(disk / "o.h5"), "--quiet"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, result.stderr
        assert f"{disk / 'o.h5'}: the disk is full" in result.stderr and "Traceback" not in result.stderr


def test_frames_flushed_before_the_disk_filled_stay_readable(tmp_path):
    skeleton = Skeleton.from_names(["a", "b", "c"], [("a", "b")])
    with small_disk(tmp_path / "disk", "8m") as disk:
        writer = AnalysisH5Writer(disk / "o.h5", skeleton, flush_every=100)
        for i in range(300):
            writer.write(frame(i))
        fill(disk, 0)  # another process takes every free byte (the writer's reserve ahead is its own)
        with pytest.raises(DiskFullError, match=r"o\.h5: the disk is full .* writing frames 300-399"):
            for i in range(300, 400):
                writer.write(frame(i))
        writer.close()
        data = read_analysis_h5(disk / "o.h5")
        assert (data.frame_status == 1).sum() == 300 and (data.frame_status[:300] == 1).all()
        np.testing.assert_allclose(data.tracks[299, :2, :, :], frame(299).points)


def test_batch_stops_starting_units_on_a_full_disk_and_finishes_after(tmp_path):
    from test_batch import make_video

    videos = [make_video(tmp_path / "in" / f"v{i}.mp4", 12, i) for i in range(3)]
    options = BatchOptions(TrackOptions(workers=1, progress=False), workers=1, progress=False)
    with small_disk(tmp_path / "disk", "8m") as disk:
        filler = fill(disk, RESERVE_BYTES // 2)
        summary = run_batch([str(tmp_path / "in")], ["demo"], disk / "out", options)
        assert summary.disk_full and summary.exit_code == 1
        assert (
            len(summary.ran) == 1
            and summary.ran[0].status == "failed"
            and "disk is full" in summary.ran[0].error
        )
        assert summary.not_started == 2  # nothing more went to the full disk
        filler.unlink()
        again = run_batch([str(tmp_path / "in")], ["demo"], disk / "out", options)
        assert again.exit_code == 0 and len(again.ran) == 3 and all(r.status == "done" for r in again.ran)
        assert all((disk / "out" / (v.name + ".predictions.h5")).exists() for v in videos)


def test_bad_output_paths_are_clear_errors(tmp_path):
    from posestream.engine.synth import SynthConfig, write_synthetic_video

    video = write_synthetic_video(
        tmp_path / "v.mp4", SynthConfig(frames=4, width=384, height=384), slp=False, progress=False
    ).video
    (tmp_path / "afile").write_text("x")
    (tmp_path / "notes.h5").write_text("my notes, not predictions")
    (tmp_path / "folder.h5").mkdir()
    cases = {
        tmp_path / "afile" / "sub" / "o.h5": "afile is a file, not a folder",
        tmp_path
        / "notes.h5": "exists and does not hold predictions posestream wrote, so it is not overwritten",
        tmp_path / "folder.h5": "is a folder; give a file name",
    }
    for out, message in cases.items():
        result = subprocess.run(
            [POSESTREAM, "track", "-i", str(video), "-m", "demo", "-o", str(out), "--quiet"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, (
            result.stderr
        )
    assert (tmp_path / "notes.h5").read_text() == "my notes, not predictions"


LIMITED_WRITER = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    import posestream.engine.sinks.analysis_h5.writer as analysis_h5
    from posestream.core.errors import DiskFullError
    from posestream.engine.types import FramePredictions, Skeleton
    analysis_h5.RESERVE_BYTES = 16 << 10  # a small margin, so that the limit is met after a few blocks
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
    writer = analysis_h5.AnalysisH5Writer(sys.argv[1], Skeleton.from_names(["a", "b", "c"]), flush_every=100)
    try:
        for i in range(100000):
            points = np.full((2, 3, 2), float(i), np.float32)
            writer.write(FramePredictions(i, points, np.ones((2, 3)), np.ones(2)))
    except DiskFullError as exc:
        print(writer.frames_written, exc, sep="\\n")
    writer.close()
    """
)


def test_a_file_size_limit_mid_run_leaves_a_closed_file_of_exactly_the_frames_written(tmp_path):
    """A real limit (RLIMIT_FSIZE, as ``ulimit -f``) met after some blocks: a clear error, no crash at exit,
    and the file opens without ``recover``, with every frame it marks done really written (a segfault and
    a file that marked an unwritten block done, before)."""
    path = tmp_path / "limited.h5"
    result = subprocess.run(
        [sys.executable, "-c", LIMITED_WRITER, str(path), str(200 << 10)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and not result.stderr, result.stderr
    written, message = result.stdout.splitlines()
    assert "the file size limit is reached (ulimit -f)" in message
    data = read_analysis_h5(path)
    done = np.flatnonzero(data.frame_status == 1)
    assert 0 < len(done) == int(written) and done.tolist() == list(range(len(done)))
    assert data.tracks.shape[0] == len(done)
    np.testing.assert_array_equal(data.tracks[:, 0, 0, 0], done)  # every done frame holds its points
    np.testing.assert_array_equal(data.point_scores[:, :2], 1.0)
    import h5py

    with h5py.File(path, "r") as plain:  # closed cleanly: no SWMR reader or recover needed
        assert plain["frame_status"].shape == (len(done),)


def test_track_under_a_file_size_limit_is_one_line_and_exit_2(tmp_path):
    import resource

    from posestream.engine.synth import SynthConfig, write_synthetic_video

    video = write_synthetic_video(
        tmp_path / "v.mp4", SynthConfig(frames=10, width=384, height=384), slp=False, progress=False
    ).video
    out = tmp_path / "o.h5"
    result = subprocess.run(
        [POSESTREAM, "track", "-i", str(video), "-m", "demo", "-o", str(out), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY)),
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "the file size limit is reached" in result.stderr
    # closed and readable, nothing marked done that was not written
    assert read_analysis_h5(out).n_frames == 0


def test_slp_output_on_a_full_disk_never_leaves_a_file_at_the_final_name(tmp_path):
    """`.slp` is saved in one go at the end: refused at start without room, and a disk that fills during the
    run leaves no file (an unreadable .slp at the final name, before) and an earlier output untouched."""
    pytest.importorskip("sleap_io")
    from posestream.engine.sinks import SlpWriter

    skeleton = Skeleton.from_names(["a", "b", "c"], [("a", "b")])
    with small_disk(tmp_path / "disk", "4m") as disk:
        (disk / "o.slp").write_bytes(b"an earlier output")
        filler = fill(disk, 512 << 10)
        with pytest.raises(DiskFullError, match=r"o\.slp: the disk is full .*nothing was run"):
            SlpWriter(disk / "o.slp", skeleton, "video.mp4")
        filler.unlink()
        writer = SlpWriter(disk / "o.slp", skeleton, "video.mp4")
        for i in range(50):
            writer.write(frame(i))
        fill(disk, 0)
        with pytest.raises(DiskFullError, match=r"o\.slp: the disk is full .*were not saved"):
            writer.close()
        assert sorted(p.name for p in disk.iterdir()) == ["filler", "o.slp"]
        assert (disk / "o.slp").read_bytes() == b"an earlier output"


def test_outputs_replace_only_predictions_posestream_wrote(tmp_path):
    """`-o notes.slp` replaced a text file and `-o video.slp` the ground truth beside the video, before."""
    pytest.importorskip("sleap_io")
    from posestream.engine.synth import SynthConfig, write_synthetic_video

    synth = write_synthetic_video(
        tmp_path / "v.mp4", SynthConfig(frames=3, width=384, height=384), progress=False
    )
    (tmp_path / "notes.slp").write_text("my notes")
    truth = synth.slp.read_bytes()

    def track(out, *extra):
        return subprocess.run(
            [POSESTREAM, "track", "-i", str(synth.video), "-m", "demo", "-o", str(out), "--quiet", *extra],
            capture_output=True,
            text=True,
            timeout=120,
        )

    for out in (tmp_path / "notes.slp", synth.slp, synth.analysis_h5):
        result = track(out)
        assert (
            result.returncode == 2 and "not overwritten" in result.stderr and "--overwrite" in result.stderr
        )
    assert (tmp_path / "notes.slp").read_text() == "my notes" and synth.slp.read_bytes() == truth
    for out in (
        tmp_path / "p.slp",
        tmp_path / "p.slp",
        tmp_path / "p.h5",
        tmp_path / "p.h5",
    ):  # again: its own
        assert track(out).returncode == 0
    assert track(tmp_path / "notes.slp", "--overwrite").returncode == 0
    assert b"my notes" not in (tmp_path / "notes.slp").read_bytes()
