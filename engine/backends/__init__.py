"""Inference backends: run an exported model on a uint8 frame batch and return its named outputs."""

from .base import Backend, check_frames
from .onnxruntime import OnnxRuntimeBackend

__all__ = ["Backend", "OnnxRuntimeBackend", "check_frames"]
