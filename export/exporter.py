"""``posestream export``: a training run -> a self-describing model directory the engine runs.

One run per model directory. Top-down is two directories (centroid and
centered-instance) that ``posestream track -m A -m B`` runs together; the
engine cuts the crops between them (see engine/model/topdown.py).
"""

from __future__ import annotations

import copy
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from posestream.core.errors import ConfigError
from posestream.engine.model.model_dir import MODEL_FILES, ModelDir, load_model_dir
from posestream.engine.progress import progress_bar
from posestream.engine.types import ModelType, OutputMode
from posestream.export.calibration import inputs_from_labels, spread
from posestream.export.onnx import export_onnx, quantize_int8
from posestream.train.predict import RunModel

FORMATS = ("onnx", "tensorrt", "torch")
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ExportOptions:
    """What to export; validated when built."""

    formats: tuple[str, ...] = ("onnx",)
    precision: str | None = None  # None: fp16 when exporting for TensorRT, else fp32
    output_mode: OutputMode = OutputMode.MAPS
    max_batch: int = 16  # largest batch of the TensorRT profile and the torch program
    input_size: tuple[int, int] | None = None  # frames (H, W); crop side for centered-instance
    max_peaks: int | None = None  # K; None: the run's default (RunModel.default_max_peaks)
    calibration_frames: int = 64  # int8: training frames (or crops) that calibrate activations
    checkpoint: str = "best.pt"

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_mode", OutputMode(self.output_mode))
        object.__setattr__(self, "precision", checked_precision(self.formats, self.precision))
        if self.max_batch < 1:
            raise ConfigError(f"--max-batch must be >= 1, got {self.max_batch}")
        if self.max_peaks is not None and self.max_peaks < 1:
            raise ConfigError(f"--max-peaks must be >= 1, got {self.max_peaks}")


def checked_precision(formats: tuple[str, ...], precision: str | None) -> str:
    """The precision to export ``formats`` in (None: fp16 for TensorRT, else fp32), after checking both."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(f"--format must be among {FORMATS}, got {list(formats)}")
    precision = precision or ("fp16" if "tensorrt" in formats else "fp32")
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' (or a single 'S' for a square) -> (H, W)."""
    match = re.fullmatch(r"\s*(\d+)\s*(?:[xX]\s*(\d+))?\s*", text)
    if not match:
        raise ConfigError(f"--input-size must look like HEIGHTxWIDTH (e.g. 384x384), got {text!r}")
    height = int(match.group(1))
    return height, int(match.group(2) or height)


def export_run(
    run_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    options: ExportOptions = ExportOptions(),
    progress: bool = False,
) -> ModelDir:
    """Export ``run_dir`` into ``out_dir`` (metadata.json + one file per format); returns it loaded."""
    if "tensorrt" in options.formats:  # fail before any work when TensorRT cannot run here
        from posestream.export.tensorrt import check_available

        check_available()
    run = RunModel(run_dir, checkpoint=options.checkpoint)
    shape = input_shape(run, options.input_size)
    metadata = run.metadata(shape, options.output_mode, options.max_peaks, options.precision)
    out_dir = empty_model_dir(out_dir)
    steps = [f for f in FORMATS if f in options.formats or (f == "onnx" and "tensorrt" in options.formats)]
    with progress_bar(len(steps), f"export {run.type.value}", enabled=progress) as advance:
        for step in steps:
            if step == "onnx":
                _write_onnx(run, metadata, options, out_dir / MODEL_FILES["onnx"])
            elif step == "torch":
                _write_torch(run, metadata, options, out_dir / MODEL_FILES["torch"])
            else:
                from posestream.export.tensorrt import build_engine

                build_engine(
                    out_dir / MODEL_FILES["onnx"],
                    out_dir / MODEL_FILES["tensorrt"],
                    metadata,
                    options.max_batch,
                )
            advance(1, status=step)
    (out_dir / "metadata.json").write_text(metadata.to_json())
    return load_model_dir(out_dir)


def input_shape(run: RunModel, size: tuple[int, int] | None) -> tuple[int, int, int]:
    """(H, W, C) of the exported model's uint8 input: the run's frames (or crops) unless ``size`` is given."""
    channels = run.run["channels"]
    stride = run.config.backbone.max_stride
    if run.type is ModelType.CENTERED_INSTANCE:
        height, width = size or (run.crop_size, run.crop_size)
        if height % stride or width % stride:
            raise ConfigError(
                f"--input-size {height}x{width}: a centered-instance crop must be a multiple of the "
                f"network's max stride ({stride}) on both sides, e.g. "
                f"{-(-height // stride) * stride}x{-(-width // stride) * stride}"
            )
        return height, width, channels
    if size is None and run.frame_shape is None:
        raise ConfigError(
            f"{run.run_dir}: run.json does not record the frame size; give --input-size HEIGHTxWIDTH"
        )
    height, width = size or run.frame_shape
    return height, width, channels


def _write_onnx(run: RunModel, metadata, options: ExportOptions, path: Path) -> None:
    half = options.precision == "fp16"
    graph = run.graph(metadata, network=copy.deepcopy(run.network), half=half)
    if options.precision != "int8":
        export_onnx(graph, metadata, path)
        return
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(graph, metadata, Path(tmp) / "fp32.onnx")
        quantize_int8(fp32, path, calibration_frames(run, metadata, options.calibration_frames), metadata)


def _write_torch(run: RunModel, metadata, options: ExportOptions, path: Path) -> None:
    """A ``torch.export`` program of the same graph (fp16 network on CUDA hosts: the engine's torch backend
    casts)."""
    graph = run.graph(metadata, network=copy.deepcopy(run.network), half=options.precision == "fp16")
    save_torch_program(graph, metadata, path, options.max_batch)


def save_torch_program(graph: torch.nn.Module, metadata, path: Path, max_batch: int) -> None:
    """``graph`` (uint8 frames of ``metadata.input_shape`` in) as a ``torch.export`` program with a batch axis
    up to ``max_batch``."""
    example = torch.zeros((2, *metadata.input_shape), dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1, max=max(max_batch, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(graph, (example,), dynamic_shapes={"frames": {0: batch}})
    torch.export.save(program, str(path))


def empty_model_dir(out_dir: str | os.PathLike) -> Path:
    """``out_dir``, made if needed, with no file of an earlier export left in it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in [*MODEL_FILES.values(), "metadata.json"]:
        (out_dir / name).unlink(missing_ok=True)
    return out_dir


def calibration_frames(run: RunModel, metadata, count: int) -> np.ndarray:
    """Up to ``count`` uint8 inputs (N, H, W, C) from the run's training frames, evenly spread (crops around
    the labelled animals' anchors for centered-instance)."""
    from posestream.train.labels import load_labels

    mapping = [f"{Path(p).name}={p}" for p in run.run["video_paths"]]
    labels = load_labels(run.run["labels"], mapping)
    train = set(run.run["train_frames"])
    indices = spread([i for i, f in enumerate(labels.frames) if f.frame_idx in train], count)
    return inputs_from_labels(labels, indices, metadata, run.anchor)
