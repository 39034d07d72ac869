"""``posestream import``: a model folder trained by SLEAP 1.x or sleap-nn -> our model directory.

    import_model("models/240101_bu.multi_instance", "models/bu", ImportOptions())

The network (``keras_graph`` / ``sleap_nn_graph``) goes into the same exported graph as our own runs
(uint8 frames in, maps or peak candidates out, ``train.graph.ExportGraph``) with metadata.json, so
``track``, ``live``, ``batch`` and ``bench`` run it unchanged.

Read from the folder's config: the model type, the skeleton (the confidence-map channels are the head's
``part_names``, in order; bottom-up edges are the PAF head's edges, in order), input scaling, the number of
channels (from the first convolution's weights), sigma, crop size and anchor part, and the frame size it
was trained on (SLEAP 1.x: the Keras input, unscaled; sleap-nn: ``max_height`` x ``max_width``).

Covered: SLEAP's UNet in all four pose model types, with SLEAP's learned offset refinement where the model
has it (maps mode; in peaks mode the engine refines peaks its own way), and both identity (multi-class)
model types: their class maps or class vectors stay in the export ("class_maps", "class_vectors",
``ModelMetadata.class_names``) and the engine names every animal by its class (engine/model/identity.py). Not
yet: SLEAP's exact resizing of scaled inputs (the graph resizes with its own bilinear sampling).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from posestream.core.errors import ConfigError, ModelFormatError
from posestream.engine.model.model_dir import MODEL_FILES, ModelDir, load_model_dir
from posestream.engine.types import ModelMetadata, ModelType, OutputMode, Skeleton, network_input_shape
from posestream.export.exporter import checked_precision
from posestream.export.importers.sleap_nn_pyramid import PyramidModel, pyramid_config

SLEAP_TYPES = {
    "single_instance": ModelType.SINGLE_INSTANCE,
    "centroid": ModelType.CENTROID,
    "centered_instance": ModelType.CENTERED_INSTANCE,
    "multi_instance": ModelType.BOTTOMUP,
    "bottomup": ModelType.BOTTOMUP,
    "multi_class_bottomup": ModelType.BOTTOMUP,
    "multi_class_topdown": ModelType.CENTERED_INSTANCE,
}
CLASS_OUTPUTS = {
    "multi_class_bottomup": ("class_maps", "ClassMaps"),
    "multi_class_topdown": ("class_vectors", "ClassVectors"),
}


@dataclass(frozen=True)
class ImportOptions:
    formats: tuple[str, ...] = ("onnx",)
    output_mode: OutputMode = OutputMode.MAPS
    input_size: tuple[int, int] | None = None  # frames (H, W), or the crop side for centered-instance
    max_instances: int = 10  # most animals per frame (centroid, bottom-up)
    max_peaks: int | None = None
    precision: str | None = (
        None  # fp32 (fp16 with tensorrt), fp16, or int8: quantized ONNX, calibrated on `calibration`
    )
    calibration: str | None = None  # int8: a video or labels (.slp); None: the folder's own training labels
    calibration_frames: int = 64
    max_batch: int = 16  # largest batch of the TensorRT profile and the torch program

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_mode", OutputMode(self.output_mode))
        object.__setattr__(self, "precision", checked_precision(self.formats, self.precision))
        if self.precision == "int8" and self.formats != ("onnx",):
            raise ConfigError("--precision int8 writes an ONNX model only: use --format onnx")
        if self.calibration is not None and self.precision != "int8":
            raise ConfigError("--calibration is for --precision int8")
        if self.max_instances < 1:
            raise ConfigError(f"--max-instances must be >= 1, got {self.max_instances}")


@dataclass(frozen=True)
class ForeignModel:
    """A trained network from another tool and what the engine needs to know about it."""

    network: nn.Module  # float (N, C, h, w) in [0, 1] -> dict of outputs by name
    outputs: dict[str, str]  # our output ("confmaps", "pafs") -> the network's output name
    model_type: ModelType
    skeleton: Skeleton
    strides: dict[str, int]
    input_scale: float
    channels: int
    max_stride: int
    sigma: float
    frame_shape: tuple[int, int] | None  # (H, W) it was trained on; the crop for centered-instance
    anchor_part: str | None
    source: str
    tool: str  # "sleap" (1.x) or "sleap_nn": whose crop convention the engine follows
    class_names: tuple[str, ...] = ()  # identity models: the classes their class maps / vectors score


def read_model(folder: str | os.PathLike) -> ForeignModel:
    """A SLEAP 1.x (training_config.json + best_model.h5) or sleap-nn (training_config.yaml + best.ckpt)
    folder."""
    folder = Path(folder)
    if (folder / "best_model.h5").exists() and (folder / "training_config.json").exists():
        return _sleap(folder)
    if (folder / "best.ckpt").exists() and (folder / "training_config.yaml").exists():
        return _sleap_nn(folder)
    raise ModelFormatError(
        f"{folder}: not a SLEAP 1.x model folder (training_config.json + best_model.h5) nor a "
        "sleap-nn one (training_config.yaml + best.ckpt)"
    )


def _one_head(heads: dict, source: str) -> tuple[str, dict]:
    given = {k: v for k, v in heads.items() if v}
    if len(given) != 1:
        raise ModelFormatError(f"{source}: expected one head type in the config, found {sorted(given)}")
    kind, head = next(iter(given.items()))
    if kind not in SLEAP_TYPES:
        raise ModelFormatError(f"{source}: head type {kind!r} is not one we run ({sorted(SLEAP_TYPES)})")
    return kind, head


def _model_parts(kind: str, head: dict, skeleton: Skeleton, graph_outputs: list[str], source: str):
    """The ForeignModel fields a head config gives (model type, skeleton of the outputs, strides, outputs,
    sigma, anchor part, class names). A learned offset head used for refinement (SLEAP's
    ``offset_refinement``) is the "offsets" output; identity models' class maps or class vectors are the
    "class_maps" / "class_vectors" output."""
    model_type = SLEAP_TYPES[kind]
    confmaps = head.get("confmaps", head)
    sigma, anchor = float(confmaps.get("sigma", 2.5)), confmaps.get("anchor_part")
    offsets = (
        [n for n in graph_outputs if "OffsetRefinement" in n] if confmaps.get("offset_refinement") else []
    )
    if model_type is ModelType.CENTROID:
        strides = {"confmaps": int(confmaps["output_stride"])}
        outputs = {"confmaps": _find(graph_outputs, "Centroid", source)}
        if offsets:
            strides["offsets"], outputs["offsets"] = strides["confmaps"], offsets[0]
        return dict(
            model_type=model_type,
            skeleton=skeleton,
            strides=strides,
            outputs=outputs,
            sigma=sigma,
            anchor_part=anchor,
        )
    nodes = list(confmaps["part_names"])
    edges = (
        [tuple(e) for e in head["pafs"]["edges"]]
        if "pafs" in head
        else [e for e in skeleton.edge_names if e[0] in nodes and e[1] in nodes]
    )
    outputs = {"confmaps": _find(graph_outputs, "Confmaps", source)}
    strides = {"confmaps": int(confmaps["output_stride"])}
    class_names: tuple[str, ...] = ()
    if kind in CLASS_OUTPUTS:
        name, marker = CLASS_OUTPUTS[kind]
        outputs[name] = _find(graph_outputs, marker, source)
        class_names = tuple(head[name]["classes"])
        if name == "class_maps":
            strides[name] = int(head[name]["output_stride"])
    elif model_type is ModelType.BOTTOMUP:
        outputs["pafs"] = _find(graph_outputs, "PartAffinityFields", source)
        strides["pafs"] = int(head["pafs"]["output_stride"])
    if offsets:
        strides["offsets"], outputs["offsets"] = strides["confmaps"], offsets[0]
    return dict(
        model_type=model_type,
        skeleton=Skeleton.from_names(nodes, edges),
        strides=strides,
        outputs=outputs,
        sigma=sigma,
        anchor_part=anchor,
        class_names=class_names,
    )


def _find(names: list[str], marker: str, source: str) -> str:
    found = [n for n in names if marker in n]
    if len(found) != 1:
        raise ModelFormatError(
            f"{source}: expected one output with {marker!r} in its name, the network has {names}"
        )
    return found[0]


def _sleap(folder: Path) -> ForeignModel:
    from sleap_io.io.skeleton import SkeletonDecoder

    from posestream.export.importers.keras_graph import load_keras_h5

    config = json.loads((folder / "training_config.json").read_text())
    kind, head = _one_head(config["model"]["heads"], str(folder))
    unet = config["model"]["backbone"].get("unet")
    if not unet:
        raise ModelFormatError(
            f"{folder}: backbone {sorted(k for k, v in config['model']['backbone'].items() if v)} "
            "is not supported: only SLEAP's UNet is"
        )
    graph = load_keras_h5(folder / "best_model.h5")
    decoded = SkeletonDecoder().decode(config["data"]["labels"]["skeletons"])[0]
    skeleton = Skeleton.from_names(
        [n.name for n in decoded.nodes], [(e.source.name, e.destination.name) for e in decoded.edges]
    )
    parts = _model_parts(kind, head, skeleton, graph.outputs, str(folder))
    scale = float(config["data"]["preprocessing"].get("input_scaling", 1.0))
    first = next(layer for layer in graph.layers_config if layer["class_name"] == "InputLayer")["config"][
        "batch_input_shape"
    ]
    channels = int(first[3])
    if parts["model_type"] is ModelType.CENTERED_INSTANCE:
        crop = config["data"]["instance_cropping"]["crop_size"]
        frame = (int(crop), int(crop))
    else:
        frame = (round(first[1] / scale), round(first[2] / scale)) if first[1] else None
    return ForeignModel(
        network=graph.eval(),
        input_scale=scale,
        channels=channels,
        max_stride=int(unet["max_stride"]),
        frame_shape=frame,
        source=str(folder),
        tool="sleap",
        **parts,
    )


def _sleap_nn(folder: Path) -> ForeignModel:
    from posestream.export.importers.sleap_nn_graph import load_sleap_nn

    graph, config = load_sleap_nn(folder)
    kind, head = _one_head(config["model_config"]["head_configs"], str(folder))
    skel = config["data_config"]["skeletons"][0]
    skeleton = Skeleton.from_names(
        [n["name"] for n in skel["nodes"]],
        [(e["source"]["name"], e["destination"]["name"]) for e in skel.get("edges", [])],
    )
    outputs = graph.names if isinstance(graph, PyramidModel) else graph.outputs
    parts = _model_parts(kind, head, skeleton, outputs, str(folder))
    pre = config["data_config"]["preprocessing"]
    pyramid = pyramid_config(config["model_config"])
    backbone = pyramid[1] if pyramid else config["model_config"]["backbone_config"]["unet"]
    if parts["model_type"] is ModelType.CENTERED_INSTANCE:
        frame = (int(pre["crop_size"]), int(pre["crop_size"]))
    else:
        frame = (int(pre["max_height"]), int(pre["max_width"])) if pre.get("max_height") else None
    return ForeignModel(
        network=graph.eval(),
        input_scale=float(pre.get("scale", 1.0)),
        channels=int(backbone["in_channels"]),
        max_stride=32 if pyramid else int(backbone["max_stride"]),  # a pyramid's bottleneck is at 32
        frame_shape=frame,
        source=str(folder),
        tool="sleap_nn",
        **parts,
    )


class _Ordered(nn.Module):
    """The network's outputs in the order the exported graph expects (confmaps, then PAFs)."""

    def __init__(self, network: nn.Module, names: list[str]):
        super().__init__()
        self.network, self.names = network, names

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.network(x)
        return tuple(outputs[name] for name in self.names)


