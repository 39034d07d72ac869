"""The exported graph: uint8 frames in, confidence maps or peak candidates out.

``ExportGraph`` wraps a trained network with every step the engine would
otherwise do per frame on the CPU:

- input: the decoded frames as they come, uint8 (N, H, W, C) (NHWC: PyAV's
  arrays stack into it without a transpose or copy);
- cast to float, scale to [0, 1], resize by ``input_scale`` and zero-pad to
  the network's size in one ``grid_sample`` (the same grid as training's
  warp, so the exported model sees exactly what it was trained on);
- ``maps`` mode: the network's outputs, "confmaps" (N, C, h, w) and "pafs"
  (N, 2E, hp, wp) for bottom-up; identity models: "class_maps" (N, n_classes, hc, wc) in place of the
  PAFs, or "class_vectors" (N, n_classes), the classes' probabilities (softmax of the logits);
- ``peaks`` mode: top-K local maxima per channel with their 3x3 patches
  ("peak_values", "peak_indices", "peak_patches") and, for bottom-up, the PAF
  samples along every candidate pair ("paf_dots"), or an identity model's class
  maps at every candidate ("peak_classes"), or its class vectors — the computation of
  ``posestream.engine.model.peaks.find_candidates`` and
  ``posestream.engine.model.paf_grouping.pair_dots``, on the device.

The frame size is fixed at export (the batch size is not): the grid is a
constant. Frames of another size need another export (``--input-size HxW``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from posestream.engine.model.peaks import NOT_A_PEAK
from posestream.engine.model.postprocess import network_outputs
from posestream.engine.types import ModelMetadata, ModelType, OutputMode
from posestream.train.augment import linear, sampling_grid


class ExportGraph(nn.Module):
    """A trained network with its preprocessing (and peak candidates) in the graph.

    frames: (N, H, W, C) uint8, H, W, C = ``metadata.input_shape``. Returns the tensors of
    ``output_names(metadata)``.
    """

    def __init__(
        self,
        network: nn.Module,
        metadata: ModelMetadata,
        network_shape: tuple[int, int],
        half: bool = False,
        class_logits: bool = False,
    ):
        """``class_logits``: the network's class vectors are logits (ours) and become probabilities here;
        imported networks give probabilities already."""
        super().__init__()
        self.network = network.half() if half else network
        self.half = half
        self.metadata = metadata
        height, width, _ = metadata.input_shape
        scale = metadata.input_scale
        self.resize = scale != 1.0 or (height, width) != tuple(network_shape)
        grid = sampling_grid(linear(scale, 0, 0, scale), (height, width), network_shape)
        self.register_buffer("grid", grid, persistent=False)  # (1, h, w, 2)
        self.peaks = metadata.output_mode is OutputMode.PEAKS
        self.bottomup = metadata.model_type is ModelType.BOTTOMUP
        self.names = network_outputs(metadata)
        self.class_logits = class_logits
        edges = np.array(metadata.skeleton.edges, np.int64).reshape(-1, 2)
        self.register_buffer("edge_src", torch.from_numpy(edges[:, 0]), persistent=False)
        self.register_buffer("edge_dst", torch.from_numpy(edges[:, 1]), persistent=False)
        t = torch.linspace(0.0, 1.0, metadata.paf_samples, dtype=torch.float32)[:, None]
        self.register_buffer("t", t, persistent=False)  # (S, 1)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = frames.permute(0, 3, 1, 2).to(torch.float32) / 255.0  # (N, C, H, W)
        if self.resize:
            grid = self.grid.expand(x.shape[0], -1, -1, -1)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        outputs = dict(zip(self.names, self.network(x.half() if self.half else x)))
        outputs = {name: o.to(torch.float32) for name, o in outputs.items()}
        if self.class_logits and "class_vectors" in outputs:
            outputs["class_vectors"] = torch.softmax(outputs["class_vectors"], dim=1)
        if not self.peaks:
            return tuple(outputs.values())
        confmaps = outputs["confmaps"]
        values, flat, patches = peak_candidates(confmaps, self.metadata.max_peaks)
        strides = self.metadata.output_strides
        if "class_maps" in outputs:  # bottom-up identity model: the classes' maps at the candidates
            classes = self.at_candidates(
                flat, confmaps.shape[3], strides["confmaps"], outputs["class_maps"], strides["class_maps"]
            )
            return values, flat, patches, classes
        if "pafs" in outputs:
            dots = self.pair_dots(
                flat, confmaps.shape[3], strides["confmaps"], outputs["pafs"], strides["pafs"]
            )
            return values, flat, patches, dots
        if "class_vectors" in outputs:
            return values, flat, patches, outputs["class_vectors"]
        return values, flat, patches

    @staticmethod
    def at_candidates(
        flat: torch.Tensor, width: int, stride: int, class_maps: torch.Tensor, class_stride: int
    ) -> torch.Tensor:
        """Each class map's value at each candidate's cell (N, n_classes, C, K), as
        ``engine.identity.class_values``."""
        n, channels, k = flat.shape
        rows = torch.div(flat, width, rounding_mode="floor")
        cols = flat - rows * width
        height_c, width_c = class_maps.shape[2], class_maps.shape[3]
        row = torch.clamp(torch.div(rows * stride, class_stride, rounding_mode="floor"), 0, height_c - 1)
        col = torch.clamp(torch.div(cols * stride, class_stride, rounding_mode="floor"), 0, width_c - 1)
        index = (row * width_c + col).reshape(n, 1, channels * k).expand(-1, class_maps.shape[1], -1)
        values = torch.gather(class_maps.reshape(n, class_maps.shape[1], height_c * width_c), 2, index)
        return values.reshape(n, class_maps.shape[1], channels, k)

    def pair_dots(
        self, flat: torch.Tensor, width: int, stride: int, pafs: torch.Tensor, paf_stride: int
    ) -> torch.Tensor:
        """PAF samples (N, E, K, K, S) along candidate pairs, as ``engine.paf_grouping.pair_dots``."""
        n = flat.shape[0]
        rows = torch.div(flat, width, rounding_mode="floor")
        cols = flat - rows * width
        points = torch.stack([cols * stride, rows * stride], dim=-1).to(torch.float32)  # (N, C, K, 2)
        src = points.index_select(1, self.edge_src)[:, :, :, None, None, :]  # (N, E, K, 1, 1, 2)
        dst = points.index_select(1, self.edge_dst)[:, :, None, :, None, :]  # (N, E, 1, K, 1, 2)
        delta = dst - src  # (N, E, K, K, 1, 2)
        samples = src + self.t * delta  # (N, E, K, K, S, 2)
        height_p, width_p = pafs.shape[2], pafs.shape[3]
        col = torch.clamp(torch.round(samples[..., 0] / paf_stride), 0, width_p - 1).to(torch.int64)
        row = torch.clamp(torch.round(samples[..., 1] / paf_stride), 0, height_p - 1).to(torch.int64)
        n_edges = self.edge_src.shape[0]
        index = (row * width_p + col).reshape(n, n_edges, -1)  # (N, E, K*K*S)
        field = pafs.reshape(n, n_edges, 2, height_p * width_p)
        field_x = torch.gather(field[:, :, 0], 2, index).reshape(row.shape)
        field_y = torch.gather(field[:, :, 1], 2, index).reshape(row.shape)
        length = torch.sqrt(delta[..., 0] ** 2 + delta[..., 1] ** 2)  # (N, E, K, K, 1)
        unit = delta / torch.clamp(length, min=1e-6)[..., None]
        return field_x * unit[..., 0] + field_y * unit[..., 1]


def peak_candidates(maps: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top-``k`` 3x3 local maxima of each channel of maps (N, C, h, w), as ``engine.peaks.find_candidates``.

    Returns values (N, C, K), flat cell indices (N, C, K) int64 = row * w + col, and the
    3x3 patches around them (N, C, K, 3, 3), zeros past the border.
    """
    n, c, height, width = maps.shape
    pooled = F.max_pool2d(maps, 3, stride=1, padding=1)
    ranked = torch.where(maps >= pooled, maps, torch.full_like(maps, NOT_A_PEAK))
    values, flat = torch.topk(ranked.reshape(n, c, height * width), k, dim=2)
    rows = torch.div(flat, width, rounding_mode="floor")
    cols = flat - rows * width
    padded = F.pad(maps, (1, 1, 1, 1)).reshape(n, c, (height + 2) * (width + 2))
    steps = torch.arange(3, dtype=torch.int64, device=maps.device)
    offsets = (steps[:, None] * (width + 2) + steps[None, :]).reshape(9)  # the 3x3 patch in padded flat cells
    index = (rows * (width + 2) + cols)[..., None] + offsets  # (N, C, K, 9)
    patches = torch.gather(padded, 2, index.reshape(n, c, k * 9)).reshape(n, c, k, 3, 3)
    return values, flat, patches
