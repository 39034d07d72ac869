"""A sleap-nn model folder (``training_config.yaml`` + ``best.ckpt``) as a torch module, without sleap-nn.

sleap-nn's UNet is SLEAP's, layer for layer, and its parameter names keep SLEAP's Keras layer names
(``...blocks.stack0_enc1_conv0.weight``). So the folder's config is written out as the same layer graph a
SLEAP 1.x file holds (``unet_layers``), the checkpoint's tensors are matched to it by those names, and
``KerasGraph`` runs it, with transposed convolutions placed as torch places them (sleap-nn trained them so).
Every tensor of the checkpoint must find its layer, and every layer its tensors: otherwise the config does
not describe these weights, and the error says which.

sleap-nn's ``convnext`` and ``swint`` backbones are built by sleap_nn_pyramid.py. Covered here: the UNet, with
any number of
blocks, bilinear or transposed-conv upsampling, middle block, and the heads of every model type: confidence
maps (single instance, centroid, centered instance, bottom-up and multi-class), part affinity fields, class
maps (sigmoid) and class vectors (global max pool, fully connected layers, softmax).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from posestream.core.errors import ModelFormatError
from posestream.export.importers.keras_graph import KerasGraph
from posestream.export.importers.lightning_ckpt import load_checkpoint
from posestream.export.importers.sleap_nn_pyramid import PyramidModel, pyramid_config, pyramid_network

HEAD_TYPES = (
    "single_instance",
    "centroid",
    "centered_instance",
    "bottomup",
    "multi_class_bottomup",
    "multi_class_topdown",
)


def load_sleap_nn(folder: str | Path) -> tuple[KerasGraph | PyramidModel, dict]:
    """(the network, the folder's training config)."""
    import yaml

    folder = Path(folder)
    try:
        config = yaml.safe_load((folder / "training_config.yaml").read_text())
    except OSError as exc:
        raise ModelFormatError(
            f"{folder}: no training_config.yaml ({exc.strerror}); a sleap-nn model folder holds "
            "training_config.yaml and best.ckpt"
        ) from exc
    state = load_checkpoint(folder / "best.ckpt")["state_dict"]
    if pyramid_config(config["model_config"]):  # convnext, swint: our own encoders and decoder
        heads = _heads(config["model_config"]["head_configs"], str(folder))
        return pyramid_network(config["model_config"], heads, state, str(folder)), config
    layers, weights = unet_layers(config["model_config"], state, str(folder))
    transposed = "torch"
    return KerasGraph(
        {
            "layers": layers,
            "input_layers": [["input", 0, 0]],
            "output_layers": [[name, 0, 0] for name in _outputs(layers)],
        },
        weights,
        str(folder),
        transposed,
    ), config


def unet_layers(model_config: dict, state: dict[str, torch.Tensor], source: str) -> tuple[list[dict], dict]:
    """The Keras-style layer list of a sleap-nn UNet model config, and its weights (Keras layouts) from
    ``state``."""
    backbone = model_config["backbone_config"]
    others = [name for name, value in backbone.items() if value and name != "unet"]
    if others or not backbone.get("unet"):
        raise ModelFormatError(
            f"{source}: backbone {others or list(backbone)} is not supported: only sleap-nn's "
            "UNet is (convnext and swint would need their own networks)"
        )
    unet = backbone["unet"]
    if unet.get("stem_stride"):
        raise ModelFormatError(
            f"{source}: a UNet with a stem (stem_stride {unet['stem_stride']}) is not supported"
        )
    heads = _heads(model_config["head_configs"], source)
    builder = _Builder(unet, state, source)
    builder.build(heads)
    return builder.layers, builder.weights


def _heads(head_configs: dict, source: str) -> list[tuple[str, dict]]:
    """(sub-head name, its config) of the model's one head type, in order."""
    given = {k: v for k, v in head_configs.items() if v}
    if len(given) != 1 or next(iter(given)) not in HEAD_TYPES:
        raise ModelFormatError(f"{source}: head configs {sorted(given)} are not one of {HEAD_TYPES}")
    return list(next(iter(given.values())).items())


class _Builder:
    """Writes the layers of a SLEAP UNet, named as SLEAP names them, taking their tensors from the state
    dict."""

    def __init__(self, unet: dict, state: dict, source: str):
        self.unet, self.state, self.source = unet, dict(state), source
        self.layers: list[dict] = [
            {"class_name": "InputLayer", "name": "input", "config": {}, "inbound_nodes": []}
        ]
        self.weights: dict[str, list[np.ndarray]] = {}
        self.filters, self.rate = unet["filters"], unet["filters_rate"]
        self.convs = unet.get("convs_per_block", 2)
        self.kernel = unet.get("kernel_size", 3)
        self.down = int(round(math.log2(unet["max_stride"])))

    def build(self, heads: list[tuple[str, dict]]) -> None:
        x, skips = "input", []
        for i in range(self.down):
            if i:
                x = self._layer(
                    "MaxPooling2D", f"stack0_enc{i}_pool", [x], {"pool_size": [2, 2], "padding": "same"}
                )
            for k in range(self.convs):
                x = self._conv(f"stack0_enc{i}_conv{k}", self._width(i), x)
            skips.append(x)
        x = self._layer(
            "MaxPooling2D", f"stack0_enc{self.down}_last_pool", [x], {"pool_size": [2, 2], "padding": "same"}
        )
        if self.unet.get("middle_block", True):
            for k in range(self.convs - 1):
                x = self._conv(f"stack0_enc{self.down + 1}_middle_expand_conv{k}", self._width(self.down), x)
            x = self._conv(f"stack0_enc{self.down + 2}_middle_contract_conv0", self._width(self.down), x)
        features = {self.unet["max_stride"]: x}
        strides = [
            h.get("output_stride", self.unet["max_stride"]) for name, h in heads if name != "class_vectors"
        ]
        stride = self.unet["max_stride"]
        for j in range(int(round(math.log2(self.unet["max_stride"] / min(strides))))):
            prefix, width = f"stack0_dec{j}_s{stride}_to_s{stride // 2}", self._width(self.down - 1 - j)
            if self.unet.get("up_interpolate", True):
                up = self._layer(
                    "UpSampling2D", f"{prefix}_interp_bilinear", [x], {"interpolation": "bilinear"}
                )
            else:
                up = self._conv(f"{prefix}_trans_conv", width, x, kind="Conv2DTranspose")
            x = self._layer("Concatenate", f"{prefix}_skip_concat", [skips[self.down - 1 - j], up], {})
            for k in range(self.convs):
                x = self._conv(f"{prefix}_refine_conv{k}", width, x)
            stride //= 2
            features[stride] = x
        for index, (name, head) in enumerate(heads):
            self._head(index, name, head, features)
        unused = sorted(self.state)
        if unused:
            raise ModelFormatError(
                f"{self.source}: the checkpoint has tensors its config has no layer for: {unused[:6]}"
                f"{' ...' if len(unused) > 6 else ''}; the config does not describe these weights"
            )

    def _width(self, block: int) -> int:
        return int(self.filters * self.rate**block)

    def _layer(self, kind: str, name: str, inputs: list[str], config: dict) -> str:
        self.layers.append(
            {
                "class_name": kind,
                "name": name,
                "config": {"name": name, **config},
                "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]],
            }
        )
        return name

    def _conv(
        self,
        name: str,
        filters: int,
        x: str,
        kind: str = "Conv2D",
        activation: str = "relu",
        kernel: int | None = None,
        key: str | None = None,
    ) -> str:
        kernel = kernel or self.kernel
        strides = [2, 2] if kind == "Conv2DTranspose" else [1, 1]
        config = {
            "filters": filters,
            "kernel_size": [kernel, kernel],
            "strides": strides,
            "padding": "same",
            "activation": activation,
            "use_bias": True,
        }
        weight, bias = self._take(key or f".{name}.")
        self.weights[name] = [weight.permute(2, 3, 1, 0).numpy(), bias.numpy()]  # torch -> Keras layout
        return self._layer(kind, name, [x], config)

    def _dense(self, name: str, units: int, x: str, activation: str, key: str) -> str:
        weight, bias = self._take(key)
        self.weights[name] = [weight.T.numpy(), bias.numpy()]
        return self._layer("Dense", name, [x], {"units": units, "activation": activation, "use_bias": True})

    def _take(self, marker: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The weight and bias whose names hold ``marker``, removed from what is left to place."""
        found = {k: v for k, v in self.state.items() if marker in k}
        weight = [k for k in found if k.endswith(".weight")]
        bias = [k for k in found if k.endswith(".bias")]
        if len(weight) != 1 or len(bias) != 1:
            raise ModelFormatError(
                f"{self.source}: the checkpoint has {len(weight)} weight and {len(bias)} bias "
                f"tensors for layer {marker.strip('.')} (needs one each): missing or ambiguous weights"
            )
        for k in (*weight, *bias):
            del self.state[k]
        return found[weight[0]].float(), found[bias[0]].float()

    def _head(self, index: int, name: str, head: dict, features: dict[int, str]) -> None:
        prefix = f"head_layers.{index}."
        keys = [k[len("model.") :] if k.startswith("model.") else k for k in self.state if prefix in k]
        if not keys:
            raise ModelFormatError(f"{self.source}: no weights for head {index} ({name}) in the checkpoint")
        if name == "class_vectors":
            x = self._layer(
                "GlobalMaxPooling2D",
                "pre_classification_global_pool",
                [features[self.unet["max_stride"]]],
                {},
            )
            x = self._layer("Flatten", "pre_classification_flatten", [x], {})
            for k in range(head.get("num_fc_layers", 1)):
                x = self._dense(
                    f"pre_classification{k}_fc",
                    head["num_fc_units"],
                    x,
                    "relu",
                    f"{prefix}pre_classification{k}_fc.",
                )
            self._dense("ClassVectorsHead", len(head["classes"]), x, "softmax", f"{prefix}ClassVectorsHead.")
            return
        head_class = keys[0][keys[0].index(prefix) + len(prefix) :].split(".")[0]
        stride = head.get("output_stride")
        if stride not in features:
            raise ModelFormatError(
                f"{self.source}: head {name} is at output stride {stride}; the network has "
                f"features at strides {sorted(features)}"
            )
        weight = self.state[
            next(k for k in self.state if f"{prefix}{head_class}." in k and k.endswith("weight"))
        ]
        self._conv(
            head_class,
            weight.shape[0],
            features[stride],
            activation="sigmoid" if name == "class_maps" else "linear",
            kernel=1,
            key=f"{prefix}{head_class}.",
        )


def _outputs(layers: list[dict]) -> list[str]:
    """The layers no other layer reads: the heads."""
    read = {
        node[0] for layer in layers for node in (layer["inbound_nodes"][0] if layer["inbound_nodes"] else [])
    }
    return [
        layer["name"] for layer in layers if layer["name"] not in read and layer["class_name"] != "InputLayer"
    ]
