"""Training configuration: typed sections, shipped profiles, YAML files and ``--set`` overrides.

A config is built from a profile (``train/profiles/<name>.yaml``), then a user
YAML file, then ``key=value`` overrides, and validated as it is built: an
unknown key, a value of the wrong type or out of range raises ConfigError
naming the dotted key and what would fix it.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from posestream.core.errors import ConfigError
from posestream.engine.frame_ranges import FrameRanges
from posestream.engine.types import ModelType

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SCHEDULES = ("auto", "cosine", "plateau")
CROP_SAMPLING = ("none", "uniform", "keypoint", "density", "hybrid")
BACKBONES = ("unet", "convnext", "swint")


@dataclass
class BackboneConfig:
    """The network between the image and the heads (train/backbones): SLEAP's UNet, configured as in SLEAP,
    or a ConvNeXt or Swin-T encoder with sleap-nn's decoder."""

    type: str = "unet"  # "unet", "convnext" or "swint"
    size: str = "tiny"  # convnext and swint: "tiny" or "small" (sleap-nn's sizes)
    pretrained: str | None = (
        None  # convnext and swint: a local file of ImageNet weights, torchvision's layout
    )
    filters: int = 16  # unet: channels of the first block
    # channel growth per block (unet); convnext and swint: the bottleneck's widening and the decoder's
    filters_rate: float = 2.0
    # total downsampling (2 ** number of down blocks); None: fitted to the labels (train/fit.py); 32 for
    # convnext and swint
    max_stride: int | None = None
    convs_per_block: int = 2  # unet: convolutions per block; convnext and swint: the bottleneck's
    middle_block: bool = True  # extra convs at the bottleneck
    up_interpolate: bool = True  # bilinear upsampling; False: transposed convolutions
    batch_norm: bool = False  # batch normalisation after each convolution (folded into it on export)

    def validate(self) -> None:
        _check(self.type in BACKBONES, "backbone.type", f"must be one of {list(BACKBONES)}", self.type)
        _check(self.size in ("tiny", "small"), "backbone.size", "must be 'tiny' or 'small'", self.size)
        pyramid = self.type != "unet"
        _check(
            not pyramid or self.max_stride in (None, 32),
            "backbone.max_stride",
            f"is 32 for a {self.type} backbone (its bottleneck's stride); leave it null",
            self.max_stride,
        )
        _check(
            not pyramid or self.convs_per_block >= 2,
            "backbone.convs_per_block",
            f"must be >= 2 for a {self.type} backbone (its bottleneck widens in the first ones)",
            self.convs_per_block,
        )
        _check(
            self.pretrained is None or pyramid,
            "backbone.pretrained",
            "is for convnext and swint backbones (ImageNet weights); a unet trains from scratch",
            self.pretrained,
        )
        _check(self.filters >= 1, "backbone.filters", "must be >= 1", self.filters)
        _check(self.filters_rate >= 1.0, "backbone.filters_rate", "must be >= 1", self.filters_rate)
        _check(
            self.max_stride is None or (_power_of_two(self.max_stride) and self.max_stride >= 2),
            "backbone.max_stride",
            "must be a power of 2 and >= 2, or null (fitted to the labels)",
            self.max_stride,
        )
        _check(self.convs_per_block >= 1, "backbone.convs_per_block", "must be >= 1", self.convs_per_block)


