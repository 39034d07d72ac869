"""sleap-nn's ConvNeXt and Swin-T models (``backbone_config: convnext | swint``) as torch modules, without
sleap-nn: our own encoders, bottleneck and decoder (train/backbones), which compute what sleap-nn's do, with
the checkpoint's tensors renamed to ours (``rename``). Every tensor must find its place and every place its
tensor, or the error names them.

Covered: the tiny and small sizes, a stem at stride 2 (sleap-nn's default), bilinear upsampling, and the
heads that are 1x1 convolutions (confidence maps, part affinity fields, class maps). Not yet: transposed
convolutions, other stems, and class vectors on these backbones.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from posestream.core.errors import ModelFormatError
from posestream.train.backbones import build_backbone
from posestream.train.config import BackboneConfig

PYRAMIDS = ("convnext", "swint")


def pyramid_config(model_config: dict) -> tuple[str, dict] | None:
    """(``convnext`` or ``swint``, its config) when the model has one of these backbones; else None."""
    backbones = model_config["backbone_config"]
    return next(((kind, backbones[kind]) for kind in PYRAMIDS if backbones.get(kind)), None)


class PyramidModel(nn.Module):
    """A pyramid backbone and 1x1-convolution heads; returns {head name: output}."""

    def __init__(self, backbone: nn.Module, heads: list[tuple[str, int, int, bool]]):
        super().__init__()
        self.backbone = backbone
        self.names = [name for name, *_ in heads]
        self.strides = [stride for _, stride, *_ in heads]
        self.sigmoid = [sigmoid for *_, sigmoid in heads]
        self.heads = nn.ModuleList(
            nn.Conv2d(backbone.out_channels[stride], channels, 1) for _, stride, channels, _ in heads
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(x)
        outputs = {}
        for name, stride, sigmoid, head in zip(self.names, self.strides, self.sigmoid, self.heads):
            y = head(features[stride])
            outputs[name] = torch.sigmoid(y) if sigmoid else y
        return outputs


def pyramid_network(
    model_config: dict, heads: list[tuple[str, dict]], state: dict[str, torch.Tensor], source: str
) -> PyramidModel:
    """The network of a sleap-nn ConvNeXt or Swin-T model config, with ``state``'s weights."""
    kind, cfg = pyramid_config(model_config)
    _check_covered(kind, cfg, heads, source)
    backbone_cfg = BackboneConfig(
        type=kind,
        size=cfg["model_type"],
        filters_rate=float(cfg.get("filters_rate", 2.0)),
        convs_per_block=int(cfg.get("convs_per_block", 2)),
        up_interpolate=True,
        max_stride=32,
    )
    specs = []
    for index, (name, head) in enumerate(heads):
        prefix = f"head_layers.{index}."
        weight = [k for k in state if prefix in k and k.endswith(".0.weight")]
        if len(weight) != 1:
            raise ModelFormatError(f"{source}: no weights for head {index} ({name}) in the checkpoint")
        head_class = weight[0].split(prefix)[1].split(".")[0]
        specs.append(
            (head_class, int(head["output_stride"]), state[weight[0]].shape[0], name == "class_maps")
        )
    backbone = build_backbone(int(cfg.get("in_channels", 1)), backbone_cfg, [s for _, s, *_ in specs])
    network = PyramidModel(backbone, specs)
    _load(network, rename(state, backbone_cfg.convs_per_block), source)
    return network.eval()


def _check_covered(kind: str, cfg: dict, heads: list[tuple[str, dict]], source: str) -> None:
    problems = []
    if cfg.get("model_type") not in ("tiny", "small"):
        problems.append(f"size {cfg.get('model_type')!r} (tiny and small are)")
    if int(cfg.get("stem_patch_stride", 2)) != 2:
        problems.append(f"a stem at stride {cfg['stem_patch_stride']} (2 is)")
    if int(cfg.get("kernel_size", 3)) != 3:
        problems.append(f"decoder kernels of {cfg['kernel_size']} (3 is)")
    if not cfg.get("up_interpolate", True):
        problems.append("transposed-convolution upsampling (bilinear is)")
    problems += [f"a {name} head (1x1 convolution heads are)" for name, _ in heads if name == "class_vectors"]
    if problems:
        raise ModelFormatError(
            f"{source}: this sleap-nn {kind} model has " + ", ".join(problems) + "; not yet"
        )


def rename(state: dict[str, torch.Tensor], convs_per_block: int) -> dict[str, torch.Tensor]:
    """sleap-nn's tensor names -> PyramidModel's (unknown names are kept, and refused by ``_load``)."""
    renamed = {}
    for key, tensor in state.items():
        key = key.removeprefix("model.")
        key = re.sub(r"^backbone\.enc\.", "backbone.encoder.", key)
        key = re.sub(
            r"^backbone\.middle_blocks\.0\.blocks\.\w+_middle_expand_conv(\d+)\.",
            r"backbone.middle.\1.0.",
            key,
        )
        key = re.sub(
            r"^backbone\.middle_blocks\.1\.blocks\.\w+_middle_contract_conv0\.",
            f"backbone.middle.{convs_per_block - 1}.0.",
            key,
        )
        key = re.sub(
            r"^backbone\.dec\.decoder_stack\.(\d+)\.blocks\.\w+_refine_conv(\d)\.",
            r"backbone.up.\1.refine.\2.0.",
            key,
        )
        key = re.sub(r"^head_layers\.(\d+)\.\w+\.0\.", r"heads.\1.", key)
        renamed[key] = tensor
    return renamed


def _load(network: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    own = network.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or extra or shapes:
        raise ModelFormatError(
            f"{source}: the checkpoint does not fit the network its config describes: "
            f"missing {missing[:3]}, not in the network {extra[:3]}, other shapes {shapes[:3]}"
        )
    network.load_state_dict(state)
