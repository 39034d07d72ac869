"""Real time: ZeroMQ camera feeds in, live poses and identities out, on the one pipeline.

Camera side and client side (the client library, re-exported as ``posestream.live``):
``CameraPublisher``, ``PoseSubscriber``. Engine side: ``LiveSession`` (``posestream live``),
``camera_sim`` (``posestream camera-sim``), ``listen`` (``posestream listen``). The wire protocol is in
``protocol`` and in the README.
"""

from .camera import CameraPublisher
from .hooks import Processor
from .protocol import PixelFormat, PoseMessage, ProtocolError
from .security import Curve
from .subscriber import PoseSubscriber

__all__ = ["CameraPublisher", "Curve", "PixelFormat", "PoseMessage", "PoseSubscriber", "Processor", "ProtocolError"]