@dataclass
class HeadConfig:
    """What the network predicts, and at which stride."""

    output_stride: int = 2  # confidence maps' stride
    sigma: float = 2.5  # Gaussian sigma of the confidence maps, pixels at input scale
    anchor_part: str | None = None  # centroid / centered-instance anchor; None: bounding-box centre
    crop_size: int | None = None  # centered-instance crop side (pixels at input scale); None: from the labels
    # bottom-up only: the stride of its second head (part affinity fields, or class maps with ``classes``)
    paf_output_stride: int = 8
    paf_width: float = 3.0  # bottom-up only: half-width of the PAF band, pixels at input scale
    # an identity (multi-class) model, one class per track of the labels: a centered-instance network also
    # scores each crop for every class (class vectors); a bottom-up one predicts a map per class (class
    # maps) in place of part affinity fields
    classes: bool = False

    def validate(self, max_stride: int | None) -> None:
        """``max_stride`` None: not fitted yet; the strides are checked against it once it is."""
        for key in ("output_stride", "paf_output_stride"):
            value = getattr(self, key)
            _check(
                _power_of_two(value) and value <= (max_stride or value),
                f"head.{key}",
                f"must be a power of 2 and <= backbone.max_stride ({max_stride})",
                value,
            )
        _check(self.sigma > 0, "head.sigma", "must be > 0", self.sigma)
        _check(self.paf_width > 0, "head.paf_width", "must be > 0", self.paf_width)
        if self.crop_size is not None and max_stride is not None:
            _check(
                self.crop_size % max_stride == 0 and self.crop_size > 0,
                "head.crop_size",
                f"must be a positive multiple of backbone.max_stride ({max_stride})",
                self.crop_size,
            )


@dataclass
class AugmentConfig:
    """Random changes applied to each training example (images and keypoints alike)."""

    rotation: float = 0.0  # degrees; angle drawn from [-rotation, rotation]
    scale_min: float = 1.0
    scale_max: float = 1.0
    translate: float = 0.0  # pixels; shift drawn from [-translate, translate] per axis
    flip: bool = False  # left/right flips that swap symmetric nodes (needs symmetries)
    brightness: float = 0.0  # grey levels added, drawn from [-brightness, brightness]
    contrast: float = 0.0  # contrast factor drawn from [1 - contrast, 1 + contrast]
    noise: float = 0.0  # std of Gaussian noise, grey levels
    # DeepLabCut's kernel augmentations: the share of examples each applies to (README maps DLC's names)
    blur_ratio: float = 0.0  # Gaussian blur, sigma drawn from [0.5, blur_sigma] pixels
    blur_sigma: float = 1.5
    motion_blur_ratio: float = 0.0  # a line kernel of motion_blur_size pixels at an angle in [-90, 90]
    motion_blur_size: int = 7
    sharpen_ratio: float = 0.0  # unsharp mask of strength drawn from [0, 1] (DLC's sharpenratio)
    edge_ratio: float = 0.0  # edge enhancement blended in at a strength drawn from [0, 0.7]
    # DeepLabCut's crop sampling (train/crop_sampling.py): whole-frame models train on crop_size squares
    # centred by crop_sampling: "none" (whole frames), "uniform", "keypoint", "density" or "hybrid"
    crop_sampling: str = "none"
    crop_size: int = 256  # pixels at input scale; a multiple of backbone.max_stride
    crop_ratio: float = 0.4  # share of the crops placed by crop_sampling; the rest uniformly
    max_shift: float = 0.4  # the sampled point lands up to this share of crop_size off the crop's centre

    def validate(self) -> None:
        _check(0 <= self.rotation <= 180, "augment.rotation", "must be in [0, 180] degrees", self.rotation)
        _check(
            0 < self.scale_min <= self.scale_max,
            "augment.scale_min",
            "must be > 0 and <= augment.scale_max",
            self.scale_min,
        )
        for key in ("translate", "brightness", "noise"):
            _check(getattr(self, key) >= 0, f"augment.{key}", "must be >= 0", getattr(self, key))
        _check(0 <= self.contrast < 1, "augment.contrast", "must be in [0, 1)", self.contrast)
        for key in ("blur_ratio", "motion_blur_ratio", "sharpen_ratio", "edge_ratio"):
            value = getattr(self, key)
            _check(0 <= value <= 1, f"augment.{key}", "is a share of the examples, in [0, 1]", value)
        _check(
            self.crop_sampling in CROP_SAMPLING,
            "augment.crop_sampling",
            f"must be one of {list(CROP_SAMPLING)}",
            self.crop_sampling,
        )
        _check(self.crop_size >= 1, "augment.crop_size", "must be >= 1 pixel", self.crop_size)
        _check(
            0 <= self.crop_ratio <= 1,
            "augment.crop_ratio",
            "is a share of the crops, in [0, 1]",
            self.crop_ratio,
        )
        _check(
            0 <= self.max_shift < 0.5,
            "augment.max_shift",
            "must be in [0, 0.5) (a share of the crop side; below 0.5 the sampled point stays in its crop)",
            self.max_shift,
        )
        _check(self.blur_sigma >= 0.5, "augment.blur_sigma", "must be >= 0.5 pixels", self.blur_sigma)
        _check(
            self.motion_blur_size >= 3 and self.motion_blur_size % 2 == 1,
            "augment.motion_blur_size",
            "must be an odd number of pixels >= 3",
            self.motion_blur_size,
        )


