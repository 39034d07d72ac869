"""Synthetic videos of moving animals with known keypoints, for tests, the demo and benchmarks."""

from .motion import SYNTH_SKELETON, PoseSimulator, SynthConfig
from .writer import SynthOutput, ground_truth_paths, write_synthetic_video

__all__ = [
    "SYNTH_SKELETON",
    "PoseSimulator",
    "SynthConfig",
    "SynthOutput",
    "ground_truth_paths",
    "write_synthetic_video",
]
