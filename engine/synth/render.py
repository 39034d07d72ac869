"""Drawing synthetic animals into frames: anti-aliased capsules on a textured floor, plus sensor noise.

The numba kernels touch only the pixels near each body part, so a 1024x1024
frame renders in a few milliseconds.
"""

from __future__ import annotations

import numba
import numpy as np

from posestream.engine.drawing import capsule_box, capsule_coverage
from posestream.engine.synth.motion import SYNTH_SKELETON

# Body parts as capsules between two nodes: (node a, node b, radius at a, radius at b, colour key),
# radii in body lengths. Discs (a == b) mark the ears and the nose. Drawn in this order.
_PARTS = (
    ("tail_mid", "tail_tip", 0.03, 0.015, "tail"),
    ("tail_base", "tail_mid", 0.045, 0.03, "tail"),
    ("spine", "tail_base", 0.15, 0.09, "body"),
    ("neck", "spine", 0.11, 0.15, "body"),
    ("head", "neck", 0.09, 0.11, "body"),
    ("nose", "head", 0.05, 0.09, "head"),
    ("left_ear", "left_ear", 0.06, 0.06, "ear"),
    ("right_ear", "right_ear", 0.06, 0.06, "ear"),
    ("nose", "nose", 0.03, 0.03, "nose"),
)
_GRAY = {"tail": (150.0,), "body": (190.0,), "head": (210.0,), "ear": (235.0,), "nose": (255.0,)}
_RGB = {
    "tail": (170.0, 130.0, 110.0),
    "body": (205.0, 160.0, 115.0),
    "head": (220.0, 175.0, 130.0),
    "ear": (245.0, 185.0, 185.0),
    "nose": (255.0, 225.0, 225.0),
}
NOISE_SIGMA = 3.0  # sensor noise, grey levels
MIN_RADIUS = 1.5  # pixels: thin parts (the tail tip) stay visible in small videos


