"""SLEAP analysis HDF5: ``layout`` (the datasets and their axes), ``writer`` (streaming, crash-safe),
``reader`` (ours and SLEAP's) and ``recovery`` (a killed writer's file made plain)."""

from posestream.engine.sinks.analysis_h5.layout import (
    FRAME_DONE,
    FRAME_DROPPED,
    FRAME_MISSING,
    FRAME_NOT_PROCESSED,
)
from posestream.engine.sinks.analysis_h5.reader import (
    AnalysisData,
    AnalysisH5Reader,
    open_analysis_h5,
    read_analysis_h5,
    slot_track_ids,
)
from posestream.engine.sinks.analysis_h5.recovery import recover_analysis_h5
from posestream.engine.sinks.analysis_h5.writer import AnalysisH5Writer

__all__ = [
    "FRAME_DONE",
    "FRAME_DROPPED",
    "FRAME_MISSING",
    "FRAME_NOT_PROCESSED",
    "AnalysisData",
    "AnalysisH5Reader",
    "AnalysisH5Writer",
    "open_analysis_h5",
    "read_analysis_h5",
    "recover_analysis_h5",
    "slot_track_ids",
]
