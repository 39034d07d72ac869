"""``posestream pack``: a SLEAP training package (``.pkg.slp``) with the labelled images inside.

SLEAP's GUI exports such a package for training on another machine: the labels plus the frames they
label, PNG-encoded in the same HDF5 file, so the videos need not travel. sleap-io writes the file
(its format is SLEAP's); here we find the videos as ``train`` does, write to a partial file that is
renamed only when complete, and check what was embedded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from posestream.core.errors import ConfigError
from posestream.engine.extras import require
from posestream.engine.progress import progress_bar
from posestream.train.labels import resolve_video_paths

# sleap-io's names: labelled frames, + suggested, every frame
EMBED_CHOICES = (
    "user",
    "user+suggestions",
    "all",
)


@dataclass(frozen=True)
class PackSummary:
    path: Path
    embedded_frames: int
    videos: int
    size_bytes: int


def pack_labels(
    labels_path: str | os.PathLike,
    output: str | os.PathLike,
    video_paths: Sequence[str] = (),
    embed: str = "user",
    progress: bool = True,
) -> PackSummary:
    """Write ``output`` (.pkg.slp): the labels of ``labels_path`` with the frames ``embed`` names inside."""
    sio = require("sleap_io", extra="slp", feature="posestream pack")
    labels_path, output = Path(labels_path), Path(output)
    check_pack_paths(labels_path, output, embed)
    try:
        labels = sio.load_slp(str(labels_path), open_videos=False)
    except Exception as exc:  # sleap-io raises many types for a bad file
        raise ConfigError(f"{labels_path}: cannot read SLEAP labels ({type(exc).__name__}: {exc})") from exc
    wanted = frames_to_embed(labels, embed)
    if not wanted:
        raise ConfigError(
            f"{labels_path}: no frames to embed with --embed {embed} (it has "
            f"{len(labels.user_labeled_frames)} user-labelled frames and {len(labels.suggestions)} "
            "suggestions); try --embed all"
        )
    to_open = [v for v in labels.videos if not _is_package(v)]
    if to_open:
        found = resolve_video_paths([v.filename for v in to_open], labels_path, video_paths)
        labels.replace_filenames(filename_map={v.filename: path for v, path in zip(to_open, found)})
    partial = output.with_name(output.name[: -len(".slp")] + ".partial.slp")
    with progress_bar(len(wanted), f"packing {labels_path.name}", progress) as advance:
        counted = [0]

        def on_progress(current: int, total: int, phase: str) -> bool:
            if phase == "embed" and current > counted[0]:
                advance(current - counted[0])
                counted[0] = current
            return True

        sio.save_slp(labels, str(partial), embed=embed, verbose=False, progress_callback=on_progress)
    embedded = count_embedded_frames(partial)
    if embedded < len(wanted):
        raise ConfigError(
            f"{partial}: {embedded} frames were embedded, {len(wanted)} expected; left for inspection"
        )
    partial.replace(output)
    return PackSummary(output, embedded, len(labels.videos), output.stat().st_size)


def check_pack_paths(labels_path: Path, output: Path, embed: str) -> None:
    """Clear errors before any work: the labels exist, the output is a new .pkg.slp, the choice is known."""
    if not labels_path.exists():
        raise FileNotFoundError(f"{labels_path}: no such labels file")
    if not output.name.endswith(".pkg.slp"):
        raise ConfigError(f"-o {output}: a training package is named NAME.pkg.slp (SLEAP's name for it)")
    if output.resolve() == labels_path.resolve():
        raise ConfigError(f"-o {output} is the labels file itself; write the package to a new file")
    if embed not in EMBED_CHOICES:
        raise ConfigError(f"--embed must be one of {', '.join(EMBED_CHOICES)}, got {embed!r}")


def frames_to_embed(labels, embed: str) -> set[tuple[int, int]]:
    """(video index, frame index) of every frame ``embed`` names."""
    frames = set()
    if embed in ("user", "all"):
        frames |= {
            (labels.videos.index(lf.video), lf.frame_idx)
            for lf in labels.labeled_frames
            if embed == "all" or lf.has_user_instances
        }
    if embed in ("user+suggestions", "all"):
        frames |= {(labels.videos.index(s.video), s.frame_idx) for s in labels.suggestions}
    if embed == "user+suggestions":
        frames |= {(labels.videos.index(lf.video), lf.frame_idx) for lf in labels.user_labeled_frames}
    return frames


def count_embedded_frames(path: Path) -> int:
    """Frames stored as images inside a .slp (the ``videoN/frame_numbers`` datasets SLEAP writes)."""
    import h5py

    with h5py.File(path, "r") as f:
        return sum(
            len(f[name]["frame_numbers"])
            for name in f
            if name.startswith("video") and "frame_numbers" in f[name]
        )


def _is_package(video) -> bool:
    """A video whose frames already live inside a .slp (re-packing a package keeps them)."""
    return str(video.filename).endswith(".slp")
