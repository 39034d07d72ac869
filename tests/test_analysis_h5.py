"""Analysis HDF5: round trip, SLEAP/sleap-io compatibility, streaming growth, and crash safety."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

from posestream.engine import (
    AnalysisH5Writer,
    FramePredictions,
    OutputFileError,
    Skeleton,
    read_analysis_h5,
    recover_analysis_h5,
)
from posestream.engine.sinks.analysis_h5 import FRAME_DONE, FRAME_MISSING, FRAME_NOT_PROCESSED

SKELETON = Skeleton.from_names(
    ["a", "b", "c"], edges=[("a", "b"), ("b", "c")], symmetries=[("a", "c")], name="s"
)


def random_frame(rng, frame_idx, n_instances, track_ids=None):
    points = rng.uniform(0, 100, (n_instances, 3, 2)).astype(np.float32)
    if n_instances:
        points[0, 1] = np.nan  # a missing node
    return FramePredictions(
        frame_idx=frame_idx,
        points=points,
        point_scores=rng.uniform(0, 1, (n_instances, 3)),
        instance_scores=rng.uniform(0, 1, n_instances),
        track_ids=track_ids,
        tracking_scores=rng.uniform(0, 1, n_instances) if track_ids is not None else None,
    )


def test_round_trip_with_tracks_gaps_and_missing_frames(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "out.h5"
    frames = [random_frame(rng, i, 2, track_ids=[1, 0]) for i in range(5)]
    frames += [FramePredictions.empty(5, 3, missing=True)]
    frames += [random_frame(rng, i, 3, track_ids=[2, 0, 1]) for i in range(9, 12)]  # 6-8 never processed
    with AnalysisH5Writer(path, SKELETON, video_path="v.mp4", flush_every=4, tracked=True) as writer:
        for frame in frames:
            writer.write(frame)
    data = read_analysis_h5(path)
    assert data.tracks.shape == (12, 3, 3, 2)
    assert data.track_names == ["track_0", "track_1", "track_2"]
    assert data.skeleton == SKELETON
    assert data.video_path == "v.mp4"
    assert (
        data.frame_status.tolist()
        == [FRAME_DONE] * 5 + [FRAME_MISSING] + [FRAME_NOT_PROCESSED] * 3 + [FRAME_DONE] * 3
    )
    for frame in frames:
        got = data.frame(frame.frame_idx)
        order = np.argsort(frame.track_ids)
        np.testing.assert_array_equal(got.track_ids, frame.track_ids[order])
        np.testing.assert_allclose(got.points, frame.points[order], equal_nan=True)
        np.testing.assert_allclose(got.point_scores, frame.point_scores[order])
        np.testing.assert_allclose(got.instance_scores, frame.instance_scores[order])
        assert got.missing == frame.missing
    assert np.isnan(data.tracks[6:9]).all() and not data.track_occupancy[6:9].any()


def test_untracked_instances_fill_slots_in_order(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "untracked.h5"
    counts = [1, 3, 0, 2]
    with AnalysisH5Writer(path, SKELETON) as writer:
        for i, n in enumerate(counts):
            writer.write(random_frame(rng, i, n))
    data = read_analysis_h5(path)
    assert data.track_occupancy.sum(axis=1).tolist() == counts
    assert data.tracks.shape[1] == max(counts)


def test_sleap_layout_on_disk(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "layout.h5"
    with AnalysisH5Writer(path, SKELETON, labels_path="l.slp") as writer:
        for i in range(7):
            writer.write(random_frame(rng, i, 2, track_ids=[0, 1]))
    with h5py.File(path, "r") as f:
        assert f["tracks"].shape == (2, 2, 3, 7)  # (n_tracks, 2, n_nodes, n_frames)
        assert f["track_occupancy"].shape == (7, 2)
        assert f["point_scores"].shape == (2, 3, 7)
        assert f["instance_scores"].shape == f["tracking_scores"].shape == (2, 7)
        assert [n.decode() for n in f["node_names"][:]] == ["a", "b", "c"]
        assert f["edge_inds"][:].tolist() == [[0, 1], [1, 2]]
        assert f["labels_path"][()].decode() == "l.slp"
        assert f["tracks"].chunks is not None and f["tracks"].maxshape == (None, 2, 3, None)


def test_sleap_io_reads_our_file(tmp_path):
    sio = pytest.importorskip("sleap_io")
    rng = np.random.default_rng(3)
    path = tmp_path / "for_sleap.analysis.h5"
    frames = [random_frame(rng, i, 2, track_ids=[0, 1]) for i in range(6)]
    with AnalysisH5Writer(path, SKELETON, video_path="video.mp4") as writer:
        for frame in frames:
            writer.write(frame)
    labels = sio.load_analysis_h5(str(path))
    assert [n.name for n in labels.skeleton.nodes] == ["a", "b", "c"]
    assert len(labels.labeled_frames) == 6
    lf = labels.labeled_frames[4]
    theirs = np.stack([inst.numpy() for inst in sorted(lf.instances, key=lambda i: i.track.name)])
    np.testing.assert_allclose(theirs, frames[4].points, equal_nan=True)


def test_we_read_sleap_io_files(tmp_path, synth_gray):
    sio = pytest.importorskip("sleap_io")
    out, cfg = synth_gray
    labels = sio.load_slp(str(out.slp))
    path = tmp_path / "from_sleap_io.h5"
    sio.save_analysis_h5(labels, str(path))
    ours, theirs = read_analysis_h5(out.analysis_h5), read_analysis_h5(path)
    assert theirs.tracks.shape == ours.tracks.shape == (cfg.frames, cfg.animals, 9, 2)
    np.testing.assert_allclose(theirs.tracks, ours.tracks, atol=1e-4)


def test_frames_must_increase_and_match_the_skeleton(tmp_path):
    rng = np.random.default_rng(4)
    with AnalysisH5Writer(tmp_path / "order.h5", SKELETON) as writer:
        writer.write(random_frame(rng, 3, 1))
        with pytest.raises(ValueError, match="increasing order"):
            writer.write(random_frame(rng, 3, 1))
        with pytest.raises(ValueError, match="skeleton has 3"):
            writer.write(FramePredictions.empty(4, n_nodes=5))


def test_memory_is_bounded_by_flush_every(tmp_path):
    """The writer never holds more than flush_every frames; the file grows as frames arrive."""
    rng = np.random.default_rng(5)
    path = tmp_path / "stream.h5"
    with AnalysisH5Writer(path, SKELETON, flush_every=10) as writer:
        for i in range(95):
            writer.write(random_frame(rng, i, 1))
            assert writer._n_queued < 10
            with h5py.File(path, "r", swmr=True) as live:
                assert live["tracks"].shape[3] == (i + 1) // 10 * 10
    assert read_analysis_h5(path).n_frames == 95


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from posestream.engine import AnalysisH5Writer, FramePredictions, Skeleton
    skeleton = Skeleton.from_names(["a", "b", "c"])
    with AnalysisH5Writer(sys.argv[1], skeleton, flush_every=20) as writer:
        for i in range(100000):
            points = np.full((1, 3, 2), float(i), np.float32)
            writer.write(FramePredictions(i, points, np.ones((1, 3)), np.ones(1)))
            if (i + 1) % 20 == 0:
                print(i + 1, flush=True)
            time.sleep(0.001)
    """
)


