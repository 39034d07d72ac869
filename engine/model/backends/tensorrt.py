"""Native TensorRT backend: the export's ``model.plan`` run with the TensorRT 10 runtime API.

Needs ``pip install 'posestream[gpu]'`` (tensorrt and cuda-python) and an NVIDIA GPU; tested only
where both exist. One execution context and one CUDA stream per backend; device buffers and pinned
host buffers are allocated once for the engine's largest batch and reused, so a batch costs one
host-to-device copy of uint8 frames, the network, and one device-to-host copy of its outputs.
"""

from __future__ import annotations

import ctypes

import numpy as np

from posestream.core.errors import ConfigError, ModelFormatError
from posestream.engine.extras import require
from posestream.engine.model.backends.base import Backend
from posestream.engine.model.model_dir import ModelDir


def _cudart():
    """cuda-python's runtime module (``cuda.bindings.runtime`` since 12.6, ``cuda.cudart`` before)."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        runtime = require("cuda.cudart", extra="gpu", feature="the TensorRT backend")
    return runtime


class _Cuda:
    """The few CUDA runtime calls the backend needs, each checked (an error names the call).

    It owns what it allocates: ``release()`` frees every buffer and the stream.
    """

    def __init__(self, device_id: int):
        self.rt = _cudart()
        self.check(self.rt.cudaSetDevice(device_id), "cudaSetDevice")
        self.stream = self.check(self.rt.cudaStreamCreate(), "cudaStreamCreate")
        self._device_pointers: list[int] = []
        self._host_pointers: list[int] = []

    def check(self, result, call: str):
        err, *values = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise ConfigError(f"CUDA {call} failed: {self.rt.cudaGetErrorString(err)[1].decode()} ({err})")
        return values[0] if len(values) == 1 else values

    def device_buffer(self, nbytes: int) -> int:
        pointer = self.check(self.rt.cudaMalloc(nbytes), "cudaMalloc")
        self._device_pointers.append(pointer)
        return pointer

    def pinned_array(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A page-locked host array (DMA without a staging copy)."""
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        pointer = self.check(self.rt.cudaMallocHost(nbytes), "cudaMallocHost")
        self._host_pointers.append(pointer)
        buffer = (ctypes.c_byte * nbytes).from_address(int(pointer))
        return np.frombuffer(buffer, dtype=dtype).reshape(shape)

    def copy(self, dst: int, src: int, nbytes: int, kind: str) -> None:
        kinds = {
            "h2d": self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice,
            "d2h": self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost,
        }
        self.check(self.rt.cudaMemcpyAsync(dst, src, nbytes, kinds[kind], self.stream), "cudaMemcpyAsync")

    def synchronize(self) -> None:
        self.check(self.rt.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    def release(self) -> None:
        """Free every buffer and the stream (arrays from ``pinned_array`` must not be used after)."""
        self.synchronize()
        for pointer in self._device_pointers:
            self.check(self.rt.cudaFree(pointer), "cudaFree")
        for pointer in self._host_pointers:
            self.check(self.rt.cudaFreeHost(pointer), "cudaFreeHost")
        self._device_pointers, self._host_pointers = [], []
        self.check(self.rt.cudaStreamDestroy(self.stream), "cudaStreamDestroy")


class TensorRTBackend(Backend):
    """model.plan on ``device`` ("cuda" or "cuda:N")."""

    name = "tensorrt"

    def __init__(self, model: ModelDir, device: str = "cuda"):
        super().__init__(model)
        if not device.startswith("cuda"):
            raise ConfigError("--backend tensorrt needs --device cuda (and pip install 'posestream[gpu]')")
        trt = require(
            "tensorrt", extra="gpu", feature="the TensorRT backend", hint="or use --backend onnxruntime"
        )
        self.cuda = _Cuda(int(device.partition(":")[2] or 0))
        path = model.file("tensorrt")
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise ModelFormatError(
                f"{path}: TensorRT cannot load it (built by another TensorRT version or for another GPU?); "
                f"rebuild it here with: posestream export RUN_DIR -o {model.path} --format onnx,tensorrt"
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.output_names = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.max_batch = self.engine.get_tensor_profile_shape("frames", 0)[2][0]
        self._allocate(trt)

    def _allocate(self, trt) -> None:
        """Device buffers and pinned host outputs for the largest batch; addresses bound once."""
        shape = (self.max_batch, *self.metadata.input_shape)
        self.context.set_input_shape("frames", shape)
        self.frames_device = self.cuda.device_buffer(int(np.prod(shape)))
        self.context.set_tensor_address("frames", self.frames_device)
        self.outputs = {}
        for name in self.output_names:
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            host = self.cuda.pinned_array(tuple(self.context.get_tensor_shape(name)), dtype)
            device = self.cuda.device_buffer(host.nbytes)
            self.context.set_tensor_address(name, device)
            self.outputs[name] = (host, device)

    def run(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        self.check_batch(frames)
        results: dict[str, np.ndarray] = {}
        for start in range(0, len(frames), self.max_batch):  # batches beyond the profile run in parts
            part = np.ascontiguousarray(frames[start : start + self.max_batch])
            for name, out in self._run_part(part).items():
                results.setdefault(name, []).append(out)
        return {name: np.concatenate(parts) for name, parts in results.items()}

    def _run_part(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        n = len(frames)
        self.context.set_input_shape("frames", frames.shape)
        self.cuda.copy(self.frames_device, frames.ctypes.data, frames.nbytes, "h2d")
        if not self.context.execute_async_v3(self.cuda.stream):
            raise ModelFormatError(f"{self.model.path / 'model.plan'}: TensorRT failed to run a batch of {n}")
        for host, device in self.outputs.values():
            self.cuda.copy(host.ctypes.data, device, host[:n].nbytes, "d2h")
        self.cuda.synchronize()
        return {name: host[:n].copy() for name, (host, _) in self.outputs.items()}  # the buffers are reused

    def close(self) -> None:
        """Free the device and pinned buffers, the stream, the context and the engine now."""
        if self.closed:
            return
        self.outputs = {}
        self.context = self.engine = None
        self.cuda.release()
        super().close()