@dataclass
class DataConfig:
    """Which labels, which frames, how they are split and scaled."""

    frames: str | None = None  # train only on labeled frames in this range, e.g. "0-879"
    val_fraction: float = 0.1  # random validation split (ignored when val_frames is set)
    val_frames: str | None = None  # validate on labeled frames in this range instead
    input_scale: float | None = None  # frames are resized by this factor first; None: fitted (train/fit.py)
    # DeepLabCut's bounds on the network input's sides, input pixels (None: none): a fitted input scale keeps
    # the longer side within max_input_size; an input outside either bound is refused
    min_input_size: int | None = None
    max_input_size: int | None = None
    batch_size: int = 4
    # left/right node pairs, which augment.flip swaps: "auto": the skeleton's, else found from left/right node
    # names; "none": no pairs, so no flips
    symmetries: str = "auto"
    max_instances: int = 8  # centroid / bottom-up: most animals expected in a frame
    workers: int | None = None  # processes making examples; None: chosen for the machine; 0: in the trainer
    prefetch: int = 4  # batches each worker prepares ahead
    # examples whose animals come within contact_px (frame pixels; None: a tenth of the animals' size) of
    # each other are drawn contact_repeats times an epoch (train/contact.py); 1: every example once
    contact_repeats: int = 1
    contact_px: float | None = None

    def validate(self) -> None:
        _check(0 <= self.val_fraction < 1, "data.val_fraction", "must be in [0, 1)", self.val_fraction)
        _check(
            self.input_scale is None or 0 < self.input_scale <= 4,
            "data.input_scale",
            "must be in (0, 4], or null (fitted to the labels)",
            self.input_scale,
        )
        _check(self.batch_size >= 1, "data.batch_size", "must be >= 1", self.batch_size)
        for key in ("min_input_size", "max_input_size"):
            value = getattr(self, key)
            _check(value is None or value >= 1, f"data.{key}", "must be >= 1 px, or null (no bound)", value)
        _check(
            None in (self.min_input_size, self.max_input_size) or self.min_input_size <= self.max_input_size,
            "data.min_input_size",
            f"must be <= data.max_input_size ({self.max_input_size})",
            self.min_input_size,
        )
        _check(
            self.symmetries in ("auto", "none"),
            "data.symmetries",
            "must be 'auto' or 'none'",
            self.symmetries,
        )
        _check(self.max_instances >= 1, "data.max_instances", "must be >= 1", self.max_instances)
        _check(
            self.workers is None or self.workers >= 0,
            "data.workers",
            "must be >= 0 (0: examples made in the training process) or null (chosen for the machine)",
            self.workers,
        )
        _check(self.prefetch >= 1, "data.prefetch", "must be >= 1", self.prefetch)
        _check(
            self.contact_repeats >= 1,
            "data.contact_repeats",
            "must be >= 1 (1: examples of touching animals drawn as often as the rest)",
            self.contact_repeats,
        )
        _check(
            self.contact_px is None or self.contact_px > 0,
            "data.contact_px",
            "must be > 0 px, or null (a tenth of the labelled animals' size)",
            self.contact_px,
        )
        for key in ("frames", "val_frames"):
            text = getattr(self, key)
            if text is not None:
                try:
                    FrameRanges.parse(text)
                except ConfigError as exc:
                    raise ConfigError(f"config key 'data.{key}': {exc}") from None


