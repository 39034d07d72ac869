"""Motion of synthetic animals: smooth wandering, approaches, and a body that follows its nose.

Each animal's nose moves with a smoothly varying speed and heading (an
Ornstein-Uhlenbeck turn rate), steering away from the walls and, in
"approach" phases, towards another animal, so animals meet, touch and cross
each other's paths. Bodies are solid: a nose never comes closer than
``CONTACT`` to another animal's body (it stops and turns away instead), so
animals touch side by side or nose to flank but do not pass over each other,
whose hidden keypoints no pose model could see. The rest of the body lies on
the path the nose took (the body follows the nose like a real animal's), the
ears sit either side of the head, and the tail wags (tails may lie across
others).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from posestream.core.errors import ConfigError
from posestream.engine.types import Skeleton

SYNTH_SKELETON = Skeleton.from_names(
    ["nose", "head", "left_ear", "right_ear", "neck", "spine", "tail_base", "tail_mid", "tail_tip"],
    edges=[
        ("nose", "head"),
        ("head", "left_ear"),
        ("head", "right_ear"),
        ("head", "neck"),
        ("neck", "spine"),
        ("spine", "tail_base"),
        ("tail_base", "tail_mid"),
        ("tail_mid", "tail_tip"),
    ],
    symmetries=[("left_ear", "right_ear")],
    name="synthetic_animal",
)

# Distance of each node on the spine from the nose, in body lengths (nose to tail base = 1).
SPINE_NODES = ("nose", "head", "neck", "spine", "tail_base", "tail_mid", "tail_tip")
SPINE_ARC = np.array([0.0, 0.14, 0.32, 0.62, 1.0, 1.4, 1.8])
EAR_BACK, EAR_SIDE = 0.04, 0.13  # ear offset from the head node, body lengths
TAIL_WAG = {"tail_mid": 0.08, "tail_tip": 0.16}  # wag amplitude, body lengths
MARGIN = 0.35  # the nose keeps this many body lengths from the frame's edge
CONTACT = 0.3  # body lengths: closest a nose comes to another animal's midline (nose to tail base)
_TRAIL_STEP = 0.02  # initial trail spacing, body lengths
_TRAIL_MAX = 1024  # points of nose path remembered


@dataclass(frozen=True)
class SynthConfig:
    """A synthetic video: size, length, animals, randomness."""

    frames: int = 300
    width: int = 384
    height: int = 384
    animals: int = 2
    seed: int = 0
    rgb: bool = False
    fps: float = 30.0
    identities: bool = False  # animals told apart by shade and marks (multi-class models learn them)

    def __post_init__(self) -> None:
        if self.frames < 1:
            raise ConfigError(f"frames must be >= 1, got {self.frames}")
        if self.animals < 1:
            raise ConfigError(f"animals must be >= 1, got {self.animals}")
        if self.width < 64 or self.height < 64 or self.width % 2 or self.height % 2:
            raise ConfigError(
                f"size must be even and at least 64x64 (H.264 yuv420p), got {self.width}x{self.height}"
            )
        if self.fps <= 0:
            raise ConfigError(f"fps must be > 0, got {self.fps}")
        if self.identities and self.animals > 8:
            raise ConfigError(f"--identities tells at most 8 animals apart, got {self.animals}")

    @property
    def body_length(self) -> float:
        """Nose to tail base in pixels; smaller when many animals share the arena."""
        return 0.2 * min(self.width, self.height) / np.sqrt(max(self.animals, 2) / 2)


class _Animal:
    """State of one animal: nose position, heading, speed, turn rate and nose path."""

    def __init__(self, rng: np.random.Generator, config: SynthConfig):
        size = config.body_length
        self.heading = rng.uniform(-np.pi, np.pi)
        # tail tip - nose
        tail = -SPINE_ARC[-1] * size * np.array([np.cos(self.heading), np.sin(self.heading)])
        low = MARGIN * size - np.minimum(tail, 0.0)  # nose and tail tip both MARGIN inside the frame
        high = np.maximum(
            np.array([config.width, config.height]) - MARGIN * size - np.maximum(tail, 0.0), low + 1
        )
        self.nose = rng.uniform(low, high)
        self.speed = 0.03 * size
        self.turn = 0.0
        self.wag_phase = rng.uniform(0, 2 * np.pi)
        self.wag_rate = rng.uniform(0.15, 0.3)
        self.target: int | None = None
        self.mode_frames = int(rng.integers(40, 120))
        back = np.array([np.cos(self.heading), np.sin(self.heading)])
        steps = np.arange(int(2.0 / _TRAIL_STEP), -1, -1)[:, None] * _TRAIL_STEP * size
        self.trail = self.nose - steps * back  # (T, 2), oldest first


class PoseSimulator:
    """Yields the keypoints of every animal, frame after frame, deterministically for a seed."""

    def __init__(self, config: SynthConfig):
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.animals: list[_Animal] = []
        for _ in range(config.animals):
            self.animals.append(self._place())

    def _place(self, tries: int = 200) -> _Animal:
        """A new animal clear of the ones placed (in a crowded arena, after ``tries``, wherever it fell)."""
        clearance = (CONTACT + 0.3) * self.config.body_length
        for _ in range(tries):
            animal = _Animal(self.rng, self.config)
            body = _body(animal, self.config.body_length)
            if all(_distance(body, _body(o, self.config.body_length)) > clearance for o in self.animals):
                break
        return animal

    def __iter__(self) -> Iterator[np.ndarray]:
        """Keypoints of each frame.  # (n_animals, n_nodes, 2)"""
        for frame_idx in range(self.config.frames):
            if frame_idx > 0:
                for i, animal in enumerate(self.animals):
                    self._step(i, animal)
            yield np.stack([self._pose(a, frame_idx) for a in self.animals]).astype(np.float32)

    def _step(self, index: int, a: _Animal) -> None:
        cfg, size, rng = self.config, self.config.body_length, self.rng
        a.mode_frames -= 1
        if a.mode_frames <= 0:
            others = [j for j in range(cfg.animals) if j != index]
            a.target = int(rng.choice(others)) if others and a.target is None else None
            a.mode_frames = int(rng.integers(60, 200))
        a.turn = 0.9 * a.turn + rng.normal(0, 0.02)
        if a.target is not None:
            a.turn += 0.06 * _wrap(_bearing(a.nose, self.animals[a.target].trail[-30]) - a.heading)
        ahead = a.nose + 1.5 * size * np.array([np.cos(a.heading), np.sin(a.heading)])
        margin = MARGIN * size
        if not (margin < ahead[0] < cfg.width - margin and margin < ahead[1] < cfg.height - margin):
            a.turn += 0.15 * _wrap(_bearing(a.nose, np.array([cfg.width, cfg.height]) / 2) - a.heading)
        a.turn = float(np.clip(a.turn, -0.12, 0.12))
        a.heading = _wrap(a.heading + a.turn)
        a.speed = float(
            np.clip(
                a.speed + rng.normal(0, 0.002 * size) + 0.05 * (0.03 * size - a.speed),
                0.008 * size,
                0.06 * size,
            )
        )
        step = a.speed * np.array([np.cos(a.heading), np.sin(a.heading)])
        nose = np.clip(a.nose + step, margin, np.array([cfg.width, cfg.height]) - margin)
        blocker = self._blocker(index, a.nose, nose)
        if blocker is not None:  # touching: stay, and turn away from the contact
            a.turn += 0.1 * _wrap(_bearing(blocker, a.nose) - a.heading)
            return
        a.nose = nose
        a.trail = np.vstack([a.trail[-(_TRAIL_MAX - 1) :], a.nose])

    def _blocker(self, index: int, nose: np.ndarray, moved: np.ndarray) -> np.ndarray | None:
        """The nearest point of another animal's body if moving the nose to ``moved`` would bring it
        within CONTACT of that body (and closer than it is); else None."""
        size = self.config.body_length
        for j, other in enumerate(self.animals):
            if j == index:
                continue
            body = _body(other, size)
            gaps = np.linalg.norm(body - moved, axis=1)
            nearest = int(np.argmin(gaps))
            if gaps[nearest] < CONTACT * size and gaps[nearest] < np.linalg.norm(body - nose, axis=1).min():
                return body[nearest]
        return None

    def _pose(self, a: _Animal, frame_idx: int) -> np.ndarray:
        """Keypoints of one animal from its nose path.  # (n_nodes, 2)"""
        size = self.config.body_length
        path = a.trail[::-1]  # newest (the nose) first
        seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
        arc = np.concatenate([[0.0], np.cumsum(seg)]) / size
        spine = np.stack(
            [np.interp(SPINE_ARC, arc, path[:, 0]), np.interp(SPINE_ARC, arc, path[:, 1])], axis=1
        )
        points = np.zeros((SYNTH_SKELETON.n_nodes, 2))
        nodes = SYNTH_SKELETON.nodes
        for name, xy in zip(SPINE_NODES, spine):
            points[nodes.index(name)] = xy
        forward = _unit(spine[0] - spine[2])  # neck -> nose
        side = np.array([-forward[1], forward[0]])  # image coordinates: y points down
        head = spine[1]
        points[nodes.index("left_ear")] = head - EAR_BACK * size * forward - EAR_SIDE * size * side
        points[nodes.index("right_ear")] = head - EAR_BACK * size * forward + EAR_SIDE * size * side
        wag = np.sin(a.wag_phase + a.wag_rate * frame_idx)
        for name, amplitude in TAIL_WAG.items():
            i = nodes.index(name)
            along = _unit(points[nodes.index("tail_base")] - points[nodes.index("spine")])
            points[i] += wag * amplitude * size * np.array([-along[1], along[0]])
        return points


def _body(a: _Animal, size: float) -> np.ndarray:
    """Points of the nose path that the body (nose to tail base) covers now.  # (T, 2)"""
    path = a.trail[::-1]  # newest (the nose) first
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    return path[arc <= SPINE_ARC[SPINE_NODES.index("tail_base")] * size]


def _distance(p: np.ndarray, q: np.ndarray) -> float:
    """Smallest distance between two point sets (P, 2) and (Q, 2)."""
    return float(np.linalg.norm(p[:, None] - q[None], axis=-1).min())


def _wrap(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


def _bearing(origin: np.ndarray, target: np.ndarray) -> float:
    d = target - origin
    return float(np.arctan2(d[1], d[0]))


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 1e-9 else np.array([1.0, 0.0])
