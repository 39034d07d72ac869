"""posestream import: SLEAP 1.x and sleap-nn model folders become model directories the engine runs
unchanged (track, top-down with two imported folders), and identity models are refused with the reason."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sleap_io")
from test_import_checkpoints import ckpt_folder  # noqa: E402
from test_import_keras import legacy_folder  # noqa: E402

from posestream.core.errors import ConfigError, ModelFormatError  # noqa: E402
from posestream.engine.model.predictor import Predictor  # noqa: E402
from posestream.engine.pipeline import Pipeline, PipelineConfig  # noqa: E402
from posestream.engine.sources import open_source  # noqa: E402
from posestream.export.importers.importer import ImportOptions, import_model  # noqa: E402

POSESTREAM = str(Path(sys.executable).with_name("posestream"))
FOLDERS = {
    "sleap:bottomup": lambda: legacy_folder("minimal_instance.UNet.bottomup"),
    "sleap:centroid": lambda: legacy_folder("minimal_instance.UNet.centroid"),
    "sleap:centered_instance": lambda: legacy_folder("minimal_instance.UNet.centered_instance"),
    "sleap:single_instance": lambda: legacy_folder("minimal_robot.UNet.single_instance"),
    "sleap-nn:bottomup": lambda: ckpt_folder("bottomup"),
    "sleap-nn:centroid": lambda: ckpt_folder("centroid"),
    "sleap-nn:centered_instance": lambda: ckpt_folder("centered_instance"),
    "sleap-nn:single_instance": lambda: ckpt_folder("single_instance"),
}


@pytest.mark.parametrize("name", FOLDERS)
def test_imported_model_runs_in_the_engine(name, tmp_path):
    model = import_model(FOLDERS[name](), tmp_path / "model")
    meta = model.metadata
    assert meta.model_type.value == name.split(":")[1] and meta.skeleton.nodes == ("A", "B")
    dirs = [model.path]
    if meta.model_type.value == "centered_instance":  # runs behind a centroid model
        dirs.insert(
            0, import_model(FOLDERS[name.replace("centered_instance", "centroid")](), tmp_path / "c").path
        )
    with Predictor(dirs) as predictor:
        frames = np.zeros((2, *predictor.input_shape), np.uint8)
        found = predictor.postprocess(predictor.infer(frames))
    assert len(found.counts) == 2


def test_imported_sleap_bottomup_gives_sleaps_poses(sleap_file, tmp_path):
    """On the frames SLEAP predicted (centered_pair_low_quality.mp4 0 and 1, refined by the model's learned
    offsets as SLEAP does), our points are SLEAP's: median distance <= 0.1 px, max <= 1 px."""
    sio = pytest.importorskip("sleap_io")
    folder = legacy_folder("minimal_instance.UNet.bottomup")
    model = import_model(folder, tmp_path / "bu")
    with (
        Predictor([model.path]) as predictor,
        open_source(sleap_file("centered_pair_low_quality.mp4")) as video,
    ):
        ours = {
            f.frame_idx: f for f in Pipeline(video, predictor, PipelineConfig(batch_size=1, frames="0-1"))
        }
    from posestream.export.importers.parity import nearest_distances

    assert "offsets" in model.metadata.output_strides
    distances = []
    for split in ("train", "val"):
        for frame in sio.load_slp(str(folder / f"labels_pr.{split}.slp")).labeled_frames:
            theirs = np.concatenate([i.numpy() for i in frame.instances])
            distances += nearest_distances(ours[frame.frame_idx].points.reshape(-1, 2), theirs).tolist()
    assert len(distances) == 8 and np.median(distances) <= 0.1 and max(distances) <= 1.0, distances


