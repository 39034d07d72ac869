"""Online identity tracking: one ``Tracker`` that assigns track ids frame by frame, with bounded state.

The pipeline runs it as a stage between the ordered results and the sinks (``Pipeline(..., tracker=...)``);
``posestream retrack`` runs it over a predictions file; the live mode runs it per camera.
"""

from posestream.engine.tracking.config import MATCHERS, SIMILARITIES, TrackerConfig
from posestream.engine.tracking.tracker import Tracker

__all__ = ["MATCHERS", "SIMILARITIES", "Tracker", "TrackerConfig"]
