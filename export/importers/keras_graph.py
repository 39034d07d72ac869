"""A Keras functional model saved by SLEAP 1.x (``best_model.h5``) as a torch module, without TensorFlow.

The layer graph is read from the file's ``model_config`` JSON and its weights with h5py, then run layer by
layer in the file's (topological) order, so the network is the one SLEAP trained whatever its wiring (heads
on different strides, no decoder, a class-vector branch). Layers SLEAP's UNets use:

| Keras | torch |
|---|---|
| Conv2D (k odd, stride 1, "same") | Conv2d(padding=k//2); kernel (kh, kw, in, out) -> (out, in, kh, kw) |
| Conv2DTranspose (stride 2, "same") | conv_transpose2d(stride 2, padding 0) cut to (2H, 2W): TensorFlow keeps
the first 2H x 2W of the full output (ConvTranspose2d(padding=1, output_padding=1) is shifted by a pixel) |
| MaxPooling2D (2, "same") | max_pool2d(2) after padding odd sizes at the bottom/right |
| UpSampling2D (bilinear / nearest) | interpolate(scale 2, align_corners=False) |
| Concatenate (channels) | cat(dim=1), in the inbound order |
| Activation, a layer's ``activation`` | relu, sigmoid, softmax (over channels), linear |
| GlobalMaxPooling2D, Flatten, Dense | amax over H, W; flatten; Linear (kernel transposed) |

Input: float (N, C, H, W) in [0, 1]; outputs: a dict by output layer name, channels first.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from posestream.core.errors import ModelFormatError

SUPPORTED = (
    "InputLayer",
    "Conv2D",
    "Conv2DTranspose",
    "MaxPooling2D",
    "UpSampling2D",
    "Concatenate",
    "Activation",
    "GlobalMaxPooling2D",
    "Flatten",
    "Dense",
)


class KerasGraph(nn.Module):
    """The layers of a Keras functional model (``model_config``), run in order."""

    def __init__(
        self,
        config: dict,
        weights: dict[str, list[np.ndarray]],
        source: str = "model",
        transposed: str = "tensorflow",
    ):
        """transposed: how stride-2 transposed convolutions place their output: "tensorflow" (SLEAP 1.x) or
        "torch" (``ConvTranspose2d(padding=1, output_padding=1)``, as sleap-nn trains them)."""
        super().__init__()
        self.source, self.transposed = source, transposed
        self.layers_config = config["layers"]
        self.inputs = [name for name, *_ in config["input_layers"]]
        self.outputs = [name for name, *_ in config["output_layers"]]
        unknown = sorted({layer["class_name"] for layer in self.layers_config} - set(SUPPORTED))
        if unknown:
            raise ModelFormatError(
                f"{source}: layer types {unknown} are not supported (supported: {', '.join(SUPPORTED)}); "
                "this network is not one of SLEAP's UNets"
            )
        self.modules_by_name = nn.ModuleDict()
        for layer in self.layers_config:
            module = _module(layer, weights.get(layer["name"], []), source)
            if module is not None:
                self.modules_by_name[_key(layer["name"])] = module

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        values: dict[str, torch.Tensor] = {self.inputs[0]: x}
        for layer in self.layers_config:
            if layer["class_name"] == "InputLayer":
                continue
            inputs = [values[node[0]] for node in layer["inbound_nodes"][0]]
            values[layer["name"]] = self._apply(layer, inputs)
        return {name: values[name] for name in self.outputs}

    def _apply(self, layer: dict, inputs: list[torch.Tensor]) -> torch.Tensor:
        kind, config = layer["class_name"], layer["config"]
        x = inputs[0]
        if kind == "Conv2D":
            x = self.modules_by_name[_key(layer["name"])](x)
        elif kind == "Conv2DTranspose":
            conv = self.modules_by_name[_key(layer["name"])]
            height, width = _static_size(x)
            if self.transposed == "torch":
                x = F.conv_transpose2d(x, conv.weight, conv.bias, stride=2, padding=1, output_padding=1)
            else:
                x = F.conv_transpose2d(x, conv.weight, conv.bias, stride=2)[..., : 2 * height, : 2 * width]
        elif kind == "MaxPooling2D":
            height, width = _static_size(x)
            if (
                height % 2 or width % 2
            ):  # the exported graph has no Pad where sizes are even (always, in practice)
                x = F.pad(x, (0, width % 2, 0, height % 2), value=float("-inf"))
            x = F.max_pool2d(x, 2)
        elif kind == "UpSampling2D":
            mode = config.get("interpolation", "nearest")
            x = F.interpolate(
                x, scale_factor=2, mode=mode, **({"align_corners": False} if mode == "bilinear" else {})
            )
        elif kind == "Concatenate":
            return torch.cat(inputs, dim=1)
        elif kind == "GlobalMaxPooling2D":
            x = x.amax(dim=(-2, -1))
        elif kind == "Flatten":
            x = x.flatten(1)
        elif kind == "Dense":
            x = self.modules_by_name[_key(layer["name"])](x)
        return _activation(x, config.get("activation", "linear"), layer["name"], self.source)


def _static_size(x: torch.Tensor) -> tuple[int, int]:
    """(H, W) as Python ints: exported graphs have a fixed frame size (only the batch varies), so the ONNX
    tracer bakes the padding and cropping in as constants, instead of a shape subgraph and a Pad before
    every pooling that keep onnxruntime from running the convolutions in its blocked (NCHWc) layout
    throughout (5-14% of the call on CPU, measured)."""
    return int(x.shape[-2]), int(x.shape[-1])


MAX_WEIGHT = 1e6  # no trained UNet weight comes near this; random bytes read as float32 do, most of them


def load_keras_h5(path: str | Path) -> KerasGraph:
    """``best_model.h5`` -> KerasGraph with its weights."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            config = json.loads(f.attrs["model_config"])["config"]
            weights = _weights(f["model_weights"], str(path))
    except ModelFormatError:
        raise
    except (OSError, KeyError) as exc:
        raise ModelFormatError(
            f"{path}: not a Keras model file with a model_config and model_weights ({exc})"
        ) from exc
    except (RuntimeError, ValueError) as exc:  # HDF5 metadata or the config's JSON damaged
        raise ModelFormatError(
            f"{path}: the file is damaged ({type(exc).__name__}: {exc}); copy best_model.h5 "
            "again from the training folder"
        ) from exc
    return KerasGraph(config, weights, str(path))