def make_background(height: int, width: int, channels: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth, mottled floor.  # (H, W, C) float32"""
    coarse = rng.uniform(0.0, 1.0, size=(9, 9))
    rows = np.linspace(0, 8, height)
    cols = np.linspace(0, 8, width)
    smooth = np.array([np.interp(cols, np.arange(9), r) for r in coarse])  # (9, W)
    smooth = np.array([np.interp(rows, np.arange(9), c) for c in smooth.T]).T  # (H, W)
    if channels == 1:
        floor = 55.0 + 35.0 * smooth[..., None]
    else:
        floor = np.stack([60 + 25 * smooth, 75 + 30 * smooth, 65 + 20 * smooth], axis=-1)
    return floor.astype(np.float32)


# --identities: each animal a body shade of its own, spread over IDENTITY_SHADES grey levels, and marks on
# its back (dark discs at the nodes of the set bits of its identity): what a multi-class model learns
IDENTITY_SHADES = 90.0
_MARK_NODES = ("neck", "spine", "tail_base")
_MARK = (25.0, 0.07)  # grey level (all channels), radius in body lengths


def identity_tints(n_animals: int) -> np.ndarray:
    """Body shades of animals 0..n-1, evenly spread and centred on the palette.  # (n_animals,)"""
    if n_animals == 1:
        return np.zeros(1)
    return np.linspace(-IDENTITY_SHADES / 2, IDENTITY_SHADES / 2, n_animals)


def identity_marks(identity: int) -> tuple[str, ...]:
    """The nodes where animal ``identity`` carries a mark (none for 0; 8 identities are told apart)."""
    return tuple(node for bit, node in enumerate(_MARK_NODES) if identity >> bit & 1)


def animal_capsules(
    points: np.ndarray, body_length: float, rgb: bool, tint: float, marks: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Capsules and colours of one animal from its keypoints (n_nodes, 2), with dark discs at ``marks``.

    Returns capsules (n_parts + n_marks, 6) = x0, y0, x1, y1, r0, r1 and colours (n_parts + n_marks, C).
    """
    palette = _RGB if rgb else _GRAY
    nodes = SYNTH_SKELETON.nodes
    parts = _PARTS + tuple((m, m, _MARK[1], _MARK[1], "mark") for m in marks)
    capsules = np.empty((len(parts), 6), np.float32)
    colors = np.empty((len(parts), 3 if rgb else 1), np.float32)
    for k, (a, b, ra, rb, key) in enumerate(parts):
        pa, pb = points[nodes.index(a)], points[nodes.index(b)]
        capsules[k] = (
            pa[0],
            pa[1],
            pb[0],
            pb[1],
            max(ra * body_length, MIN_RADIUS),
            max(rb * body_length, MIN_RADIUS),
        )
        colors[k] = _MARK[0] if key == "mark" else np.clip(np.array(palette[key]) + tint, 0.0, 255.0)
    return capsules, colors


@numba.njit(cache=True, nogil=True)
def draw_capsules(canvas: np.ndarray, capsules: np.ndarray, colors: np.ndarray) -> None:
    """Paint anti-aliased capsules onto canvas (H, W, C) float32, in order (later on top)."""
    height, width, channels = canvas.shape
    for m in range(capsules.shape[0]):
        x0, y0, x1, y1, r0, r1 = capsules[m]
        xmin, xmax, ymin, ymax = capsule_box(x0, y0, x1, y1, max(r0, r1) + 1.0, height, width)
        for y in range(ymin, ymax):
            for x in range(xmin, xmax):
                coverage = capsule_coverage(x, y, x0, y0, x1, y1, r0, r1)
                if coverage > 0.0:
                    for c in range(channels):
                        canvas[y, x, c] += coverage * (colors[m, c] - canvas[y, x, c])


@numba.njit(cache=True, nogil=True)
def add_noise_to_uint8(canvas: np.ndarray, out: np.ndarray, seed: np.uint64, sigma: float) -> None:
    """out = clip(round(canvas + noise)), noise ~ zero mean with std ``sigma``, from a per-pixel hash."""
    height, width, channels = canvas.shape
    scale = sigma * np.sqrt(6.0)  # (u1 + u2 - 1) has variance 1/6
    state = seed
    for y in range(height):
        for x in range(width):
            for c in range(channels):
                state = state * np.uint64(6364136223846793005) + np.uint64(1442695040888963407)
                bits = state >> np.uint64(33)
                u1 = float(bits & np.uint64(0xFFFF)) / 65536.0
                u2 = float((bits >> np.uint64(16)) & np.uint64(0xFFFF)) / 65536.0
                value = canvas[y, x, c] + (u1 + u2 - 1.0) * scale
                out[y, x, c] = np.uint8(min(max(value + 0.5, 0.0), 255.0))


class FrameRenderer:
    """Renders frames of one synthetic video: a fixed floor, the animals, fresh noise per frame."""

    def __init__(
        self,
        height: int,
        width: int,
        rgb: bool,
        body_length: float,
        n_animals: int,
        seed: int,
        identities: bool = False,
    ):
        rng = np.random.default_rng([seed, 1])
        self.rgb, self.body_length, self.seed = rgb, body_length, seed
        self.background = make_background(height, width, 3 if rgb else 1, rng)
        self.tints = rng.uniform(-15.0, 15.0, size=n_animals)  # each animal a little brighter or darker
        self.marks = [()] * n_animals
        if identities:  # told apart by shade and marks, as marked or differently coloured animals are
            self.tints = identity_tints(n_animals)
            self.marks = [identity_marks(i) for i in range(n_animals)]
        self._canvas = np.empty_like(self.background)

    def render(self, poses: np.ndarray, frame_idx: int) -> np.ndarray:
        """One frame from the keypoints of every animal (n_animals, n_nodes, 2).  # (H, W, C) uint8"""
        np.copyto(self._canvas, self.background)
        for points, tint, marks in zip(poses, self.tints, self.marks):
            capsules, colors = animal_capsules(points, self.body_length, self.rgb, tint, marks)
            draw_capsules(self._canvas, capsules, colors)
        out = np.empty(self._canvas.shape, np.uint8)
        seed = np.uint64((self.seed * 1_000_003 + frame_idx) * 2654435761 % (1 << 63))
        add_noise_to_uint8(self._canvas, out, seed, NOISE_SIGMA)
        return out
