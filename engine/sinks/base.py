"""What every output sink offers the pipeline: ``Pipeline.run`` hands each batch's frames to ``write_block``,
in frame order, and the run's owner calls ``close`` once (``close_sinks``), also after an error."""

from __future__ import annotations

from typing import Protocol

from posestream.engine.types import FrameBlock


class Sink(Protocol):
    def write_block(self, block: FrameBlock) -> None:
        """Take the frames of ``block`` (streamed to disk, or kept until ``close``)."""
        ...

    def close(self) -> None:
        """Finish the output; after an error too, so that what was written stays readable."""
        ...
