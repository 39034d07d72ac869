"""ImageNet weights for a ConvNeXt or Swin encoder, from a local file (``backbone.pretrained``); nothing is
downloaded while training.

The file is a state dict in torchvision's layout (``features.*``, ``norm.*``), as torchvision's
``convnext_tiny`` or ``swin_t`` weights are saved (e.g. ``torch.save(model.state_dict(), PATH)``). Its
classifier (``classifier.*``, ``head.*``) is left out. For grey images the stem's three input channels are
summed into one: the same as feeding the grey image as RGB, which is what the weights were trained on.
Every other tensor must match the encoder's, by name and shape: a missing, extra or mismatched one is an
error that names it (the wrong size, or another architecture's file).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from torch import nn

from posestream.core.errors import ConfigError

CLASSIFIER = ("classifier.", "head.")
STEM = "features.0.0.weight"


def load_pretrained(encoder: nn.Module, path: str | os.PathLike) -> None:
    """Load ``path`` into ``encoder`` (a ConvNeXtEncoder or SwinEncoder), or raise ConfigError naming what
    does not fit."""
    path = Path(path)
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise ConfigError(f"backbone.pretrained {path}: cannot read it as torch weights ({exc})") from exc
    if not isinstance(weights, dict):
        raise ConfigError(f"backbone.pretrained {path}: holds a {type(weights).__name__}, not a state dict")
    weights = {k: v for k, v in weights.items() if not k.startswith(CLASSIFIER)}
    own = encoder.state_dict()
    if STEM in weights and STEM in own and own[STEM].shape[1] == 1 and weights[STEM].shape[1] == 3:
        weights[STEM] = weights[STEM].sum(dim=1, keepdim=True)  # grey input: RGB's three channels, summed
    problems = _mismatches(own, weights)
    if problems:
        raise ConfigError(
            f"backbone.pretrained {path} does not fit this {type(encoder).__name__} "
            f"(backbone.type and backbone.size): " + "; ".join(problems)
        )
    encoder.load_state_dict(weights)


def _mismatches(own: dict[str, torch.Tensor], weights: dict[str, torch.Tensor]) -> list[str]:
    """What keeps ``weights`` from loading into a module whose state dict is ``own``, in words."""
    missing = [k for k in own if k not in weights]
    extra = [k for k in weights if k not in own]
    shapes = [
        f"{k} is {tuple(weights[k].shape)} there, {tuple(own[k].shape)} here"
        for k in own
        if k in weights and weights[k].shape != own[k].shape
    ]
    problems = []
    for kind, keys in (("missing", missing), ("not in this encoder", extra)):
        if keys:
            problems.append(f"{len(keys)} {kind} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})")
    return problems + shapes[:3] + ([f"{len(shapes) - 3} more of other shapes"] if len(shapes) > 3 else [])