def test_identity_models_keep_their_classes_and_other_folders_are_refused(tmp_path):
    bottomup = import_model(
        legacy_folder("min_tracks_2node.UNet.bottomup_multiclass"), tmp_path / "bu"
    ).metadata
    assert bottomup.model_type.value == "bottomup" and bottomup.class_names == ("female", "male")
    assert set(bottomup.output_strides) == {"confmaps", "class_maps"}  # no PAFs: grouped by class
    topdown = import_model(
        legacy_folder("min_tracks_2node.UNet.topdown_multiclass"), tmp_path / "td"
    ).metadata
    assert topdown.model_type.value == "centered_instance" and topdown.crop_size == (128, 128)
    assert topdown.anchor_part == "thorax" and topdown.class_names == ("female", "male")
    peaks = import_model(
        legacy_folder("min_tracks_2node.UNet.topdown_multiclass"),
        tmp_path / "p",
        ImportOptions(output_mode="peaks"),
    ).metadata
    assert peaks.output_mode.value == "peaks" and peaks.class_names == ("female", "male")
    with pytest.raises(ModelFormatError, match="not a SLEAP 1.x model folder"):
        import_model(tmp_path, tmp_path / "b")


def identity_model_dirs(kind: str, tmp_path, mode: str = "maps") -> list:
    """The model directories of one identity fixture, imported: sleap-nn's checkpoints, or SLEAP 1.x's
    folders ("legacy:"; its bottom-up one sized for the fly video, its top-down one after sleap-nn's
    centroid, as neither fixture set has a centroid of that skeleton)."""
    if kind.startswith("legacy:"):
        folder = legacy_folder(f"min_tracks_2node.UNet.{kind.removeprefix('legacy:')}")
        size = (384, 384) if "bottomup" in kind else None
        dirs = [
            import_model(folder, tmp_path / "model", ImportOptions(input_size=size, output_mode=mode)).path
        ]
    else:
        dirs = [import_model(ckpt_folder(kind), tmp_path / "model", ImportOptions(output_mode=mode)).path]
    if "topdown" in kind or "centered" in kind:
        dirs.insert(0, import_model(ckpt_folder("centroid"), tmp_path / "centroid").path)
    return dirs


