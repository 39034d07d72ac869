"""Shared fixtures: real SLEAP data (skipped with a reason when absent) and synthetic videos."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from posestream.engine.synth import SynthConfig, write_synthetic_video

REPO = Path(__file__).resolve().parents[1]
SLEAP_DATA_ENV = "POSESTREAM_SLEAP_DATA"


def sleap_data_dir() -> Path:
    """Folder with the public SLEAP files: $POSESTREAM_SLEAP_DATA, else ../shared/data/sleap."""
    return Path(os.environ.get(SLEAP_DATA_ENV, REPO.parent / "shared" / "data" / "sleap"))


@pytest.fixture(scope="session")
def sleap_file():
    """Return a path in the SLEAP data folder, skipping the test when the file is absent."""

    def get(name: str) -> Path:
        path = sleap_data_dir() / name
        if not path.exists():
            pytest.skip(f"{name} not found in {path.parent} (set {SLEAP_DATA_ENV} to the folder holding it)")
        return path

    return get


@pytest.fixture(scope="session")
def synth_gray(tmp_path_factory):
    """A short gray synthetic video with two animals, with .slp and analysis ground truth."""
    config = SynthConfig(frames=90, width=192, height=160, animals=2, seed=7)
    return write_synthetic_video(
        tmp_path_factory.mktemp("synth") / "gray.mp4", config, progress=False
    ), config


@pytest.fixture(scope="session")
def synth_rgb(tmp_path_factory):
    """A short RGB synthetic video with one animal (no .slp)."""
    config = SynthConfig(frames=40, width=128, height=96, animals=1, seed=3, rgb=True)
    return write_synthetic_video(
        tmp_path_factory.mktemp("synth") / "rgb.mp4", config, slp=False, progress=False
    ), config


TINY_RUN = [
    "backbone.filters=8",
    "backbone.max_stride=16",
    "backbone.filters_rate=1.5",
    "data.val_fraction=0",
    "optim.max_epochs=40",
    "optim.learning_rate=0.005",
    "augment.rotation=0",
]
PROFILES = ["single_instance", "centroid", "centered_instance", "bottomup"]


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """One briefly trained tiny run per model type on 8 gray 96x96 frames of two animals: peaks where
    the animals are, and spurious ones (a good test of ranking and grouping). Keyed by profile."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("sleap_io")
    from posestream.train.config import load_config
    from posestream.train.trainer import Trainer

    folder = tmp_path_factory.mktemp("tiny_runs")
    video = write_synthetic_video(
        folder / "two.mp4", SynthConfig(frames=8, width=96, height=96, animals=2, seed=5), progress=False
    )
    torch.set_num_threads(2)
    runs = {}
    for profile in PROFILES:
        anchor = ["head.anchor_part=neck"] if profile in ("centroid", "centered_instance") else []
        scale = [f"data.input_scale={0.5 if profile in ('single_instance', 'centroid') else 1.0}"]
        config = load_config(profile, overrides=TINY_RUN + anchor + scale, labels=str(video.slp))
        Trainer(config, folder / profile, progress=False).run()
        runs[profile] = folder / profile
    runs["video"] = video
    return runs
