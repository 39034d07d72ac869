"""An exported model ready to run: its directory, a backend session and the decoder of its outputs.

model = ExportedModel("models/flies_bottomup")
instances = model.predict(frames)  # frames (N, H, W, C) uint8 -> one Instances per frame
"""

from __future__ import annotations

import os

import numpy as np

from posestream.engine.model.backends import Backend, open_backend
from posestream.engine.model.instances import Instances
from posestream.engine.model.model_dir import load_model_dir
from posestream.engine.model.postprocess import OutputDecoder


class ExportedModel:
    """A model directory on one backend; ``predict`` runs frames (or crops) through it and its decoder."""

    def __init__(
        self,
        path: str | os.PathLike,
        device: str = "cpu",
        threads: int = 0,
        peak_threshold: float | None = None,
        max_instances: int | None = None,
        backend: str = "auto",
        spin: bool = True,
    ):
        self.model_dir = load_model_dir(path)
        self.metadata = self.model_dir.metadata
        self.backend: Backend = open_backend(self.model_dir, backend, device, threads, spin)
        self.decoder = OutputDecoder(self.metadata, peak_threshold, max_instances)

    def predict(self, frames: np.ndarray, decoder: OutputDecoder | None = None) -> list[Instances]:
        """Instances of each frame (N, H, W, C) uint8, by this model's decoder unless another is given."""
        return (decoder or self.decoder).decode(self.backend.run(frames))

    def close(self) -> None:
        """Release the backend's device memory."""
        self.backend.close()
