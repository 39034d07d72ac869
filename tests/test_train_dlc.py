"""DeepLabCut labels train as SLEAP's do: CSVs of one and of several animals give sleap-io's skeleton and
points, a project's config.yaml gives its edges, the .h5 is read through its CSV, and a project trains with
one command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sio = pytest.importorskip("sleap_io")
from posestream.core.errors import ConfigError  # noqa: E402
from posestream.train.labels import load_labels  # noqa: E402

DATA_ENV = "POSESTREAM_DLC_DATA"
POSESTREAM = str(Path(sys.executable).with_name("posestream"))


@pytest.fixture(scope="module")
def dlc() -> Path:
    """The DeepLabCut fixtures (SLEAP's tests/data/dlc): $POSESTREAM_DLC_DATA, else ../shared/data/dlc."""
    root = Path(os.environ.get(DATA_ENV, Path(__file__).resolve().parents[2] / "shared/data/dlc"))
    if not (root / "dlc" / "madlc_230_config.yaml").exists():
        pytest.skip(f"DeepLabCut fixtures not found in {root} (set {DATA_ENV} to the folder holding dlc/)")
    return root / "dlc"


def instances_of(labels) -> list[tuple[int, np.ndarray, list]]:
    """(frame, points (n, nodes, 2), track names) of every sleap-io labelled frame with an instance."""
    return [
        (lf.frame_idx, np.stack([i.numpy()[:, :2] for i in lf.instances]), [i.track for i in lf.instances])
        for lf in labels.labeled_frames
        if lf.instances
    ]


@pytest.mark.parametrize("name", ["dlc_testdata.csv", "madlc_testdata.csv", "maudlc_testdata.csv"])
def test_a_dlc_csv_loads_sleap_ios_skeleton_points_and_individuals(dlc, name):
    csv = dlc / "labeled-data" / "video" / name
    want = sio.load_dlc(str(csv))
    got = load_labels(csv)
    assert got.skeleton.nodes == tuple(want.skeletons[0].node_names)
    expected = instances_of(want)
    assert [f.frame_idx for f in got.frames] == [frame for frame, _, _ in expected]
    for frame, (_, points, tracks) in zip(got.frames, expected):
        np.testing.assert_array_equal(frame.points, points.astype(np.float32))
        ids = [want.tracks.index(t) if t is not None else -1 for t in tracks]
        assert frame.track_ids.tolist() == ids
    assert got.image(0).shape == (30, 30, 1)  # the folder's PNGs are the frames
    if name != "dlc_testdata.csv":
        assert max(len(f.points) for f in got.frames) > 1  # several individuals a frame, as identities
        assert (np.concatenate([f.track_ids for f in got.frames]) >= 0).all()


def test_a_dlc_project_config_gives_every_folder_and_the_skeletons_edges(dlc):
    got = load_labels(dlc / "madlc_230_config.yaml")
    want = sio.load_dlc_project(str(dlc / "madlc_230_config.yaml"))
    assert got.skeleton.nodes == tuple(want.skeletons[0].node_names)
    assert got.skeleton.edges and len(got.skeleton.edges) == len(want.skeletons[0].edges)
    assert len(got) == len(instances_of(want))


def test_dlcs_h5_is_read_through_the_csv_beside_it_and_its_absence_is_named(dlc, tmp_path):
    folder = tmp_path / "labeled-data" / "video"
    shutil.copytree(dlc / "labeled-data" / "video", folder)
    h5 = folder / "madlc_testdata.h5"
    with h5py.File(h5, "w") as f:
        f.create_group("df_with_missing")  # the key DeepLabCut's pandas table lives under
    from_csv = load_labels(folder / "madlc_testdata.csv")
    from_h5 = load_labels(h5)
    for a, b in zip(from_h5.frames, from_csv.frames, strict=True):
        np.testing.assert_array_equal(a.points, b.points)
    (folder / "madlc_testdata.csv").unlink()
    with pytest.raises(ConfigError, match="madlc_testdata.csv"):
        load_labels(h5)


def test_a_dlc_project_trains_with_one_command(dlc, tmp_path):
    run = tmp_path / "run"
    done = subprocess.run(
        [POSESTREAM, "train", str(dlc / "madlc_230_config.yaml"), "--profile", "bottomup", "-o", str(run)]
        + ["--max-epochs", "1", "--set", "backbone.filters=8", "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert (run / "best.pt").exists()
    assert "training bottomup on 3 frames" in done.stdout
