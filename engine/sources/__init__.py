"""Frame sources: video files (PyAV) and HDF5 video datasets."""

from .base import FrameSource, open_source
from .hdf5_dataset import HDF5DatasetReader
from .video_file import VideoFileReader

__all__ = ["FrameSource", "HDF5DatasetReader", "VideoFileReader", "open_source"]
