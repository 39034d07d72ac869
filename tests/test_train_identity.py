"""Identity (multi-class) models: class targets from the labels' tracks, the class loss, training, export
with named classes, and identity accuracy in evaluate."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sio = pytest.importorskip("sleap_io")
from posestream.engine import ConfigError  # noqa: E402
from posestream.engine.synth import SynthConfig, write_synthetic_video  # noqa: E402
from posestream.train.config import load_config  # noqa: E402
from posestream.train.data import InputGeometry, PoseDataset  # noqa: E402
from posestream.train.labels import load_labels  # noqa: E402
from posestream.train.loss import CLASS_VECTOR_WEIGHT, class_vector_loss, training_loss  # noqa: E402
from posestream.train.targets import class_maps  # noqa: E402
from posestream.train.trainer import Trainer, identity_classes  # noqa: E402

TINY = [
    "backbone.filters=8",
    "backbone.max_stride=16",
    "backbone.filters_rate=1.5",
    "data.val_fraction=0",
    "augment.rotation=0",
    "head.anchor_part=neck",
]


@pytest.fixture(scope="module")
def marked(tmp_path_factory):
    """Two animals told apart by shade and marks, 8 frames of 128x128, with their tracks."""
    config = SynthConfig(frames=8, width=128, height=128, animals=2, seed=4, identities=True)
    return write_synthetic_video(tmp_path_factory.mktemp("marked") / "marked.mp4", config, progress=False)


def test_each_crop_is_taught_the_class_of_its_own_animal(marked):
    config = load_config(
        "multi_class_topdown", overrides=TINY + ["head.crop_size=96"], labels=str(marked.slp)
    )
    labels = load_labels(marked.slp)
    labels.frames[0].track_ids[1] = -1  # an animal without a track: its pose trains, its class does not
    config.data.input_scale = 1.0
    dataset = PoseDataset(labels, config, InputGeometry.for_config(config, labels), augment=True, seed=0)
    seen = []
    for index, (frame_i, instance) in enumerate(dataset.examples):
        _, _, target = dataset.example(0, index)
        assert target.dim() == 0 and int(target) == labels.frames[frame_i].track_ids[instance]
        seen.append(int(target))
    assert sorted(set(seen)) == [-1, 0, 1] and seen.count(-1) == 1


def test_class_maps_put_each_tracks_nodes_on_its_own_map():
    points = np.array(
        [[[4.0, 4.0], [8.0, 4.0]], [[20.0, 20.0], [np.nan, np.nan]], [[4.0, 20.0], [8.0, 20.0]]]
    )
    maps = class_maps(points, np.array([1, 0, -1]), 2, (12, 12), stride=2, sigma=1.0)  # (2, 12, 12)
    assert maps.shape == (2, 12, 12)
    assert maps[1, 2, 2] == pytest.approx(1.0) and maps[1, 2, 4] == pytest.approx(1.0)  # track 1's two nodes
    assert maps[0, 10, 10] == pytest.approx(1.0) and maps[0, 2, 2] < 1e-6  # track 0's one node, not track 1's
    assert maps[:, 10, 2].max() < 1e-6  # the untracked animal is on no map


def test_the_classes_are_the_labels_tracks_and_untracked_animals_are_counted(marked):
    config = load_config("multi_class_topdown", overrides=TINY, labels=str(marked.slp))
    labels = load_labels(marked.slp)
    for frame in labels.frames[:3]:
        frame.track_ids[0] = -1
    names, note = identity_classes(labels, config)
    assert names == ["track_0", "track_1"]
    assert "track_0 (5), track_1 (8)" in note and "3 labelled animals have no track" in note
    for frame in labels.frames:
        frame.track_ids[:] = -1
    with pytest.raises(ConfigError, match="carry tracks"):
        identity_classes(labels, config)
    assert identity_classes(labels, load_config("centered_instance", labels=str(marked.slp))) == ([], "")


def test_classes_need_a_model_type_that_has_them():
    with pytest.raises(ConfigError, match="head.classes.*centered_instance or bottomup"):
        load_config("centroid", overrides=["head.classes=true"])
    with pytest.raises(ConfigError, match="optim.class_weight"):
        load_config("multi_class_topdown", overrides=["optim.class_weight=0"])


def test_the_class_loss_leaves_out_animals_without_a_track():
    logits = torch.tensor([[2.0, -1.0], [0.0, 3.0], [5.0, -5.0]])
    known = class_vector_loss(logits, torch.tensor([0, 1, -1]))
    torch.testing.assert_close(known, torch.nn.functional.cross_entropy(logits[:2], torch.tensor([0, 1])))
    assert float(class_vector_loss(logits, torch.tensor([-1, -1, -1]))) == 0.0
    config = load_config("multi_class_topdown", overrides=["optim.foreground_weight=0"])
    maps = torch.zeros(3, 2, 4, 4)
    total = training_loss((maps, logits), (maps, torch.tensor([0, 1, -1])), config)
    torch.testing.assert_close(total, CLASS_VECTOR_WEIGHT * known)  # unset class_weight, class vectors


def test_validation_scores_an_identity_model_by_name_and_the_summary_says_so():
    from posestream.engine.types import FramePredictions, Skeleton
    from posestream.train.evaluate import score
    from posestream.train.labels import LabeledImage, LabelSet
    from posestream.train.report import BestMap, TrainResult

    points = np.array([[[10, 10], [30, 10]], [[100, 80], [120, 80]]], np.float32)  # (2 animals, 2 nodes, xy)
    truth = LabelSet(
        Skeleton(("head", "tail"), ((0, 1),)),
        [LabeledImage(0, i, points, np.array([0, 1], np.int32)) for i in range(3)],
        "marked.slp",
        ["marked.mp4"],
        track_names=["left", "right"],
    )
    found = {
        i: FramePredictions(
            i, points, np.ones((2, 2), np.float32), np.ones(2, np.float32), np.array([1, 0], np.int32)
        )
        for i in range(3)
    }
    assert score(truth, found, ("right", "left")).identity.accuracy == 1.0  # named by class, not by id
    assert score(truth, found, ("left", "right")).identity.accuracy == 0.0
    assert score(truth, found, ()).identity is None  # not an identity model
    result = TrainResult(Path("run"), 3, 0.01, "max_epochs", best_map=BestMap(0.5, 3, 1.0, 0.97))
    assert "best validation OKS mAP 0.500, identity accuracy 0.970 at epoch 3" in result.summary()


def test_a_trained_identity_model_exports_its_classes_and_tracks_name_them(marked, tmp_path):
    """A tiny top-down identity pair, trained briefly, exported to ONNX: the metadata names the classes, the
    engine's class vectors equal the run's (softmax, one per crop), and `track` names every animal of a
    frame by a different class."""
    pytest.importorskip("onnxruntime")
    from posestream.engine.commands.track import TrackOptions, track
    from posestream.engine.model.inference import ExportedModel
    from posestream.export.exporter import export_run
    from posestream.train.predict import RunModel

    torch.set_num_threads(2)
    runs = {}
    for profile in ("centroid", "multi_class_topdown"):
        scale = ["data.input_scale=0.5"] if profile == "centroid" else []
        config = load_config(
            profile,
            overrides=TINY + scale + ["optim.max_epochs=20", "optim.learning_rate=0.005"],
            labels=str(marked.slp),
        )
        trainer = Trainer(config, tmp_path / profile, progress=False)
        assert ("identities: 2 classes" in trainer.describe()) == (profile != "centroid")
        trainer.run()
        runs[profile] = export_run(tmp_path / profile, tmp_path / f"{profile}_model").path
    with (tmp_path / "multi_class_topdown" / "training_log.csv").open() as f:
        assert "val_identity" in csv.DictReader(f).fieldnames  # empty here: no validation frames
    model = ExportedModel(runs["multi_class_topdown"])
    assert model.metadata.class_names == ("track_0", "track_1")
    crops = np.random.default_rng(0).integers(0, 255, (3, *model.metadata.input_shape), dtype=np.uint8)
    exported = model.backend.run(crops)["class_vectors"]  # (3, 2)
    _, own = RunModel(tmp_path / "multi_class_topdown").outputs(crops)
    np.testing.assert_allclose(exported, own["class_vectors"], atol=1e-5)
    np.testing.assert_allclose(exported.sum(axis=1), 1.0, atol=1e-5)
    out = tmp_path / "tracked.slp"
    models = [runs["centroid"], runs["multi_class_topdown"]]
    track(marked.video, models, out, TrackOptions(formats=("slp",), progress=False))
    labels = sio.load_slp(str(out))
    assert sorted(t.name for t in labels.tracks) == ["track_0", "track_1"]
    for frame in labels.labeled_frames:
        names = [inst.track.name for inst in frame.instances]
        assert len(set(names)) == len(names)  # no identity twice in a frame
    from posestream.train.evaluate import evaluate_runs

    report = evaluate_runs([str(tmp_path / p) for p in runs], str(marked.slp), "0-7", progress=False)
    assert (
        report.identity is not None and report.identity.matched <= report.n_truth
    )  # scored by name, in torch


def test_identity_accuracy_compares_names_with_the_labels_tracks(marked, tmp_path):
    pytest.importorskip("trackeval")
    from posestream.train.evaluate import evaluate_file

    same = evaluate_file(str(marked.slp), str(marked.analysis_h5))
    assert same.identity.accuracy == 1.0 and same.identity.matched == 16
    labels = sio.load_slp(str(marked.slp))
    labels.tracks[0].name, labels.tracks[1].name = "track_1", "track_0"
    swapped = tmp_path / "swapped.slp"
    labels.save(str(swapped))
    named_wrong = evaluate_file(str(swapped), str(marked.analysis_h5))
    assert named_wrong.identity.accuracy == 0.0 and named_wrong.identity.matched == 16
    assert named_wrong.tracking.idf1 == pytest.approx(1.0)  # IDF1 matches ids, not names


def test_a_bottom_up_identity_model_predicts_a_map_per_class(marked, tmp_path):
    """Class maps in place of part affinity fields: the run and its export describe them, and `track` runs
    the model with its classes named (an untrained one may find nobody; then no name is used twice)."""
    pytest.importorskip("onnxruntime")
    from posestream.engine.commands.track import TrackOptions, track
    from posestream.engine.model.postprocess import output_names
    from posestream.export.exporter import ExportOptions, export_run

    overrides = TINY[:-1] + ["data.input_scale=0.5", "optim.max_epochs=2"]
    config = load_config("multi_class_bottomup", overrides=overrides, labels=str(marked.slp))
    Trainer(config, tmp_path / "run", progress=False).run()
    model = export_run(tmp_path / "run", tmp_path / "model")
    meta = model.metadata
    assert meta.class_names == ("track_0", "track_1")
    assert set(meta.output_strides) == {"confmaps", "class_maps"} and meta.output_strides["class_maps"] == 4
    peaks = export_run(tmp_path / "run", tmp_path / "peaks", ExportOptions(output_mode="peaks"))
    assert output_names(peaks.metadata)[-1] == "peak_classes"
    tracked = {}
    for name, exported in (("maps", model), ("peaks", peaks)):
        out = tmp_path / f"{name}.slp"
        options = TrackOptions(formats=("slp",), progress=False, peak_threshold=0.0)
        track(marked.video, [exported.path], out, options)
        tracked[name] = sio.load_slp(str(out))
    labels = tracked["maps"]
    assert {t.name for t in labels.tracks} <= {"track_0", "track_1"}
    assert sum(len(frame.instances) for frame in labels.labeled_frames) > 0
    for frame, in_peaks in zip(labels.labeled_frames, tracked["peaks"].labeled_frames):
        names = [inst.track.name for inst in frame.instances]
        assert len(set(names)) == len(names)
        assert names == [inst.track.name for inst in in_peaks.instances]  # the class maps read in the graph


def test_the_class_head_runs_in_the_networks_own_precision():
    """An fp16 export halves the whole network: the class head must not cast its input back to fp32."""
    from posestream.train.models import ClassVectorHead

    head = ClassVectorHead(16, 3).half()
    logits = head(torch.rand(2, 16, 5, 4).half())  # (N, C, h, w) deepest features -> (N, n_classes)
    assert logits.shape == (2, 3) and logits.dtype == torch.float16
