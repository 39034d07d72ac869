"""Inference backends: run an exported model on a uint8 frame batch and return its named outputs."""

from __future__ import annotations

from ..errors import ConfigError
from ..model_dir import ModelDir
from .base import Backend, check_frames
from .onnxruntime import OnnxRuntimeBackend

BACKENDS = ("auto", "onnxruntime", "tensorrt", "torch")


def open_backend(model: ModelDir, backend: str = "auto", device: str = "cpu", threads: int = 0) -> Backend:
    """The backend for ``model`` on ``device``.

    auto: onnxruntime on CPU; on CUDA the torch program (model.pt2) when torch with CUDA is
    installed, else onnxruntime's CUDA provider. tensorrt: onnxruntime's TensorRT provider.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        backend = "torch" if device != "cpu" and model.has("torch") and _torch_cuda() else "onnxruntime"
    if backend == "torch":
        from .torch import TorchBackend

        return TorchBackend(model, device)
    if backend == "tensorrt" and device == "cpu":
        raise ConfigError("--backend tensorrt needs --device cuda (and pip install 'posestream[gpu]')")
    return OnnxRuntimeBackend(model, device, threads, provider="tensorrt" if backend == "tensorrt" else None)


def _torch_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


__all__ = ["BACKENDS", "Backend", "OnnxRuntimeBackend", "check_frames", "open_backend"]
