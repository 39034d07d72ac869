"""PyAV video reader on real and synthetic videos: exact counts, exact seeks, clear errors."""

from __future__ import annotations

import zlib

import av
import numpy as np
import pytest

from posestream.engine import (
    FrameIndexError,
    FrameRanges,
    VideoDecodeError,
    VideoFileReader,
    VideoNotFoundError,
    VideoOpenError,
    open_source,
)


def checksums(reader, frames=None):
    return {idx: zlib.crc32(image.tobytes()) for idx, image in reader.iter_frames(frames)}


@pytest.fixture(scope="module")
def fly_video(sleap_file):
    return sleap_file("centered_pair_small.mp4")


@pytest.fixture(scope="module")
def fly_checksums(fly_video):
    with VideoFileReader(fly_video) as reader:
        return checksums(reader)


def test_fly_video_metadata_and_exact_count(fly_video, fly_checksums):
    with VideoFileReader(fly_video) as reader:
        meta = reader.metadata
        assert (meta.width, meta.height, meta.channels) == (384, 384, 1)
        assert len(reader) == meta.n_frames == 1100
        assert meta.fps == pytest.approx(15.0)
        assert meta.codec == "h264"
    assert sorted(fly_checksums) == list(range(1100))
    assert len(set(fly_checksums.values())) > 1000  # real, changing frames


def test_fly_video_random_access_matches_sequential_decode(fly_video, fly_checksums):
    rng = np.random.default_rng(0)
    wanted = [1099, 0, 550, 549, 1, 1098, 300, 301, 299, *rng.integers(0, 1100, 15).tolist()]
    with VideoFileReader(fly_video) as reader:
        for idx in wanted:
            assert zlib.crc32(reader.read(idx).tobytes()) == fly_checksums[idx], f"frame {idx}"


def test_fly_video_frame_ranges(fly_video, fly_checksums):
    ranges = FrameRanges.parse("100-110,500-505,1095-")
    with VideoFileReader(fly_video) as reader:
        got = checksums(reader, ranges)
    assert list(got) == [*range(100, 111), *range(500, 506), *range(1095, 1100)]
    assert all(got[i] == fly_checksums[i] for i in got)


def test_gray_matches_what_sleap_reads(fly_video):
    """Frame i here is frame i in sleap-io, with the same gray levels (within rounding)."""
    sio = pytest.importorskip("sleap_io")
    theirs = sio.load_video(str(fly_video))
    with VideoFileReader(fly_video) as reader:
        for idx in (0, 1, 2, 257, 1099):
            ours = reader.read(idx)[..., 0].astype(int)
            their = np.asarray(theirs[idx])[..., 0].astype(int)
            assert np.abs(ours - their).max() <= 3, f"frame {idx}"
            assert np.abs(ours - their).mean() < 1.0


def test_threads_do_not_change_frames(fly_video):
    frames = FrameRanges.parse("0-40")
    with VideoFileReader(fly_video, threads=1) as single, VideoFileReader(fly_video, threads=0) as multi:
        assert checksums(single, frames) == checksums(multi, frames)


def test_rgb_output_of_gray_video(fly_video):
    with VideoFileReader(fly_video, color="rgb") as rgb, VideoFileReader(fly_video, color="gray") as gray:
        assert rgb.metadata.channels == 3
        colour, mono = rgb.read(10), gray.read(10)
        assert colour.shape == (384, 384, 3) and mono.shape == (384, 384, 1)
        assert np.abs(colour[..., 0].astype(int) - mono[..., 0]).max() <= 3


def test_dance_video_is_rgb(sleap_file):
    with VideoFileReader(sleap_file("dance.mp4")) as reader:
        assert (reader.metadata.width, reader.metadata.height, reader.metadata.channels) == (406, 720, 3)
        assert len(reader) == 450
        assert reader.read(449).shape == (720, 406, 3)


