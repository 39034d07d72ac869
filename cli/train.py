"""``train``, ``evaluate``, ``pack`` and ``preview-rf``: models from SLEAP labels, and how good they are.

torch and sleap-io are imported when a command runs, after checking that the train extra is installed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from posestream.cli import options as opt
from posestream.engine.extras import require


def _require_train_extra(command: str) -> None:
    for module in ("torch", "sleap_io", "yaml"):
        require(module, extra="train", feature=f"posestream {command}")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    _add_train_parser(sub)
    _add_evaluate_parser(sub)
    _add_pack_parser(sub)
    _add_preview_rf_parser(sub)


def _add_train_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train a pose model from SLEAP or DeepLabCut labels",
        description="Train a single-instance, centroid, centered-instance or bottom-up model. Settings come "
        "from --profile, then --config, then --set KEY=VALUE overrides. --frames: train only on labelled "
        "frames in this range.",
    )
    parser.add_argument(
        "labels",
        nargs="?",
        metavar="LABELS.slp",
        help="SLEAP labels (.slp or .pkg.slp); DeepLabCut labels (a project's config.yaml, or "
        "CollectedData_*.csv/.h5); or ground truth in an analysis HDF5 (posestream synth)",
    )
    opt.OUTPUT.add(parser, metavar="RUN_DIR")
    opt.add_settings(parser)
    opt.FRAMES.add(parser)
    parser.add_argument("--val-frames", metavar="A-B", help="validate on labelled frames in this range")
    opt.VIDEO_PATH.add(parser)
    parser.add_argument("--max-epochs", type=int)
    parser.add_argument("--max-minutes", type=float, help="wall-clock budget; stops cleanly when spent")
    opt.DEVICE.add(parser, default=None)
    opt.PRECISION.add(parser, metavar="auto|fp32|bf16|fp16")
    opt.SEED.add(parser)
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its last checkpoint "
        "(--set optim.learning_rate=X continues at a new rate)",
    )
    parser.add_argument(
        "--init-weights",
        metavar="RUN_DIR",
        help="start a new run from RUN_DIR's trained weights (fine-tuning on new labels); "
        "the network settings must match, e.g. --config RUN_DIR/config.yaml",
    )
    parser.add_argument(
        "--preview-augment",
        type=int,
        metavar="N",
        help="draw N training examples as the network sees them (augmented, with their keypoints) into "
        "RUN_DIR/augment_preview.png, and stop before training",
    )
    opt.QUIET.add(parser)
    parser.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    _require_train_extra("train")
    from posestream.core.errors import ConfigError
    from posestream.engine.interrupts import StopRequests
    from posestream.train.config import load_config
    from posestream.train.trainer import Trainer

    cli_fields = {
        "optim.max_epochs": args.max_epochs,
        "optim.max_minutes": args.max_minutes,
        "device": args.device,
        "precision": args.precision,
        "seed": args.seed,
    }
    if args.preview_augment is not None and args.preview_augment < 1:
        raise ConfigError(f"--preview-augment {args.preview_augment}: how many examples to draw, e.g. 16")
    if args.resume and args.init_weights:
        raise ConfigError(
            "--resume continues a run with its own weights; --init-weights starts a new one: pick one"
        )
    if args.resume:
        run_dir = Path(args.resume)
        config = load_config(config_file=run_dir / "config.yaml", overrides=args.set, **cli_fields)
    else:
        if not (args.labels and args.output and (args.profile or args.config)):
            raise ConfigError(
                "posestream train needs LABELS.slp, -o RUN_DIR and --profile or --config "
                "(or --resume RUN_DIR)"
            )
        run_dir = Path(args.output)
        if args.init_weights and Path(args.init_weights).resolve() == run_dir.resolve():
            raise ConfigError(
                f"--init-weights {args.init_weights} is the output run; continue it with --resume"
            )
        if (run_dir / "last.pt").exists():
            raise ConfigError(
                f"{run_dir} already holds a run; continue it with --resume {run_dir} or pick another -o"
            )
        config = load_config(
            args.profile,
            args.config,
            args.set,
            labels=str(args.labels),
            video_paths=args.video_path or None,
            **{"data.frames": args.frames, "data.val_frames": args.val_frames},
            **cli_fields,
        )
    trainer = Trainer(config, run_dir, progress=not args.quiet)
    if args.init_weights:
        trainer.init_weights(args.init_weights)
    if args.resume:
        new_rate = any(s.split("=", 1)[0].strip() == "optim.learning_rate" for s in args.set)
        trainer.resume(config.optim.learning_rate if new_rate else None)
    if args.preview_augment:
        return _preview_augment(trainer, args.preview_augment, run_dir / "augment_preview.png")
    print(trainer.describe())
    notice = f"stopping after this step; last.pt keeps the run (continue it with --resume {run_dir})"
    with StopRequests(trainer.request_stop, notice):
        result = trainer.run()
    print(result.summary())
    if result.stopped_because == "interrupted":
        print("posestream train: interrupted", file=sys.stderr)
        return 130
    return 0


def _preview_augment(trainer, count: int, out: Path) -> int:
    from posestream.train.augment_preview import draw_augment_preview

    for reason in trainer.fitted:
        print(f"fitted to the labels: {reason}")
    draw_augment_preview(trainer.train_set, count, out)
    print(f"{out}: training examples as the network sees them; no training yet (drop --preview-augment)")
    return 0


def _evaluate_files(args: argparse.Namespace) -> int:
    """Score each predictions file (ours, SLEAP's, sleap-nn's) against the same labels, side by side."""
    import json

    from posestream.core.errors import ConfigError
    from posestream.train.evaluate import evaluate_file, print_comparison, write_json

    if not args.labels:
        raise ConfigError("evaluating predictions files needs --labels GT.slp (or GT.analysis.h5)")
    if not args.labels.endswith((".h5", ".hdf5")) or any(p.endswith(".slp") for p in args.inputs):
        require("sleap_io", extra="train", feature="posestream evaluate")
    names = column_names(args.inputs)
    reports = {
        name: evaluate_file(path, args.labels, args.frames, args.video_path)
        for name, path in zip(names, args.inputs)
    }
    print_comparison(reports, f"against {args.labels}")
    if args.json:
        extra = {"inputs": args.inputs, "frames": args.frames, "labels": args.labels}
        if len(reports) == 1:
            write_json(next(iter(reports.values())), args.json, extra)
        else:
            each = {path: r.to_dict() for path, r in zip(args.inputs, reports.values())}
            Path(args.json).write_text(json.dumps({**extra, "reports": each}, indent=2))
        print(f"metrics written to {args.json}")
    return 0


def column_names(paths: list[str]) -> list[str]:
    """Short names for a table's columns: file names, or the whole paths where file names repeat."""
    names = [Path(p).name for p in paths]
    return names if len(set(names)) == len(names) else list(paths)


