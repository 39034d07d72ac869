"""A rig: the calibrated cameras of one session, by name, in calibration order."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from posestream.core.errors import ConfigError
from posestream.multiview.camera import Camera


@dataclass
class Rig:
    """Cameras in calibration order, and the calibration's metadata (anipose's ``[metadata]`` table)."""

    cameras: list[Camera]
    metadata: dict = field(default_factory=dict)
    _selected: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        names = [c.name for c in self.cameras]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(f"the calibration names cameras {repeated} more than once; name each once")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    @cached_property
    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The cameras as the kernels take them: extrinsics (C, 3, 4), matrices (C, 3, 3), distortions
        (C, 5). Made once per rig (the rotations' conversion costs more than a live group's solve)."""
        return tuple(
            np.stack([getattr(c, name) for c in self.cameras])
            for name in ("extrinsics", "matrix", "distortions")
        )

    def select(self, names: list[str], source: str = "the inputs") -> Rig:
        """The cameras named ``names``, in that order; an error lists both sides when a name is missing."""
        missing = [n for n in names if n not in self.names]
        if missing:
            raise ConfigError(
                f"{source} name cameras {missing} that the calibration does not have. "
                f"Calibration: {self.names}; {source}: {list(names)}. Name each input after its camera "
                "(NAME=FILE), as the calibration does"
            )
        key = tuple(names)
        if key not in self._selected:  # kept: a live run selects the same cameras group after group
            self._selected[key] = Rig([self.cameras[self.names.index(n)] for n in names], dict(self.metadata))
        return self._selected[key]
