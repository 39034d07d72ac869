"""The shared data model: what every stage of posestream passes to the next.

- ``Skeleton``: node names, edges and left/right symmetries.
- ``VideoMetadata``: what a frame source produces (size, channels, fps, length).
- ``FramePredictions``: the poses found on one frame, as arrays.
- ``FrameBlock``: consecutive frames' poses in arrays with a frame axis (how results move between stages).
- ``ModelMetadata``: the contract between an exported model and the engine.

Arrays are numpy; shapes are documented on each field. Constructors validate
shapes and values, so a malformed object fails where it is built, not three
stages later.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from posestream.core.errors import ConfigError

# ---------------------------------------------------------------------------
# Skeleton
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Skeleton:
    """Body parts and how they connect.

    nodes: node names, in the order of every ``n_nodes`` axis.
    edges: (source, destination) node indices; PAFs and drawing follow them.
    symmetries: pairs of node indices that swap under a left/right flip.
    """

    nodes: tuple[str, ...]
    edges: tuple[tuple[int, int], ...] = ()
    symmetries: tuple[tuple[int, int], ...] = ()
    name: str = "skeleton"

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(str(n) for n in self.nodes))
        object.__setattr__(self, "edges", tuple((int(a), int(b)) for a, b in self.edges))
        object.__setattr__(self, "symmetries", tuple((int(a), int(b)) for a, b in self.symmetries))
        if not self.nodes:
            raise ConfigError("Skeleton needs at least one node.")
        if len(set(self.nodes)) != len(self.nodes):
            dupes = sorted({n for n in self.nodes if self.nodes.count(n) > 1})
            raise ConfigError(f"Skeleton node names must be unique; repeated: {dupes}")
        for kind, pairs in (("edge", self.edges), ("symmetry", self.symmetries)):
            for a, b in pairs:
                if not (0 <= a < len(self.nodes) and 0 <= b < len(self.nodes)) or a == b:
                    raise ConfigError(
                        f"Skeleton {kind} ({a}, {b}) must join two different nodes "
                        f"with indices in 0..{len(self.nodes) - 1}."
                    )

    @classmethod
    def from_names(
        cls,
        nodes: list[str] | tuple[str, ...],
        edges: list[tuple[str, str]] = (),
        symmetries: list[tuple[str, str]] = (),
        name: str = "skeleton",
    ) -> Skeleton:
        """Build a skeleton whose edges and symmetries are given by node name."""
        nodes = tuple(nodes)

        def index(node: str) -> int:
            if node not in nodes:
                raise ConfigError(f"Skeleton has no node named {node!r}; nodes: {list(nodes)}")
            return nodes.index(node)

        return cls(
            nodes=nodes,
            edges=tuple((index(a), index(b)) for a, b in edges),
            symmetries=tuple((index(a), index(b)) for a, b in symmetries),
            name=name,
        )

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def edge_names(self) -> list[tuple[str, str]]:
        return [(self.nodes[a], self.nodes[b]) for a, b in self.edges]

    @property
    def symmetry_names(self) -> list[tuple[str, str]]:
        return [(self.nodes[a], self.nodes[b]) for a, b in self.symmetries]

    def flip_permutation(self) -> np.ndarray:
        """Node order after a left/right flip: ``points[:, perm]`` swaps symmetric nodes.  # (n_nodes,)"""
        perm = np.arange(self.n_nodes)
        for a, b in self.symmetries:
            perm[a], perm[b] = b, a
        return perm

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "nodes": list(self.nodes),
            "edges": [list(e) for e in self.edges],
            "symmetries": [list(s) for s in self.symmetries],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Skeleton:
        return cls(
            nodes=tuple(data["nodes"]),
            edges=tuple(tuple(e) for e in data.get("edges", ())),
            symmetries=tuple(tuple(s) for s in data.get("symmetries", ())),
            name=data.get("name", "skeleton"),
        )