def _add_pack_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "pack",
        help="export a SLEAP training package (.pkg.slp) with the labelled images inside",
        description="Write LABELS.pkg.slp: the labels with the frames they label embedded as PNG images, as "
        "SLEAP's GUI exports them for training on another machine (no videos needed there). Reads the "
        "videos the labels name (found as train finds them; map them with --video-path).",
    )
    parser.add_argument("labels", metavar="LABELS.slp")
    opt.OUTPUT.add(parser, required=True, metavar="LABELS.pkg.slp")
    parser.add_argument(
        "--embed",
        default="user",
        metavar="user|user+suggestions|all",
        help="frames to embed: user-labelled (default), plus suggestions, or every labelled frame",
    )
    opt.VIDEO_PATH.add(parser)
    opt.QUIET.add(parser)
    parser.set_defaults(run=run_pack)


def run_pack(args: argparse.Namespace) -> int:
    from posestream.train.pack import pack_labels

    done = pack_labels(args.labels, args.output, args.video_path, args.embed, progress=not args.quiet)
    print(
        f"{done.path}: {done.embedded_frames} frames embedded from {done.videos} video(s), "
        f"{done.size_bytes / 1e6:.1f} MB"
    )
    return 0


def _add_preview_rf_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "preview-rf",
        help="draw a training config's receptive field on a labelled frame (PNG)",
        description="Draw the receptive field of a training config (what one output location of the network "
        "sees, in frame pixels) on a labelled frame, around every animal, as SLEAP's training dialog does. "
        "Rule of thumb: about as large as an animal. Settings as for train: --profile, --config, --set.",
    )
    parser.add_argument("labels", metavar="LABELS.slp")
    opt.OUTPUT.add(parser, required=True, metavar="RF.png")
    opt.add_settings(parser)
    parser.add_argument(
        "--frame", type=int, metavar="I", help="the I-th labelled frame (default: the one with most points)"
    )
    opt.VIDEO_PATH.add(parser)
    parser.set_defaults(run=run_preview_rf)


