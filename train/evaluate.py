"""``posestream evaluate``: accuracy of predictions (a file, or trained runs) against SLEAP labels."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from posestream.engine.errors import ConfigError
from posestream.engine.extras import require
from posestream.engine.frame_ranges import FrameRanges

from .labels import LabelSet, labels_from_analysis_h5, load_labels
from .metrics import OKS_STDDEV, FrameEval, Report, evaluate

Predictions = dict[int, tuple[np.ndarray, np.ndarray]]  # frame -> (points (P, N, 2), scores (P,))


def load_predictions(path: str | os.PathLike, n_nodes: int) -> Predictions:
    """Predicted instances per frame from a .slp file or an analysis HDF5 file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such predictions file")
    if path.suffix in (".h5", ".hdf5"):
        from posestream.engine.sinks.analysis_h5 import read_analysis_h5

        data = read_analysis_h5(path)
        out = {}
        for frame_idx in range(data.n_frames):
            frame = data.frame(frame_idx)
            out[frame_idx] = (frame.points, np.nan_to_num(frame.instance_scores, nan=0.0))
        _check_nodes(path, data.tracks.shape[2], n_nodes)
        return out
    sio = require("sleap_io", extra="train", feature="reading .slp predictions")
    labels = sio.load_slp(str(path), open_videos=False)
    out = {}
    for lf in labels.labeled_frames:
        instances = lf.predicted_instances or lf.user_instances
        points = np.stack([inst.numpy()[:, :2] for inst in instances]).astype(np.float32) if instances else np.zeros((0, n_nodes, 2), np.float32)
        scores = np.array([getattr(inst, "score", 1.0) for inst in instances], np.float32)
        out[int(lf.frame_idx)] = (points, scores)
    _check_nodes(path, len(labels.skeleton.nodes), n_nodes)
    return out


def _check_nodes(path: Path, got: int, expected: int) -> None:
    if got != expected:
        raise ConfigError(f"{path}: predictions have {got} nodes per instance but the labels' skeleton has {expected}")


def frames_to_evaluate(truth: LabelSet, predictions: Predictions, frames: FrameRanges | None) -> list[FrameEval]:
    """Pairs of ground truth and predictions on the labelled frames (in ``frames`` when given)."""
    n_nodes = truth.skeleton.n_nodes
    out = []
    for labelled in truth.frames:
        if frames is not None and labelled.frame_idx not in frames:
            continue
        points, scores = predictions.get(labelled.frame_idx, (np.zeros((0, n_nodes, 2), np.float32), np.zeros(0, np.float32)))
        out.append(FrameEval(labelled.points, points, scores))
    if not out:
        raise ConfigError("no labelled frames to evaluate" + (f" in frames {frames}" if frames else ""))
    return out


def evaluate_file(predictions_path: str, labels_path: str, frames: str | None = None,
                  video_paths: list[str] = (), stddev: float = OKS_STDDEV) -> Report:  # fmt: skip
    """Metrics of a predictions file against labels (.slp, or an analysis HDF5 file of ground truth)."""
    if Path(labels_path).suffix in (".h5", ".hdf5"):
        truth = labels_from_analysis_h5(labels_path, frames)
    else:
        truth = load_labels(labels_path, video_paths, frames)
    predictions = load_predictions(predictions_path, truth.skeleton.n_nodes)
    return evaluate(frames_to_evaluate(truth, predictions, None), stddev)


def evaluate_runs(run_dirs: list[str], labels_path: str | None = None, frames: str | None = None,
                  video_paths: list[str] = (), device: str = "cpu", peak_threshold: float = 0.2,
                  stddev: float = OKS_STDDEV, progress: bool = True) -> Report:  # fmt: skip
    """Predict with trained runs (torch) or exported models (the engine's onnxruntime backend) on
    labelled frames and score the predictions.

    Defaults: the first run's labels (an exported model's source run), and its validation frames
    when ``frames`` is None.
    """
    from .predict import PredictOptions, open_model, predict

    runs = [open_model(d, device) for d in run_dirs]
    first = runs[0].run
    if not first and not (labels_path and frames):
        raise ConfigError(f"{run_dirs[0]}: its training run is not here; name the ground truth with --labels and --frames")
    labels_path = labels_path or first["labels"]
    truth = load_labels(labels_path, video_paths or first.get("video_paths", []), frames)
    if frames is None:
        keep = set(first["val_frames"])
        truth = truth.subset([i for i, f in enumerate(truth.frames) if f.frame_idx in keep])
        if not len(truth):
            raise ConfigError(f"{run_dirs[0]} has no validation frames; name the frames to evaluate with --frames")
    truth.load_images()
    options = PredictOptions(peak_threshold=peak_threshold)
    predictions = predict(runs, truth, list(range(len(truth))), options, progress=progress)
    as_arrays = {k: (v.points, v.instance_scores) for k, v in predictions.items()}
    return evaluate(frames_to_evaluate(truth, as_arrays, None), stddev)


def print_report(report: Report, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("frames", f"{report.n_frames}"),
        ("instances (truth / predicted / matched)", f"{report.n_truth} / {report.n_predicted} / {report.matched_instances}"),
        ("OKS mAP", f"{report.mAP:.3f}"),
        ("OKS mAR", f"{report.mAR:.3f}"),
        ("AP@0.50 / AP@0.75", f"{report.ap_by_threshold['0.50']:.3f} / {report.ap_by_threshold['0.75']:.3f}"),
        ("PCK " + " / ".join(report.pck), " / ".join(f"{v:.2f}" for v in report.pck.values())),
        ("error p50 / p90 / p95 (px)", " / ".join(f"{v:.2f}" for v in report.error_percentiles.values())),
        ("missed / false instances", f"{report.missed_instances} / {report.false_instances}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


def write_json(report: Report, path: str | os.PathLike, extra: dict | None = None) -> None:
    Path(path).write_text(json.dumps({**report.to_dict(), **(extra or {})}, indent=2))
