"""Exported models on CPU: speed and accuracy of fp32 / fp16 / int8, and bytes per frame of each output mode.

    python benchmarks/export.py [--runs benchmarks/data/accuracy] [--batch 8]

Uses the runs trained by benchmarks/accuracy.py on the fly video (centroid, centered_instance,
bottomup) and the dancer (single_instance). For each precision it exports every run
(onnxruntime, CPU), times the model alone on preloaded real frames (best of 3 runs of
``--repeats`` batches) and scores top-down and bottom-up with ``posestream evaluate MODEL_DIR``
on the held-out fly frames (880-1099). Writes the "export" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from results import run_posestream, write_section

HERE = Path(__file__).resolve().parent
FLY_SIZE, DANCE_SIZE = "384x384", "720x406"
MODELS = {  # run name -> (video, input size)
    "centroid": ("centered_pair_small.mp4", FLY_SIZE),
    "centered_instance": ("centered_pair_small.mp4", None),
    "bottomup": ("centered_pair_small.mp4", FLY_SIZE),
    "single_instance": ("dance.mp4", DANCE_SIZE),
}


def export(run: Path, out: Path, precision: str, size: str | None, mode: str = "maps") -> Path:
    if not (out / "metadata.json").exists():
        args = [
            "export",
            str(run),
            "-o",
            str(out),
            "--precision",
            precision,
            "--output-mode",
            mode,
            "--quiet",
        ]
        run_posestream(*args, *(["--input-size", size] if size else []))
    return out


def model_fps(model_dir: Path, frames: np.ndarray, batch: int, repeats: int) -> float:
    """Frames per second of the model alone (onnxruntime session on preloaded batches), best of 3."""
    from posestream.engine.model.inference import ExportedModel

    model = ExportedModel(model_dir)
    height, width, _ = model.metadata.input_shape
    data = np.ascontiguousarray(frames[:batch, :height, :width])
    model.backend.run(data)  # warm-up
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            model.backend.run(data)
        best = max(best, repeats * batch / (time.perf_counter() - start))
    return best


def output_bytes(model_dir: Path, frames: np.ndarray) -> int:
    from posestream.engine.model.inference import ExportedModel

    model = ExportedModel(model_dir)
    height, width, _ = model.metadata.input_shape
    outputs = model.backend.run(np.ascontiguousarray(frames[:1, :height, :width]))
    return sum(v.nbytes for v in outputs.values())


def evaluate(model_dirs: list[Path], labels: Path, video: Path, out: Path) -> dict:
    if not out.exists():
        run_posestream(
            "evaluate",
            *map(str, model_dirs),
            "--labels",
            str(labels),
            "--frames",
            "880-1099",
            "--video-path",
            str(video),
            "--json",
            str(out),
        )
    return json.loads(out.read_text())


def read_frames(video: Path, count: int) -> np.ndarray:
    from posestream.engine.sources import VideoFileReader

    with VideoFileReader(video) as reader:
        return np.stack([image for _, image in reader.iter_frames(f"0-{count - 1}")])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=HERE / "data" / "accuracy")
    parser.add_argument("--out", type=Path, default=HERE / "data" / "export")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    data = Path(os.environ.get("POSESTREAM_SLEAP_DATA", HERE.parents[1] / "shared" / "data" / "sleap"))
    labels, fly_video = data / "centered_pair_predictions.slp", data / "centered_pair_small.mp4"
    missing = [name for name in MODELS if not (args.runs / name / "best.pt").exists()]
    if missing or not fly_video.exists():
        sys.exit(
            f"need the runs of benchmarks/accuracy.py in {args.runs} (missing: {missing}) and the SLEAP data"
        )
    frames = {name: read_frames(data / name, args.batch) for name in {v for v, _ in MODELS.values()}}
    crops = frames["centered_pair_small.mp4"]  # centred crops are cut from these frames by their size
    rows, accuracy, sizes = [], {}, []
    for precision in ("fp32", "fp16", "int8"):
        dirs = {
            name: export(args.runs / name, args.out / f"{name}_{precision}", precision, size)
            for name, (_, size) in MODELS.items()
        }
        for name, (video, _) in MODELS.items():
            fps = model_fps(
                dirs[name], crops if name == "centered_instance" else frames[video], args.batch, args.repeats
            )
            rows.append((name, precision, fps))
        accuracy[("top-down", precision)] = evaluate(
            [dirs["centroid"], dirs["centered_instance"]],
            labels,
            fly_video,
            args.out / f"topdown_{precision}.json",
        )
        accuracy[("bottom-up", precision)] = evaluate(
            [dirs["bottomup"]], labels, fly_video, args.out / f"bottomup_{precision}.json"
        )
    for name, (video, size) in MODELS.items():
        peaks = export(args.runs / name, args.out / f"{name}_peaks", "fp32", size, mode="peaks")
        maps_bytes = output_bytes(
            args.out / f"{name}_fp32", frames[video] if name != "centered_instance" else crops
        )
        peaks_bytes = output_bytes(peaks, frames[video] if name != "centered_instance" else crops)
        sizes.append((name, maps_bytes, peaks_bytes))
    write_table(rows, accuracy, sizes, args.batch)


def write_table(rows, accuracy, sizes, batch: int) -> None:
    fp32 = {name: fps for name, precision, fps in rows if precision == "fp32"}
    speed = ["| model | precision | model-only FPS | vs fp32 |", "|---|---|---:|---:|"]
    speed += [f"| {name} | {p} | {fps:.1f} | {fps / fp32[name]:.2f} |" for name, p, fps in rows]
    acc = ["| model | precision | OKS mAP | change vs fp32 | error p50 (px) |", "|---|---|---:|---:|---:|"]
    for (model, precision), m in accuracy.items():
        base = accuracy[(model, "fp32")]["mAP"]
        acc.append(
            f"| {model} | {precision} | {m['mAP']:.3f} | {m['mAP'] - base:+.3f} | "
            f"{m['error_percentiles']['p50']:.2f} |"
        )
    out = ["| model | maps mode (bytes/frame) | peaks mode (bytes/frame) | ratio |", "|---|---:|---:|---:|"]
    out += [f"| {name} | {m:,} | {p:,} | {m / p:.0f}x |" for name, m, p in sizes]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, onnxruntime CPU"
    write_section(
        "export",
        [
            "## Export (onnxruntime on CPU)",
            "",
            f"`python benchmarks/export.py` ({machine}; batch {batch}, real frames; models from "
            "benchmarks/accuracy.py). Model-only: the session alone on preloaded uint8 batches, "
            "preprocessing in the graph included.",
            "",
            *speed,
            "",
            "Accuracy of the exported models through the engine's decoder (`posestream evaluate MODEL_DIR`, "
            "fly frames 880-1099):",
            "",
            *acc,
            "",
            "Bytes each model hands back per frame (centered-instance: per crop), by output mode:",
            "",
            *out,
        ],
    )
    print("\n".join(speed + [""] + acc + [""] + out))


if __name__ == "__main__":
    main()