@pytest.mark.parametrize(
    "kind",
    [
        "multiclass_bottomup",
        "multiclass_centered_instance",
        "legacy:bottomup_multiclass",
        "legacy:topdown_multiclass",
    ],
)
def test_identity_models_name_every_animal_by_its_class(kind, sleap_file, tmp_path):
    """The identity fixtures (sleap-nn's checkpoints, SLEAP 1.x's folders) on the fly video: every instance
    carries one of the model's classes, no class twice in a frame; the outputs name the identities by class,
    and sleap-io reads them. (These briefly trained test models peak low on the flies: a low threshold finds
    their instances.)"""
    sio = pytest.importorskip("sleap_io")
    dirs = identity_model_dirs(kind, tmp_path)
    video = sleap_file("centered_pair_small.mp4")
    with Predictor(dirs, peak_threshold=0.01) as predictor, open_source(video) as source:
        assert predictor.class_names == ("female", "male")
        frames = list(Pipeline(source, predictor, PipelineConfig(batch_size=2, frames="0-5")))
    assert sum(f.n_instances for f in frames) > 0
    for frame in frames:
        ids = frame.track_ids[: frame.n_instances]
        assert set(ids.tolist()) <= {0, 1} and len(set(ids.tolist())) == len(ids), ids
    command = [
        POSESTREAM,
        "track",
        "-i",
        str(video),
        *(a for d in dirs for a in ("-m", str(d))),
        "--frames",
        "0-5",
        "--quiet",
        "--peak-threshold",
        "0.01",
    ]
    done = subprocess.run(
        [*command, "-o", str(tmp_path / "out.slp")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    labels = sio.load_slp(str(tmp_path / "out.slp"))
    assert {t.name for t in labels.tracks} <= {"female", "male"} and labels.tracks
    from posestream.engine.sinks import read_analysis_h5

    done = subprocess.run(
        [*command, "-o", str(tmp_path / "out.h5")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert read_analysis_h5(tmp_path / "out.h5").track_names[:2] == ["female", "male"]
    refused = subprocess.run(
        [*command, "-o", str(tmp_path / "t.h5"), "--tracking"], capture_output=True, text=True, timeout=300
    )
    assert (
        refused.returncode == 2
        and "identity model" in refused.stderr
        and "without --tracking" in refused.stderr
    )


def test_import_command_then_track_top_down(sleap_file, tmp_path):
    for kind in ("centroid", "centered_instance"):
        done = subprocess.run(
            [
                POSESTREAM,
                "import",
                str(legacy_folder(f"minimal_instance.UNet.{kind}")),
                "-o",
                str(tmp_path / kind),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0 and f"{kind} model from" in done.stdout, done.stderr
    track = subprocess.run(
        [
            POSESTREAM,
            "track",
            "-i",
            str(sleap_file("centered_pair_low_quality.mp4")),
            "-m",
            str(tmp_path / "centroid"),
            "-m",
            str(tmp_path / "centered_instance"),
            "-o",
            str(tmp_path / "td.h5"),
            "--frames",
            "0-2",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert track.returncode == 0, track.stderr
    from posestream.engine.sinks import read_analysis_h5

    data = read_analysis_h5(tmp_path / "td.h5")
    assert (data.frame_status[:3] == 1).all() and np.isfinite(data.tracks[:3]).any()


def test_imported_sleap_centered_instance_gives_sleaps_poses(sleap_file, tmp_path):
    """SLEAP's centered-instance predictions (made on ground-truth centroids): the imported model on the
    same crops, cut as SLEAP cuts them, gives SLEAP's points (median <= 0.1 px, max <= 1 px)."""
    sio = pytest.importorskip("sleap_io")
    from posestream.engine.model.inference import ExportedModel
    from posestream.export.importers.parity import bbox_center, nearest_distances, sleap_crops

    folder = legacy_folder("minimal_instance.UNet.centered_instance")
    model = ExportedModel(import_model(folder, tmp_path / "ci").path)
    size = model.metadata.crop_size[0]
    distances = []
    with open_source(sleap_file("centered_pair_low_quality.mp4")) as video:
        for split in ("train", "val"):
            truth = {
                f.frame_idx: f for f in sio.load_slp(str(folder / f"labels_gt.{split}.slp")).labeled_frames
            }
            for frame in sio.load_slp(str(folder / f"labels_pr.{split}.slp")).labeled_frames:
                image = video.read(frame.frame_idx)
                centers = [bbox_center(instance.numpy()) for instance in truth[frame.frame_idx].instances]
                crops, offsets = sleap_crops(image, centers, size)
                ours = np.concatenate(
                    [found.points[0] + offset for found, offset in zip(model.predict(crops), offsets)]
                )
                theirs = np.concatenate([i.numpy() for i in frame.instances])
                distances += nearest_distances(ours, theirs).tolist()
    assert len(distances) == 8 and np.median(distances) <= 0.1 and max(distances) <= 1.0, distances


def test_evaluate_compares_sleaps_predictions_with_ours(sleap_file, tmp_path):
    """`evaluate` scores SLEAP's own predictions and ours on the same labels, side by side (the labels name a
    video that is not here: scoring needs only the points)."""
    import json

    folder = legacy_folder("minimal_instance.UNet.bottomup")
    model = import_model(folder, tmp_path / "bu")
    track = subprocess.run(
        [
            POSESTREAM,
            "track",
            "-i",
            str(sleap_file("centered_pair_low_quality.mp4")),
            "-m",
            str(model.path),
            "-o",
            str(tmp_path / "ours.slp"),
            "--frames",
            "0-1",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert track.returncode == 0, track.stderr
    inputs = [str(folder / "labels_pr.train.slp"), str(tmp_path / "ours.slp")]
    result = subprocess.run(
        [
            POSESTREAM,
            "evaluate",
            *inputs,
            "--labels",
            str(folder / "labels_gt.train.slp"),
            "--json",
            str(tmp_path / "m.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "labels_pr.train.slp" in result.stdout and "ours.slp" in result.stdout
    sleaps, ours = (json.loads((tmp_path / "m.json").read_text())["reports"][p] for p in inputs)
    assert sleaps["n_truth"] == ours["n_truth"] == 2 and ours["matched_instances"] == 2
    assert ours["mAP"] == pytest.approx(sleaps["mAP"], abs=0.02)
    assert ours["error_percentiles"]["p50"] == pytest.approx(sleaps["error_percentiles"]["p50"], abs=0.1)


def test_imported_int8_model_is_close_to_fp32_and_precision_errors_are_clear(sleap_file, tmp_path):
    """int8 calibrated on frames of the video gives the fp32 poses within a pixel or so; TensorRT without
    TensorRT, and a video to calibrate crops, are refused with the fix."""
    from posestream.export.importers.parity import nearest_distances

    video = sleap_file("centered_pair_small.mp4")
    fp32 = import_model(ckpt_folder("bottomup"), tmp_path / "fp32").path
    int8 = import_model(
        ckpt_folder("bottomup"),
        tmp_path / "int8",
        ImportOptions(precision="int8", calibration=str(video), calibration_frames=16),
    )
    assert int8.metadata.precision == "int8"
    poses = {}
    for name, model in (("fp32", fp32), ("int8", int8.path)):
        with Predictor([model]) as predictor, open_source(video) as source:
            poses[name] = [
                f.points.reshape(-1, 2) for f in Pipeline(source, predictor, PipelineConfig(frames="0-3"))
            ]
    distances = np.concatenate(
        [nearest_distances(a, b) for a, b in zip(poses["int8"], poses["fp32"]) if len(a) and len(b)]
    )
    assert len(distances) and np.median(distances) < 1.0, distances
    with pytest.raises(ConfigError, match="crops around animals"):
        import_model(
            ckpt_folder("centered_instance"),
            tmp_path / "ci",
            ImportOptions(precision="int8", calibration=str(video)),
        )
    with pytest.raises(ConfigError, match="ONNX model only"):
        ImportOptions(formats=("torch",), precision="int8")
    if importlib.util.find_spec("tensorrt") is None:
        done = subprocess.run(
            [
                POSESTREAM,
                "import",
                str(ckpt_folder("bottomup")),
                "-o",
                str(tmp_path / "trt"),
                "--format",
                "tensorrt",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert (
            done.returncode == 2
            and "pip install 'posestream[gpu]'" in done.stderr
            and not (tmp_path / "trt").exists()
        )


@pytest.mark.parametrize("kind", ["legacy:bottomup_multiclass", "multiclass_centered_instance"])
def test_identity_models_in_peaks_mode_find_the_animals_maps_mode_finds(kind, sleap_file, tmp_path):
    """Exported in peaks mode (the class maps read at the candidates in the graph, or the class vectors
    passed through), an identity model names the same animals the same way as in maps mode."""
    video = sleap_file("centered_pair_small.mp4")
    found = {}
    for mode in ("maps", "peaks"):
        dirs = identity_model_dirs(kind, tmp_path / mode, mode)
        with Predictor(dirs, peak_threshold=0.01) as predictor, open_source(video) as source:
            found[mode] = list(Pipeline(source, predictor, PipelineConfig(batch_size=2, frames="0-5")))
            meta = (predictor.centered or predictor.first).metadata
    cell = meta.output_strides["confmaps"] / meta.input_scale  # one map cell, in frame pixels
    assert sum(f.n_instances for f in found["maps"]) > 0
    for maps, peaks in zip(found["maps"], found["peaks"]):
        assert maps.track_ids.tolist() == peaks.track_ids.tolist()
        # the same peaks, refined from 3x3 patches here, from the maps (SLEAP's integral refinement) there
        np.testing.assert_allclose(peaks.points, maps.points, atol=cell)
