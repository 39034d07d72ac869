"""Output sinks: SLEAP analysis HDF5 (streaming) and SLEAP labels (.slp, via sleap-io), and their readers."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from posestream.core.errors import OutputFileError
from posestream.engine.sinks.analysis_h5 import (
    AnalysisData,
    AnalysisH5Reader,
    AnalysisH5Writer,
    read_analysis_h5,
    recover_analysis_h5,
)
from posestream.engine.sinks.base import Sink
from posestream.engine.sinks.slp import SlpReader, SlpWriter
from posestream.engine.types import Skeleton


def make_folder(folder: Path, purpose: str) -> None:
    """Make ``folder`` (and its parents) for ``purpose`` (named in errors); a clear error when a path on the
    way is a file, or it cannot be made or written."""
    for parent in (folder, *folder.parents):
        if parent.exists():
            if not parent.is_dir():
                raise OutputFileError(
                    f"{purpose}: {parent} is a file, not a folder; choose another output path"
                )
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputFileError(f"{purpose}: cannot make the folder {folder} ({exc.strerror or exc})") from exc
    if not os.access(folder, os.W_OK):
        raise OutputFileError(f"{purpose}: the folder {folder} is not writable; choose another output path")


def prepare_outputs(paths: dict[str, Path], overwrite: bool = False) -> None:
    """Make each output's folder; a clear error (naming the path and the fix) when a folder is a file or
    not writable, or when the output exists and does not hold predictions posestream wrote (notes, ground
    truth, labels): it is replaced only with ``overwrite``."""
    for path in paths.values():
        make_folder(path.parent, str(path))
        if path.is_dir():
            raise OutputFileError(f"{path}: is a folder; give a file name (e.g. {path / 'predictions.h5'})")
        if path.exists() and path.stat().st_size and not overwrite and not holds_predictions(path):
            raise OutputFileError(
                f"{path}: exists and does not hold predictions posestream wrote, so it is not "
                "overwritten; choose another output path, or pass --overwrite"
            )


def holds_predictions(path: Path) -> bool:
    """Whether ``path`` is an analysis HDF5, .slp or NWB file of predictions posestream wrote (its provenance
    names the models, or the file it was retracked from), which a new run may replace. Anything it cannot
    read that far (not HDF5, unreadable, damaged, another tool's) is not."""
    import json

    import h5py

    try:
        if not h5py.is_hdf5(path):
            return False
        with h5py.File(path, "r", locking=False) as f:
            if "provenance" in f:  # analysis HDF5
                provenance = json.loads(f["provenance"][()] or "{}")
            elif "general/notes" in f:  # NWB: the notes hold the provenance
                provenance = json.loads(f["general/notes"][()] or "{}")
            else:  # .slp: the labels' metadata
                provenance = (
                    json.loads(f["metadata"].attrs["json"]).get("provenance", {}) if "metadata" in f else {}
                )
    except Exception:  # noqa: BLE001 - a file we cannot read this far is not ours to replace
        return False
    return isinstance(provenance, dict) and ("models" in provenance or "retracked_from" in provenance)


def open_sinks(
    paths: dict[str, Path],
    skeleton: Skeleton,
    video_path: str,
    provenance: dict,
    tracked: bool,
    track_names: Sequence[str] = (),
    timestamps: Callable[[], np.ndarray] | None = None,
) -> list[Sink]:
    """A writer per output format (``{"analysis-h5": OUT.h5, "slp": OUT.slp, "nwb": OUT.nwb}``); ``tracked``:
    one identity per track slot (sinks/slots.py); ``track_names``: names of identities 0, 1, ... (an identity
    model's classes); ``timestamps``: gives each video frame's time in seconds, for NWB (default: at 30
    FPS)."""
    saved_at_close = []  # written in one go by close(): made first, since making them writes nothing
    if "nwb" in paths:
        from posestream.engine.sinks.nwb import NwbWriter

        times = timestamps() if timestamps is not None else np.arange(0, dtype=np.float64)
        saved_at_close.append(
            NwbWriter(paths["nwb"], skeleton, video_path, times, provenance, tracked, track_names)
        )
    if "slp" in paths:
        saved_at_close.append(
            SlpWriter(paths["slp"], skeleton, video_path, provenance=provenance, track_names=track_names)
        )
    if "analysis-h5" not in paths:
        return saved_at_close
    streaming = AnalysisH5Writer(
        paths["analysis-h5"],
        skeleton,
        video_path=video_path,
        provenance=provenance,
        tracked=tracked,
        track_names=track_names,
    )
    return [streaming, *saved_at_close]  # closed first: what it streamed is safe whatever the others do


def close_sinks(sinks: Sequence[Sink]) -> None:
    """Close every sink, even when one fails; then raise the first failure."""
    failure = None
    for sink in sinks:
        try:
            sink.close()
        except Exception as exc:  # noqa: BLE001 - the others are still closed; this one is raised after
            failure = failure or exc
    if failure is not None:
        raise failure


__all__ = [
    "AnalysisData",
    "AnalysisH5Reader",
    "AnalysisH5Writer",
    "Sink",
    "SlpReader",
    "SlpWriter",
    "close_sinks",
    "make_folder",
    "open_sinks",
    "prepare_outputs",
    "read_analysis_h5",
    "recover_analysis_h5",
]
