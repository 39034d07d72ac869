"""The Swin Transformer's encoder (Liu et al. 2021, v1), laid out as torchvision lays it out, so that its
ImageNet weights load by name, with sleap-nn's stem: a 4x4 patch convolution at stride 2 (padding 1).

Attention runs in 7x7 windows of the tokens (N, H, W, C), every other block on windows shifted by half a
window so that information crosses window borders; maps whose sides are not multiples of 7 are padded with
zeros for it (the padded tokens are not masked, as in torchvision), and a shift is dropped along a side no
longer than one window. ``features``: [stem, stage 1, merge, stage 2, merge, stage 3, merge, stage 4];
outputs (N, C, H, W) at strides 2, 2, 4, 4, 8, 8, 16, 16, the last through ``norm``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from posestream.train.backbones.convnext import ToChannelsLast

SIZES = {  # sleap-nn's (and the paper's) sizes: embedding channels, blocks per stage, heads per stage
    "tiny": (96, (2, 2, 6, 2), (3, 6, 12, 24)),
    "small": (96, (2, 2, 18, 2), (3, 6, 12, 24)),
}
WINDOW = 7


def relative_position_index(window: int) -> torch.Tensor:
    """For each pair of cells of a window (row-major), the row of the relative position bias table of their
    offset.  -> (window**4,) int64"""
    rows, cols = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    cells = torch.stack([rows.flatten(), cols.flatten()])  # (2, w*w)
    offset = (cells[:, :, None] - cells[:, None, :]).permute(1, 2, 0) + (window - 1)  # (w*w, w*w, 2)
    return (offset[..., 0] * (2 * window - 1) + offset[..., 1]).flatten()


class WindowAttention(nn.Module):
    """Multi-head self-attention within windows, with a learned bias per relative offset, optionally on
    windows shifted by ``shift`` cells.  (N, H, W, C) -> same"""

    def __init__(self, dim: int, heads: int, shift: int):
        super().__init__()
        self.heads, self.shift = heads, shift
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * WINDOW - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer("relative_position_index", relative_position_index(WINDOW))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, height, width, channels = x.shape
        x = F.pad(x, (0, 0, 0, -width % WINDOW, 0, -height % WINDOW))
        padded_h, padded_w = x.shape[1], x.shape[2]
        shift = (self.shift if padded_h > WINDOW else 0, self.shift if padded_w > WINDOW else 0)
        if any(shift):
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        windows = _windows(x)  # (n * n_windows, WINDOW**2, C)
        attention = self._scores(windows)  # (n * n_windows, heads, WINDOW**2, WINDOW**2)
        if any(shift):
            mask = _shift_mask(padded_h, padded_w, shift, x.device)  # (n_windows, WINDOW**2, WINDOW**2)
            attention = attention.view(n, -1, self.heads, *attention.shape[2:]) + mask[None, :, None]
            attention = attention.flatten(0, 1)
        values = self._values(windows)  # (n * n_windows, heads, WINDOW**2, C / heads)
        out = (attention.softmax(dim=-1) @ values).transpose(1, 2).flatten(2)
        x = _unwindow(self.proj(out), n, padded_h, padded_w)
        if any(shift):
            x = torch.roll(x, shifts=shift, dims=(1, 2))
        return x[:, :height, :width]

    def _scores(self, windows: torch.Tensor) -> torch.Tensor:
        q, k = self._split(windows)[:2]
        q = q * (q.shape[-1] ** -0.5)
        cells = WINDOW * WINDOW
        bias = self.relative_position_bias_table[self.relative_position_index].view(cells, cells, -1)
        return q @ k.transpose(-2, -1) + bias.permute(2, 0, 1)[None]

    def _values(self, windows: torch.Tensor) -> torch.Tensor:
        return self._split(windows)[2]

    def _split(self, windows: torch.Tensor) -> torch.Tensor:
        """Queries, keys and values per head.  (B, T, C) -> (3, B, heads, T, C / heads)"""
        b, t, c = windows.shape
        return self.qkv(windows).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)


def _windows(x: torch.Tensor) -> torch.Tensor:
    """(N, H, W, C) -> (N * H/7 * W/7, 49, C), windows in row-major order."""
    n, height, width, channels = x.shape
    x = x.view(n, height // WINDOW, WINDOW, width // WINDOW, WINDOW, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, WINDOW * WINDOW, channels)


def _unwindow(windows: torch.Tensor, n: int, height: int, width: int) -> torch.Tensor:
    """The inverse of ``_windows``.  -> (N, H, W, C)"""
    x = windows.view(n, height // WINDOW, width // WINDOW, WINDOW, WINDOW, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(n, height, width, -1)


def _shift_mask(height: int, width: int, shift: tuple[int, int], device) -> torch.Tensor:
    """-100 between cells of a shifted window that came from different places (they wrapped around the
    border), 0 elsewhere.  -> (n_windows, 49, 49)"""
    region = torch.zeros((height, width), device=device)
    bands = [((0, -WINDOW), (-WINDOW, -s), (-s, None)) for s in shift]
    for label, ((top, bottom), (left, right)) in enumerate((r, c) for r in bands[0] for c in bands[1]):
        region[top:bottom, left:right] = label
    cells = _windows(region[None, :, :, None])[..., 0]  # (n_windows, 49)
    differ = cells[:, None, :] != cells[:, :, None]
    return torch.where(differ, torch.tensor(-100.0, device=device), torch.tensor(0.0, device=device))


class SwinBlock(nn.Module):
    """x + attention(norm1(x)), then + mlp(norm2(x)).  (N, H, W, C) -> same"""

    def __init__(self, dim: int, heads: int, shift: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = WindowAttention(dim, heads, shift)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """Each 2x2 patch of tokens into one token of twice the channels.
    (N, H, W, C) -> (N, ceil(H / 2), ceil(W / 2), 2C)"""

    def __init__(self, dim: int):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 0, 0, x.shape[2] % 2, 0, x.shape[1] % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class SwinEncoder(nn.Module):
    """The eight ``features`` stages and the last one's ``norm``; ``forward`` returns every stage's output as
    (N, C_i, H / s_i, W / s_i)."""

    def __init__(
        self,
        in_channels: int,
        embed: int,
        depths: tuple[int, ...],
        heads: tuple[int, ...],
        stem_stride: int = 2,
    ):
        super().__init__()
        stem = nn.Sequential(
            nn.Conv2d(in_channels, embed, kernel_size=4, stride=stem_stride, padding=1),
            ToChannelsLast(),
            nn.LayerNorm(embed, eps=1e-5),
        )
        layers: list[nn.Module] = [stem]
        for i, (depth, n_heads) in enumerate(zip(depths, heads)):
            dim = embed * 2**i
            layers.append(
                nn.Sequential(*(SwinBlock(dim, n_heads, WINDOW // 2 * (k % 2)) for k in range(depth)))
            )
            if i + 1 < len(depths):
                layers.append(PatchMerging(dim))
        self.features = nn.Sequential(*layers)
        self.norm = nn.LayerNorm(embed * 2 ** (len(depths) - 1), eps=1e-5)
        dims = [embed * 2**i for i in range(len(depths))]
        self.channels = [d for d in dims for _ in range(2)]
        self.strides = [stem_stride * 2 ** (i // 2) for i in range(len(layers))]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            out = self.norm(x) if i == len(self.features) - 1 else x
            outputs.append(out.permute(0, 3, 1, 2))
        return outputs