# ---------------------------------------------------------------------------
# Video metadata
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoMetadata:
    """What a frame source delivers.

    Frames come out as uint8 arrays of shape ``(height, width, channels)``;
    ``channels`` is 1 (gray) or 3 (RGB). ``n_frames`` is exact.
    """

    path: str
    width: int
    height: int
    channels: int
    fps: float
    n_frames: int
    codec: str = ""

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ConfigError(f"Video {self.path}: size must be positive, got {self.width}x{self.height}")
        if self.channels not in (1, 3):
            raise ConfigError(f"Video {self.path}: channels must be 1 or 3, got {self.channels}")
        if self.n_frames < 0:
            raise ConfigError(f"Video {self.path}: negative frame count {self.n_frames}")

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """(height, width, channels)"""
        return (self.height, self.width, self.channels)


# ---------------------------------------------------------------------------
# Per-frame predictions
# ---------------------------------------------------------------------------

UNTRACKED = -1
"""Track id of an instance that no tracker has assigned."""


@dataclass
class FramePredictions:
    """Poses found on one frame.

    frame_idx: index of the frame in its video.
    points: (n_instances, n_nodes, 2) float32 x, y in pixels; NaN where a node is missing.
    point_scores: (n_instances, n_nodes) float32 confidence per node; NaN where missing.
    instance_scores: (n_instances,) float32 confidence per instance.
    track_ids: (n_instances,) int32 track of each instance, ``UNTRACKED`` (-1) if none.
    tracking_scores: (n_instances,) float32 confidence of each track assignment.
    missing: True when the frame could not be decoded (then there are no instances).
    live: the camera and stage times of a frame from a live camera; None for files.
    """

    frame_idx: int
    points: np.ndarray
    point_scores: np.ndarray
    instance_scores: np.ndarray
    track_ids: np.ndarray = None  # type: ignore[assignment]
    tracking_scores: np.ndarray = None  # type: ignore[assignment]
    missing: bool = False
    live: Any = None

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float32)
        if self.points.ndim != 3 or self.points.shape[2] != 2:
            raise ValueError(
                f"frame {self.frame_idx}: points must have shape (n_instances, n_nodes, 2), "
                f"got {self.points.shape}"
            )
        n_instances, n_nodes = self.points.shape[:2]
        self.point_scores = _as_shape(
            self.point_scores, (n_instances, n_nodes), "point_scores", self.frame_idx
        )
        self.instance_scores = _as_shape(
            self.instance_scores, (n_instances,), "instance_scores", self.frame_idx
        )
        if self.track_ids is None:
            self.track_ids = np.full(n_instances, UNTRACKED, dtype=np.int32)
        self.track_ids = _as_shape(self.track_ids, (n_instances,), "track_ids", self.frame_idx, np.int32)
        if self.tracking_scores is None:
            self.tracking_scores = np.full(n_instances, np.nan, dtype=np.float32)
        self.tracking_scores = _as_shape(
            self.tracking_scores, (n_instances,), "tracking_scores", self.frame_idx
        )
        if self.missing and n_instances:
            raise ValueError(f"frame {self.frame_idx}: a missing frame cannot hold instances")

    @classmethod
    def empty(cls, frame_idx: int, n_nodes: int, missing: bool = False) -> FramePredictions:
        """A frame with no instances (``missing`` marks a frame that failed to decode)."""
        return cls(
            frame_idx=frame_idx,
            points=np.zeros((0, n_nodes, 2), np.float32),
            point_scores=np.zeros((0, n_nodes), np.float32),
            instance_scores=np.zeros(0, np.float32),
            missing=missing,
        )

    @property
    def n_instances(self) -> int:
        return self.points.shape[0]

    @property
    def n_nodes(self) -> int:
        return self.points.shape[1]


