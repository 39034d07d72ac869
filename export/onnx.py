"""ONNX export of an ``ExportGraph``: dynamic batch, metadata embedded, fp32 / fp16 / int8.

- fp32: the graph as traced.
- fp16: the network runs in half precision inside the graph (weights and
  activations); the graph's uint8 input and its outputs keep their types, so the
  engine feeds and reads the same arrays.
- int8: post-training static quantization (ONNX QDQ, per-channel weights) of
  the convolutions only, calibrated on frames from the run's training data;
  the resize, peak and PAF steps stay in float.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from posestream.engine.model_dir import METADATA_KEY
from posestream.engine.types import ModelMetadata

from posestream.engine.postprocess import output_names

OPSET = 17


def export_onnx(graph: torch.nn.Module, metadata: ModelMetadata, path: str | os.PathLike) -> Path:
    """Trace ``graph`` (uint8 (N, H, W, C) -> outputs) to ONNX at ``path`` with a dynamic batch axis."""
    import onnx

    path = Path(path)
    names = output_names(metadata)
    example = torch.zeros((2, *metadata.input_shape), dtype=torch.uint8, device=next(graph.buffers()).device)
    dynamic = {"frames": {0: "batch"}, **{name: {0: "batch"} for name in names}}
    with warnings.catch_warnings():  # the tracer warns about every shape it turns into a constant
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (example,), str(path), input_names=["frames"], output_names=names,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)  # fmt: skip
    embed_metadata(path, metadata)
    onnx.checker.check_model(str(path))
    return path


def embed_metadata(path: Path, metadata: ModelMetadata) -> None:
    """Store metadata.json in the model's ``metadata_props`` (key ``posestream``)."""
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata.to_json()
    model.producer_name = "posestream"
    onnx.save(model, str(path))


def quantize_int8(fp32_path: Path, int8_path: Path, calibration_frames: np.ndarray, metadata: ModelMetadata) -> Path:
    """Static QDQ quantization of the backbone's convolutions, calibrated on uint8 frames (N, H, W, C).

    The 1x1 output heads stay in float: they are a sliver of the work, and quantizing them
    coarsens the maps and PAFs that subpixel refinement and grouping read.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"frames": calibration_frames[i : i + 1]} for i in range(len(calibration_frames))])

        def get_next(self):
            return next(self.batches, None)

    heads = [n.name for n in onnx.load(str(fp32_path)).graph.node if n.name.startswith("/network/heads.")]
    quantize_static(str(fp32_path), str(int8_path), Frames(), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["Conv", "ConvTranspose"], nodes_to_exclude=heads, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)  # fmt: skip
    embed_metadata(int8_path, metadata)
    return int8_path
