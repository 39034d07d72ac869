"""A rig: the calibrated cameras of one session, by name, in calibration order."""

from __future__ import annotations

from dataclasses import dataclass, field

from posestream.core.errors import ConfigError
from posestream.multiview.camera import Camera


@dataclass
class Rig:
    """Cameras in calibration order, and the calibration's metadata (anipose's ``[metadata]`` table)."""

    cameras: list[Camera]
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        names = [c.name for c in self.cameras]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(f"the calibration names cameras {repeated} more than once; name each once")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.cameras]

    def select(self, names: list[str], source: str = "the inputs") -> Rig:
        """The cameras named ``names``, in that order; an error lists both sides when a name is missing."""
        missing = [n for n in names if n not in self.names]
        if missing:
            raise ConfigError(
                f"{source} name cameras {missing} that the calibration does not have. "
                f"Calibration: {self.names}; {source}: {list(names)}. Name each input after its camera "
                "(NAME=FILE), as the calibration does"
            )
        return Rig([self.cameras[self.names.index(n)] for n in names], dict(self.metadata))
