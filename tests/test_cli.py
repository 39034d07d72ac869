"""The `posestream` console command, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

POSESTREAM = str(Path(sys.executable).with_name("posestream"))


def run(*args, **kwargs):
    return subprocess.run(
        [POSESTREAM, *map(str, args)], capture_output=True, text=True, timeout=120, **kwargs
    )


def test_help_lists_subcommands():
    result = run("--help")
    assert result.returncode == 0
    assert "synth" in result.stdout and "recover" in result.stdout


def test_the_profile_option_names_every_shipped_profile():
    from posestream.cli.options import PROFILE
    from posestream.train.config import available_profiles

    assert all(name in PROFILE.settings["help"] for name in available_profiles())


def test_synth_writes_video_and_ground_truth(tmp_path):
    out = tmp_path / "clip.mp4"
    result = run("synth", out, "--num-frames", 15, "--size", "128x96", "--animals", 3, "--seed", 4, "--quiet")
    assert result.returncode == 0, result.stderr
    assert out.exists() and (tmp_path / "clip.analysis.h5").exists() and (tmp_path / "clip.slp").exists()
    assert str(out) in result.stdout and "clip.analysis.h5" in result.stdout
    with h5py.File(tmp_path / "clip.analysis.h5", "r") as f:
        assert f["tracks"].shape == (3, 2, 9, 15)


def test_output_piped_into_a_reader_that_stops_is_not_an_error(tmp_path):
    """`posestream ... | head -c 1`: the file is written and no traceback is printed."""
    out = tmp_path / "clip.mp4"
    command = [POSESTREAM, "synth", str(out), "--num-frames", "4", "--size", "64x64", "--no-slp", "--quiet"]
    writer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    writer.stdout.close()  # the reader is gone before anything is printed
    _, stderr = writer.communicate(timeout=120)
    assert out.exists() and b"Traceback" not in stderr and writer.returncode == 141, stderr.decode()


def test_synth_bad_arguments_are_clear(tmp_path):
    result = run("synth", tmp_path / "x.mp4", "--size", "big")
    assert result.returncode == 2 and "WIDTHxHEIGHT" in result.stderr
    result = run("synth", tmp_path / "x.mp4", "--size", "127x96")
    assert result.returncode == 2 and "configuration error" in result.stderr and "even" in result.stderr
    result = run("synth", tmp_path / "x.gif")
    assert result.returncode == 2 and "must end in .mp4" in result.stderr


def test_synth_without_sleap_io_names_the_extra(tmp_path):
    code = (
        "import sys; sys.modules['sleap_io'] = None\n"
        "from posestream.cli import main\n"
        f"sys.exit(main(['synth', r'{tmp_path / 'y.mp4'}', '--num-frames', '3', '--quiet']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "pip install 'posestream[slp]'" in result.stderr and "--no-slp" in result.stderr


def test_recover_rewrites_an_analysis_file(tmp_path):
    out = tmp_path / "r.mp4"
    assert run("synth", out, "--num-frames", 5, "--size", "64x64", "--no-slp", "--quiet").returncode == 0
    result = run("recover", tmp_path / "r.analysis.h5")
    assert result.returncode == 0 and "5 processed frames" in result.stdout
    result = run("recover", tmp_path / "missing.h5")
    assert result.returncode == 2 and "missing.h5" in result.stderr


def test_train_and_evaluate_commands(tmp_path, synth_gray):
    out, _ = synth_gray
    run_dir = tmp_path / "run"
    tiny = ["--set", "backbone.filters=4", "--set", "backbone.max_stride=8", "--set", "data.input_scale=0.5"]
    result = run(
        "train", out.slp, "-o", run_dir, "--profile", "bottomup", "--max-epochs", 1, "--quiet", *tiny
    )
    assert result.returncode == 0, result.stderr
    assert "stopped by max_epochs" in result.stdout and (run_dir / "best.pt").exists()
    again = run("train", out.slp, "-o", run_dir, "--profile", "bottomup")
    assert again.returncode == 2 and f"--resume {run_dir}" in again.stderr
    tuned = run(
        "train",
        out.slp,
        "-o",
        tmp_path / "tuned",
        "--config",
        run_dir / "config.yaml",
        "--init-weights",
        run_dir,
        "--max-epochs",
        1,
        "--quiet",
    )
    assert tuned.returncode == 0 and (tmp_path / "tuned" / "best.pt").exists(), tuned.stderr
    both = run("train", "--resume", run_dir, "--init-weights", run_dir)
    assert both.returncode == 2 and "pick one" in both.stderr
    report = tmp_path / "m.json"
    result = run("evaluate", run_dir, "--frames", "0-9", "--json", report)
    assert result.returncode == 0, result.stderr
    assert "OKS mAP" in result.stdout and 0.0 <= json.loads(report.read_text())["mAP"] <= 1.0
    assert Path(
        json.loads((run_dir / "run.json").read_text())["labels"]
    ).is_absolute()  # evaluate from any folder
    from posestream.engine.synth import SynthConfig, write_synthetic_video

    other = write_synthetic_video(
        tmp_path / "other" / "v.mp4", SynthConfig(frames=10, width=192, height=160, seed=9), progress=False
    )
    scores = []
    for extra in ([], ["--video-path", other.video]):  # other labels: their own video (the run's, before)
        result = run(
            "evaluate",
            run_dir,
            "--labels",
            other.slp,
            "--frames",
            "0-9",
            "--json",
            tmp_path / "o.json",
            *extra,
            cwd=tmp_path / "other",
        )
        assert result.returncode == 0, result.stderr
        scores.append(json.loads((tmp_path / "o.json").read_text())["mAP"])
    assert scores[0] == scores[1]
    itself = tmp_path / "itself.json"
    result = run("evaluate", out.analysis_h5, "--labels", out.slp, "--json", itself)
    assert result.returncode == 0 and json.loads(itself.read_text())["mAP"] == 1.0  # ground truth vs itself

    model_dir = tmp_path / "model"
    result = run(
        "export", run_dir, "-o", model_dir, "--output-mode", "peaks", "--format", "onnx,torch", "--quiet"
    )
    assert result.returncode == 0, result.stderr
    assert (
        "bottomup model, input (160, 192, 1) uint8" in result.stdout and "peaks mode (K=16)" in result.stdout
    )
    assert {p.name for p in model_dir.iterdir()} == {"metadata.json", "model.onnx", "model.pt2"}
    exported = tmp_path / "e.json"
    result = run("evaluate", model_dir, "--frames", "0-9", "--json", exported)
    assert result.returncode == 0, result.stderr
    assert json.loads(exported.read_text())["mAP"] == pytest.approx(
        json.loads(report.read_text())["mAP"], abs=1e-6
    )
    result = run("export", run_dir, "-o", tmp_path / "bad", "--format", "onnx,coreml")
    assert result.returncode == 2 and "--format must be among" in result.stderr
    result = run("export", tmp_path / "nowhere", "-o", tmp_path / "bad")
    assert result.returncode == 2 and "not a training run directory" in result.stderr


def test_train_usage_errors(tmp_path, synth_gray):
    out, _ = synth_gray
    result = run("train", out.slp, "-o", tmp_path / "r")
    assert result.returncode == 2 and "--profile" in result.stderr
    result = run("train", out.slp, "-o", tmp_path / "r", "--profile", "bottomup", "--set", "optim.lr=1")
    assert result.returncode == 2 and "unknown config key 'optim.lr'" in result.stderr
    result = run("evaluate", out.analysis_h5)
    assert result.returncode == 2 and "--labels" in result.stderr


def test_track_without_output_writes_beside_the_video_as_sleap_does(tmp_path):
    video = tmp_path / "session1.mp4"
    assert run("synth", video, "--num-frames", 6, "--no-slp", "--quiet").returncode == 0
    result = run("track", "-i", video, "-m", "demo", "--format", "analysis-h5,slp", "--quiet")
    assert result.returncode == 0, result.stderr
    for name in ("session1.mp4.predictions.h5", "session1.mp4.predictions.slp"):
        assert (tmp_path / name).exists() and name in result.stdout
    with h5py.File(tmp_path / "session1.mp4.predictions.h5", "r") as f:
        assert (f["frame_status"][:] == 1).sum() == 6


def test_version_and_a_commands_own_usage_on_an_unknown_option():
    """An unknown option printed the top level's usage, before; --version did not exist."""
    version = subprocess.run([POSESTREAM, "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("posestream ")
    unknown = subprocess.run(
        [POSESTREAM, "retrack", "p.h5", "-o", "o.h5", "--video-path", "a=b"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unknown.returncode == 2 and unknown.stderr.startswith("usage: posestream retrack")
    assert "unrecognized arguments: --video-path a=b" in unknown.stderr


def test_the_load_warning_names_the_load(monkeypatch):
    from posestream.engine.threads import load_warning

    cores = os.cpu_count() or 1
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 1.5, 0.0, 0.0))
    assert f"load average {cores + 1.5:.1f} on {cores} cores" in load_warning()
    monkeypatch.setattr(os, "getloadavg", lambda: (cores - 0.5, 0.0, 0.0))
    assert load_warning() == ""
