"""Fingerprints of every array that `track`, `batch`, `live` (its recording) and `retrack` write on the demo
video, to show that a change of structure changed no output.

Each HDF5 dataset is hashed (sha256 of its bytes, dtype and shape); run it once per checkout and compare:

    python benchmarks/parity.py --posestream /old/.venv/bin/posestream --out /tmp/before.json
    python benchmarks/parity.py --out /tmp/after.json --compare /tmp/before.json

Left out on purpose: what differs between two runs of one checkout (the video's temporary path, the provenance
with its versions and times, a live recording's wall-clock frame times).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py

VARYING = {"video_path", "provenance", "frame_times"}


def run(posestream: str, *args) -> str:
    """Runs one posestream command; its stdout, or exits with its stderr."""
    result = subprocess.run([posestream, *map(str, args)], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        sys.exit(f"posestream {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result.stdout


def fingerprints(path: Path) -> dict[str, str]:
    """sha256 of every dataset's bytes in one HDF5 file, by dataset name."""
    prints = {}

    def visit(name, item):
        if isinstance(item, h5py.Dataset) and name.split("/")[-1] not in VARYING:
            data = item[()]
            raw = data.tobytes() if hasattr(data, "tobytes") else repr(data).encode()
            prints[name] = hashlib.sha256(f"{item.dtype}{item.shape}".encode() + raw).hexdigest()[:16]

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return prints


def record_live(posestream: str, video: Path, work: Path) -> Path:
    """Replays the video losslessly into `live -o`, stopped by Ctrl-C once the camera has sent everything."""
    camera = f"ipc://{work}/cam"
    live = subprocess.Popen(
        [
            posestream,
            "live",
            "-m",
            "demo",
            "--camera",
            camera,
            "-o",
            str(work / "live.h5"),
            "--lossless",
            "--tracking",
            "--max-tracks",
            "2",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run(posestream, "camera-sim", video, "--address", camera, "--rate", 60, "--wait", 60, "--lossless")
        live.send_signal(signal.SIGINT)
        _, stderr = live.communicate(timeout=120)
    finally:
        live.kill()
    if live.returncode != 0:
        sys.exit(f"live failed:\n{stderr}")
    return work / "live.cam0.h5"


def outputs(posestream: str, work: Path) -> dict[str, Path]:
    """Writes the demo video and every command's output on it."""
    video = work / "demo.mp4"
    run(
        posestream,
        "synth",
        video,
        "--frames",
        120,
        "--size",
        "384x384",
        "--animals",
        2,
        "--seed",
        0,
        "--no-slp",
        "--quiet",
    )
    track = work / "track.h5"
    run(
        posestream,
        "track",
        "-i",
        video,
        "-m",
        "demo",
        "-o",
        track,
        "--tracking",
        "--max-tracks",
        2,
        "--quiet",
    )
    archive = work / "archive"
    archive.mkdir()
    shutil.copy(video, archive / "demo.mp4")
    run(
        posestream,
        "batch",
        "-m",
        "demo",
        "-o",
        work / "batch",
        "--workers",
        1,
        "--tracking",
        "--max-tracks",
        2,
        "--quiet",
        archive,
    )
    retrack = work / "retrack.h5"
    run(posestream, "retrack", track, "-o", retrack, "--max-tracks", 2, "--quiet")
    return {
        "track": track,
        "batch": next((work / "batch").rglob("*.h5")),
        "retrack": retrack,
        "live": record_live(posestream, video, work),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posestream", default=str(Path(sys.executable).parent / "posestream"))
    parser.add_argument("--out", type=Path, required=True, help="where the fingerprints are written (JSON)")
    parser.add_argument(
        "--compare", type=Path, help="fingerprints of another checkout: report every difference"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prints = {name: fingerprints(path) for name, path in outputs(args.posestream, Path(tmp)).items()}
    args.out.write_text(json.dumps(prints, indent=1, sort_keys=True))
    print(f"{sum(map(len, prints.values()))} arrays in {len(prints)} outputs -> {args.out}")
    if args.compare:
        before = json.loads(args.compare.read_text())
        differ = [
            f"{cmd}/{name}"
            for cmd in before
            for name in set(before[cmd]) | set(prints.get(cmd, {}))
            if before[cmd].get(name) != prints.get(cmd, {}).get(name)
        ]
        print("identical" if not differ else "DIFFERENT: " + ", ".join(sorted(differ)))
        sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
