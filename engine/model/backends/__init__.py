"""Inference backends: run an exported model on a uint8 frame batch and return its named outputs."""

from __future__ import annotations

import importlib.util

from posestream.core.errors import ConfigError
from posestream.engine.model.backends.base import Backend, Pending, check_frames
from posestream.engine.model.backends.onnxruntime import OnnxRuntimeBackend
from posestream.engine.model.model_dir import ModelDir

BACKENDS = ("auto", "onnxruntime", "tensorrt", "torch")


def open_backend(
    model: ModelDir, backend: str = "auto", device: str = "cpu", threads: int = 0, spin: bool = True
) -> Backend:
    """The backend for ``model`` on ``device``.

    auto: onnxruntime on CPU; on CUDA the first that is here of: the TensorRT engine (model.plan,
    with tensorrt installed), the torch program (model.pt2, with a CUDA torch), onnxruntime's CUDA
    provider. tensorrt: model.plan natively when the directory has one, else onnxruntime's
    TensorRT provider on model.onnx. ``spin``: onnxruntime's idle threads spin for work (see
    OnnxRuntimeBackend).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "tensorrt" and device == "cpu":
        raise ConfigError("--backend tensorrt needs --device cuda (and pip install 'posestream[gpu]')")
    if backend == "auto":
        backend = _fastest(model, device)
    if backend == "torch":
        from posestream.engine.model.backends.torch import TorchBackend

        return TorchBackend(model, device)
    if backend == "tensorrt" and model.has("tensorrt"):
        from posestream.engine.model.backends.tensorrt import TensorRTBackend

        return TensorRTBackend(model, device)
    return OnnxRuntimeBackend(
        model, device, threads, provider="tensorrt" if backend == "tensorrt" else None, spin=spin
    )


def _fastest(model: ModelDir, device: str) -> str:
    if device == "cpu":
        return "onnxruntime"
    if model.has("tensorrt") and importlib.util.find_spec("tensorrt") is not None:
        return "tensorrt"
    if model.has("torch") and _torch_cuda():
        return "torch"
    return "onnxruntime"


def _torch_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


__all__ = ["BACKENDS", "Backend", "OnnxRuntimeBackend", "Pending", "check_frames", "open_backend"]
