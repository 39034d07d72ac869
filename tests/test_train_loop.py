"""End-to-end training on synthetic frames: a tiny model overfits, checkpoints round-trip, runs resume."""

from __future__ import annotations

import csv

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sleap_io")
from posestream.engine.synth import SynthConfig, write_synthetic_video
from posestream.train.config import load_config
from posestream.train.evaluate import evaluate_runs
from posestream.train.labels import load_labels
from posestream.train.predict import PredictOptions, RunModel, load_run, predict
from posestream.train.trainer import Trainer

TINY = [
    "backbone.filters=8",
    "backbone.max_stride=16",
    "backbone.filters_rate=1.5",
    "head.output_stride=2",
    "head.sigma=2.5",
    "data.input_scale=1.0",
    "data.val_fraction=0",
    "augment.rotation=0",
    "augment.scale_min=1",
    "augment.scale_max=1",
    "augment.translate=0",
    "augment.brightness=0",
    "augment.contrast=0",
    "augment.noise=0",
    "optim.learning_rate=0.005",
    "optim.early_stopping_patience=1000",
    "optim.plateau_patience=1000",
]


@pytest.fixture(scope="module")
def one_animal(tmp_path_factory):
    folder = tmp_path_factory.mktemp("overfit")
    config = SynthConfig(frames=4, width=96, height=96, animals=1, seed=2)
    return write_synthetic_video(folder / "one.mp4", config, progress=False)


@pytest.fixture(scope="module")
def overfit_run(one_animal, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "single"
    torch.set_num_threads(2)
    config = load_config(
        "single_instance", overrides=TINY, labels=str(one_animal.slp), **{"optim.max_epochs": 400}
    )
    trainer = Trainer(config, run_dir, progress=False)
    result = trainer.run()
    return run_dir, result, trainer


def test_loss_falls_and_peaks_land_within_2px(overfit_run, one_animal):
    run_dir, result, _ = overfit_run
    with (run_dir / "training_log.csv").open() as f:
        losses = [float(r["train_loss"]) for r in csv.DictReader(f)]
    assert result.epochs == 400 and len(losses) == 400
    assert losses[-1] < losses[0] / 5
    labels = load_labels(one_animal.slp)
    predictions = predict(
        [RunModel(run_dir)], labels, list(range(len(labels))), PredictOptions(peak_threshold=0.1)
    )
    for frame in labels.frames:
        found = predictions[frame.frame_idx].points[0]
        error = np.linalg.norm(found - frame.points[0], axis=-1)
        assert np.nanmax(error) < 2.0, f"frame {frame.frame_idx}: errors {np.round(error, 2)}"
    report = evaluate_runs([str(run_dir)], frames="0-3", progress=False)
    assert report.mAP > 0.7


def test_run_directory_contents_and_checkpoint_round_trip(overfit_run):
    run_dir, _, trainer = overfit_run
    for name in ("config.yaml", "run.json", "best.pt", "last.pt", "training_log.csv", "loss_curve.png"):
        assert (run_dir / name).exists(), name
    model, run, config = load_run(run_dir, checkpoint="last.pt")
    assert run["model_type"] == "single_instance" and config.backbone.filters == 8
    x = torch.rand(2, 1, 96, 96)
    trainer.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], trainer.model(x)[0])
    state = torch.load(run_dir / "best.pt", weights_only=True)
    assert set(state) == {"model", "epoch"}


def test_resume_continues_from_the_last_epoch(one_animal, tmp_path):
    config = load_config("bottomup", overrides=TINY, labels=str(one_animal.slp), **{"optim.max_epochs": 2})
    first = Trainer(config, tmp_path / "bu", progress=False).run()
    assert first.epochs == 2
    config.optim.max_epochs = 4
    again = Trainer(config, tmp_path / "bu", progress=False)
    again.resume(learning_rate=1e-4)  # fine-tuning at a new rate
    assert again.epoch == 2
    assert again.run().epochs == 4
    with (tmp_path / "bu" / "training_log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert (
        float(rows[1]["learning_rate"]) == config.optim.learning_rate
        and float(rows[3]["learning_rate"]) == 1e-4
    )


def test_a_new_run_starts_from_another_runs_weights(overfit_run, one_animal, tmp_path):
    run_dir, _, _ = overfit_run
    config = load_config(
        config_file=run_dir / "config.yaml", labels=str(one_animal.slp), **{"optim.max_epochs": 1}
    )
    tuned = Trainer(config, tmp_path / "tuned", progress=False)
    tuned.init_weights(run_dir)
    source = torch.load(run_dir / "best.pt", weights_only=True)["model"]
    for name, tensor in tuned.model.state_dict().items():
        torch.testing.assert_close(tensor, source[name], msg=name)
    assert tuned.epoch == 0 and tuned.run().epochs == 1  # a new run: its own epochs and checkpoints
    assert (tmp_path / "tuned" / "best.pt").exists()


def test_weights_of_another_network_shape_are_a_clear_error(overfit_run, one_animal, tmp_path):
    from posestream.engine import ConfigError

    run_dir, _, _ = overfit_run
    config = load_config(
        config_file=run_dir / "config.yaml", overrides=["backbone.filters=4"], labels=str(one_animal.slp)
    )
    with pytest.raises(ConfigError, match=r"layer .* there but .* here; train with the network settings of"):
        Trainer(config, tmp_path / "other", progress=False).init_weights(run_dir)
    with pytest.raises(FileNotFoundError, match="no weights to start from"):
        Trainer(config, tmp_path / "other", progress=False).init_weights(tmp_path)
    with pytest.raises(ConfigError, match=r"last.pt: layer .* here; resume with the network settings"):
        Trainer(config, run_dir, progress=False).resume()  # the run's own checkpoint, another network


def test_time_budget_stops_cleanly(one_animal, tmp_path):
    config = load_config("centroid", overrides=[*TINY, "optim.max_minutes=0.002"], labels=str(one_animal.slp))
    result = Trainer(config, tmp_path / "c", progress=False).run()
    assert result.stopped_because == "max_minutes" and result.epochs < config.optim.max_epochs
    assert (tmp_path / "c" / "last.pt").exists() or result.epochs == 0


def test_corrupt_checkpoint_is_a_clear_error(overfit_run, tmp_path):
    import shutil

    from posestream.engine import ConfigError

    run_dir, _, _ = overfit_run
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / "best.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="best.pt: cannot load the weights"):
        load_run(broken)
    (broken / "run.json").unlink()
    with pytest.raises(FileNotFoundError, match="no run.json"):
        load_run(broken)