@dataclass
class OptimConfig:
    """Optimiser, schedule and stopping."""

    optimizer: str = "adam"  # "adam" or "adamw"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    plateau_patience: int = 5  # epochs without val improvement before the LR is reduced
    plateau_factor: float = 0.5
    min_learning_rate: float = 1e-6
    # epochs without val improvement before stopping; None: 10 under the plateau schedule, never when the
    # rate anneals to a deadline (that run ends at its deadline, and its loss stalls while the rate is high)
    early_stopping_patience: int | None = None
    # "auto": cosine annealing to the deadline when max_minutes is set, else plateau; "cosine" without
    # max_minutes anneals over max_epochs
    schedule: str = "auto"
    warmup_fraction: float = 0.03  # cosine: share of the budget spent ramping the rate up from its floor
    # validation OKS mAP this often and at the end; None: at the end only
    map_every_minutes: float | None = 5.0
    max_epochs: int = 100
    max_minutes: float | None = None  # wall-clock budget; training stops cleanly when it is spent
    steps_per_epoch: int | None = None  # at most one pass: a cap on the steps of an epoch; None: one pass
    foreground_weight: float = 0.0  # squared errors weigh 1 + this * |target|: near-peak cells count more
    paf_weight: float = 1.0  # bottom-up: the part affinity fields' loss against the confidence maps' (1)
    # identity models: the class loss against the confidence maps' (1); None: 2e-4 for class vectors (a larger
    # weight lets their cross-entropy steer the shared encoder off the poses: train/loss.py), 1 for class maps
    class_weight: float | None = None
    ohkm: bool = False  # online hard keypoint mining
    ohkm_fraction: float = 0.5  # share of the hardest channels weighted by OHKM
    ohkm_weight: float = 1.0

    def validate(self) -> None:
        _check(
            self.optimizer in ("adam", "adamw"),
            "optim.optimizer",
            "must be 'adam' or 'adamw'",
            self.optimizer,
        )
        _check(self.learning_rate > 0, "optim.learning_rate", "must be > 0", self.learning_rate)
        _check(0 < self.plateau_factor < 1, "optim.plateau_factor", "must be in (0, 1)", self.plateau_factor)
        _check(
            self.schedule in SCHEDULES, "optim.schedule", f"must be one of {list(SCHEDULES)}", self.schedule
        )
        _check(
            self.map_every_minutes is None or self.map_every_minutes > 0,
            "optim.map_every_minutes",
            "must be > 0, or null (never)",
            self.map_every_minutes,
        )
        _check(
            0 <= self.warmup_fraction < 1, "optim.warmup_fraction", "must be in [0, 1)", self.warmup_fraction
        )
        _check(self.max_epochs >= 1, "optim.max_epochs", "must be >= 1", self.max_epochs)
        _check(
            self.max_minutes is None or self.max_minutes > 0,
            "optim.max_minutes",
            "must be > 0",
            self.max_minutes,
        )
        _check(
            self.steps_per_epoch is None or self.steps_per_epoch >= 1,
            "optim.steps_per_epoch",
            "must be >= 1",
            self.steps_per_epoch,
        )
        _check(
            self.early_stopping_patience is None or self.early_stopping_patience >= 1,
            "optim.early_stopping_patience",
            "must be >= 1, or null (chosen by the schedule)",
            self.early_stopping_patience,
        )
        _check(self.paf_weight > 0, "optim.paf_weight", "must be > 0", self.paf_weight)
        _check(
            self.class_weight is None or self.class_weight > 0,
            "optim.class_weight",
            "must be > 0, or null (chosen by the head)",
            self.class_weight,
        )
        _check(0 < self.ohkm_fraction <= 1, "optim.ohkm_fraction", "must be in (0, 1]", self.ohkm_fraction)


