"""sleap-nn checkpoints (``best.ckpt``, PyTorch Lightning) read safely, without sleap-nn or omegaconf.

``torch.load(weights_only=True)`` refuses them: besides the tensors, a checkpoint pickles its training config
as omegaconf and sleap-nn objects (``omegaconf.dictconfig.DictConfig``, ``sleap_nn.config.*Config``, with
``typing`` and a few builtins inside). Loading with ``weights_only=False`` would need both packages installed
and would run whatever the pickle names. Instead the checkpoint goes through torch's weights-only unpickler,
with those names, and only those (``CONFIG_GLOBALS``), mapped to inert stand-ins: the tensors load as usual,
the config becomes objects that do nothing (the config is read from ``training_config.yaml`` beside the
checkpoint), and any other global (say ``os.system``) is still refused.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import torch
import torch.serialization as serialization

from posestream.core.errors import ModelFormatError

CONFIG_GLOBALS = (
    "omegaconf.*",
    "sleap_nn.config.*",
    "typing.*",
    "collections.defaultdict",
    "_operator.getitem",
    "builtins.int",
    "builtins.float",
    "builtins.str",
    "builtins.bool",
    "builtins.dict",
    "builtins.list",
    "builtins.tuple",
    "builtins.set",
    "builtins.object",
)


class _Inert:
    """Stands in for a config object in the pickle: takes any arguments and state, does nothing."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state) -> None:
        self.state = state


def _inert_call(*args, **kwargs) -> _Inert:
    return _Inert()


def load_checkpoint(path: str | Path) -> dict:
    """The checkpoint's top-level dict (``state_dict`` of tensors; ``config`` inert)."""
    path = Path(path)
    try:
        needed = serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as exc:  # torch raises several types for a file that is not a checkpoint
        raise ModelFormatError(f"{path}: not a PyTorch checkpoint ({type(exc).__name__}: {exc})") from exc
    refused = [
        name for name in needed if not any(fnmatch.fnmatch(name, pattern) for pattern in CONFIG_GLOBALS)
    ]
    if refused:
        raise ModelFormatError(
            f"{path}: the checkpoint names {refused}, which are not parts of a sleap-nn training "
            "config; it is not loaded (a pickle can run the code it names)"
        )
    stand_ins = [(_Inert if name.rsplit(".", 1)[-1][:1].isupper() else _inert_call, name) for name in needed]
    try:
        with serialization.safe_globals(stand_ins):
            checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # the weights-only unpickler's refusal or a damaged file
        raise ModelFormatError(f"{path}: cannot read the checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ModelFormatError(
            f"{path}: no state_dict in the checkpoint: not a Lightning checkpoint of sleap-nn"
        )
    return checkpoint
