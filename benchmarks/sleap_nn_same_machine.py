"""sleap-nn 0.3.5 and posestream on this machine: the same 2-node bottom-up network, the same video.

    python benchmarks/sleap_nn_same_machine.py --sleap-nn-python /path/to/venv/bin/python

Needs a separate virtual env with ``pip install "sleap-nn[export]==0.3.5" torch==2.13.0`` (kept
apart: posestream's engine needs no torch), and ``benchmarks/same_size.py`` run first (it trains
our network of this shape, ``bottomup_2node``). sleap-nn trains its test-model shape
(tests/assets/model_ckpts/minimal_instance_bottomup in its repository: UNet filters 16, rate 1.5,
max stride 8, output stride 2, nodes A and B, PAFs at stride 4) on minimal_instance.pkg.slp for
3 x 100 steps, exports it to ONNX and predicts on centered_pair_small.mp4 with onnxruntime. Both
engines are timed the same way: the whole command, start-up included, in its own process (wall
seconds, frames per wall second, peak RSS). Writes the "sleap-nn-same-machine" section of RESULTS.md.

Where the registry's torchvision wheel is built for CUDA torch (its compiled ops cannot load beside
a CPU torch), sleap-nn fails at import; the runner skips torchvision's meta registrations of those
ops, which neither training nor ONNX inference of this model uses.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from pathlib import Path

from results import peak_rss_and_seconds, posestream_command, write_section

HERE = Path(__file__).resolve().parent
FRAMES = 1100
RUNNER = """import sys, types
sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
from sleap_nn.cli import cli
cli()
"""
CONFIG = """data_config:
  train_labels_path: [{labels}]
  val_labels_path: [{labels}]
  validation_fraction: 0.1
  provider: LabelsReader
  user_instances_only: true
  data_pipeline_fw: torch_dataset
  preprocessing: {{ensure_rgb: false, ensure_grayscale: false, max_height: 384, max_width: 384, scale: 1.0}}
  use_augmentations_train: false
model_config:
  init_weights: xavier
  backbone_config:
    unet: {{in_channels: 1, kernel_size: 3, filters: 16, filters_rate: 1.5, max_stride: 8, middle_block: true,
           up_interpolate: true, stacks: 1, convs_per_block: 2, output_stride: 2}}
  head_configs:
    bottomup:
      confmaps: {{part_names: [A, B], sigma: 1.5, output_stride: 2, loss_weight: 1.0}}
      pafs: {{edges: [[A, B]], sigma: 50, output_stride: 4, loss_weight: 1.0}}
trainer_config:
  train_data_loader: {{batch_size: 4, shuffle: true, num_workers: 0}}
  val_data_loader: {{batch_size: 4, shuffle: false, num_workers: 0}}
  model_ckpt: {{save_top_k: 1, save_last: false}}
  trainer_devices: 1
  trainer_accelerator: cpu
  enable_progress_bar: false
  min_train_steps_per_epoch: 100
  visualize_preds_during_training: false
  max_epochs: 3
  seed: 0
  use_wandb: false
  save_ckpt: true
  ckpt_dir: {out}
  run_name: bottomup_2node
  optimizer_name: Adam
  optimizer: {{lr: 0.0001}}
"""


def sleap_nn(python: str, out: Path, *args: str) -> list[str]:
    return [python, str(out / "runner.py"), *map(str, args)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sleap-nn-python", required=True, help="python of a venv with sleap-nn[export]==0.3.5")
    parser.add_argument("--out", type=Path, default=HERE / "data" / "sleap_nn")
    parser.add_argument("--batch", type=int, nargs="+", default=[4, 8])
    args = parser.parse_args()
    data = Path(os.environ.get("POSESTREAM_SLEAP_DATA", HERE.parents[1] / "shared" / "data" / "sleap"))
    video, labels = data / "centered_pair_small.mp4", data / "minimal_instance.pkg.slp"
    ours = HERE / "data" / "same_size"
    for path in (video, labels, ours / "bottomup_2node_fp32", ours / "bottomup_2node_int8"):
        if not path.exists():
            sys.exit(f"{path} not found: set POSESTREAM_SLEAP_DATA, and run benchmarks/same_size.py first")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "runner.py").write_text(RUNNER)
    (out / "config.yaml").write_text(CONFIG.format(labels=labels, out=out))
    if not (out / "bottomup_2node" / "best.ckpt").exists():
        subprocess.run(sleap_nn(args.sleap_nn_python, out, "train", "--config", out / "config.yaml"), check=True)
    if not (out / "export" / "model.onnx").exists():
        subprocess.run(sleap_nn(args.sleap_nn_python, out, "export", out / "bottomup_2node", "-o", out / "export",
                                "--format", "onnx"), check=True)  # fmt: skip
    rows = []
    for batch in args.batch:
        command = sleap_nn(args.sleap_nn_python, out, "predict", "-i", video, "-m", out / "export", "--runtime", "onnx",
                           "-d", "cpu", "-b", batch, "-o", out / f"predictions_{batch}.slp")  # fmt: skip
        rows.append(("sleap-nn 0.3.5, ONNX (onnxruntime fp32)", batch, *peak_rss_and_seconds(command)))
    for precision in ("fp32", "int8"):
        for batch in args.batch:
            command = posestream_command("track", "-i", video, "-m", ours / f"bottomup_2node_{precision}",
                                         "-o", out / f"ours_{precision}_{batch}.h5", "--batch-size", batch, "--quiet")  # fmt: skip
            rows.append((f"posestream, onnxruntime {precision}", batch, *peak_rss_and_seconds(command)))
    lines = ["| engine | batch | wall s (start-up included) | frames / wall s | peak RSS (MB) |", "|---|---:|---:|---:|---:|"]
    for engine, batch, rss, seconds in rows:
        lines.append(f"| {engine} | {batch} | {seconds:.1f} | {FRAMES / seconds:.1f} | {rss:.0f} |")
    write_section("sleap-nn-same-machine", [
        "## sleap-nn and posestream on the same machine", "",
        f"`python benchmarks/sleap_nn_same_machine.py --sleap-nn-python VENV/bin/python` ({platform.machine()}, "
        f"{os.cpu_count()} cores). The 2-node bottom-up network of sleap-nn's test model, trained by each engine on "
        "minimal_instance.pkg.slp, run over the 1100 frames of centered_pair_small.mp4 by the command a user "
        "types (`sleap-nn predict --runtime onnx`, `posestream track`), each in its own process.", "", *lines,
    ])  # fmt: skip
    print("\n".join(lines))


if __name__ == "__main__":
    main()
