"""The faster trainer keeps its promises: reproducible with worker processes, workers that end with the run
(at its end, on Ctrl-C, on a bad example), a cosine schedule that lands on its floor at the deadline, and
fp32 with a note where the CPU has no bf16."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from waiting import wait_until

torch = pytest.importorskip("torch")
pytest.importorskip("sleap_io")
from posestream.core.errors import ConfigError, TrainingExampleError
from posestream.engine.synth import SynthConfig, write_synthetic_video
from posestream.train.config import load_config
from posestream.train.loader import BatchStream
from posestream.train.report import PHASES
from posestream.train.schedule import CosineToDeadline, make_schedule
from posestream.train.trainer import Trainer

POSESTREAM = str(Path(sys.executable).with_name("posestream"))
TINY = [
    "backbone.filters=8",
    "backbone.filters_rate=1.5",
    "data.val_fraction=0.25",
    "data.batch_size=2",
    "augment.rotation=30",
    "augment.noise=2",
]


@pytest.fixture(scope="module")
def labels(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("throughput")
    config = SynthConfig(frames=12, width=96, height=96, animals=1, seed=4)
    return write_synthetic_video(folder / "one.mp4", config, progress=False).slp


def train(labels: Path, out: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [POSESTREAM, "train", str(labels), "-o", str(out), "--profile", "single_instance", "--quiet"]
    command += [a for s in TINY for a in ("--set", s)] + list(args)
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)


def step_losses(run_dir: Path) -> list[float]:
    """One training loss per epoch (each epoch is one step here)."""
    with (run_dir / "training_log.csv").open() as f:
        return [float(row["train_loss"]) for row in csv.DictReader(f)]


def children(pid: int) -> set[int]:
    """Live child processes of ``pid`` (zombies excluded)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def test_same_seed_and_workers_give_the_same_first_20_losses_whatever_the_worker_count(labels, tmp_path):
    steps = ["--set", "optim.steps_per_epoch=1", "--max-epochs", "20", "--seed", "3"]
    runs = {}
    for name, workers in (("a", 1), ("b", 1), ("c", 0)):
        done = train(labels, tmp_path / name, *steps, "--set", f"data.workers={workers}")
        assert done.returncode == 0, done.stderr
        runs[name] = step_losses(tmp_path / name)
    assert len(runs["a"]) == 20
    np.testing.assert_allclose(runs["a"], runs["b"], rtol=1e-2)
    np.testing.assert_allclose(runs["a"], runs["c"], rtol=1e-2)  # the same examples, made elsewhere
    other = train(labels, tmp_path / "d", *steps[:-1], "4")
    assert step_losses(tmp_path / "d") != runs["a"], other.stderr  # the seed draws the examples