@dataclass
class TrainConfig:
    """Everything a training run needs; saved as RUN_DIR/config.yaml."""

    model_type: str = "single_instance"
    labels: str = ""  # path of the .slp / .pkg.slp labels
    video_paths: list[str] = field(default_factory=list)  # "OLD=NEW" or a single "NEW"
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    # "auto": bf16 where the CPU (AVX-512 BF16, AMX) or GPU has it, else fp16 on CUDA, fp32 on CPU;
    # "fp32" is the reference path (no autocast, NCHW)
    precision: str = "auto"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def validate(self) -> None:
        types = [t.value for t in ModelType]
        _check(self.model_type in types, "model_type", f"must be one of {types}", self.model_type)
        self.backbone.validate()
        self.head.validate(self.backbone.max_stride)
        self.augment.validate()
        self.data.validate()
        self.optim.validate()
        _check(
            self.precision in PRECISIONS, "precision", f"must be one of {list(PRECISIONS)}", self.precision
        )
        _check(
            not self.head.classes
            or self.model_type in (ModelType.CENTERED_INSTANCE.value, ModelType.BOTTOMUP.value),
            "head.classes",
            "(an identity model) needs model_type centered_instance or bottomup (profiles "
            "multi_class_topdown, multi_class_bottomup)",
            self.head.classes,
        )
        _check(
            self.augment.crop_sampling == "none" or self.model_type != ModelType.CENTERED_INSTANCE.value,
            "augment.crop_sampling",
            "is for whole-frame models (a centered_instance model already trains on crops around each "
            "animal: head.crop_size); set it to 'none'",
            self.augment.crop_sampling,
        )
        max_stride, side = self.backbone.max_stride, self.augment.crop_size
        nearest = side if max_stride is None else math.ceil(side / max_stride) * max_stride
        _check(
            self.augment.crop_sampling == "none" or side == nearest,
            "augment.crop_size",
            f"must be a multiple of backbone.max_stride ({max_stride}) such as {nearest}",
            side,
        )
        if self.model_type == ModelType.CENTERED_INSTANCE.value and self.data.input_scale not in (None, 1.0):
            raise ConfigError(
                "data.input_scale: centered_instance models crop at full resolution; set it to 1.0"
            )

    @property
    def type(self) -> ModelType:
        return ModelType(self.model_type)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def fingerprint(self) -> str:
        """Short hash of the config, recorded in exported model metadata."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------
# Building configs
# ---------------------------------------------------------------------------


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_config(
    profile: str | None = None,
    config_file: str | Path | None = None,
    overrides: list[str] = (),
    **fields: Any,
) -> TrainConfig:
    """Profile, then config file, then ``key=value`` overrides, then ``fields``; validated."""
    data: dict[str, Any] = {}
    if profile is not None:
        path = PROFILES_DIR / f"{profile}.yaml"
        if not path.exists():
            raise ConfigError(f"unknown profile {profile!r}; profiles: {', '.join(available_profiles())}")
        _merge(data, _read_yaml(path))
    if config_file is not None:
        _merge(data, _read_yaml(Path(config_file)))
    for item in overrides:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set optim.learning_rate=3e-4")
        _set_dotted(data, key.strip(), yaml.safe_load(value))
    for key, value in fields.items():
        if value is not None:
            _set_dotted(data, key, value)
    _upgrade(data)
    config = _build(TrainConfig, data, prefix="")
    config.validate()
    return config


def _upgrade(data: dict[str, Any]) -> None:
    """Keys of older runs' config.yaml in today's terms (``mixed_precision``: ``precision``)."""
    if "mixed_precision" in data:
        data.setdefault("precision", "auto" if data.pop("mixed_precision") else "fp32")


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return data


def _merge(base: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {part!r} is a value, not a section")
    node[leaf] = value


def _build(cls: type, data: Any, prefix: str) -> Any:
    """Instantiate dataclass ``cls`` from a mapping, checking keys and types."""
    where = prefix.rstrip(".") or "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; keys here: {', '.join(names)}"
            raise ConfigError(f"unknown config key '{prefix}{key}'{hint}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(value, hint, f"{prefix}{key}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check ``value`` against a field's type (int, float, bool, str, optional, list[str])."""
    is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    options = typing.get_args(hint) if is_union else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise ConfigError(f"config key '{key}' needs a value")
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is float and isinstance(value, str) and _parses_as_float(value):
            return float(value)  # YAML reads "3e-4" as a string
        if option is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        if typing.get_origin(option) is list and isinstance(value, list):
            return [str(v) for v in value]
    wanted = " or ".join(getattr(o, "__name__", str(o)) for o in options if o is not type(None))
    raise ConfigError(f"config key '{key}' must be {wanted}, got {value!r}")


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check(ok: bool, key: str, requirement: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"config key '{key}' {requirement}, got {value!r}")


def _power_of_two(value: int) -> bool:
    return isinstance(value, int) and value > 0 and value & (value - 1) == 0
