"""torch backend: the export's ``model.pt2`` (torch.export program), for hosts with torch but no TensorRT.

Needs torch (``pip install 'posestream[train]'``, or a CUDA build of torch on GPU hosts). Frames
go to the device as uint8 (a quarter of float32's bytes); fp16 exports run their network in half
precision inside the program. On CUDA each batch size is captured once as a CUDA graph, and
``submit`` keeps the device busy between batches (double buffering):

    host:    copy batch k+1 into pinned slot B ──────────────┐
    copy:    pinned slot B ──H2D──> device slot B ── event ───┤   (its own stream)
    compute: ... graph(batch k) ── D2H outputs k ──│ wait event ── graph(batch k+1) ...

so while batch k's network runs, batch k+1 is copied in; the graph's static input takes a device-to-
device copy of the slot, and the outputs come back into the slot's pinned host buffers. With a peaks-mode
export only the candidates come back (``export --output-mode peaks``).
"""

from __future__ import annotations

import numpy as np

from posestream.core.errors import ConfigError, ModelFormatError
from posestream.engine.extras import require
from posestream.engine.model.backends.base import Backend, Pending
from posestream.engine.model.model_dir import ModelDir
from posestream.engine.model.postprocess import output_names

SLOTS = 2  # batches whose copies may be in flight at once: one running, one being copied in


class TorchBackend(Backend):
    """model.pt2 on ``device`` ("cpu", "cuda", "cuda:N")."""

    name = "torch"

    def __init__(self, model: ModelDir, device: str = "cpu", cuda_graphs: bool = True):
        super().__init__(model)
        self.torch = require(
            "torch", extra="train", feature="the torch backend", hint="or use --backend onnxruntime"
        )
        if device.startswith("cuda") and not self.torch.cuda.is_available():
            raise ConfigError(
                f"--device {device}: this torch has no CUDA; install a CUDA build of torch or use cpu"
            )
        self.device = self._indexed(self.torch.device(device))
        path = model.file("torch")
        try:
            from torch.export.passes import move_to_device_pass
        except ImportError as exc:
            raise ConfigError(
                f"the torch backend needs torch 2.6 or later (this is {self.torch.__version__}); upgrade "
                "torch or use --backend onnxruntime"
            ) from exc
        try:
            program = self.torch.export.load(str(path))
            # the program names the device it was exported on in its nodes, not only in its weights
            self.module = move_to_device_pass(program, self.device).module()
        except Exception as exc:  # torch raises many types for a corrupt or foreign archive
            raise ModelFormatError(f"{path}: torch cannot load it ({exc}); re-export the model") from exc
        self.names = output_names(model.metadata)
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self.overlaps = self.cuda_graphs  # submit() returns while the batch runs
        self._graphs: dict[int, _CapturedBatch] = {}

    def _indexed(self, device):
        """``cuda`` as ``cuda:N`` (the current device), which is how a moved program's nodes name it."""
        if device.type == "cuda" and device.index is None:
            return self.torch.device("cuda", self.torch.cuda.current_device())
        return device

    def run(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        return self.submit(frames).result()

    def submit(self, frames: np.ndarray) -> Pending:
        self.check_batch(frames)
        if self.cuda_graphs:
            return self._submit_captured(frames)
        with self.torch.inference_mode():
            outputs = self.module(self.torch.from_numpy(frames).to(self.device))
            return Pending.done({name: out.cpu().numpy() for name, out in zip(self.names, outputs)})

    def close(self) -> None:
        """Drop the captured graphs and the program, and return their cached CUDA memory."""
        self._graphs.clear()
        self.module = None
        if self.device.type == "cuda":
            self.torch.cuda.empty_cache()
        super().close()

    def _submit_captured(self, frames: np.ndarray) -> Pending:
        """Run ``frames`` (N, H, W, C) on the smallest captured batch size that holds them, padded with
        zeros: a video's short last batch reuses the full batch's graph instead of capturing (and keeping the
        memory of) one more."""
        n = len(frames)
        size = min((s for s in self._graphs if s >= n), default=n)
        if size == n:
            return self._graph_for(n).submit(frames)
        padded = np.zeros((size, *frames.shape[1:]), frames.dtype)
        padded[:n] = frames
        pending = self._graph_for(size).submit(padded)
        return Pending(lambda: {name: out[:n] for name, out in pending.result().items()})

    def _graph_for(self, batch_size: int) -> _CapturedBatch:
        if batch_size not in self._graphs:
            shape = (batch_size, *self.metadata.input_shape)
            self._graphs[batch_size] = _CapturedBatch(self.torch, self.module, shape, self.device, self.names)
        return self._graphs[batch_size]


class _CapturedBatch:
    """The program captured as a CUDA graph for one batch shape, with SLOTS pinned host buffers (frames in,
    outputs back) and device input buffers, a copy stream and a compute stream."""

    def __init__(self, torch, module, shape: tuple[int, ...], device, names: list[str]):
        self.torch, self.names = torch, names
        self.copy_stream, self.compute_stream = torch.cuda.Stream(device), torch.cuda.Stream(device)
        self.staging = [torch.empty(shape, dtype=torch.uint8, pin_memory=True) for _ in range(SLOTS)]
        self.arrived = [torch.empty(shape, dtype=torch.uint8, device=device) for _ in range(SLOTS)]
        self.frames = torch.empty(shape, dtype=torch.uint8, device=device)  # the graph's static input
        with torch.inference_mode():
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):  # warm-up outside the capture (lazy init, autotuning)
                for _ in range(2):
                    module(self.frames)
            torch.cuda.current_stream(device).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.outputs = module(self.frames)
        self.host = [
            [torch.empty(o.shape, dtype=o.dtype, pin_memory=True) for o in self.outputs] for _ in range(SLOTS)
        ]
        self.copied = [torch.cuda.Event() for _ in range(SLOTS)]
        self.done = [torch.cuda.Event() for _ in range(SLOTS)]
        self.slot = 0

    def submit(self, frames: np.ndarray) -> Pending:
        """Copy the frames in and queue the graph; returns once the frames' buffer may be reused."""
        torch, slot = self.torch, self.slot
        self.slot = (slot + 1) % SLOTS
        self.done[slot].synchronize()  # this slot's last batch has left its buffers
        self.staging[slot].numpy()[...] = frames
        with torch.cuda.stream(self.copy_stream):
            self.arrived[slot].copy_(self.staging[slot], non_blocking=True)
            self.copied[slot].record(self.copy_stream)
        with torch.cuda.stream(self.compute_stream):
            self.compute_stream.wait_event(self.copied[slot])
            self.frames.copy_(self.arrived[slot], non_blocking=True)
            self.graph.replay()
            for host, out in zip(self.host[slot], self.outputs):
                host.copy_(out, non_blocking=True)
            self.done[slot].record(self.compute_stream)
        return Pending(lambda: self._result(slot))

    def _result(self, slot: int) -> dict[str, np.ndarray]:
        self.done[slot].synchronize()
        return {name: host.numpy().copy() for name, host in zip(self.names, self.host[slot])}
