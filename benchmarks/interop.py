"""Bringing SLEAP users over (issue: import SLEAP / sleap-nn models, file habits, pictures), on this host.

    python benchmarks/interop.py [--only render]

- render: ``posestream render`` of the fly video (1,100 frames, 384x384) with SLEAP's own predictions
  (``centered_pair_predictions.slp``, 2 flies, 24 nodes) and 10-frame trails: frames per second of the
  drawing loop (the progress bar's rate) and of the whole command (start-up, reading the .slp, encoding).
  Bar: >= 100 FPS.

Writes the "interop-render" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import time
from pathlib import Path

from results import posestream_command, write_section

HERE = Path(__file__).resolve().parent
OUT = HERE / "data" / "interop"
SLEAP_DATA = Path(os.environ.get("POSESTREAM_SLEAP_DATA", HERE.parent.parent / "shared" / "data" / "sleap"))


def render_part() -> None:
    video, predictions = SLEAP_DATA / "centered_pair_small.mp4", SLEAP_DATA / "centered_pair_predictions.slp"
    if not video.exists() or not predictions.exists():
        print(f"skipping render: {video.name} or {predictions.name} not in {SLEAP_DATA} (set POSESTREAM_SLEAP_DATA)")
        return
    OUT.mkdir(parents=True, exist_ok=True)
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run(posestream_command("render", video, predictions, "-o", OUT / "overlay.mp4", "--trails", 10),
                              check=True, capture_output=True, text=True)  # fmt: skip
        whole = time.perf_counter() - started
        loop = float(re.findall(r"([\d.]+)/s", done.stderr)[-1])
        frames = int(re.search(r"(\d+) frames drawn", done.stdout).group(1))
        runs.append((frames / whole, loop))
    whole_fps, loop_fps = (sorted(v)[1] for v in zip(*runs))  # medians of 3
    ok = min(whole_fps, loop_fps) >= 100
    write_section("interop-render", [
        "## Pictures: `posestream render`", "",
        f"`python benchmarks/interop.py --only render` ({os.cpu_count()} cores): the fly video ({frames} frames, 384x384) "
        "with SLEAP's predictions (2 flies, 24 nodes), 10-frame trails, H.264; median of 3 runs.", "",
        "| measure | FPS | bar |", "|---|---:|---|",
        f"| drawing and encoding loop | {loop_fps:.0f} | >= 100: {'met' if loop_fps >= 100 else 'NOT met'} |",
        f"| whole command (start, reading the .slp, loop) | {whole_fps:.0f} | >= 100: {'met' if whole_fps >= 100 else 'NOT met'} |",
        "",
    ])  # fmt: skip
    print(f"render: loop {loop_fps:.0f} FPS, whole command {whole_fps:.0f} FPS ({'met' if ok else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="render")
    args = parser.parse_args()
    if "render" in args.only.split(","):
        render_part()


if __name__ == "__main__":
    main()
