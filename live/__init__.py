"""posestream's live client library: a camera bridge sends frames, a consumer receives poses.

    from posestream.live import CameraPublisher, PoseSubscriber

See ``posestream.engine.live`` and the README's "Live cameras" section.
"""

from posestream.engine.live import (
    CameraPublisher,
    Curve,
    PixelFormat,
    PoseMessage,
    PoseSubscriber,
    Processor,
    ProtocolError,
)

__all__ = ["CameraPublisher", "Curve", "PixelFormat", "PoseMessage", "PoseSubscriber", "Processor", "ProtocolError"]
