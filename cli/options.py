"""Every option that more than one command takes, declared once: one name, one meaning, one help text.

A command adds them by group (``add_model``, ``add_thresholds``, ...) or one by one (``OVERWRITE.add``); it
may set its own default, metavar or requiredness, never its own help or type. ``tests/test_cli_options.py``
walks every command's parser and checks this. Help texts use argparse's ``%(default)s`` and ``%(metavar)s``
where a command's value differs.

Spellings renamed for one meaning per name keep working for one release, with a note (``RENAMED``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from posestream.engine.model.backends import BACKENDS

PER_COMMAND = {"default", "metavar", "required"}
"""What a command may set for itself when it adds a shared option."""


@dataclass(frozen=True)
class Option:
    """One option as every command that takes it declares it."""

    flags: tuple[str, ...]
    settings: dict = field(default_factory=dict)

    def add(self, parser: argparse.ArgumentParser | argparse._ArgumentGroup, **own) -> None:
        """Add to ``parser``, with the command's own ``default``, ``metavar`` or ``required``."""
        if unexpected := set(own) - PER_COMMAND:
            raise TypeError(
                f"{self.flags[-1]}: a command may only set {sorted(PER_COMMAND)}, not {sorted(unexpected)}"
            )
        parser.add_argument(*self.flags, **{**self.settings, **own})


def option(*flags: str, **settings) -> Option:
    return Option(flags, settings)


# The run: what goes in, what comes out, and how the command reports.
MODEL = option(
    "-m",
    "--model",
    action="append",
    required=True,
    metavar="MODEL_DIR",
    help="exported model directory, or demo (repeat for top-down: centroid and centered-instance)",
)
OUTPUT = option("-o", "--output", help="where to write: %(metavar)s")
FORMAT = option(
    "--format",
    action="append",
    default=[],
    help="file formats to write, comma-separated or repeated: %(metavar)s (default: see the description)",
)
FRAMES = option(
    "--frames", metavar="A-B", help="the frames to read, inclusive: e.g. 0-999,2000- (default: all)"
)
NUM_FRAMES = option(
    "--num-frames",
    type=int,
    metavar="N",
    help="the number of frames (synth: to render, default 300; listen: to take before stopping)",
)
QUIET = option("--quiet", action="store_true", help="no progress bar, status line or per-frame printing")
OVERWRITE = option(
    "--overwrite",
    action="store_true",
    help="replace an output that exists and does not hold predictions posestream wrote",
)
JSON = option("--json", metavar="OUT.json", help="also write the results as JSON")
SEED = option(
    "--seed", type=int, help="random seed: the same seed gives the same result (default %(default)s)"
)
FPS = option("--fps", type=float, help="frame rate, frames per second (default %(default)s)")
DURATION = option(
    "--duration", type=float, metavar="SECONDS", help="stop after this long (default: at the end or Ctrl-C)"
)
MAX_MISSING = option(
    "--max-missing",
    type=float,
    default=0.01,
    metavar="FRACTION",
    help="a video with more than this fraction of its frames failing to decode fails (track exits "
    "with 3, batch marks it failed; default 0.01); the output marks them missing either way",
)

# Where and how the network runs.
BACKEND = option(
    "--backend",
    default="auto",
    choices=BACKENDS,
    help="auto (default): onnxruntime on CPU; on CUDA the first available of TensorRT (model.plan), "
    "torch (model.pt2), onnxruntime-gpu. tensorrt: model.plan, else onnxruntime's TensorRT provider. "
    "torch: model.pt2",
)
DEVICE = option(
    "--device",
    default="cpu",
    help="where the network runs: cpu (default), cuda or cuda:N (needs posestream[gpu]); train and "
    "evaluate also take auto (cuda when there is one)",
)
BATCH_SIZE = option(
    "--batch-size",
    type=int,
    help="frames per inference batch (default on cpu: 1-16 by the network's input size, README "
    "'Benchmark throughput'; 16 on cuda)",
)
MAX_BATCH = option("--max-batch", type=int, help="most frames per model call (default %(default)s)")
THREADS = option(
    "--threads",
    type=int,
    default=0,
    metavar="N",
    help="the network's CPU threads (default: the thread budget, README 'Benchmark throughput')",
)
DECODE_THREADS = option(
    "--decode-threads",
    type=int,
    metavar="N",
    help="FFmpeg's decoder threads, 0: FFmpeg chooses (default: the thread budget)",
)
WORKERS = option(
    "--workers",
    type=int,
    help="postprocessing threads (default: the thread budget's: 0 for a light network, 1 at batch "
    "size 1, else 2)",
)