def _as_a_background_job() -> None:
    """Start with SIGINT ignored, as a non-interactive shell starts a job with ``&`` (CI does)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_ctrl_c_ends_the_run_and_its_worker_processes(labels, tmp_path):
    run = tmp_path / "run"
    command = [POSESTREAM, "train", str(labels), "-o", str(run), "--profile", "single_instance", "--quiet"]
    command += [a for s in TINY for a in ("--set", s)] + ["--set", "data.workers=2", "--max-epochs", "100000"]
    command += ["--set", "optim.early_stopping_patience=100000"]  # only the signal ends this run
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_as_a_background_job
    )
    try:
        wait_until(lambda: (run / "training_log.csv").exists(), 300, "the first epoch", every=0.05)
        workers = children(process.pid)
        assert len(workers) >= 2, workers  # the two example makers
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, f"stdout: {stdout}\nstderr: {stderr}"  # stdout: why it stopped
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert f"--resume {run}" in stderr  # the notice says how to go on
    assert torch.load(run / "last.pt", weights_only=False)["trained_seconds"] > 0
    wait_until(
        lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers),
        60,
        "the workers to end",
        every=0.05,
    )


def test_an_example_that_fails_in_a_worker_stops_the_run_once_naming_its_frame(labels, tmp_path):
    config = load_config(
        "single_instance", overrides=[*TINY, "data.workers=1"], labels=str(labels), **{"optim.max_epochs": 3}
    )
    trainer = Trainer(config, tmp_path / "run", progress=False)
    frame = trainer.train_labels.frames[5]
    trainer.train_labels._images[(frame.video, frame.frame_idx)] = np.zeros((4, 4), np.uint8)  # corrupt
    before = children(os.getpid())
    with pytest.raises(TrainingExampleError) as error:
        trainer.run()
    message = str(error.value)
    assert f"frame {frame.frame_idx}" in message and str(labels) in message
    assert message.count(str(labels)) == 1 and "Traceback" not in message
    wait_until(lambda: children(os.getpid()) <= before, 60, "the worker to end", every=0.05)


def test_cosine_schedule_warms_up_then_lands_on_its_floor():
    config = load_config(
        "single_instance", overrides=["optim.min_learning_rate=1e-5", "optim.warmup_fraction=0.1"]
    )
    schedule = CosineToDeadline(torch.optim.SGD([torch.zeros(1)], lr=1.0), config.optim, total_steps=100)
    assert schedule.rate(0.0) == pytest.approx(1e-5)
    assert schedule.rate(0.1) == pytest.approx(1e-3)
    assert schedule.rate(0.55) == pytest.approx((1e-3 + 1e-5) / 2)
    assert schedule.rate(1.0) == pytest.approx(1e-5)
    rates = [schedule.rate(p / 100) for p in range(10, 101)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))  # falls all the way after the warm-up


def test_a_run_continued_to_a_longer_budget_climbs_back_to_the_curve():
    """Continued to twice its budget, a run that had annealed to the floor warms up again from there (not a
    jump to half the peak); resumed within its budget, it goes on along the curve."""
    config = load_config(
        "single_instance", overrides=["optim.min_learning_rate=1e-5", "optim.warmup_fraction=0.1"]
    )
    floor, peak = 1e-5, config.optim.learning_rate
    extended = CosineToDeadline(torch.optim.SGD([torch.zeros(1)], lr=floor), config.optim, total_steps=100)
    extended.optimizer.param_groups[0]["lr"] = floor  # as saved at the end of the first budget
    extended.start(spent_steps=50)
    assert extended.optimizer.param_groups[0]["lr"] == pytest.approx(floor)
    assert extended.rate(0.55) == pytest.approx((floor + extended.curve(0.55)) / 2)
    assert extended.rate(0.6) == pytest.approx(extended.curve(0.6)) and extended.rate(1.0) == pytest.approx(
        floor
    )
    assert extended.curve(0.5) > 0.4 * peak  # the jump the climb replaces
    within = CosineToDeadline(torch.optim.SGD([torch.zeros(1)], lr=floor), config.optim, total_steps=100)
    within.optimizer.param_groups[0]["lr"] = within.curve(0.5)  # killed half-way, resumed
    within.start(spent_steps=50)
    assert within.rate(0.55) == pytest.approx(within.curve(0.55))


def test_a_deadline_run_that_reaches_its_last_epoch_first_ends_at_the_floor_too():
    """With --max-minutes and --max-epochs, the budget is whichever runs out first: a run whose epochs end
    before its minutes still lands on the floor, not mid-descent."""
    config = load_config(
        "single_instance", overrides=["optim.min_learning_rate=1e-5"], **{"optim.max_minutes": 60}
    )
    schedule = CosineToDeadline(torch.optim.SGD([torch.zeros(1)], lr=1.0), config.optim, total_steps=20)
    schedule.start()
    for _ in range(20):  # far inside the hour
        schedule.after_step()
    assert schedule.progress() == 1.0 and schedule.optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)
    assert "60 min, or 20 steps if sooner" in schedule.describe()


def test_a_resumed_plateau_run_takes_the_settings_given_now(labels, tmp_path):
    settings = [*TINY, "data.workers=0"]
    config = load_config("single_instance", overrides=settings, labels=str(labels), **{"optim.max_epochs": 1})
    Trainer(config, tmp_path / "run", progress=False).run()
    changed = ["optim.plateau_factor=0.25", "optim.plateau_patience=7", "optim.weight_decay=0.01"]
    config = load_config(
        "single_instance", overrides=[*settings, *changed], labels=str(labels), **{"optim.max_epochs": 2}
    )
    again = Trainer(config, tmp_path / "run", progress=False)
    again.resume()
    rule = again.schedule.scheduler
    assert (rule.factor, rule.patience) == (0.25, 7) and again.optimizer.param_groups[0][
        "weight_decay"
    ] == 0.01


def test_early_stopping_comes_with_the_plateau_schedule_unless_set():
    sgd = torch.optim.SGD([torch.zeros(1)], lr=1.0)
    plateau = load_config("single_instance").optim
    assert make_schedule(sgd, plateau, 100).early_stopping_patience == 10
    to_a_deadline = load_config("single_instance", **{"optim.max_minutes": 5}).optim
    assert make_schedule(sgd, to_a_deadline, 100).early_stopping_patience is None  # ends at its deadline
    assert "no early stopping" in make_schedule(sgd, to_a_deadline, 100).describe()
    chosen = load_config(
        "single_instance", overrides=["optim.early_stopping_patience=3"], **{"optim.max_minutes": 5}
    )
    assert make_schedule(sgd, chosen.optim, 100).early_stopping_patience == 3
    with pytest.raises(ConfigError, match="optim.early_stopping_patience"):
        load_config("single_instance", overrides=["optim.early_stopping_patience=0"])


def test_a_one_minute_run_ends_at_the_floor_and_says_what_it_did(labels, tmp_path):
    no_early_stop = ("--set", "optim.early_stopping_patience=100000", "--max-epochs", "100000")
    floor = ("--set", "optim.min_learning_rate=1e-5")
    done = train(labels, tmp_path / "run", "--max-minutes", "1", *floor, *no_early_stop)
    assert done.returncode == 0, done.stderr
    with (tmp_path / "run" / "training_log.csv").open() as f:
        last = list(csv.DictReader(f))[-1]
    peak, floor = 1e-3, 1e-5
    assert float(last["learning_rate"]) <= floor + 0.02 * (peak - floor)  # annealed by the deadline
    assert 0 <= float(last["val_map"]) <= 1  # scored at the end (and every optim.map_every_minutes)
    assert "cosine annealing" in done.stdout and "stopped by max_minutes" in done.stdout
    assert "fitted to the labels: input scale 1 " in done.stdout  # the profile leaves it to the labels
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["data"]["input_scale"] == 1.0 and saved["backbone"]["max_stride"] in (8, 16, 32, 64)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["samples"] > 0 and summary["samples_per_second"] > 0
    assert summary["best_map"]["value"] == pytest.approx(float(last["val_map"]), abs=1e-4)
    assert "best validation OKS mAP" in done.stdout
    assert "examples/s (data" in done.stdout and (tmp_path / "run" / "loss_curve.png").exists()


def test_a_cpu_without_bf16_trains_in_fp32_with_a_one_line_note(labels, tmp_path):
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}  # torch's own switch: AVX2 kernels only
    done = train(labels, tmp_path / "run", "--max-epochs", "1", env=env)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stdout.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "no native bf16" in notes[0] and "fp32" in notes[0]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["precision"] == "fp32"


def test_a_resumed_run_continues_its_budget_rather_than_starting_a_new_one(labels, tmp_path):
    settings = [*TINY, "optim.max_minutes=0.1", "optim.early_stopping_patience=100000", "data.workers=0"]
    config = load_config(
        "single_instance", overrides=settings, labels=str(labels), **{"optim.max_epochs": 10**5}
    )
    first = Trainer(config, tmp_path / "run", progress=False).run()
    assert first.stopped_because == "max_minutes"
    summary = (tmp_path / "run" / "summary.json").read_text()
    again = Trainer(config, tmp_path / "run", progress=False)
    again.resume()
    assert again.trained_seconds >= 6.0  # the 0.1 min spent, saved with the last checkpoint
    result = again.run()
    assert result.stopped_because == "max_minutes" and result.epochs == first.epochs and result.samples == 0
    assert (tmp_path / "run" / "summary.json").read_text() == summary  # the first run's figures stay
    assert "nothing trained" in result.summary()


def test_default_workers_feed_a_gpu_from_all_cores_but_one_and_spare_a_small_cpu():
    from posestream.train.loader import default_workers

    cores = len(os.sched_getaffinity(0))
    assert default_workers(torch.device("cuda")) == max(1, min(8, cores - 1))
    assert default_workers(torch.device("cpu")) == (0 if cores < 4 else 1 if cores < 8 else 2)


def test_an_epoch_begun_as_the_deadline_passes_takes_one_step_and_is_scored(labels, tmp_path):
    """The race the one-minute run met on a loaded machine: an epoch that ends just inside the budget starts
    another, whose deadline has passed by its first step. That epoch takes one step and ends the run, scored,
    rather than ending it with no step and the last epoch unscored."""
    settings = [*TINY, "optim.max_minutes=10", "data.workers=0", "optim.steps_per_epoch=3"]
    config = load_config("single_instance", overrides=settings, labels=str(labels))
    trainer = Trainer(config, tmp_path / "run", progress=False)
    trainer.write_run_files()  # what run() sets up before its first epoch
    trainer.started = trainer.spent_before = trainer.last_map = time.monotonic()
    trainer.seconds, trainer.samples = dict.fromkeys(PHASES, 0.0), 0
    trainer.schedule.start(0.0, 0)
    with BatchStream(trainer.train_set, config.data, 0, 0, 3, 0) as stream:
        reason = trainer._epoch(stream, deadline=time.monotonic() - 1)
    assert reason == "max_minutes" and trainer.samples == config.data.batch_size  # one step
    with (tmp_path / "run" / "training_log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and 0 <= float(rows[0]["val_map"]) <= 1
