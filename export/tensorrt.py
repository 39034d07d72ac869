"""TensorRT engines (``model.plan``) built from the exported ONNX with the TensorRT Python API.

- precision: fp16 kernels allowed unless the export is fp32-only; int8 builds from the
  int8 export's QDQ graph (explicit quantization: TensorRT 10 deprecates implicit
  INT8 calibrators in favour of QDQ scales, which our onnxruntime calibration already wrote);
- one optimization profile over the batch: 1 .. max_batch, tuned for max_batch / 2;
- a timing cache shared by every build on the host, so rebuilding similar networks is quick;
- an engine cache keyed by the ONNX file's hash, the GPU's name, the TensorRT version, the
  precision and the profile, so a second export of the same model does not rebuild.

Needs ``pip install 'posestream[gpu]'`` and an NVIDIA GPU; tested only where both exist.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from posestream.core.errors import ConfigError
from posestream.engine.extras import require
from posestream.engine.types import ModelMetadata

WORKSPACE_BYTES = 2 << 30


def cache_dir() -> Path:
    """$POSESTREAM_CACHE/tensorrt, else ~/.cache/posestream/tensorrt."""
    root = os.environ.get("POSESTREAM_CACHE") or Path.home() / ".cache" / "posestream"
    return Path(root) / "tensorrt"


def gpu_name(device_id: int = 0) -> str:
    """The GPU's marketing name (torch when present, else nvidia-smi); an error when there is none."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(device_id)
    except ImportError:
        pass
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", f"--id={device_id}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"TensorRT export needs an NVIDIA GPU, and none was found ({exc})") from exc
    return out.stdout.strip()


def engine_key(onnx_path: Path, gpu: str, trt_version: str, precision: str, max_batch: int) -> str:
    """Hex digest naming one engine build: same ONNX, GPU, TensorRT, precision and profile -> same engine."""
    digest = hashlib.sha256(onnx_path.read_bytes())
    digest.update(f"|{gpu}|{trt_version}|{precision}|batch1-{max_batch}".encode())
    return digest.hexdigest()[:32]


def check_available() -> None:
    """A clear error unless TensorRT and an NVIDIA GPU are both here."""
    require("tensorrt", extra="gpu", feature="TensorRT export")
    gpu_name()


def build_engine(onnx_path: Path, plan_path: Path, metadata: ModelMetadata, max_batch: int) -> Path:
    """Build (or take from the cache) the engine for ``onnx_path`` and write it to ``plan_path``."""
    trt = require("tensorrt", extra="gpu", feature="TensorRT export")
    key = engine_key(onnx_path, gpu_name(), trt.__version__, metadata.precision, max_batch)
    cached = cache_dir() / f"{key}.plan"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        plan = _build(trt, onnx_path, metadata, max_batch)
        tmp = cached.with_suffix(".tmp")
        tmp.write_bytes(plan)
        tmp.replace(cached)
    shutil.copyfile(cached, plan_path)
    return plan_path


def _build(trt, onnx_path: Path, metadata: ModelMetadata, max_batch: int) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ConfigError(f"{onnx_path}: TensorRT cannot parse it: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if metadata.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if metadata.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    shape = tuple(metadata.input_shape)
    profile = builder.create_optimization_profile()
    profile.set_shape("frames", (1, *shape), (max(1, max_batch // 2), *shape), (max_batch, *shape))
    config.add_optimization_profile(profile)
    timing_path = cache_dir() / "timing.cache"
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.exists() else b"")
    config.set_timing_cache(timing, ignore_mismatch=False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise ConfigError(f"{onnx_path}: TensorRT failed to build an engine (see its log above)")
    timing_path.parent.mkdir(parents=True, exist_ok=True)
    timing_path.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(plan)
