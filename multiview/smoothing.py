"""Temporal smoothing of 3D poses: a separate step that ``triangulate --smooth N`` runs only when asked, and
names in the file it writes (attribute ``smoothing``)."""

from __future__ import annotations

import warnings

import numpy as np

from posestream.core.errors import ConfigError


def check_window(window: int) -> None:
    """A smoothing window is an odd number of frames, at least 3."""
    if window < 3 or window % 2 == 0:
        raise ConfigError(f"--smooth {window}: the window must be an odd number of frames, at least 3")


def median_smooth(points: np.ndarray, window: int) -> np.ndarray:
    """Each coordinate of ``points`` (F, ...) replaced by the median of the ``window`` frames centred on it
    (NaN frames ignored; a point NaN in its own frame stays NaN: gaps are not filled)."""
    check_window(window)
    half = window // 2
    padded = np.pad(points, [(half, half)] + [(0, 0)] * (points.ndim - 1), constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)  # (F, ..., window)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN window: its point is NaN anyway
        smoothed = np.nanmedian(windows, axis=-1)
    return np.where(np.isnan(points), np.nan, smoothed)