@dataclass
class FrameBlock:
    """Consecutive frames' poses as arrays with a frame axis: how results move from postprocessing through
    the tracker to the sinks, one object per batch instead of one per frame.

    frame_idx: (F,) int64 frame indices, increasing.
    counts: (F,) int64 instances on each frame; frame f's instances are rows
      ``starts[f]:starts[f] + counts[f]`` of the arrays below (M = counts.sum() rows).
    points: (M, n_nodes, 2) float32; point_scores: (M, n_nodes) float32; instance_scores: (M,) float32;
    track_ids: (M,) int32 (``UNTRACKED`` where none); tracking_scores: (M,) float32.
    missing: (F,) bool, frames that could not be decoded (no instances).
    live: each frame's LiveInfo for a live camera's frames; None for files.
    """

    frame_idx: np.ndarray
    counts: np.ndarray
    points: np.ndarray
    point_scores: np.ndarray
    instance_scores: np.ndarray
    track_ids: np.ndarray
    tracking_scores: np.ndarray
    missing: np.ndarray
    live: list[Any] | None = None

    def __post_init__(self) -> None:
        frames, rows = len(self.frame_idx), len(self.points)
        if len(self.counts) != frames or len(self.missing) != frames or int(self.counts.sum()) != rows:
            raise ValueError(
                f"frame block: {frames} frames, {len(self.counts)} counts summing to "
                f"{int(self.counts.sum())}, {len(self.missing)} missing flags and {rows} instances"
            )
        if any(
            len(a) != rows
            for a in (self.point_scores, self.instance_scores, self.track_ids, self.tracking_scores)
        ):
            raise ValueError(f"frame block: every instance array needs {rows} rows")
        self.starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)  # (F,)

    def __len__(self) -> int:
        return len(self.frame_idx)

    @property
    def n_nodes(self) -> int:
        return self.points.shape[1]

    def frame_of_rows(self) -> np.ndarray:
        """Each instance's frame, as an index into this block.  # (M,)"""
        return np.repeat(np.arange(len(self)), self.counts)

    def rows(self, f: int) -> slice:
        """Frame f's rows in the instance arrays."""
        return slice(self.starts[f], self.starts[f] + self.counts[f])

    def frame(self, f: int) -> FramePredictions:
        """Frame f of the block; its arrays are views of the block's."""
        rows = self.rows(f)
        return FramePredictions(
            int(self.frame_idx[f]),
            self.points[rows],
            self.point_scores[rows],
            self.instance_scores[rows],
            self.track_ids[rows],
            self.tracking_scores[rows],
            bool(self.missing[f]),
            self.live[f] if self.live is not None else None,
        )

    def frames(self) -> list[FramePredictions]:
        return [self.frame(f) for f in range(len(self))]

    @classmethod
    def missing_frames(cls, frame_idx: np.ndarray, n_nodes: int, live: list[Any] | None = None) -> FrameBlock:
        """A block of frames without poses, marked missing (dropped, for a live camera's: ``live``)."""
        n = len(frame_idx)
        return cls(
            np.asarray(frame_idx, np.int64),
            np.zeros(n, np.int64),
            np.zeros((0, n_nodes, 2), np.float32),
            np.zeros((0, n_nodes), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int32),
            np.zeros(0, np.float32),
            np.ones(n, bool),
            live,
        )

    @classmethod
    def from_frames(cls, frames: Sequence[FramePredictions], n_nodes: int) -> FrameBlock:
        """The block of ``frames`` (in their order)."""

        def rows(name: str, empty: tuple[int, ...], dtype: type) -> np.ndarray:
            parts = [getattr(f, name) for f in frames]
            return np.concatenate(parts) if parts else np.zeros(empty, dtype)

        live = [f.live for f in frames]
        return cls(
            np.array([f.frame_idx for f in frames], np.int64),
            np.array([f.n_instances for f in frames], np.int64),
            rows("points", (0, n_nodes, 2), np.float32),
            rows("point_scores", (0, n_nodes), np.float32),
            rows("instance_scores", (0,), np.float32),
            rows("track_ids", (0,), np.int32),
            rows("tracking_scores", (0,), np.float32),
            np.array([f.missing for f in frames], bool),
            live if any(info is not None for info in live) else None,
        )

    @classmethod
    def concat(cls, blocks: Sequence[FrameBlock]) -> FrameBlock:
        """One block of ``blocks``' frames, in order (at least one block)."""
        if len(blocks) == 1:
            return blocks[0]
        fields = (
            "frame_idx",
            "counts",
            "points",
            "point_scores",
            "instance_scores",
            "track_ids",
            "tracking_scores",
            "missing",
        )
        joined = {name: np.concatenate([getattr(b, name) for b in blocks]) for name in fields}
        live = None
        if any(b.live is not None for b in blocks):
            live = [info for b in blocks for info in (b.live if b.live is not None else [None] * len(b))]
        return cls(**joined, live=live)


