"""Synthetic videos of moving animals with known keypoints, for tests, the demo and benchmarks."""

from posestream.engine.synth.motion import SYNTH_SKELETON, PoseSimulator, SynthConfig
from posestream.engine.synth.perturb import PerturbConfig, Perturber
from posestream.engine.synth.writer import (
    SynthOutput,
    detection_paths,
    ground_truth_paths,
    write_synthetic_video,
)

__all__ = [
    "SYNTH_SKELETON",
    "PerturbConfig",
    "Perturber",
    "PoseSimulator",
    "SynthConfig",
    "SynthOutput",
    "detection_paths",
    "ground_truth_paths",
    "write_synthetic_video",
]
