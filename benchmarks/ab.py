"""End-to-end speed of two checkouts, alternated run by run, so that both see the same machine state:

    python benchmarks/ab.py --before /old/.venv/bin/posestream --label "issue 24" --repeats 3

Each round runs ``posestream bench`` of the demo model on the demo video (synthetic, 384x384) and on the fly
video (centered_pair_small.mp4, 384x384 gray, as the demo model takes), first one checkout then the other,
the order swapped every round. The table (median end-to-end FPS, and after / before) goes to stdout and into
RESULTS.md's section named by ``--label``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from results import write_section

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("POSESTREAM_SLEAP_DATA", HERE.parents[1] / "shared" / "data" / "sleap"))


def bench(posestream: str, video: Path, out: Path) -> float:
    """End-to-end FPS of one ``bench`` run (demo model, its default batch)."""
    command = [posestream, "bench", "-i", str(video), "-m", "demo", "--rounds", "2", "--json", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stderr}")
    return json.loads(out.read_text())["end_to_end_fps"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the other checkout's posestream executable")
    parser.add_argument("--after", default=str(Path(sys.executable).parent / "posestream"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--label", default="A/B", help="RESULTS.md section name")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo.mp4"
        subprocess.run(
            [
                args.after,
                "synth",
                str(demo),
                "--num-frames",
                "300",
                "--size",
                "384x384",
                "--animals",
                "2",
                "--seed",
                "0",
                "--no-slp",
                "--quiet",
            ],
            check=True,
        )
        videos = {
            "demo video (synthetic, 300 frames)": demo,
            "fly video (1,100 frames)": DATA / "centered_pair_small.mp4",
        }
        fps = {(name, side): [] for name in videos for side in ("before", "after")}
        for k in range(args.repeats):
            for name, video in videos.items():
                if not video.exists():
                    print(f"skipping {name}: {video} is absent (set POSESTREAM_SLEAP_DATA)")
                    continue
                for side in ("before", "after")[:: 1 if k % 2 == 0 else -1]:
                    fps[name, side].append(bench(getattr(args, side), video, Path(tmp) / "bench.json"))
                    print(f"round {k}: {name}, {side}: {fps[name, side][-1]:.1f} FPS", flush=True)
    rows = [
        "| video | before, FPS (median) | after, FPS (median) | after / before | runs each |",
        "|---|---|---|---|---|",
    ]
    for name in videos:
        before, after = fps[name, "before"], fps[name, "after"]
        if before and after:
            b, a = statistics.median(before), statistics.median(after)
            rows.append(f"| {name} | {b:.1f} | {a:.1f} | {a / b:.3f} | {len(before)} |")
    print("\n".join(rows))
    note = (
        f"### {args.label} (end to end)\n\n`posestream bench -m demo --rounds 2`, "
        "end to "
        "end, the two checkouts alternated run by run (`python benchmarks/ab.py --before OLD/posestream "
        "--label "
        f'"{args.label}"`), 2 cores.'
    )
    write_section(args.label, [note, "", *rows])


if __name__ == "__main__":
    main()
