"""DeepLabCut labels, read through sleap-io's DLC reader into the sleap-io ``Labels`` that train reads.

What a DeepLabCut user has, and what each becomes:

- a project's ``config.yaml``: every ``labeled-data/<video>/CollectedData_*.csv`` of the project, one
  skeleton with the config's edges (``sio.load_dlc_project``);
- ``CollectedData_*.csv`` (single- or multi-animal): that folder's labels; a ``config.yaml`` found above it
  gives the edges (``sio.load_dlc``);
- ``CollectedData_*.h5``: the CSV DeepLabCut writes beside it (sleap-io reads DLC's CSV, not its pandas
  HDF5).

The labelled images are the PNG/JPEG files of the labels' folder; a multi-animal project's individuals are
the labels' tracks (identities). Frames are numbered in the order of the folder's image list.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from posestream.core.errors import ConfigError
from posestream.engine.extras import require

DLC_H5_KEY = "df_with_missing"  # the pandas key DeepLabCut writes its labels under


def is_dlc_labels(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a DeepLabCut labels file or project config rather than SLEAP's or posestream's."""
    path = Path(path)
    if path.suffix.lower() in (".csv", ".yaml", ".yml"):
        return True
    if path.suffix.lower() in (".h5", ".hdf5"):
        try:
            with h5py.File(path, "r") as f:
                return DLC_H5_KEY in f
        except OSError:  # not HDF5 at all: the analysis reader names the problem
            return False
    return False


def read_dlc_labels(path: str | os.PathLike):
    """The DeepLabCut labels at ``path`` as sleap-io ``Labels`` (table above), or a ConfigError that says
    what to give instead."""
    sio = require("sleap_io", extra="train", feature="reading DeepLabCut labels")
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            return sio.load_dlc_project(str(path))
        if suffix == ".csv":
            return sio.load_dlc(str(path))
        return sio.load_dlc(str(_csv_of_h5(path)))
    except ConfigError:
        raise
    except Exception as exc:  # sleap-io and pandas raise many types for a malformed table
        raise ConfigError(
            f"{path}: cannot read DeepLabCut labels ({type(exc).__name__}: {exc}); give the project's "
            "config.yaml or a labeled-data/<video>/CollectedData_<scorer>.csv"
        ) from exc


def _csv_of_h5(path: Path) -> Path:
    """The CSV that DeepLabCut writes beside its ``.h5`` with the same labels (sleap-io reads the CSV)."""
    twin = path.with_suffix(".csv")
    if not twin.exists():
        raise ConfigError(
            f"{path}: DeepLabCut's .h5 labels are read from the CSV it writes beside them, and "
            f"{twin.name} is not there; give the CSV, or the project's config.yaml"
        )
    return twin
