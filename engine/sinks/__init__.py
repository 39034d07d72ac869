"""Output sinks: SLEAP analysis HDF5 (streaming) and SLEAP labels (.slp, via sleap-io)."""

from .analysis_h5 import AnalysisData, AnalysisH5Writer, read_analysis_h5, recover_analysis_h5
from .slp import SlpWriter

__all__ = ["AnalysisData", "AnalysisH5Writer", "SlpWriter", "read_analysis_h5", "recover_analysis_h5"]
