"""Output sinks: SLEAP analysis HDF5 (streaming) and SLEAP labels (.slp, via sleap-io), and their readers."""

from __future__ import annotations

from pathlib import Path

from ..types import Skeleton
from .analysis_h5 import AnalysisData, AnalysisH5Reader, AnalysisH5Writer, read_analysis_h5, recover_analysis_h5
from .slp import SlpReader, SlpWriter


def open_sinks(paths: dict[str, Path], skeleton: Skeleton, video_path: str, provenance: dict,
               tracked: bool) -> list:  # fmt: skip
    """A writer per output format (``{"analysis-h5": OUT.h5, "slp": OUT.slp}``); ``tracked``: the analysis
    HDF5 keeps one identity per slot (its tracked layout)."""
    sinks = []
    if "analysis-h5" in paths:
        sinks.append(AnalysisH5Writer(paths["analysis-h5"], skeleton, video_path=video_path, provenance=provenance,
                                      tracked=tracked))  # fmt: skip
    if "slp" in paths:
        sinks.append(SlpWriter(paths["slp"], skeleton, video_path, provenance=provenance))
    return sinks


__all__ = [
    "AnalysisData",
    "AnalysisH5Reader",
    "AnalysisH5Writer",
    "SlpReader",
    "SlpWriter",
    "open_sinks",
    "read_analysis_h5",
    "recover_analysis_h5",
]
