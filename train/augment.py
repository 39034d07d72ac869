"""Geometric and intensity augmentation, applied to an image and its keypoints alike.

Geometry is one 3x3 affine matrix that maps input pixels to output pixels
(scaling to the network's input scale, random rotation / scale / flip about the
output centre, translation, and for centered-instance crops the move of the
anchor to the crop centre). The image is resampled through it once with
``grid_sample``; keypoints are multiplied by it, so both move together exactly.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from posestream.train.config import AugmentConfig


def translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1, 0, dx], [0, 1, dy], [0, 0, 1]], np.float64)


def linear(a: float, b: float, c: float, d: float) -> np.ndarray:
    return np.array([[a, b, 0], [c, d, 0], [0, 0, 1]], np.float64)


def random_geometry(cfg: AugmentConfig, rng: np.random.Generator, can_flip: bool) -> tuple[np.ndarray, bool]:
    """A random rotation / scale / flip about the origin plus a translation, and whether it flips."""
    angle = np.deg2rad(rng.uniform(-cfg.rotation, cfg.rotation)) if cfg.rotation else 0.0
    scale = rng.uniform(cfg.scale_min, cfg.scale_max)
    flip = bool(can_flip and cfg.flip and rng.random() < 0.5)
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    matrix = linear(cos, -sin, sin, cos) @ linear(-1.0 if flip else 1.0, 0, 0, 1)
    shift = rng.uniform(-cfg.translate, cfg.translate, size=2) if cfg.translate else np.zeros(2)
    return translation(*shift) @ matrix, flip


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 3x3 affine to points (..., 2); NaN stays NaN."""
    return (points @ matrix[:2, :2].T + matrix[:2, 2]).astype(np.float32)


def sampling_grid(matrix: np.ndarray, in_shape: tuple[int, int], out_shape: tuple[int, int]) -> torch.Tensor:
    """``grid_sample`` grid (1, out_h, out_w, 2) that lands input pixel p on output pixel ``matrix @ p``.

    in_shape, out_shape: (height, width). align_corners=True convention: -1 and 1 are the
    centres of the first and last input pixels (the exported graph resizes with the same grid).
    """
    out_h, out_w = out_shape
    source = (_normalised(in_shape) @ np.linalg.inv(matrix))[:2].tolist()  # output pixel -> input grid
    xs, ys = torch.arange(out_w, dtype=torch.float32), torch.arange(out_h, dtype=torch.float32)
    grid = torch.empty(1, out_h, out_w, 2)
    for axis, (along_x, along_y, offset) in enumerate(source):
        torch.add(xs[None, :] * along_x, (ys * along_y + offset)[:, None], out=grid[0, :, :, axis])
    return grid


def _normalised(shape: tuple[int, int]) -> np.ndarray:
    """Pixel -> grid_sample coordinates (-1 to 1 from the first to the last pixel centre) of an image of
    ``shape`` (height, width)."""
    height, width = shape
    sx, sy = 2 / max(width - 1, 1), 2 / max(height - 1, 1)
    return translation(-1, -1) @ linear(sx, 0, 0, sy)


def warp_image(image: torch.Tensor, matrix: np.ndarray, out_shape: tuple[int, int]) -> torch.Tensor:
    """Resample image (C, H, W) so that input pixel p lands on output pixel ``matrix @ p``.

    Returns (C, out_h, out_w); outside the input is 0.
    """
    grid = sampling_grid(matrix, image.shape[1:], out_shape)
    return F.grid_sample(image[None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]


def adjust_intensity(image: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """Random brightness, contrast and Gaussian noise on a (C, H, W) image in grey levels (0-255), in
    place."""
    factor = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast) if cfg.contrast else 1.0
    shift = rng.uniform(-cfg.brightness, cfg.brightness) if cfg.brightness else 0.0
    if factor != 1.0:
        shift += float(image.mean()) * (1 - factor)
    image.mul_(factor).add_(shift)
    if cfg.noise:
        noise = torch.Generator().manual_seed(int(rng.integers(2**62)))
        image.add_(torch.randn(image.shape, generator=noise), alpha=cfg.noise)
    return image.clamp_(0, 255)


def apply_kernels(image: torch.Tensor, cfg: AugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """DeepLabCut's kernel augmentations on a (C, H, W) image in grey levels, each applied to a share of the
    examples (its ``*_ratio``): Gaussian blur, motion blur along a random direction, sharpening (unsharp mask)
    and edge enhancement. Nothing is drawn for a ratio of 0, so runs without them keep their random draws."""
    if cfg.blur_ratio and rng.random() < cfg.blur_ratio:
        image = _filter(image, gaussian_kernel(rng.uniform(0.5, cfg.blur_sigma)))
    if cfg.motion_blur_ratio and rng.random() < cfg.motion_blur_ratio:
        image = _filter(image, motion_kernel(cfg.motion_blur_size, rng.uniform(-90, 90)))
    if cfg.sharpen_ratio and rng.random() < cfg.sharpen_ratio:
        strength = rng.uniform(0.0, 1.0)
        image = image + strength * (image - _filter(image, gaussian_kernel(1.0)))
    if cfg.edge_ratio and rng.random() < cfg.edge_ratio:
        strength = rng.uniform(0.0, 0.7)
        image = (1 - strength) * image + strength * _filter(image, EDGE_ENHANCE)
    return image.clamp_(0, 255)


# edge enhancement (as PIL's EDGE_ENHANCE_MORE): the pixel against its 8 neighbours, summing to 1
EDGE_ENHANCE = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 9.0, -1.0], [-1.0, -1.0, -1.0]])


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 2-D Gaussian (k, k), k odd, 3 sigma each side."""
    radius = max(int(np.ceil(3 * sigma)), 1)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = g[:, None] * g[None, :]
    return kernel / kernel.sum()


def motion_kernel(size: int, angle: float) -> torch.Tensor:
    """A normalised line of ``size`` pixels through the centre at ``angle`` degrees (size, size): the blur of
    an animal moving that way during the exposure."""
    kernel = torch.zeros(size, size)
    centre, theta = (size - 1) / 2, np.deg2rad(angle)
    for t in np.linspace(-centre, centre, 4 * size):
        col, row = round(centre + t * np.cos(theta)), round(centre - t * np.sin(theta))
        kernel[row, col] = 1.0
    return kernel / kernel.sum()


def _filter(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Each channel of image (C, H, W) convolved with kernel (k, k), edges replicated; same shape."""
    channels, k = image.shape[0], kernel.shape[0]
    padded = F.pad(image[None], (k // 2,) * 4, mode="replicate")
    weight = kernel.to(image.dtype)[None, None].expand(channels, 1, k, k)
    return F.conv2d(padded, weight, groups=channels)[0]
