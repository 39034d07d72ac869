"""The GPU path, measured on a lent device in one prepared run (issue: efficiency); under 10 minutes on one
H200.

    python benchmarks/gpu.py [--train-minutes 0.5] [--batches 64,256]
    python benchmarks/gpu.py --part train [--train-minutes 5] [--only topdown,bottomup,single_instance]

What it runs, for each setting below: ``posestream synth`` makes the video, ``posestream train`` trains the
network briefly on the GPU on the video's own ground truth (so its maps, and postprocessing's work, are those
of a real model), ``posestream export --format torch --precision fp16`` exports it (maps and peaks output
modes for single-instance; peaks mode for bottom-up, whose 1024x1280 maps are what the GPU path avoids
bringing back), and ``posestream bench --device cuda --backend torch --rounds 2`` measures decode-only,
model-only, postprocess-only and end-to-end FPS at each batch size:

| setting | video | goal |
|---|---|---|
| single-instance | 384x384 gray, one animal, 20,000 frames | >= 10,000 FPS end-to-end |
| bottom-up | 1024x1280 gray, two animals, 3,000 frames | >= 1,500 FPS end-to-end |

The torch backend on CUDA captures each batch size as a CUDA graph, copies frames in as uint8 through pinned
buffers on its own stream, double-buffered, while the previous batch's network runs
(engine/model/backends/torch.py),
and the pipeline keeps one batch in flight for it. Where a run is bound (decode, copies, network,
postprocess) is read from bench's stage-alone figures beside end-to-end. Several videos at once (``posestream
batch --jobs N``, one pipeline and decoder each, one GPU) are the way to feed it more decoding.

The device image has torch, numba, h5py, scipy, onnxruntime and rich but not PyAV, pyzmq or sleap-io:
``bash benchmarks/gpu_lease.sh prepare`` fetches their wheels here, and ``bash benchmarks/gpu_lease.sh run``
there runs both parts in one lease (``--fraction 0.2`` of the frames, 0.75 training minutes per accuracy
model), each step time-boxed.

Writes benchmarks/data/gpu/gpu.json and prints the table; copy it into RESULTS.md ("GPU path"). Without CUDA
it says so and stops (it is never part of CI).

``--part train`` is the training part (issue 25, bar 4): benchmarks/accuracy.py's models (the fly top-down
pair and bottom-up, the dancer's single-instance) trained ``--train-minutes`` each on the GPU and scored on
the same held-out frames as on CPU, into the "gpu-accuracy" section of RESULTS.md. It needs sleap-io on the
device (carry its wheels with the others) and the SLEAP data: copy ../shared/data/sleap into
benchmarks/data/sleap (ignored by git, never committed), carry it, and set
POSESTREAM_SLEAP_DATA=benchmarks/data/sleap there. Four networks at 5 minutes are more than one session's
device time: split them with ``--only``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "data" / "gpu"
POSESTREAM = [sys.executable, "-m", "posestream.cli"]
SETTINGS = {  # name: (profile, size WxH, animals, frames, output modes, goal FPS)
    "single_instance": ("single_instance", "384x384", 1, 20_000, ("maps", "peaks"), 10_000),
    "bottomup": ("bottomup", "1280x1024", 2, 3_000, ("peaks",), 1_500),
}


def posestream(*args) -> None:
    started = time.perf_counter()
    subprocess.run([*POSESTREAM, *map(str, args)], check=True)
    print(f"  ({time.perf_counter() - started:.0f} s: posestream {' '.join(map(str, args[:2]))})", flush=True)


def model_for(name: str, train_minutes: float, max_batch: int, fraction: float = 1.0) -> dict[str, Path]:
    """The setting's video (``fraction`` of its frames) and its model exported for torch fp16 in the
    setting's output modes."""
    profile, size, animals, frames, modes, _ = SETTINGS[name]
    frames = round(frames * fraction)
    video = OUT / f"{name}.mp4"
    if not video.exists():
        posestream(
            "synth",
            video,
            "--num-frames",
            frames,
            "--size",
            size,
            "--animals",
            animals,
            "--seed",
            3,
            "--no-slp",
            "--quiet",
        )
    run = OUT / f"{name}_run"
    if not (run / "best.pt").exists():
        posestream(
            "train",
            video.with_suffix(".analysis.h5"),
            "-o",
            run,
            "--profile",
            profile,
            "--device",
            "cuda",
            "--frames",
            f"0-{min(frames, 1000) - 1}",
            "--max-minutes",
            train_minutes,
            "--quiet",
        )
    models = {}
    for mode in modes:
        models[mode] = OUT / f"{name}_{mode}"
        if not (models[mode] / "metadata.json").exists():
            posestream(
                "export",
                run,
                "-o",
                models[mode],
                "--format",
                "torch",
                "--precision",
                "fp16",
                "--output-mode",
                mode,
                "--max-batch",
                max_batch,
                "--quiet",
            )
    return {"video": video, **models}


def bench(video: Path, model: Path, batch: int, label: str) -> dict:
    out = OUT / f"{label}.json"
    posestream(
        "bench",
        "-i",
        video,
        "-m",
        model,
        "--device",
        "cuda",
        "--backend",
        "torch",
        "--batch-size",
        batch,
        "--rounds",
        2,
        "--json",
        out,
    )
    return json.loads(out.read_text())


def bound_by(result: dict) -> str:
    stages = {
        "decode": result["decode_fps"],
        "network": result["model_fps"],
        "postprocess": result["postprocess_fps"],
    }
    return min(stages, key=stages.get)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--train-minutes",
        type=float,
        help="per network (default: 0.5 for the inference part's, 5 for --part train)",
    )
    parser.add_argument("--batches", default="64,256", help="batch sizes to measure")
    parser.add_argument(
        "--fraction",
        type=float,
        default=1.0,
        help="of each setting's frames (synthesising 20,000 + 3,000 frames takes minutes of a short lease)",
    )
    parser.add_argument("--part", choices=("inference", "train"), default="inference")
    parser.add_argument("--only", default="topdown,bottomup,single_instance", help="--part train: the models")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("gpu.py needs torch with CUDA (the device's python3 has it)")
        return 1
    if not torch.cuda.is_available():
        print("no CUDA device here: run this on a lent device (benchmarks/gpu.py's docstring)")
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    if args.part == "train":
        from accuracy import measure

        minutes = args.train_minutes or 5.0
        measure(OUT / "accuracy", minutes, args.only.split(","), "cuda", "gpu-accuracy")
        return 0
    batches = [int(b) for b in args.batches.split(",")]
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    rows, results = [], {}
    for name, (_, size, _, _, modes, goal) in SETTINGS.items():
        setup = model_for(name, args.train_minutes or 0.5, max(batches), args.fraction)
        for mode in modes:
            for batch in batches:
                label = f"{name}_{mode}_b{batch}"
                r = results[label] = bench(setup["video"], setup[mode], batch, label)
                rows.append(
                    f"| {name} {size} | {mode} | {batch} | {r['decode_fps']:.0f} | {r['model_fps']:.0f} | "
                    f"{r['postprocess_fps']:.0f} | {r['end_to_end_fps']:.0f} | {bound_by(r)} | "
                    f">= {goal}: {'met' if r['end_to_end_fps'] >= goal else 'NOT met'} |"
                )
                print(rows[-1], flush=True)
    (OUT / "gpu.json").write_text(json.dumps(results, indent=2))
    print(
        "\n| setting | outputs | batch | decode FPS | network FPS | postprocess FPS | end-to-end FPS | "
        "bound by | goal |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
