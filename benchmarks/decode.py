"""Decode benchmark: posestream's video reader against a bare PyAV decode loop.

For each video, output colour (gray, RGB) and threading (FFmpeg's threads or one
thread), it times our ``VideoFileReader.iter_frames`` (including the index pass
done when the file is opened) and a bare ``container.decode()`` loop that
converts each frame to the same numpy array, interleaved and best of
``--repeats``, and reports frames/s and the ratio ours / bare. The table goes to
benchmarks/RESULTS.md between the decode markers.

    python benchmarks/decode.py [--repeats 3] [--frames 300]

Videos: ../shared/data/sleap/centered_pair_small.mp4 (or $POSESTREAM_SLEAP_DATA)
when present, and a 1024x1024 RGB synthetic video made on first use in
benchmarks/data/.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import av
from results import RESULTS, write_section

from posestream.engine import VideoFileReader
from posestream.engine.synth import SynthConfig, write_synthetic_video

HERE = Path(__file__).resolve().parent


def bare_pyav_fps(path: Path, color: str, threads: int) -> float:
    """Frames/s of the plainest PyAV loop that yields the same arrays."""
    start = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_count = threads
        if threads != 1:
            stream.thread_type = "AUTO"
        fmt = "gray" if color == "gray" else "rgb24"
        n = sum(1 for frame in container.decode(stream) if frame.to_ndarray(format=fmt) is not None)
    return n / (time.perf_counter() - start)


def reader_fps(path: Path, color: str, threads: int) -> float:
    """Frames/s of VideoFileReader, opening included."""
    start = time.perf_counter()
    with VideoFileReader(path, color=color, threads=threads) as reader:
        n = sum(1 for _, image in reader.iter_frames() if image is not None)
    return n / (time.perf_counter() - start)


def synthetic_video(frames: int) -> Path:
    path = HERE / "data" / f"synth_1024_rgb_{frames}.mp4"
    if not path.exists():
        config = SynthConfig(frames=frames, width=1024, height=1024, animals=4, seed=0, rgb=True)
        write_synthetic_video(path, config, slp=False)
    return path


def measure(path: Path, repeats: int) -> list[dict]:
    rows = []
    for color in ("gray", "rgb"):
        for threads in (0, 1):
            ours, bare = [], []
            for _ in range(repeats):  # interleaved so drift hits both alike
                bare.append(bare_pyav_fps(path, color, threads))
                ours.append(reader_fps(path, color, threads))
            rows.append(
                dict(
                    video=path.name,
                    color=color,
                    threads="auto" if threads == 0 else "1",
                    bare=max(bare),
                    ours=max(ours),
                )
            )
            r = rows[-1]
            print(
                f"{r['video']:32s} {color:4s} threads={r['threads']:4s} bare {r['bare']:7.1f} fps  "
                f"ours {r['ours']:7.1f} fps  ratio {r['ours'] / r['bare']:.3f}",
                flush=True,
            )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| video | output | decoder threads | bare PyAV loop (frames/s) | posestream reader (frames/s) | "
        "ours / bare |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['video']} | {r['color']} | {r['threads']} | {r['bare']:.1f} | {r['ours']:.1f} | "
            f"{r['ours'] / r['bare']:.3f} |"
        )
    return "\n".join(lines)


def write_results(rows: list[dict], repeats: int) -> None:
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, PyAV {av.__version__}"
    write_section(
        "decode",
        [
            "## Decode",
            "",
            f"`python benchmarks/decode.py` (best of {repeats}, interleaved; {machine}). The reader's time "
            "includes opening the file and its index pass. Gray output: our reader expands the luma plane "
            "with a lookup table; the bare loop converts with `to_ndarray(format='gray')`.",
            "",
            table(rows),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=300, help="length of the synthetic 1024x1024 video")
    args = parser.parse_args()
    data = Path(os.environ.get("POSESTREAM_SLEAP_DATA", HERE.parents[1] / "shared" / "data" / "sleap"))
    videos = [p for p in [data / "centered_pair_small.mp4"] if p.exists()]
    if not videos:
        print(f"note: {data / 'centered_pair_small.mp4'} not found; measuring the synthetic video only")
    videos.append(synthetic_video(args.frames))
    rows = [row for video in videos for row in measure(video, args.repeats)]
    write_results(rows, args.repeats)
    worst = min(r["ours"] / r["bare"] for r in rows)
    print(f"worst ratio ours / bare: {worst:.3f} (goal >= 0.90); table written to {RESULTS}")


if __name__ == "__main__":
    main()
