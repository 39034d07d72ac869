"""What every backend provides: ``run(frames) -> {output name: array}`` for one model directory."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..errors import ModelFormatError
from ..model_dir import ModelDir


class Backend(ABC):
    """One loaded model on one device."""

    name: str

    def __init__(self, model: ModelDir):
        self.model = model
        self.metadata = model.metadata

    @abstractmethod
    def run(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs of the model for uint8 frames (N, H, W, C), by output name (see engine.postprocess)."""


def check_frames(frames: np.ndarray, model: ModelDir) -> None:
    """A clear error when a batch does not match the frames the model was exported for."""
    expected = model.metadata.input_shape
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != expected:
        raise ModelFormatError(
            f"{model.path}: the model takes uint8 frames of (height, width, channels) {expected}, got "
            f"{frames.dtype} {frames.shape[1:]}; re-export it for these frames with "
            f"posestream export RUN_DIR -o {model.path} --input-size {frames.shape[1] if frames.ndim == 4 else 'H'}x"
            f"{frames.shape[2] if frames.ndim == 4 else 'W'}"
        )
