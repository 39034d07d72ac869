"""posestream's live client library: a camera bridge sends frames, a consumer receives poses.

    from posestream.live import CameraPublisher, PoseSubscriber

Needs numpy and pyzmq only (never PyAV, h5py, onnxruntime, numba, scipy or torch), so it runs on a camera
host or in rig code as it is. ``protocol`` is the wire protocol (README "Live cameras"), ``pose3d`` its 3D
messages, ``security`` where sockets may bind and CURVE keys, ``camera`` the camera side, ``subscriber``
the client side, ``processor`` the closed-loop hook's interface. The engine side is
``posestream.engine.live``.
"""

from posestream.live.camera import CameraPublisher, CameraTimeout
from posestream.live.pose3d import Pose3DMessage
from posestream.live.processor import Processor
from posestream.live.protocol import PixelFormat, PoseMessage, ProtocolError
from posestream.live.security import Curve
from posestream.live.subscriber import PoseSubscriber

__all__ = [
    "CameraPublisher",
    "CameraTimeout",
    "Curve",
    "PixelFormat",
    "Pose3DMessage",
    "PoseMessage",
    "PoseSubscriber",
    "Processor",
    "ProtocolError",
]
