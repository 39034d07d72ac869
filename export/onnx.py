"""ONNX export of an ``ExportGraph``: dynamic batch, metadata embedded, fp32 / fp16 / int8.

- fp32: the graph as traced.
- fp16: the network runs in half precision inside the graph (weights and
  activations); the graph's uint8 input and its outputs keep their types, so the
  engine feeds and reads the same arrays.
- int8: post-training static quantization (ONNX QDQ, per-channel weights) of
  the network between its first convolution and its heads, calibrated on
  frames from the run's training data (see ``quantize_int8``); the first
  convolution, the heads, the resize, peak and PAF steps stay in float.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from posestream.engine.model.model_dir import METADATA_KEY
from posestream.engine.model.postprocess import output_names
from posestream.engine.types import ModelMetadata

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
        torch.onnx.export(
            graph,
            (example,),
            str(path),
            input_names=["frames"],
            output_names=names,
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
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


def quantize_int8(
    fp32_path: Path, int8_path: Path, calibration_frames: np.ndarray, metadata: ModelMetadata
) -> Path:
    """Static QDQ quantization of the network, calibrated on uint8 frames (N, H, W, C).

    Quantized: every op between the first convolution and the output heads, so that ReLUs, pooling and
    concatenation stay in int8 between convolutions instead of converting back and forth (measured on
    an imported bottom-up UNet, 2 cores: 0.62 of fp32's time against 0.79 with the convolutions alone,
    and closer to fp32's maps). Kept in float: the first convolution (1-3 input channels: as an int8
    convolution it is 6x slower than onnxruntime's fp32 kernel), the 1x1 heads (a sliver of the work;
    quantizing them coarsens the maps and PAFs that refinement and grouping read), and what is around
    the network (input scaling and resizing, peaks).
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(
                [{"frames": calibration_frames[i : i + 1]} for i in range(len(calibration_frames))]
            )

        def get_next(self):
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:  # onnxruntime's pre-processing: shapes inferred, graph tidied
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        first, heads, inside = network_nodes(onnx.load(str(prepared)).graph)
        quantize_static(
            str(prepared),
            str(int8_path),
            Frames(),
            quant_format=QuantFormat.QDQ,
            nodes_to_quantize=sorted(inside - first - heads),
            nodes_to_exclude=sorted(first | heads),
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    embed_metadata(int8_path, metadata)
    return int8_path


def network_nodes(graph) -> tuple[set[str], set[str], set[str]]:
    """Names of the first convolutions (no convolution before them), the heads (no convolution after
    them) and every node on a path from a first convolution to a head, both included."""
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    convs = [n for n in graph.node if n.op_type in ("Conv", "ConvTranspose")]

    def reach(start, step) -> set[str]:  # nodes reachable from ``start`` (excluded) along ``step``
        seen, todo = set(), list(step(start))
        while todo:
            node = todo.pop()
            if node.name not in seen:
                seen.add(node.name)
                todo.extend(step(node))
        return seen

    def before(node):
        return [producer[name] for name in node.input if name in producer]

    def after(node):
        return [c for name in node.output for c in consumers.get(name, [])]

    conv_names = {n.name for n in convs}
    upstream = {n.name: reach(n, before) for n in convs}
    downstream = {n.name: reach(n, after) for n in convs}
    first = {n for n in conv_names if not upstream[n] & conv_names}
    heads = {n for n in conv_names if not downstream[n] & conv_names}
    from_first = set().union(*(downstream[n] for n in first)) | first
    to_heads = set().union(*(upstream[n] for n in heads)) | heads
    return first, heads, from_first & to_heads