def _weights(group: h5py.Group, source: str) -> dict[str, list[np.ndarray]]:
    """Each layer's weight arrays in the order of its ``weight_names`` attribute."""
    out = {}
    for name in group.attrs["layer_names"]:
        name = name.decode() if isinstance(name, bytes) else str(name)
        layer = group[name]
        paths = [w.decode() if isinstance(w, bytes) else str(w) for w in layer.attrs.get("weight_names", [])]
        missing = [p for p in paths if p not in layer]
        if missing:
            raise ModelFormatError(
                f"{source}: layer {name} is missing its weights {missing}; the file is incomplete "
                "(copy best_model.h5 again from the training folder)"
            )
        out[name] = [_checked(np.asarray(layer[p]), f"{name}/{p}", source) for p in paths]
    return out


def _checked(weights: np.ndarray, name: str, source: str) -> np.ndarray:
    """A weight array, refused when its values cannot be a trained network's (NaN, inf, or beyond
    MAX_WEIGHT): damaged bytes read as floats look like that. What this cannot see: damage that leaves
    plausible values (the file has no checksum); ``dummy_activations.h5`` beside it, where SLEAP wrote one,
    is the check of the whole network."""
    if weights.dtype.kind == "f" and weights.size and not (np.abs(weights) <= MAX_WEIGHT).all():
        bad = int((~(np.abs(weights) <= MAX_WEIGHT)).sum())
        raise ModelFormatError(
            f"{source}: weights {name} hold {bad} values that are NaN, infinite or beyond "
            f"{MAX_WEIGHT:g}: the file is damaged; copy best_model.h5 again from the training "
            "folder"
        )
    return weights


def _module(layer: dict, weights: list[np.ndarray], source: str) -> nn.Module | None:
    kind, config, name = layer["class_name"], layer["config"], layer["name"]
    if kind not in ("Conv2D", "Conv2DTranspose", "Dense"):
        return None
    expected = 2 if config.get("use_bias", True) else 1
    if len(weights) != expected:
        raise ModelFormatError(
            f"{source}: layer {name} ({kind}) has {len(weights)} weight arrays, its config needs "
            f"{expected}: the weights do not match the model's config"
        )
    kernel = torch.from_numpy(np.ascontiguousarray(weights[0], np.float32))
    bias = torch.from_numpy(np.asarray(weights[1], np.float32)) if expected == 2 else None
    if kind == "Dense":
        module = nn.Linear(kernel.shape[0], kernel.shape[1], bias=bias is not None)
        module.weight.data = kernel.T.contiguous()
    else:
        _check_conv(config, name, source, kind)
        kh, kw = config["kernel_size"]
        if kind == "Conv2D":
            module = nn.Conv2d(
                kernel.shape[2], kernel.shape[3], (kh, kw), padding=(kh // 2, kw // 2), bias=bias is not None
            )
        else:
            module = nn.ConvTranspose2d(
                kernel.shape[3], kernel.shape[2], (kh, kw), stride=2, bias=bias is not None
            )
        module.weight.data = kernel.permute(3, 2, 0, 1).contiguous()
    if config.get("filters", config.get("units")) != (
        module.out_channels if hasattr(module, "out_channels") else module.out_features
    ):
        raise ModelFormatError(
            f"{source}: layer {name}'s weights have another output size than its config says"
        )
    if bias is not None:
        module.bias.data = bias
    return module


def _check_conv(config: dict, name: str, source: str, kind: str) -> None:
    kh, kw = config["kernel_size"]
    stride = tuple(config.get("strides", (1, 1)))
    wanted = (2, 2) if kind == "Conv2DTranspose" else (1, 1)
    if (
        config.get("padding") != "same"
        or stride != wanted
        or kh % 2 == 0
        or kw % 2 == 0
        or tuple(config.get("dilation_rate", (1, 1))) != (1, 1)
    ):
        raise ModelFormatError(
            f"{source}: layer {name} ({kind}, kernel {kh}x{kw}, strides {stride}, padding "
            f"{config.get('padding')}) is not supported: SLEAP's UNets use odd kernels, 'same' "
            f"padding and strides {wanted}"
        )


def _activation(x: torch.Tensor, name: str, layer: str, source: str) -> torch.Tensor:
    if name == "linear":
        return x
    if name == "relu":
        return F.relu(x)
    if name == "sigmoid":
        return torch.sigmoid(x)
    if name == "softmax":
        return torch.softmax(x, dim=1)
    raise ModelFormatError(
        f"{source}: layer {layer} has activation {name!r}, which is not supported "
        "(linear, relu, sigmoid, softmax)"
    )


def _key(name: str) -> str:
    return name.replace(".", "_")