def test_file_survives_a_killed_writer(tmp_path):
    path = tmp_path / "killed.h5"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER_SCRIPT, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        flushed = 0
        deadline = time.monotonic() + 60
        while flushed < 200 and time.monotonic() < deadline:
            flushed = int(proc.stdout.readline() or 0) or flushed
        assert flushed >= 200, "the writer did not start"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    data = read_analysis_h5(path)
    assert data.n_frames >= flushed
    assert (data.frame_status[:flushed] == FRAME_DONE).all()
    np.testing.assert_array_equal(data.tracks[:flushed, 0, 0, 0], np.arange(flushed))

    kept = recover_analysis_h5(path)
    assert kept == data.n_frames
    with h5py.File(path, "r") as f:  # a plain reader opens it now
        assert f["tracks"].shape[3] == data.n_frames


def test_unwritable_output_is_a_clear_error(tmp_path):
    with pytest.raises(OutputFileError, match="no_such_dir/out.h5: cannot create"):
        AnalysisH5Writer(tmp_path / "no_such_dir" / "out.h5", SKELETON)


def _mixed_frames(rng, n_frames: int, tracked_ids: bool) -> list[FramePredictions]:
    """Frames with 0-4 instances, gaps and missing frames; with ``tracked_ids``, identities that appear
    over time mixed with untracked instances."""
    frames, frame_idx = [], 0
    for _ in range(n_frames):
        frame_idx += int(rng.integers(1, 3))  # gaps
        if rng.uniform() < 0.1:
            frames.append(FramePredictions.empty(frame_idx, 3, missing=True))
            continue
        n = int(rng.integers(0, 5))
        ids = None
        if tracked_ids:
            ids = rng.choice(np.arange(frame_idx // 10 + 4), n, replace=False)
            ids[rng.uniform(size=n) < 0.4] = -1  # untracked, up to all of the frame's
        frames.append(random_frame(rng, frame_idx, n, track_ids=ids))
    return frames


@pytest.mark.parametrize("tracked", [False, True])
@pytest.mark.parametrize("ids", [False, True])
def test_blocks_write_the_same_file_as_frames_one_at_a_time(tmp_path, tracked, ids):
    """Byte-equal arrays and the same slot names whether frames come one by one (each flushed alone) or in
    blocks of any size, in either layout, with identities appearing over time among untracked instances."""
    from posestream.engine.types import FrameBlock

    rng = np.random.default_rng(11)
    frames = _mixed_frames(rng, 300, ids)
    with AnalysisH5Writer(tmp_path / "frames.h5", SKELETON, flush_every=1, tracked=tracked) as writer:
        for frame in frames:
            writer.write(frame)
    with AnalysisH5Writer(tmp_path / "blocks.h5", SKELETON, flush_every=64, tracked=tracked) as writer:
        start = 0
        while start < len(frames):
            size = int(rng.integers(1, 40))
            writer.write_block(FrameBlock.from_frames(frames[start : start + size], 3))
            start += size
    with h5py.File(tmp_path / "frames.h5") as a, h5py.File(tmp_path / "blocks.h5") as b:
        for name in (
            "tracks",
            "point_scores",
            "instance_scores",
            "tracking_scores",
            "track_occupancy",
            "frame_status",
            "track_names",
        ):
            assert a[name].shape == b[name].shape and a[name][()].tobytes() == b[name][()].tobytes(), name
        names = [n.decode() for n in b["track_names"][()]]
    if (
        tracked
    ):  # slots as identities and untracked ranks first appear: in a frame, new ids by id, then by rank
        want, ranks = [], 0
        for frame in frames:
            ids = frame.track_ids
            want += [f"track_{i}" for i in sorted(set(ids[ids >= 0].tolist())) if f"track_{i}" not in want]
            want += [f"untracked_{k}" for k in range(ranks, int((ids < 0).sum()))]
            ranks = max(ranks, int((ids < 0).sum()))
        assert names == want
    assert len(names) >= 4


def test_two_instances_with_one_track_id_in_a_block_name_the_frame(tmp_path):
    from posestream.engine.types import FrameBlock

    rng = np.random.default_rng(2)
    frames = [random_frame(rng, 0, 2, track_ids=[0, 1]), random_frame(rng, 1, 2, track_ids=[3, 3])]
    with pytest.raises(ValueError, match=r"frame 1: two instances share a track id \[3, 3\]"):
        with AnalysisH5Writer(tmp_path / "o.h5", SKELETON, tracked=True) as writer:
            writer.write_block(FrameBlock.from_frames(frames, 3))


def test_every_sink_is_closed_when_one_fails(tmp_path):
    """One failing close (an NWB file that cannot be saved) skipped the others: the analysis HDF5 kept its
    last frames in memory, before."""
    from posestream.core.errors import OutputFileError
    from posestream.engine.sinks import close_sinks

    class Failing:
        def close(self):
            raise OutputFileError("cannot save")

    skeleton = Skeleton.from_names(["a", "b", "c"])
    writer = AnalysisH5Writer(tmp_path / "o.h5", skeleton)
    for i in range(10):
        writer.write(
            FramePredictions(i, np.full((1, 3, 2), float(i), np.float32), np.ones((1, 3)), np.ones(1))
        )
    with pytest.raises(OutputFileError, match="cannot save"):
        close_sinks([Failing(), writer])
    assert (read_analysis_h5(tmp_path / "o.h5").frame_status == FRAME_DONE).sum() == 10
