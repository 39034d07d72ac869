"""posestream render: poses drawn on their video, from our analysis HDF5 or a .slp."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from posestream.engine.commands.render import PALETTE, RenderOptions, render
from posestream.engine.sinks import read_analysis_h5
from posestream.engine.synth import SynthConfig, write_synthetic_video

POSESTREAM = str(Path(sys.executable).with_name("posestream"))


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A gray video of two animals with its ground truth (tracked: one identity per animal)."""
    out = write_synthetic_video(
        tmp_path_factory.mktemp("render") / "clip.mp4",
        SynthConfig(frames=20, width=160, height=128, animals=2, seed=4),
        progress=False,
    )
    return out


def test_render_draws_each_identity_in_its_colour_where_its_nodes_are(clip, tmp_path):
    frames = render(
        clip.video, clip.analysis_h5, tmp_path / "overlay.mp4", RenderOptions(trails=5, progress=False)
    )
    drawn, plain = decoded(tmp_path / "overlay.mp4"), decoded(clip.video)
    assert frames == len(drawn) == 20 and drawn[0].shape == (128, 160, 3)
    truth = read_analysis_h5(clip.analysis_h5)
    for i in (0, 10, 19):
        for track in range(2):
            for x, y in truth.tracks[i, track][~np.isnan(truth.tracks[i, track]).any(axis=1)][:3]:
                pixel = drawn[i][int(round(y)), int(round(x))].astype(float)
                assert np.abs(pixel - PALETTE[track]).max() < 40, (i, track, pixel)  # the identity's colour
    changed = np.abs(drawn[5].astype(int) - plain[5].astype(int)).max(axis=2) > 40
    assert 0.002 < changed.mean() < 0.3  # skeletons drawn, the rest of the frame left as it was


def test_render_reads_slp_and_selects_frames_from_the_command_line(clip, tmp_path):
    out = tmp_path / "part.mp4"
    result = subprocess.run(
        [POSESTREAM, "render", str(clip.video), str(clip.slp), "-o", str(out), "--frames", "5-9", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert len(decoded(out)) == 5 and "5 frames drawn" in result.stdout
    bad = subprocess.run(
        [POSESTREAM, "render", str(clip.video), str(clip.slp), "-o", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "must be a video file" in bad.stderr
