"""Real time, the engine side: ZeroMQ camera feeds in, live poses and identities out, on the one pipeline.

``LiveSession`` (``posestream live``): ``source`` (the cameras as a frame source), ``trackers`` (one per
camera), ``hooks`` (the closed-loop processor), ``publisher`` and ``recorder`` (sinks), ``stats``; ``sim``
(``posestream camera-sim``) and ``listen`` (``posestream listen``). The client side (camera publisher, pose
subscriber, wire protocol) is ``posestream.live``.
"""

from posestream.engine.live.hooks import Processor

__all__ = ["Processor"]
