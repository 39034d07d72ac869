"""The videos of a batch run: found from files, folders and list files, named by their path under one root,
and split into deterministic shares for job arrays.

    videos = find_videos(["archive/", "extra.mp4", "todo.txt"])   # VideoInput(path, relative), sorted
    mine = shard(videos, index=3, count=10)                        # --shard 3/10

The root is the deepest folder that holds every video found, so ``relative`` never collides between
videos, and the output tree mirrors the input tree under OUT_DIR.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

from posestream.core.errors import ConfigError, VideoNotFoundError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".webm", ".h264", ".h265", ".ts")
LIST_SUFFIXES = (".txt", ".list", ".lst")


@dataclass(frozen=True)
class VideoInput:
    path: Path  # absolute
    relative: str  # its path under the run's root, with "/" separators: the unit's name and output path


def find_videos(inputs: list[str | os.PathLike]) -> list[VideoInput]:
    """Every video named by ``inputs`` (files, folders searched recursively, list files), once each,
    sorted."""
    if not inputs:
        raise ConfigError("no input: give video files, folders or a text file listing videos")
    found: dict[Path, None] = {}
    for item in inputs:
        for path in _expand(Path(item)):
            found[path.resolve()] = None
    if not found:
        raise ConfigError(
            f"no video found in {[str(i) for i in inputs]} (video suffixes: {', '.join(VIDEO_SUFFIXES)})"
        )
    paths = sorted(found)
    root = Path(os.path.commonpath([p.parent for p in paths]))
    return [VideoInput(p, p.relative_to(root).as_posix()) for p in paths]


def _expand(item: Path) -> list[Path]:
    """The videos one input names."""
    if item.is_dir():
        return sorted(p for p in item.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if item.suffix.lower() in LIST_SUFFIXES and item.is_file():
        return _listed(item)
    if not item.exists() and item.suffix.lower() not in VIDEO_SUFFIXES:
        raise VideoNotFoundError(f"{item}: no such file or folder")
    return [item]  # a missing video stays: its unit fails, not the run


def _listed(listing: Path) -> list[Path]:
    """The paths a list file holds, one per line (blank lines and # comments skipped; relative paths are
    relative to the list file's folder). A listed path that is missing stays: its unit fails, not the run."""
    paths = []
    for line in listing.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            path = Path(line).expanduser()
            paths.append(path if path.is_absolute() else listing.parent / path)
    return paths


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` (I from 0 to N-1, as SLURM_ARRAY_TASK_ID with --array=0-(N-1)) into (I, N)."""
    if text is None:
        return None
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like I/N (e.g. 0/10), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ConfigError(
            f"--shard {text}: I must be in 0..N-1 (e.g. --shard $SLURM_ARRAY_TASK_ID/{max(count, 1)})"
        )
    return index, count


def shard(videos: list[VideoInput], index: int, count: int) -> list[VideoInput]:
    """The ``index``-th of ``count`` shares: a video's share depends only on its relative path, so every video
    is in exactly one share, and adding videos to the archive does not move the others."""
    return [v for v in videos if zlib.crc32(v.relative.encode()) % count == index]
