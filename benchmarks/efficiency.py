"""The engine's own cost per frame, and its memory (issue: efficiency), on this host.

    python benchmarks/efficiency.py [--only engine,networks,memory]

- engine: a near-null network (single-instance UNet, 4 filters, max stride 8) on a 64x64 gray synthetic
  video of 20,000 frames, where decoding and the network cost little, by ``posestream bench`` at batch 64
  and 8: end-to-end against the shared-CPU bound (``1 / sum(1 / stage FPS)``, each stage alone on the whole
  machine), and the engine's cost per frame, ``1 / end-to-end - 1 / bound``. Bars: >= 0.97 x the bound at
  batch 64, >= 0.93 at batch 8, <= 10 us a frame at batch 64.
- networks: the demo network and the same-size networks of benchmarks/same_size.py (bottom-up, top-down)
  on the fly video at their default batch. Bar: >= 0.95 x the shared-CPU bound.
- memory: peak RSS of ``posestream track`` at its defaults: the bottom-up network on the fly video (384x384),
  and top-down on a synthetic 1024x1024 video of 2 animals, 1,500 frames; and at 5x the length. Bars:
  <= 300 MB bottom-up, <= 500 MB top-down, flat with length.

Writes the "efficiency" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from results import peak_rss_and_seconds, posestream_command, run_posestream, write_section

HERE = Path(__file__).resolve().parent
OUT = HERE / "data" / "efficiency"
SLEAP_DATA = Path(os.environ.get("POSESTREAM_SLEAP_DATA", HERE.parent.parent / "shared" / "data" / "sleap"))
SAME_SIZE = HERE / "data" / "same_size"  # benchmarks/same_size.py's exports


def null_model() -> tuple[Path, Path]:
    """The 64x64 video of 20,000 frames and the near-null network exported for it."""
    video, model = OUT / "null_64.mp4", OUT / "null_model"
    if not video.exists():
        run_posestream(
            "synth", video, "--num-frames", 20000, "--size", "64x64", "--animals", 1, "--seed", 5, "--quiet"
        )
    if not (model / "metadata.json").exists():
        run_posestream(
            "train",
            video.with_suffix(".slp"),
            "-o",
            OUT / "null_run",
            "--profile",
            "single_instance",
            "--frames",
            "0-199",
            "--max-minutes",
            0.2,
            "--quiet",
            "--set",
            "backbone.filters=4",
            "--set",
            "backbone.max_stride=8",
            "--set",
            "data.val_fraction=0",
        )
        run_posestream("export", OUT / "null_run", "-o", model, "--quiet")
    return video, model


def bench(video: Path, models: list, name: str, *extra) -> dict:
    out = OUT / f"{name}.json"
    run_posestream("bench", "-i", video, *[a for m in models for a in ("-m", m)], "--json", out, *extra)
    return json.loads(out.read_text())


def engine_part() -> list[str]:
    """The null network at batch 64 and 8, at the thread budget and with the network on every core. The strict
    bound takes each stage's best figure alone (the network on every core), so overlap the budget wins by
    sharing the cores is not counted twice."""
    video, model = null_model()
    cores = len(os.sched_getaffinity(0))
    rows, glue = [], []
    for batch, bar in ((64, 0.97), (8, 0.93)):
        runs = {
            name: bench(video, [model], f"null_b{batch}_{name}", "--batch-size", batch, *extra)
            for name, extra in (("budget", []), ("every_core", ["--threads", cores]))
        }
        best_model = max(r["model_fps"] for r in runs.values())
        for name, r in runs.items():
            e2e = r["end_to_end_fps"]
            strict = 1 / (1 / r["decode_fps"] + 1 / best_model + 1 / r["postprocess_fps"])
            cost_us = (1 / e2e - 1 / strict) * 1e6
            verdict = f">= {bar}: {'met' if e2e / strict >= bar else 'NOT met'}"
            if batch == 64:
                verdict += f"; cost <= 10 us: {'met' if cost_us <= 10 else 'NOT met'}"
            rows.append(
                f"| {batch} | {r['threads'].split(' (')[0]} | {r['decode_fps']:.0f} | {r['model_fps']:.0f} | "
                f"{r['postprocess_fps']:.0f} | {strict:.0f} | {e2e:.0f} | {e2e / strict:.3f} | {cost_us:.1f} "
                f"| {verdict if name == 'budget' else '(for comparison)'} |"
            )
            stages = ", ".join(f"{stage} {us:.1f}" for stage, us in r["stage_us_per_frame"].items())
            glue.append(f"| {batch} | {name.replace('_', ' ')} | {stages} |")
            print(rows[-1], flush=True)
    return [
        "### Engine cost: a near-null network",
        "",
        "`posestream bench` of a 4-filter single-instance UNet on a 64x64 synthetic video of 20,000 frames, "
        "at the thread budget (engine/threads.py) and with the network on every core. Bound = each stage's "
        "best time alone added up (the network on every core); engine cost = 1 / end-to-end - 1 / bound "
        "(negative: the stages overlap on the cores by more than the engine costs).",
        "",
        "| batch | threads | decode FPS | model FPS | postprocess FPS | bound FPS | end-to-end FPS | over "
        "bound | engine us / frame | bars |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
        *rows,
        "",
        "Each stage's busy time per frame end-to-end (us; it includes waiting for a core the other "
        "stages hold):",
        "",
        "| batch | threads | stages |",
        "|---:|---|---|",
        *glue,
        "",
    ]


def networks_part() -> list[str]:
    flies = SLEAP_DATA / "centered_pair_small.mp4"
    setups = [
        ("demo (bottom-up, 192x192 network)", ["demo"]),
        ("bottom-up, same size as sleap-nn's", [SAME_SIZE / "bottomup_fp32"]),
        (
            "top-down, same size as sleap-nn's",
            [SAME_SIZE / "centroid_fp32", SAME_SIZE / "centered_instance_fp32"],
        ),
    ]
    rows = []
    for name, models in setups:
        if not flies.exists() or not all(m == "demo" or Path(m).exists() for m in models):
            print(f"skipping {name}: needs {flies} and benchmarks/same_size.py's models")
            continue
        r = bench(flies, models, name.split()[0].replace(",", ""))
        ratio, by_round = (
            r["end_to_end_over_shared_cpu_bound"],
            r["end_to_end_over_shared_cpu_bound_by_round"],
        )
        spread = ", ".join(f"{k['end_to_end_over_model']:.2f}" for k in r["rounds"])
        rows.append(
            f"| {name} | {r['batch_size']} | {r['model_fps']:.1f} | {r['shared_cpu_bound_fps']:.1f} | "
            f"{r['end_to_end_fps']:.1f} | {ratio:.3f} ({'met' if ratio >= 0.95 else 'NOT met'}) | "
            f"{by_round:.3f} ({'met' if by_round >= 0.95 else 'NOT met'}) | {spread} |"
        )
        print(rows[-1], flush=True)
    return [
        "### Real networks against the shared-CPU bound",
        "",
        "`posestream bench` on the fly video (1,100 frames), default batch. Bar: >= 0.95 x the bound. By "
        "round: each end-to-end chunk against the bound with the model-only figure measured around it (the "
        "machine drifts 10-20% within a minute), median over the rounds.",
        "",
        "| network | batch | model FPS | shared bound FPS | end-to-end FPS | over bound | over bound, by "
        "round (median) | rounds: end-to-end / model alone around it |",
        "|---|---:|---:|---:|---:|---|---|---|",
        *rows,
        "",
    ]


def memory_part() -> list[str]:
    flies = SLEAP_DATA / "centered_pair_small.mp4"
    big, centroid = OUT / "pair_1024.mp4", OUT / "centroid_1024"
    if not big.exists():
        run_posestream(
            "synth",
            big,
            "--num-frames",
            7500,
            "--size",
            "1024x1024",
            "--animals",
            2,
            "--seed",
            11,
            "--quiet",
            "--no-slp",
        )
    if not (centroid / "metadata.json").exists():  # the same-size centroid network, taking 1024x1024 frames
        run_posestream(
            "export", SAME_SIZE / "centroid", "-o", centroid, "--input-size", "1024x1024", "--quiet"
        )
    setups = [
        ("bottom-up, fly video 384x384", flies, [SAME_SIZE / "bottomup_fp32"], 300, ["0-1099"]),
        (
            "top-down, synthetic 1024x1024",
            big,
            [centroid, SAME_SIZE / "centered_instance_fp32"],
            500,
            ["0-1499", "0-7499"],
        ),
    ]
    rows = []
    for name, video, models, bar, lengths in setups:
        for frames in lengths:
            command = posestream_command(
                "track",
                "-i",
                video,
                *[a for m in models for a in ("-m", m)],
                "--frames",
                frames,
                "-o",
                OUT / "memory.h5",
                "--quiet",
            )
            rss, seconds = peak_rss_and_seconds(command)
            n = int(frames.split("-")[1]) + 1
            rows.append(
                f"| {name} | {n} | {rss:.0f} | {n / seconds:.1f} | <= {bar} MB: "
                f"{'met' if rss <= bar else 'NOT met'} |"
            )
            print(rows[-1], flush=True)
    return [
        "### Memory",
        "",
        "Peak RSS of `posestream track` at its defaults (whole process, start included).",
        "",
        "| run | frames | peak RSS MB | FPS (start included) | bar |",
        "|---|---:|---:|---:|---|",
        *rows,
        "",
    ]


PARTS = {"engine": engine_part, "networks": networks_part, "memory": memory_part}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {', '.join(PARTS)}")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    write_section(
        "efficiency",
        [
            "## Efficiency: the engine's own cost, and memory",
            "",
            f"`python benchmarks/efficiency.py [--only {','.join(PARTS)}]` ({os.cpu_count()} cores). "
            "Each part below is rewritten by its part of the script.",
            "",
        ],
    )
    for name in args.only.split(","):
        write_section(f"efficiency-{name}", PARTS[name]())


if __name__ == "__main__":
    main()
