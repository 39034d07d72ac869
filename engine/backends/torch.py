"""torch backend: the export's ``model.pt2`` (torch.export program), for hosts with torch but no TensorRT.

Needs torch (``pip install 'posestream[train]'``, or a CUDA build of torch on GPU hosts). Frames
go to the device as uint8 (a quarter of float32's bytes); fp16 exports run their network in half
precision inside the program. On CUDA each batch size is captured once as a CUDA graph (static
input and outputs, pinned host staging), so a batch is one copy in, one graph launch and one copy
out, with no per-kernel launch overhead from Python.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ModelFormatError
from ..extras import require
from ..model_dir import ModelDir
from ..postprocess import output_names
from .base import Backend


class TorchBackend(Backend):
    """model.pt2 on ``device`` ("cpu", "cuda", "cuda:N")."""

    name = "torch"

    def __init__(self, model: ModelDir, device: str = "cpu", cuda_graphs: bool = True):
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
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self._graphs: dict[int, _CapturedBatch] = {}

    def run(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        self.check_batch(frames)
        with self.torch.inference_mode():
            if self.cuda_graphs:
                outputs = self._graph_for(len(frames)).replay(frames)
            else:
                outputs = self.module(self.torch.from_numpy(frames).to(self.device))
            return {name: out.cpu().numpy() for name, out in zip(self.names, outputs)}

    def close(self) -> None:
        """Drop the captured graphs and the program, and return their cached CUDA memory."""
        self._graphs.clear()
        self.module = None
        if self.device.type == "cuda":
            self.torch.cuda.empty_cache()
        super().close()

    def _graph_for(self, batch_size: int) -> _CapturedBatch:
        if batch_size not in self._graphs:
            shape = (batch_size, *self.metadata.input_shape)
            self._graphs[batch_size] = _CapturedBatch(self.torch, self.module, shape, self.device)
        return self._graphs[batch_size]


class _CapturedBatch:
    """The program captured as a CUDA graph for one batch shape, with its static buffers."""

    def __init__(self, torch, module, shape: tuple[int, ...], device):
        self.staging = torch.empty(shape, dtype=torch.uint8, pin_memory=True)  # pinned host frames
        self.frames = torch.empty(shape, dtype=torch.uint8, device=device)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):  # warm-up outside the capture (lazy init, autotuning)
            for _ in range(2):
                module(self.frames)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = module(self.frames)

    def replay(self, frames: np.ndarray):
        """Outputs (device tensors, overwritten by the next replay) for uint8 frames of the captured shape."""
        self.staging.numpy()[...] = frames
        self.frames.copy_(self.staging, non_blocking=True)
        self.graph.replay()
        return self.outputs