def run_preview_rf(args: argparse.Namespace) -> int:
    from posestream.core.errors import ConfigError

    _require_train_extra("preview-rf")
    from posestream.train.config import load_config
    from posestream.train.fit import fit_to_labels
    from posestream.train.labels import load_labels
    from posestream.train.receptive_field import draw_receptive_field

    if not (args.profile or args.config):
        raise ConfigError("posestream preview-rf needs --profile or --config (the training settings to draw)")
    config = load_config(args.profile, args.config, args.set)
    labels = load_labels(args.labels, args.video_path)
    if args.frame is not None and not 0 <= args.frame < len(labels):
        raise ConfigError(
            f"--frame {args.frame}: {args.labels} has {len(labels)} labelled frames (0-{len(labels) - 1})"
        )
    for reason in fit_to_labels(config, labels):
        print(f"fitted to the labels: {reason}")
    report = draw_receptive_field(config, labels, args.output, args.frame)
    print(
        f"{args.output}: receptive field {report.field_px:.0f} px in the frame ({report.input_field_px} px "
        f"at input scale {config.data.input_scale}); {report.advice}"
    )
    return 0


def _add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="score predictions or trained runs against SLEAP labels",
        description="Score predictions files (.slp or analysis .h5: ours, SLEAP's, sleap-nn's; several are "
        "shown side by side) against --labels, or predict with "
        "trained runs (RUN_DIR: single-instance, bottom-up, centered-instance alone on ground-truth "
        "anchors, or centroid + centered-instance as top-down) and score that (--frames: by default the "
        "runs' validation frames).",
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="PREDICTIONS|RUN_DIR",
        help="predictions files, compared on the same labels, or trained runs",
    )
    parser.add_argument(
        "--labels",
        metavar="GT.slp|GT.analysis.h5",
        help="ground truth: SLEAP labels, or an analysis HDF5 such as posestream synth writes "
        "(default for runs: the labels they trained on)",
    )
    opt.FRAMES.add(parser)
    opt.VIDEO_PATH.add(parser)
    opt.JSON.add(parser)
    opt.DEVICE.add(parser)
    opt.PEAK_THRESHOLD.add(parser, default=0.2)
    parser.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from posestream.core.errors import ConfigError
    from posestream.train.evaluate import evaluate_runs, print_report, write_json

    are_runs = [Path(p).is_dir() for p in args.inputs]
    if all(are_runs):
        _require_train_extra("evaluate RUN_DIR")
        report = evaluate_runs(
            args.inputs, args.labels, args.frames, args.video_path, args.device, args.peak_threshold
        )
    elif not any(are_runs):
        return _evaluate_files(args)
    else:
        raise ConfigError("give either predictions files or RUN_DIRs, not both")
    print_report(report, " + ".join(args.inputs))
    if args.json:
        write_json(report, args.json, {"inputs": args.inputs, "frames": args.frames})
        print(f"metrics written to {args.json}")
    return 0
