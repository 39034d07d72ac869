"""What every backend provides: ``run(frames) -> {output name: array}`` for one model directory."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from posestream.core.errors import ModelFormatError
from posestream.engine.model.model_dir import ModelDir


class Pending:
    """A batch a backend has started: ``result()`` waits for its outputs (by output name)."""

    def __init__(self, wait: Callable[[], dict[str, np.ndarray]]):
        self._wait = wait

    @classmethod
    def done(cls, outputs: dict[str, np.ndarray]) -> Pending:
        return cls(lambda: outputs)

    def result(self) -> dict[str, np.ndarray]:
        return self._wait()


class Backend(ABC):
    """One loaded model on one device."""

    name: str
    overlaps = False  # True: ``submit`` returns while the batch still runs (a GPU backend's own streams)

    def __init__(self, model: ModelDir):
        self.model = model
        self.metadata = model.metadata
        self.closed = False

    @abstractmethod
    def run(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs of the model for uint8 frames (N, H, W, C), by output name (see engine.postprocess)."""

    def submit(self, frames: np.ndarray) -> Pending:
        """Start a batch; once this returns the frames' buffer may be reused. Backends that overlap copies
        with the network return before it is done; the others run it here."""
        return Pending.done(self.run(frames))

    def close(self) -> None:
        """Release device memory now rather than at garbage collection (long-lived services open many
        backends); the backend cannot run after. Subclasses holding device memory free it, then call this."""
        self.closed = True

    def check_batch(self, frames: np.ndarray) -> None:
        """Before a run: the backend is open and the frames fit the model."""
        if self.closed:
            raise RuntimeError(f"{self.model.path}: its {self.name} backend was closed; open the model again")
        check_frames(frames, self.model)

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def check_frames(frames: np.ndarray, model: ModelDir) -> None:
    """A clear error when a batch does not match the frames the model was exported for."""
    expected = model.metadata.input_shape
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != expected:
        raise ModelFormatError(
            f"{model.path}: the model takes uint8 frames of (height, width, channels) {expected}, got "
            f"{frames.dtype} {frames.shape[1:]}; re-export it for these frames with "
            f"posestream export RUN_DIR -o {model.path} --input-size "
            f"{frames.shape[1] if frames.ndim == 4 else 'H'}x"
            f"{frames.shape[2] if frames.ndim == 4 else 'W'}"
        )