# What the decoder keeps.
PEAK_THRESHOLD = option(
    "--peak-threshold",
    type=float,
    help="drop points whose peak is lower (default: the model's; evaluate of runs: 0.2)",
)
MAX_INSTANCES = option(
    "--max-instances", type=int, help="most animals per frame (default: the model's; import: 10)"
)

# Identities across frames (engine/tracking), with SLEAP's and sleap-nn's option names.
TRACKING = option("--tracking", action="store_true", help="give instances identities across frames")
MAX_TRACKS = option(
    "--max-tracks",
    type=int,
    metavar="N",
    help="the number of animals: never more than N identities (default: no limit)",
)
SIMILARITY = option(
    "--similarity",
    metavar="oks|centroid|iou",
    help="detection-to-track similarity (default oks, with a per-instance scale)",
)
MATCH = option("--match", metavar="hungarian|greedy", help="assignment (default hungarian)")
TRACK_MAX_AGE = option(
    "--track-max-age",
    type=float,
    metavar="SECONDS",
    help="how long a lost track waits for its animal to come back (default 1 s of video time)",
)
KALMAN = option(
    "--kalman",
    action="store_true",
    default=None,
    help="predict motion with a Kalman filter per track (default: smoothed velocity)",
)
TRACKER_FIELDS = {
    "max_tracks": "max_tracks",
    "similarity": "similarity",
    "match": "match",
    "track_max_age": "max_age",
    "kalman": "kalman",
}
"""argparse dest -> TrackerConfig field."""

# Live sockets.
ALLOW_REMOTE = option(
    "--allow-remote", action="store_true", help="allow addresses off this host (not loopback)"
)
CURVE = option("--curve", metavar="KEY_DIR", help="CURVE keys for every socket (posestream keys KEY_DIR)")
LOSSLESS = option(
    "--lossless",
    action="store_true",
    help="queues block instead of dropping, so every frame is served, up to the camera's end at a "
    "stop (live and camera-sim together; for replays and tests, not rigs)",
)

# Training settings and labels.
PROFILE = option(
    "--profile",
    help="shipped defaults (train/profiles): single_instance, centroid, centered_instance, bottomup, "
    "multi_class_topdown (the identity centered-instance network, beside a centroid model), "
    "multi_class_bottomup",
)
CONFIG = option("--config", metavar="FILE.yaml", help="YAML file of settings over the profile")
SET = option(
    "--set",
    action="append",
    default=[],
    metavar="KEY=VALUE",
    help="override one setting, e.g. --set optim.learning_rate=3e-4 (repeatable)",
)
VIDEO_PATH = option(
    "--video-path",
    action="append",
    default=[],
    metavar="OLD=NEW",
    help="where a video named in the labels is here (OLD=NEW, or NEW for one video)",
)

# Export and import.
OUTPUT_MODE = option(
    "--output-mode",
    default="maps",
    choices=["maps", "peaks"],
    help="maps: confidence maps (and PAFs) leave the graph, for CPU hosts; peaks: the graph finds "
    "the top-K peak candidates (and PAF samples between them), so a GPU host returns kilobytes "
    "per frame",
)
PRECISION = option(
    "--precision",
    metavar="fp32|fp16|int8",
    help="arithmetic. export, import: fp32 (default), fp16 (the default with tensorrt), int8 "
    "(post-training quantization, calibrated on training frames; import: --calibration). train: auto "
    "(default: bf16 where the CPU or GPU has it), fp32 (the reference path), bf16, fp16 (CUDA)",
)
INPUT_SIZE = option(
    "--input-size",
    metavar="HxW",
    help="frame size the model takes (default: the size it was trained on; crop side for centered-instance)",
)
MAX_PEAKS = option(
    "--max-peaks", type=int, metavar="K", help="peak candidates per node (default by model type)"
)
CALIBRATION_FRAMES = option(
    "--calibration-frames", type=int, default=64, help="int8 calibration frames (default 64)"
)


