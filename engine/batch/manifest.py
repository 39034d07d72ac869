"""``OUT_DIR/manifest.jsonl``: one JSON line per finished, failed or interrupted unit, appended by the driver
only (workers return their results to it), flushed and fsynced line by line. The last line of a unit wins.

A line (``UnitRecord``): unit (the video's relative path), video, size, mtime_ns, models (a hash per model
directory), options (a hash of what changes the output), frames, status (done | failed | interrupted),
wall_s, fps, error, outputs, attempts, worker, finished_at.

A line cut short by a crash is skipped when the manifest is read (its unit is redone).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from posestream.core.errors import OutputFileError
from posestream.engine.model.model_dir import load_model_dir

MANIFEST_NAME = "manifest.jsonl"
DONE, FAILED, INTERRUPTED = "done", "failed", "interrupted"


@dataclass
class UnitRecord:
    unit: str
    video: str
    size: int = -1  # bytes (-1: the video was missing)
    mtime_ns: int = -1
    models: list[str] = field(default_factory=list)
    options: str = ""
    frames: int = 0
    frames_missing: int = 0  # of ``frames``: failed to decode
    status: str = DONE
    wall_s: float = 0.0
    fps: float = 0.0
    error: str = ""
    outputs: list[str] = field(default_factory=list)
    attempts: int = 1
    worker: str = ""
    finished_at: float = 0.0


class Manifest:
    """The records of an output folder: read at start, appended as units finish."""

    def __init__(self, out_dir: str | os.PathLike):
        self.path = Path(out_dir) / MANIFEST_NAME
        self.records: dict[str, UnitRecord] = {}
        self.skipped_lines = 0
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        for line in self.path.read_text().splitlines():
            try:
                record = UnitRecord(**json.loads(line))
            except (ValueError, TypeError):  # a line cut short by a crash, or not ours
                self.skipped_lines += 1
                continue
            self.records[record.unit] = record

    def append(self, record: UnitRecord) -> None:
        """Add a unit's record durably (one line, fsynced)."""
        record.finished_at = record.finished_at or time.time()
        line = json.dumps(asdict(record), separators=(",", ":")) + "\n"
        try:
            with open(self.path, "a") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise OutputFileError(
                f"{self.path}: cannot record unit {record.unit} ({exc.strerror or exc})"
            ) from exc
        self.records[record.unit] = record


def video_fingerprint(path: Path) -> tuple[int, int]:
    """(size in bytes, mtime in ns) of a video; (-1, -1) when it is missing."""
    try:
        stat = path.stat()
    except OSError:
        return -1, -1
    return stat.st_size, stat.st_mtime_ns


def models_hash(model_dirs: list[str]) -> list[str]:
    """A content hash per model directory (metadata and every model file), so a re-exported model redoes
    the units it made."""
    hashes = []
    for model in model_dirs:
        folder = load_model_dir(model).path
        digest = hashlib.sha256()
        for file in sorted(p for p in folder.iterdir() if p.is_file()):
            digest.update(file.name.encode())
            with open(file, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
        hashes.append(digest.hexdigest()[:16])
    return hashes


def options_hash(settings: dict) -> str:
    """A hash of the settings that change a unit's output (formats, tracking, thresholds)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
