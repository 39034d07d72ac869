"""torch backend: the export's ``model.pt2`` (torch.export program), for hosts with torch but no TensorRT.

Needs torch (``pip install 'posestream[train]'``, or a CUDA build of torch on GPU hosts). Frames
go to the device as uint8 (a quarter of float32's bytes); fp16 exports run their network in half
precision inside the program.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ModelFormatError
from ..extras import require
from ..model_dir import ModelDir
from ..postprocess import output_names
from .base import Backend, check_frames


class TorchBackend(Backend):
    """model.pt2 on ``device`` ("cpu", "cuda", "cuda:N")."""

    name = "torch"

    def __init__(self, model: ModelDir, device: str = "cpu"):
        super().__init__(model)
        self.torch = require("torch", extra="train", feature="the torch backend",
                             hint="or use --backend onnxruntime")  # fmt: skip
        if device.startswith("cuda") and not self.torch.cuda.is_available():
            raise ConfigError(f"--device {device}: this torch has no CUDA; install a CUDA build of torch or use cpu")
        self.device = self.torch.device(device)
        path = model.file("torch")
        try:
            self.module = self.torch.export.load(str(path)).module().to(self.device)
        except Exception as exc:  # torch raises many types for a corrupt or foreign archive
            raise ModelFormatError(f"{path}: torch cannot load it ({exc}); re-export the model") from exc
        self.names = output_names(model.metadata)

    def run(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        check_frames(frames, self.model)
        with self.torch.inference_mode():
            batch = self.torch.from_numpy(frames).to(self.device, non_blocking=True)
            outputs = self.module(batch)
            return {name: out.cpu().numpy() for name, out in zip(self.names, outputs)}