def _as_shape(
    values: Any, shape: tuple[int, ...], name: str, frame_idx: int, dtype: type = np.float32
) -> np.ndarray:
    array = np.asarray(values, dtype=dtype)
    if array.shape != shape:
        raise ValueError(f"frame {frame_idx}: {name} must have shape {shape}, got {array.shape}")
    return array


def network_input_shape(frame_shape: tuple[int, int], input_scale: float, max_stride: int) -> tuple[int, int]:
    """The network's input (h, w) for frames (h, w): scaled by ``input_scale``, each side rounded up to a
    multiple of ``max_stride`` (the network halves it that many times). Training, export and import agree
    through this one rule."""
    return tuple(int(np.ceil(side * input_scale / max_stride) * max_stride) for side in frame_shape)  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# Model metadata (written by export/, read by the engine)
# ---------------------------------------------------------------------------

MODEL_METADATA_VERSION = 1
"""Version of the metadata.json contract; the engine refuses other versions."""


REFINEMENTS = ("parabola", "integral")


class ModelType(str, Enum):
    SINGLE_INSTANCE = "single_instance"
    CENTROID = "centroid"
    CENTERED_INSTANCE = "centered_instance"
    BOTTOMUP = "bottomup"


class OutputMode(str, Enum):
    MAPS = "maps"  # confidence maps (and PAFs) leave the graph; the engine finds peaks
    PEAKS = "peaks"  # the graph does NMS and top-K; the engine refines and groups


