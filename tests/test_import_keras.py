"""SLEAP 1.x models (Keras best_model.h5) as torch modules, without TensorFlow: the six fixtures of
../shared/data/sleap-nn/legacy_models reproduce TensorFlow's stored outputs, and unsupported files say why."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import pytest

torch = pytest.importorskip("torch")
from posestream.core.errors import ModelFormatError  # noqa: E402
from posestream.export.importers.keras_graph import load_keras_h5  # noqa: E402

DATA_ENV = "POSESTREAM_SLEAP_NN_DATA"
LEGACY = [
    "minimal_instance.UNet.centroid",
    "minimal_instance.UNet.bottomup",
    "minimal_instance.UNet.centered_instance",
    "minimal_robot.UNet.single_instance",
    "min_tracks_2node.UNet.bottomup_multiclass",
    "min_tracks_2node.UNet.topdown_multiclass",
]


def legacy_folder(name: str) -> Path:
    root = Path(
        os.environ.get(DATA_ENV, Path(__file__).resolve().parents[2] / "shared" / "data" / "sleap-nn")
    )
    folder = root / "legacy_models" / name
    if not (folder / "best_model.h5").exists():
        pytest.skip(f"{name} not found in {folder.parent} (set {DATA_ENV} to the sleap-nn fixtures folder)")
    return folder


@pytest.mark.parametrize("name", LEGACY)
def test_keras_model_reproduces_tensorflows_outputs(name):
    from posestream.export.importers.parity import tensorflow_differences

    differences = tensorflow_differences(legacy_folder(name))
    assert differences and max(differences.values()) <= 1e-4, differences


def edited(folder: Path, tmp_path: Path, edit) -> Path:
    """A copy of the folder's best_model.h5 with ``edit(file)`` applied."""
    path = tmp_path / "best_model.h5"
    shutil.copy(folder / "best_model.h5", path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def set_config(f, change) -> None:
    config = json.loads(f.attrs["model_config"])
    change(config["config"]["layers"])
    f.attrs["model_config"] = json.dumps(config)


def test_unsupported_files_say_what_and_why(tmp_path):
    folder = legacy_folder("minimal_instance.UNet.centroid")

    def batchnorm(layers):
        layers[2]["class_name"] = "BatchNormalization"

    def wrong_filters(layers):
        layers[1]["config"]["filters"] = 17

    def strided(layers):
        layers[1]["config"]["strides"] = [2, 2]

    cases = [
        (lambda f: set_config(f, batchnorm), r"layer types \['BatchNormalization'\] are not supported"),
        (lambda f: set_config(f, wrong_filters), "stack0_enc0_conv0's weights have another output size"),
        (lambda f: set_config(f, strided), "stack0_enc0_conv0 .* is not supported"),
        (
            lambda f: f["model_weights/stack0_enc1_conv0/stack0_enc1_conv0"].__delitem__("kernel:0"),
            r"layer stack0_enc1_conv0 is missing its weights",
        ),
    ]
    for i, (edit, message) in enumerate(cases):
        with pytest.raises(ModelFormatError, match=message):
            load_keras_h5(
                edited(folder, tmp_path / str(i), edit) if (tmp_path / str(i)).mkdir() is None else None
            )
    (tmp_path / "not.h5").write_bytes(b"nope")
    with pytest.raises(ModelFormatError, match="not a Keras model file"):
        load_keras_h5(tmp_path / "not.h5")


def test_damaged_bytes_are_caught_where_inference_would_read_them(tmp_path):
    """4 KB of damage: in the model's weights, refused (a RuntimeError traceback or a silent import, before);
    in HDF5's own structures, refused; in the optimizer state, which inference never reads, imported."""
    folder = legacy_folder("minimal_instance.UNet.centroid")
    with h5py.File(folder / "best_model.h5", "r") as f:
        weights = f["model_weights/stack0_dec0_s8_to_s4_trans_conv/stack0_dec0_s8_to_s4_trans_conv/kernel:0"]
        optimizer = f["optimizer_weights/Adam/stack0_dec0_s8_to_s4_trans_conv/kernel/m:0"]
        offsets = {
            "weights": weights.id.get_offset(),
            "optimizer": optimizer.id.get_offset(),
            "structure": 96,
        }

    def damaged(where: str) -> Path:
        path = tmp_path / where / "best_model.h5"
        path.parent.mkdir()
        shutil.copy(folder / "best_model.h5", path)
        os.chmod(path, 0o644)
        with open(path, "r+b") as f:
            f.seek(offsets[where])
            f.write(b"\xff" * 4096)  # NaN as float32
        return path

    with pytest.raises(ModelFormatError, match="NaN, infinite or beyond .* the file is damaged"):
        load_keras_h5(damaged("weights"))
    with pytest.raises(ModelFormatError, match=str(tmp_path / "structure")):
        load_keras_h5(damaged("structure"))
    assert sum(p.numel() for p in load_keras_h5(damaged("optimizer")).parameters()) > 0
