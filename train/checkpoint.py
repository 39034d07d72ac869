"""Checkpoints: a run's weights written whole or not at all, and read back into a network of the same shape.

Every reader (``train --resume``, ``--init-weights``, predicting and exporting a run) goes through
``load_checkpoint``: a missing or truncated file, or weights of another network, stop with the file, the
first layer that differs and what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from posestream.core.errors import ConfigError


def write_checkpoint(state: dict, path: Path) -> None:
    """Write ``state`` to ``path`` through a temporary file: a crash leaves the previous checkpoint."""
    tmp = path.with_suffix(".tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: Path, model: torch.nn.Module, device: torch.device | str, fix: str) -> dict:
    """Load ``path``'s network weights into ``model``; returns the whole checkpoint (a resumed run's
    optimizer state and counters). ``fix`` says what to do when the weights are another network's."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        weights = state["model"]
    except Exception as exc:  # a truncated file, or not a checkpoint of ours
        raise ConfigError(f"{path}: cannot load the weights ({type(exc).__name__}: {exc})") from exc
    own = model.state_dict()
    for name, tensor in weights.items():
        if name not in own or own[name].shape != tensor.shape:
            got = tuple(own[name].shape) if name in own else "no such layer"
            raise ConfigError(f"{path}: layer {name} is {tuple(tensor.shape)} there but {got} here; {fix}")
    missing = sorted(set(own) - set(weights))
    if missing:
        raise ConfigError(f"{path}: has no weights for {missing[0]} (and {len(missing) - 1} more); {fix}")
    model.load_state_dict(weights)
    return state