@dataclass(frozen=True)
class ModelMetadata:
    """Everything the engine needs to run an exported model.

    input_shape: (height, width, channels) of the frames the model was exported for.
    input_layout: "NHWC" or "NCHW", the layout of the uint8 batch the graph takes.
    input_scale: factor the graph resizes frames by before the network.
    output_strides: stride of each output, e.g. {"confmaps": 4, "pafs": 8}.
    output_shapes: (height, width) of each output map, e.g. {"confmaps": [96, 96]}.
    sigma: Gaussian sigma (pixels at input scale) of the confidence maps.
    crop_size: (height, width) of centered-instance crops; None for other types.
    anchor_part: node the centroid/centered-instance models centre on; None = bbox centre.
    max_peaks: K, peak candidates per node (both modes; the engine ranks them the same way).
    max_instances: most animals per frame (centroid, bottom-up).
    paf_samples: points sampled along each candidate pair's segment (bottom-up).
    refinement: how a peak is placed between cells (maps mode): "parabola" (a parabola through the peak and
      its neighbours, per axis; ours) or "integral" (the centre of mass of the raw map in a 5x5 window, as
      SLEAP and sleap-nn refine). A model with an "offsets" output places peaks by its learned offsets.
    crop_convention: how the engine cuts a centered-instance model's crops: "posestream", or as the tool
      that trained an imported model does ("sleap_nn", "sleap"; see engine/model/topdown.py).
    class_names: the identities an identity (multi-class) model tells apart, e.g. ("female", "male"):
      a bottom-up one has "class_maps" (one map per class) instead of PAFs, a centered-instance one a
      "class_vectors" output (one score per class per crop); empty for pose-only models.
    """

    model_type: ModelType
    skeleton: Skeleton
    input_shape: tuple[int, int, int]
    input_layout: str = "NHWC"
    input_dtype: str = "uint8"
    input_scale: float = 1.0
    output_strides: dict[str, int] = field(default_factory=dict)
    output_shapes: dict[str, tuple[int, int]] = field(default_factory=dict)
    sigma: float = 2.5
    crop_size: tuple[int, int] | None = None
    anchor_part: str | None = None
    output_mode: OutputMode = OutputMode.MAPS
    max_peaks: int = 1
    max_instances: int = 1
    paf_samples: int = 10
    peak_threshold: float = 0.2
    refinement: str = "parabola"
    crop_convention: str = "posestream"
    class_names: tuple[str, ...] = ()
    precision: str = "fp32"
    source_run: str = ""
    config_hash: str = ""
    format_version: int = MODEL_METADATA_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_type", _enum(ModelType, self.model_type, "model_type"))
        object.__setattr__(self, "output_mode", _enum(OutputMode, self.output_mode, "output_mode"))
        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))
        if self.format_version != MODEL_METADATA_VERSION:
            raise ConfigError(
                f"model metadata format_version {self.format_version} is not supported "
                f"(this posestream reads version {MODEL_METADATA_VERSION}); re-export the "
                "model with this version of posestream."
            )
        if len(self.input_shape) != 3 or self.input_shape[2] not in (1, 3):
            raise ConfigError(f"input_shape must be (height, width, 1 or 3), got {self.input_shape}")
        if self.input_layout not in ("NHWC", "NCHW"):
            raise ConfigError(f"input_layout must be 'NHWC' or 'NCHW', got {self.input_layout!r}")
        if not self.input_scale > 0:
            raise ConfigError(f"input_scale must be > 0, got {self.input_scale}")
        if self.anchor_part is not None and self.anchor_part not in self.skeleton.nodes:
            raise ConfigError(f"anchor_part {self.anchor_part!r} is not a skeleton node")
        if self.model_type is ModelType.CENTERED_INSTANCE and self.crop_size is None:
            raise ConfigError("a centered_instance model needs crop_size (height, width)")
        if self.max_peaks < 1 or self.max_instances < 1:
            raise ConfigError(
                f"max_peaks and max_instances must be >= 1, got {self.max_peaks}, {self.max_instances}"
            )
        object.__setattr__(self, "output_shapes", {k: tuple(v) for k, v in self.output_shapes.items()})
        if self.crop_convention not in ("posestream", "sleap_nn", "sleap"):
            raise ConfigError(
                f"crop_convention must be posestream, sleap_nn or sleap, got {self.crop_convention!r}"
            )
        if self.refinement not in REFINEMENTS:
            raise ConfigError(f"refinement must be one of {REFINEMENTS}, got {self.refinement!r}")
        object.__setattr__(self, "class_names", tuple(self.class_names))
        if self.class_names:
            self._check_identity_outputs()
        if set(self.output_shapes) != set(self.output_strides):
            raise ConfigError(
                f"output_shapes {sorted(self.output_shapes)} and output_strides "
                f"{sorted(self.output_strides)} must name the same outputs"
            )

    def _check_identity_outputs(self) -> None:
        if self.model_type not in (ModelType.BOTTOMUP, ModelType.CENTERED_INSTANCE):
            raise ConfigError(
                "class_names: identity models are bottom-up or centered-instance, not "
                f"{self.model_type.value}"
            )
        if self.model_type is ModelType.BOTTOMUP and "class_maps" not in self.output_strides:
            raise ConfigError(
                "a bottom-up identity model needs a class_maps output (output_strides['class_maps'])"
            )

    @property
    def identities(self) -> bool:
        """True for identity models: their instances come with a class (an identity) each."""
        return bool(self.class_names)

    def to_json(self) -> str:
        data = asdict(self)
        data["model_type"] = self.model_type.value
        data["output_mode"] = self.output_mode.value
        data["skeleton"] = self.skeleton.to_dict()
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "metadata") -> ModelMetadata:
        """Parse metadata.json; errors name ``source`` and what is wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}: not valid JSON ({exc}); re-export the model.") from exc
        if not isinstance(data, dict) or "format_version" not in data:
            raise ConfigError(f"{source}: no format_version; this is not posestream model metadata.")
        data["skeleton"] = Skeleton.from_dict(data["skeleton"])
        if data.get("crop_size") is not None:
            data["crop_size"] = tuple(data["crop_size"])
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"{source}: unexpected or missing fields ({exc}).") from exc


def _enum(enum_type: type[Enum], value: Any, name: str) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        allowed = [m.value for m in enum_type]  # type: ignore[attr-defined]
        raise ConfigError(f"{name} must be one of {allowed}, got {value!r}") from None
