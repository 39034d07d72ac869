"""posestream's inference engine: frame sources, the shared data model, and output sinks.

Needs only numpy, numba (to build its kernels, ``kernels/``), PyAV, h5py, pyzmq, onnxruntime and rich; never
torch.
"""

from posestream.core.errors import (
    ConfigError,
    FrameIndexError,
    MissingExtraError,
    ModelFormatError,
    ModelNotFoundError,
    OutputFileError,
    PosestreamError,
    VideoDecodeError,
    VideoNotFoundError,
    VideoOpenError,
)
from posestream.engine.frame_ranges import FrameRanges
from posestream.engine.model.model_dir import ModelDir, load_model_dir
from posestream.engine.sinks import AnalysisData, AnalysisH5Writer, read_analysis_h5, recover_analysis_h5
from posestream.engine.sources import FrameSource, HDF5DatasetReader, VideoFileReader, open_source
from posestream.engine.types import (
    FrameBlock,
    FramePredictions,
    ModelMetadata,
    ModelType,
    OutputMode,
    Skeleton,
    VideoMetadata,
)

__version__ = "0.2.0"

__all__ = [
    "AnalysisData",
    "AnalysisH5Writer",
    "ConfigError",
    "FrameIndexError",
    "FrameBlock",
    "FramePredictions",
    "FrameRanges",
    "FrameSource",
    "HDF5DatasetReader",
    "MissingExtraError",
    "ModelDir",
    "ModelFormatError",
    "ModelMetadata",
    "ModelNotFoundError",
    "ModelType",
    "OutputFileError",
    "OutputMode",
    "PosestreamError",
    "Skeleton",
    "VideoDecodeError",
    "VideoFileReader",
    "load_model_dir",
    "VideoMetadata",
    "VideoNotFoundError",
    "VideoOpenError",
    "open_source",
    "read_analysis_h5",
    "recover_analysis_h5",
]
