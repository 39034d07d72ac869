"""Output sinks: SLEAP analysis HDF5 (streaming)."""

from .analysis_h5 import AnalysisData, AnalysisH5Writer, read_analysis_h5, recover_analysis_h5

__all__ = ["AnalysisData", "AnalysisH5Writer", "read_analysis_h5", "recover_analysis_h5"]
