"""The closed-loop hook's interface: what ``posestream live --processor module:Class`` calls with every frame.

The engine runs it (``posestream.engine.live.hooks`` says when and what happens when it is slow or raises);
it is declared here so that rig code can name it with the light client alone.
"""

from __future__ import annotations

from typing import Protocol


class Processor(Protocol):
    def process(self, frame, meta) -> None:
        """``frame``: the frame's ``FramePredictions`` (points (I, N, 2), scores, track ids); ``meta``: its
        ``LiveInfo`` (camera, counter, each stage's time)."""
        ...
