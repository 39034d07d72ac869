"""Pipeline throughput per model type: `posestream bench` on real and synthetic video.

    python benchmarks/pipeline.py [--batch 8] [--models benchmarks/data/export]

Models: the fp32 exports of benchmarks/export.py (trained by benchmarks/accuracy.py) on
centered_pair_small.mp4 (top-down, centroid alone, bottom-up; 1100 frames) and dance.mp4 (single-instance),
and the embedded demo model on a synthetic video. Each row is one `posestream bench` process (decode-only,
model-only, postprocess-only, end-to-end FPS and peak RSS). Writes the "pipeline" section of
benchmarks/RESULTS.md and benchmarks/pipeline.png.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

from results import bench_json, peak_rss_and_seconds, posestream_command, run_posestream, write_section

HERE = Path(__file__).resolve().parent
SLEAP_NN = [  # measured on this kind of machine (the reference figures), FPS
    "sleap-nn 0.3.5, same video, its own small models (bottom-up UNet filters 16, rate 1.5, max stride 8, "
    "output stride 2: 3.9 GFLOPs per frame): bottom-up 16.8 FPS and top-down 14.1 FPS with torch (batch 4), "
    "41.5 / 21.3 FPS through its ONNX export; peak RSS 830-970 MB.",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--models", type=Path, default=HERE / "data" / "export")
    parser.add_argument("--out", type=Path, default=HERE / "data" / "pipeline")
    args = parser.parse_args()
    data = Path(os.environ.get("POSESTREAM_SLEAP_DATA", HERE.parents[1] / "shared" / "data" / "sleap"))
    flies, dance = data / "centered_pair_small.mp4", data / "dance.mp4"
    args.out.mkdir(parents=True, exist_ok=True)
    synth = args.out / "synth_384.mp4"
    if not synth.exists():
        run_posestream(
            "synth",
            synth,
            "--num-frames",
            1000,
            "--size",
            "384x384",
            "--animals",
            2,
            "--seed",
            3,
            "--no-slp",
            "--quiet",
        )
    m = args.models
    runs = [
        ("top-down (flies)", flies, [m / "centroid_fp32", m / "centered_instance_fp32"]),
        ("centroid alone (flies)", flies, [m / "centroid_fp32"]),
        ("bottom-up (flies)", flies, [m / "bottomup_fp32"]),
        ("single-instance (dancer)", dance, [m / "single_instance_fp32"]),
        ("bottom-up demo (synthetic)", synth, ["demo"]),
    ]
    rows = []
    for name, video, models in runs:
        if not video.exists() or not all(Path(x).exists() or x == "demo" for x in models):
            print(
                f"skipping {name}: run benchmarks/accuracy.py and benchmarks/export.py first, and check "
                f"{video}"
            )
            continue
        rows.append(
            (
                name,
                video.name,
                bench_json(video, models, args.batch, args.out / f"{name.split()[0]}_{video.stem}.json"),
            )
        )
    rss = rss_by_length(args.out, [1000, 20000])
    write_table(rows, args.batch, rss)
    plot(rows, HERE / "pipeline.png")


def rss_by_length(out: Path, lengths: list[int]) -> list[tuple[int, float, float]]:
    """(frames, peak RSS MB, FPS) of `posestream track` on synthetic 96x96 videos of each length, each run in
    its own process, with the demo run exported at 96x96 (the demo model's architecture on small frames)."""
    demo_run = HERE / "data" / "demo_model" / "run"
    small = out / "demo_96"
    if not (small / "model.onnx").exists():
        run_posestream("export", demo_run, "-o", small, "--input-size", "96x96", "--quiet")
    rows = []
    for n in lengths:
        video = out / f"synth_96_{n}.mp4"
        if not video.exists():
            run_posestream("synth", video, "--num-frames", n, "--size", "96x96", "--no-slp", "--quiet")
        command = posestream_command(
            "track", "-i", video, "-m", small, "-o", out / f"track_96_{n}.h5", "--quiet"
        )
        rss_mb, seconds = peak_rss_and_seconds(command)
        rows.append((n, rss_mb, n / seconds))
        print(f"{n} frames: peak RSS {rss_mb:.0f} MB, {n / seconds:.0f} FPS (process start included)")
    return rows


def write_table(rows, batch: int, rss: list[tuple[int, float, float]]) -> None:
    lines = [
        "| model | video | frames | decode-only | model-only | postprocess-only | end-to-end | end-to-end / "
        "slowest | shared-CPU bound | end-to-end / bound | rounds (end-to-end / model-only) | peak RSS (MB) "
        "|",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, video, r in rows:
        spread = ", ".join(f"{x['end_to_end_over_model']:.2f}" for x in r["rounds"])
        lines.append(
            f"| {name} | {video} | {r['frames']} | {r['decode_fps']:.1f} | {r['model_fps']:.1f} | "
            f"{r['postprocess_fps']:.1f} | {r['end_to_end_fps']:.1f} | "
            f"{r['end_to_end_over_slowest_stage']:.2f} | "
            f"{r['shared_cpu_bound_fps']:.1f} | {r['end_to_end_over_shared_cpu_bound']:.2f} | {spread} | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, onnxruntime CPU"
    write_section(
        "pipeline",
        [
            "## Pipeline throughput (`posestream bench`)",
            "",
            f"`python benchmarks/pipeline.py` ({machine}; batch {batch}, 2 postprocessing threads, fp32 "
            "maps-mode models; FPS = frames per second; every stage shares the same 2 cores).",
            "",
            "End-to-end and model-only are measured in six alternating rounds (a sixth of the video "
            "end-to-end, then 5 s of model-only), so the ratio compares the two under the same machine "
            "state; the rounds column shows each round's ratio, i.e. how much the machine drifts. On a "
            "CPU-only host every stage takes the same cores, so their work adds up: the shared-CPU bound is "
            "1 / (1/decode + 1/model + 1/postprocess), and end-to-end / bound is what the pipeline itself "
            "costs on top of the work.",
            "",
            *lines,
            "",
            "Reference: " + SLEAP_NN[0],
            "",
            "![pipeline throughput](pipeline.png)",
            "",
            "Peak RSS against video length (`posestream track`, one process per video, synthetic 96x96 "
            "video, the demo model exported at 96x96):",
            "",
            "| frames | peak RSS (MB) | FPS |",
            "|---:|---:|---:|",
            *[f"| {n} | {mb:.0f} | {fps:.0f} |" for n, mb, fps in rss],
        ],
    )
    print("\n".join(lines))


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["decode_fps", "model_fps", "postprocess_fps", "end_to_end_fps"]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.2
    for k, key in enumerate(keys):
        ax.bar([i + k * width for i in range(len(rows))], [r[key] for _, _, r in rows], width, label=key[:-4])
    ax.set_xticks([i + 1.5 * width for i in range(len(rows))], [name for name, _, _ in rows], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("frames per second")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
