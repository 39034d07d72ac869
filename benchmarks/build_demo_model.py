"""Build the embedded default model (``-m demo``): bottom-up, trained by our trainer on synthetic video.

    python benchmarks/build_demo_model.py [--work benchmarks/data/demo_model]

1. renders an 800-frame 384x384 gray training video of two animals (seed 100) with its labels, and a
   varied set: DIVERSE_VIDEOS shorter videos (other floors, animals and paths; seeds 200+) in one .slp;
2. trains the bottomup profile at input scale 0.5 in three stages, each skipped when its run exists:
   ``run`` from scratch on the seed-100 video (--minutes), ``run_finetuned`` a copy of it continued at
   a quarter of the learning rate (--finetune-minutes), ``run_diverse`` a new run that starts from
   those weights on the varied set (--diverse-minutes): one video's floor is too little to generalise;
3. exports the last stage to ONNX (maps mode, fp32) into engine/model/builtin/demo/ (metadata.json +
   model.onnx);
4. tracks a fresh video (seed 7, 300 frames) with it and scores it against the generator's
   ground truth with ``posestream evaluate`` (goal: OKS mAP >= 0.8).

The shipped model's first two stages were trained on the seed-100 video as the generator drew it before bodies
became solid (up to commit 6edc44f); run from scratch, this script renders it with today's generator.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from results import run_posestream

HERE = Path(__file__).resolve().parent
DEMO_DIR = HERE.parent / "engine" / "model" / "builtin" / "demo"
SETTINGS = [
    "data.input_scale=0.5",
    "data.max_instances=4",
    "data.val_fraction=0.05",
    "backbone.filters=16",
    "head.sigma=2.5",
    "optim.learning_rate=0.002",
]
FINETUNE_RATE = 0.0005
DIVERSE_VIDEOS, DIVERSE_FRAMES, DIVERSE_RATE = 12, 100, 0.001


def diverse_labels(work: Path) -> Path:
    """One .slp labelling DIVERSE_VIDEOS synthetic videos (seeds 200, 201, ...), rendered if missing."""
    import sleap_io as sio

    merged_path = work / "diverse" / "train.slp"
    if merged_path.exists():
        return merged_path
    parts = []
    for k in range(DIVERSE_VIDEOS):
        video = work / "diverse" / f"video_{k:02d}.mp4"
        run_posestream(
            "synth",
            video,
            "--num-frames",
            DIVERSE_FRAMES,
            "--size",
            "384x384",
            "--animals",
            2,
            "--seed",
            200 + k,
            "--quiet",
        )
        parts.append(sio.load_slp(str(video.with_suffix(".slp"))))
    for other in parts[1:]:
        parts[0].merge(other)
    parts[0].save(str(merged_path))
    return merged_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=50.0)
    parser.add_argument("--finetune-minutes", type=float, default=20.0)
    parser.add_argument("--diverse-minutes", type=float, default=40.0)
    parser.add_argument("--work", type=Path, default=HERE / "data" / "demo_model")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    train_video = work / "train.mp4"
    if not train_video.exists():
        run_posestream(
            "synth",
            train_video,
            "--num-frames",
            800,
            "--size",
            "384x384",
            "--animals",
            2,
            "--seed",
            100,
            "--quiet",
        )
    run_dir = work / "run"
    if not (run_dir / "best.pt").exists():
        run_posestream(
            "train",
            train_video.with_suffix(".slp"),
            "-o",
            run_dir,
            "--profile",
            "bottomup",
            "--max-minutes",
            args.minutes,
            "--quiet",
            *[a for s in SETTINGS for a in ("--set", s)],
        )
    tuned_dir = work / "run_finetuned"
    if not tuned_dir.exists():
        shutil.copytree(run_dir, tuned_dir)
        run_posestream(
            "train",
            "--resume",
            tuned_dir,
            "--max-minutes",
            args.finetune_minutes,
            "--quiet",
            "--set",
            f"optim.learning_rate={FINETUNE_RATE}",
        )
    diverse_dir = work / "run_diverse"
    if not (diverse_dir / "best.pt").exists():
        run_posestream(
            "train",
            diverse_labels(work),
            "-o",
            diverse_dir,
            "--config",
            tuned_dir / "config.yaml",
            "--init-weights",
            tuned_dir,
            "--max-minutes",
            args.diverse_minutes,
            "--quiet",
            "--set",
            f"optim.learning_rate={DIVERSE_RATE}",
        )
    export_dir = work / "export"
    if export_dir.exists():
        shutil.rmtree(export_dir)
    run_posestream("export", diverse_dir, "-o", export_dir, "--quiet")
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir(parents=True)
    for name in ("metadata.json", "model.onnx"):
        shutil.copyfile(export_dir / name, DEMO_DIR / name)
    test_video = work / "test.mp4"
    if not test_video.exists():
        run_posestream(
            "synth",
            test_video,
            "--num-frames",
            300,
            "--size",
            "384x384",
            "--animals",
            2,
            "--seed",
            7,
            "--quiet",
        )
    run_posestream("track", "-i", test_video, "-m", "demo", "-o", work / "test_predictions.h5", "--quiet")
    run_posestream(
        "evaluate",
        work / "test_predictions.h5",
        "--labels",
        test_video.with_suffix(".slp"),
        "--json",
        work / "demo_accuracy.json",
    )
    size = (DEMO_DIR / "model.onnx").stat().st_size
    print(f"{DEMO_DIR}: {size / 1e6:.2f} MB; accuracy in {work / 'demo_accuracy.json'}")


if __name__ == "__main__":
    main()