def test_synthetic_videos_open_with_the_right_shape(synth_gray, synth_rgb):
    (gray, gray_cfg), (rgb, rgb_cfg) = synth_gray, synth_rgb
    with open_source(gray.video) as reader:
        assert reader.metadata.frame_shape == (gray_cfg.height, gray_cfg.width, 1)
        assert len(reader) == gray_cfg.frames
    with open_source(rgb.video) as reader:
        assert reader.metadata.frame_shape == (rgb_cfg.height, rgb_cfg.width, 3)
        assert len(list(reader.iter_frames())) == rgb_cfg.frames


def test_out_of_range_frames_are_clear_errors(synth_gray):
    out, cfg = synth_gray
    with VideoFileReader(out.video) as reader:
        with pytest.raises(FrameIndexError, match=f"frame {cfg.frames} is outside"):
            reader.read(cfg.frames)
        with pytest.raises(FrameIndexError, match="outside"):
            list(reader.iter_frames(FrameRanges.parse(f"10-{cfg.frames + 5}")))


# -- bad files ------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.mp4"
    with pytest.raises(VideoNotFoundError, match="nope.mp4") as err:
        VideoFileReader(path)
    assert isinstance(err.value, FileNotFoundError)


def test_not_a_video(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are not frames\n" * 100)
    with pytest.raises(VideoOpenError, match="notes.mp4"):
        VideoFileReader(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(VideoOpenError, match="empty"):
        VideoFileReader(path)


def test_audio_only_file(tmp_path):
    path = tmp_path / "sound.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(VideoOpenError, match="no video stream"):
        VideoFileReader(path)


def test_truncated_mp4_without_index(synth_gray, tmp_path):
    """An mp4 cut off before its index (moov at the end) cannot be opened: say so."""
    data = synth_gray[0].video.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoOpenError, match="cut.mp4"):
        VideoFileReader(path)


def faststart_copy(src, dst):
    """Remux with the index at the front, as streaming recorders write mp4."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is None:
                continue
            packet.stream = stream
            out.mux(packet)


def test_truncated_mp4_names_the_frame_where_decoding_broke(synth_gray, tmp_path):
    out, cfg = synth_gray
    full = tmp_path / "full.mp4"
    faststart_copy(out.video, full)
    data = full.read_bytes()
    cut = tmp_path / "cut_faststart.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with VideoFileReader(cut) as reader:
        assert len(reader) == cfg.frames  # the index survives
        with pytest.raises(VideoDecodeError, match="cut_faststart.mp4: frame") as err:
            list(reader.iter_frames())
        broke_at = err.value.frame_idx
        assert 0 < broke_at < cfg.frames
    with VideoFileReader(cut) as reader:
        frames = list(reader.iter_frames(missing="yield"))
    assert [idx for idx, _ in frames] == list(range(cfg.frames))
    missing = [idx for idx, image in frames if image is None]
    assert missing and missing[0] == broke_at and missing[-1] == cfg.frames - 1


def test_corrupt_bytes_mid_file_never_hang(synth_gray, tmp_path):
    out, cfg = synth_gray
    data = bytearray(out.video.read_bytes())
    rng = np.random.default_rng(1)
    start = len(data) // 3
    data[start : start + 4000] = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(data))
    with VideoFileReader(path) as reader:
        frames = list(reader.iter_frames(missing="yield"))
    assert [idx for idx, _ in frames] == list(range(cfg.frames))
    assert sum(image is not None for _, image in frames) > cfg.frames // 2


def test_gpu_decoding_falls_back_to_the_cpu_with_a_note(synth_gray, caplog):
    """On a machine without a usable CUDA device (as here and in CI) NVDEC is not available: the reader
    says so in one line and decodes the same frames on the CPU."""
    out, _ = synth_gray
    with (
        caplog.at_level("WARNING", logger="posestream"),
        VideoFileReader(out.video, hwaccel="cuda:0") as gpu,
        VideoFileReader(out.video) as cpu,
    ):
        if gpu.hwaccel is not None:
            pytest.skip("this machine decodes on a GPU")
        assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
        assert (
            "GPU decoding on cuda:0 is not available" in caplog.text and "decoding on the CPU" in caplog.text
        )
        for (i, a), (j, b) in zip(gpu.iter_frames(), cpu.iter_frames()):
            assert i == j and np.array_equal(a, b)
        assert len(gpu) == len(cpu)