def import_model(
    folder: str | os.PathLike, out_dir: str | os.PathLike, options: ImportOptions = ImportOptions()
) -> ModelDir:
    """Import ``folder`` into ``out_dir`` (metadata.json + model.onnx, model.pt2, model.plan as asked);
    returns it loaded."""
    from posestream.engine.model.postprocess import network_outputs
    from posestream.export.exporter import empty_model_dir
    from posestream.train.graph import ExportGraph

    if "tensorrt" in options.formats:  # fail before any work when TensorRT cannot run here
        from posestream.export.tensorrt import check_available

        check_available()
    model = read_model(folder)
    height, width = options.input_size or model.frame_shape or (None, None)
    if height is None:
        raise ConfigError(f"{folder}: the config does not say the frame size; give --input-size HEIGHTxWIDTH")
    if model.model_type is ModelType.CENTERED_INSTANCE:
        network_shape = (height, width)
    else:
        network_shape = network_input_shape((height, width), model.input_scale, model.max_stride)
    if network_shape[0] % model.max_stride or network_shape[1] % model.max_stride:
        raise ConfigError(
            f"--input-size {height}x{width}: a centered-instance crop must be a multiple of the network's "
            f"max stride ({model.max_stride})"
        )
    n = options.max_instances
    if options.output_mode is not OutputMode.MAPS:  # peaks mode refines in the engine's own way
        model = replace(
            model,
            strides={k: v for k, v in model.strides.items() if k != "offsets"},
            outputs={k: v for k, v in model.outputs.items() if k != "offsets"},
        )
    metadata = ModelMetadata(
        model_type=model.model_type,
        skeleton=model.skeleton,
        input_shape=(height, width, model.channels),
        input_scale=model.input_scale,
        output_strides=model.strides,
        output_shapes={k: (network_shape[0] // s, network_shape[1] // s) for k, s in model.strides.items()},
        sigma=model.sigma,
        crop_size=(height, width) if model.model_type is ModelType.CENTERED_INSTANCE else None,
        anchor_part=model.anchor_part,
        output_mode=options.output_mode,
        max_instances=n,
        max_peaks=options.max_peaks
        or {ModelType.CENTROID: n, ModelType.BOTTOMUP: 2 * n}.get(model.model_type, 1),
        refinement="integral",
        crop_convention=model.tool,
        class_names=model.class_names,
        precision=options.precision,
        source_run=str(Path(folder).resolve()),
    )
    network = _Ordered(model.network, [model.outputs[k] for k in network_outputs(metadata)])
    graph = ExportGraph(network, metadata, network_shape, half=options.precision == "fp16").eval()
    out = empty_model_dir(out_dir)
    write_model_files(graph, metadata, options, Path(folder), out)
    (out / "metadata.json").write_text(metadata.to_json())
    return load_model_dir(out)


def write_model_files(
    graph: nn.Module, metadata: ModelMetadata, options: ImportOptions, folder: Path, out: Path
) -> None:
    """model.onnx (quantized for int8), model.pt2 and model.plan as ``options.formats`` ask."""
    from posestream.export.exporter import save_torch_program
    from posestream.export.onnx import export_onnx, quantize_int8

    onnx_path = out / MODEL_FILES["onnx"]
    if options.precision == "int8":
        calibration = calibration_inputs(folder, options, metadata)
        with tempfile.TemporaryDirectory() as tmp:
            quantize_int8(
                export_onnx(graph, metadata, Path(tmp) / "fp32.onnx"), onnx_path, calibration, metadata
            )
    elif "onnx" in options.formats or "tensorrt" in options.formats:  # TensorRT builds from the ONNX model
        export_onnx(graph, metadata, onnx_path)
    if "torch" in options.formats:
        save_torch_program(graph, metadata, out / MODEL_FILES["torch"], options.max_batch)
    if "tensorrt" in options.formats:
        from posestream.export.tensorrt import build_engine

        build_engine(onnx_path, out / MODEL_FILES["tensorrt"], metadata, options.max_batch)


TRAINING_LABELS = ("labels_gt.train.slp", "labels_train_gt_0.slp")  # SLEAP 1.x, sleap-nn


def calibration_inputs(folder: Path, options: ImportOptions, metadata: ModelMetadata):
    """int8 calibration inputs (N, H, W, C) uint8: from ``options.calibration`` (a video, or labels), else
    from the folder's own training labels."""
    from posestream.export.calibration import inputs_from_labels, inputs_from_video, is_labels_file, spread
    from posestream.train.labels import load_labels

    source = options.calibration or next(
        (str(folder / n) for n in TRAINING_LABELS if (folder / n).exists()), None
    )
    if source is None:
        raise ConfigError(
            f"{folder}: no training labels to calibrate int8 on; give --calibration VIDEO (frames "
            "of the model's input size) or --calibration LABELS.slp"
        )
    if not is_labels_file(source):
        return inputs_from_video(source, options.calibration_frames, metadata)
    try:
        labels = load_labels(source)
    except FileNotFoundError as exc:  # the labels name a video that is not here
        other = "labels whose images are here" + (
            "" if metadata.model_type is ModelType.CENTERED_INSTANCE else ", or a video"
        )
        problem = getattr(exc, "problem", str(exc))  # import has no --video-path: name the fix it has
        raise ConfigError(
            f"int8 calibration on {source}: {problem} Give --calibration with {other}."
        ) from exc
    nodes = metadata.skeleton.nodes
    anchor = nodes.index(metadata.anchor_part) if metadata.anchor_part in nodes else None
    return inputs_from_labels(
        labels, spread(range(len(labels)), options.calibration_frames), metadata, anchor
    )
