"""NWB output (pynwb + ndx-pose) read back with pynwb: the same points as the analysis HDF5 of the same run,
one PoseEstimation per identity, the skeleton, the video's timestamps and the provenance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from posestream.engine.sinks import read_analysis_h5
from posestream.engine.sources import open_source

pynwb = pytest.importorskip("pynwb", reason="NWB output needs posestream[nwb]")
ndx_pose = pytest.importorskip("ndx_pose", reason="NWB output needs posestream[nwb]")
POSESTREAM = str(Path(sys.executable).with_name("posestream"))
SLEAP_NN_ENV = "POSESTREAM_SLEAP_NN_DATA"


def read_nwb(path: Path) -> dict:
    """Every PoseEstimation of the file: name -> (points (F, N, 2), confidence (F, N), timestamps (F,),
    nodes)."""
    out = {}
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        behavior = nwb.processing["behavior"]
        for name, interface in behavior.data_interfaces.items():
            if isinstance(interface, ndx_pose.PoseEstimation):
                nodes = list(interface.skeleton.nodes[:])
                series = [interface.pose_estimation_series[node] for node in nodes]
                out[name] = (
                    np.stack([s.data[:] for s in series], axis=1),
                    np.stack([s.confidence[:] for s in series], axis=1),
                    np.asarray(series[0].timestamps[:]),
                    nodes,
                )
        out["_notes"] = json.loads(nwb.notes)
    return out


def assert_same_as_analysis(nwb_path: Path, h5_path: Path, video: Path) -> dict:
    """The NWB file's points and scores equal the analysis HDF5's, slot by slot (max |difference| 0)."""
    poses, data = read_nwb(nwb_path), read_analysis_h5(h5_path)
    assert sorted(k for k in poses if not k.startswith("_")) == sorted(data.track_names)
    for slot, name in enumerate(data.track_names):
        points, confidence, timestamps, nodes = poses[name]
        assert nodes == list(data.skeleton.nodes)
        np.testing.assert_array_equal(points, data.tracks[:, slot])  # NaN where absent, on both sides
        np.testing.assert_array_equal(confidence, data.point_scores[:, slot])
        with open_source(video) as source:
            np.testing.assert_allclose(timestamps, source.timestamps()[: len(timestamps)])
    assert "models" in poses["_notes"]
    return poses


def test_track_writes_nwb_with_the_points_of_the_analysis_h5(tmp_path):
    from posestream.engine.synth import SynthConfig, write_synthetic_video

    video = write_synthetic_video(
        tmp_path / "pair.mp4",
        SynthConfig(frames=40, width=384, height=384, animals=2, seed=3),
        slp=False,
        progress=False,
    ).video
    result = subprocess.run(
        [
            POSESTREAM,
            "track",
            "-i",
            str(video),
            "-m",
            "demo",
            "-o",
            str(tmp_path / "out.h5"),
            "--format",
            "analysis-h5,nwb",
            "--tracking",
            "--max-tracks",
            "2",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    poses = assert_same_as_analysis(tmp_path / "out.nwb", tmp_path / "out.h5", video)
    assert sorted(k for k in poses if not k.startswith("_")) == ["track_0", "track_1"]  # one per identity
    again = subprocess.run(
        [POSESTREAM, "track", "-i", str(video), "-m", "demo", "-o", str(tmp_path / "out.nwb"), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr  # its own output: replaced without --overwrite


def test_a_fly_run_with_tracking_writes_nwb(tmp_path, sleap_file):
    """Bar 3: the 1,100-frame fly video, a SLEAP model of the flies (imported), tracked: pynwb reads the file,
    the points equal the analysis HDF5's and there is one PoseEstimation per identity."""
    video = sleap_file("centered_pair_small.mp4")
    root = Path(
        os.environ.get(SLEAP_NN_ENV, Path(__file__).resolve().parents[2] / "shared" / "data" / "sleap-nn")
    )
    keras = root / "legacy_models" / "minimal_instance.UNet.bottomup"
    if not (keras / "best_model.h5").exists():
        pytest.skip(f"{keras.name} not found in {keras.parent} (set {SLEAP_NN_ENV})")
    pytest.importorskip("torch")
    model = tmp_path / "model"
    imported = subprocess.run(
        [POSESTREAM, "import", str(keras), "-o", str(model)], capture_output=True, text=True, timeout=600
    )
    assert imported.returncode == 0, imported.stderr
    result = subprocess.run(
        [
            POSESTREAM,
            "track",
            "-i",
            str(video),
            "-m",
            str(model),
            "-o",
            str(tmp_path / "flies.h5"),
            "--format",
            "analysis-h5,nwb",
            "--tracking",
            "--max-tracks",
            "2",
            "--max-instances",
            "2",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    poses = assert_same_as_analysis(tmp_path / "flies.nwb", tmp_path / "flies.h5", video)
    identities = sorted(k for k in poses if k.startswith("track_"))  # untracked_<k>: instances left untracked
    assert identities == ["track_0", "track_1"] and poses["track_0"][0].shape[0] == 1100