def add_model(parser: argparse.ArgumentParser) -> None:
    """The model, and where it runs."""
    for shared in (MODEL, BACKEND, DEVICE):
        shared.add(parser)


def add_thresholds(parser: argparse.ArgumentParser) -> None:
    for shared in (PEAK_THRESHOLD, MAX_INSTANCES):
        shared.add(parser)


def add_threads(parser: argparse.ArgumentParser) -> None:
    """The CPU thread budget's three figures (engine/threads.py), each replaceable."""
    for shared in (THREADS, DECODE_THREADS, WORKERS):
        shared.add(parser)


def add_security(parser: argparse.ArgumentParser) -> None:
    ALLOW_REMOTE.add(parser)
    CURVE.add(parser)


def add_tracking(parser: argparse.ArgumentParser, flag: bool = True) -> None:
    """``flag``: tracking is asked for with --tracking (retrack always tracks)."""
    group = parser.add_argument_group("tracking", "identities across frames, online (engine/tracking)")
    for shared in ((TRACKING,) if flag else ()) + (MAX_TRACKS, SIMILARITY, MATCH, TRACK_MAX_AGE, KALMAN):
        shared.add(group)


def add_settings(parser: argparse.ArgumentParser) -> None:
    """--profile, --config, --set: the training settings, as train and preview-rf take them."""
    for shared in (PROFILE, CONFIG, SET):
        shared.add(parser)


def formats(args: argparse.Namespace) -> tuple[str, ...]:
    """--format's values, comma-separated or repeated."""
    return tuple(f for spec in args.format for f in spec.split(","))


def tracker_config(args: argparse.Namespace, flag_required: bool = True):
    """The TrackerConfig the tracking options ask for; None when tracking is off (then none may be given)."""
    from posestream.core.errors import ConfigError
    from posestream.engine.tracking.config import TrackerConfig

    given = {
        field: getattr(args, dest)
        for dest, field in TRACKER_FIELDS.items()
        if getattr(args, dest) is not None
    }
    if flag_required and not args.tracking:
        if given:
            names = ", ".join(
                "--" + dest.replace("_", "-") for dest in TRACKER_FIELDS if getattr(args, dest) is not None
            )
            raise ConfigError(f"{names} set how to track, but tracking is off: add --tracking")
        return None
    return TrackerConfig(**given)


# Several cameras (posestream.multiview).
RIG_CALIBRATION = option(
    "--calibration",
    metavar="CALIBRATION.toml",
    help="the rig's cameras (anipose's calibration.toml): read by triangulate, render, batch and live (3D "
    "poses), written by synth --cameras",
)
CAMERAS = option(
    "--cameras",
    type=int,
    metavar="N",
    help="how many cameras: camera-sim sends as cameras 0..N-1; synth films one 3D scene with N",
)

RENAMED = {
    ("synth", "--frames"): "--num-frames",  # a count there, a range everywhere else
    ("listen", "--frames"): "--num-frames",
    ("batch", "--workers"): "--jobs",  # pipelines there, postprocessing threads in track and bench
    ("batch", "--address"): "--ray-address",  # a Ray cluster there, a socket address in camera-sim
    ("import", "--calibration"): "--calibration-data",  # int8 frames there, the rig's cameras elsewhere
}
"""(command, old spelling) -> new spelling. The old spellings work until 0.3, with a note on stderr."""


def renamed(argv: Sequence[str]) -> list[str]:
    """``argv`` with the old spellings of its command's options replaced by the new ones (each noted)."""
    argv = list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if (new := RENAMED.get((command, name))) is not None:
            argv[i] = new + eq + value
            print(
                f"posestream {command}: note: {name} is now {new}; {name} stops working in 0.3",
                file=sys.stderr,
            )
    return argv
