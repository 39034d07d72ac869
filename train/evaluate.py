"""``posestream evaluate``: accuracy of predictions (a file, or trained runs) against SLEAP labels."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from posestream.core.errors import ConfigError, MissingExtraError
from posestream.engine.frame_ranges import FrameRanges
from posestream.engine.sinks.predictions import open_predictions
from posestream.engine.types import FramePredictions, Skeleton
from posestream.train.labels import LabelSet, load_labels
from posestream.train.metrics import FrameEval, Report, evaluate
from posestream.train.oks import OKS_STDDEV
from posestream.train.tracking_metrics import TrackedFrame, identity_accuracy, tracking_metrics

Predictions = dict[int, FramePredictions]  # frame index -> its predicted instances


def load_predictions(path: str | os.PathLike, skeleton: Skeleton) -> tuple[Predictions, list[str]]:
    """Predicted instances per frame from a .slp file (ours, SLEAP's, sleap-nn's) or an analysis HDF5 file,
    their nodes in the order of the labels' ``skeleton`` (matched by name), and the names of their track
    ids."""
    with open_predictions(path) as reader:
        order = node_order(reader.skeleton, skeleton, path)  # (n_nodes,) predicted node of each labelled node
        frames = {frame.frame_idx: _reorder(frame, order) for frame in reader.iter_frames()}
        return frames, list(reader.track_names)


def node_order(predicted: Skeleton, labels: Skeleton, path) -> np.ndarray:
    """Index of each of the labels' nodes among the predictions' nodes, by name; a ConfigError naming the
    nodes when the two skeletons do not have the same ones (a model of another skeleton)."""
    index = {name: i for i, name in enumerate(predicted.nodes)}
    missing, extra = (
        [n for n in labels.nodes if n not in index],
        sorted(set(predicted.nodes) - set(labels.nodes)),
    )
    if missing or extra:
        raise ConfigError(
            f"{path}: the predictions' skeleton differs from the labels': "
            + "; ".join(
                part
                for part in (
                    f"no predicted {', '.join(missing)}" if missing else "",
                    f"not labelled: {', '.join(extra)}" if extra else "",
                )
                if part
            )
            + " (nodes are matched by name; predict with a model of the labels' skeleton)"
        )
    return np.array([index[name] for name in labels.nodes], np.intp)


def _reorder(frame: FramePredictions, order: np.ndarray) -> FramePredictions:
    """``frame`` with its nodes in ``order``."""
    if np.array_equal(order, np.arange(len(order))):
        return frame
    return dataclasses.replace(
        frame, points=frame.points[:, order], point_scores=frame.point_scores[:, order]
    )


def frames_to_evaluate(
    truth: LabelSet, predictions: Predictions, frames: FrameRanges | None
) -> list[FrameEval]:
    """Pairs of ground truth and predictions on the labelled frames (in ``frames`` when given)."""
    n_nodes = truth.skeleton.n_nodes
    out = []
    for labelled in truth.frames:
        if frames is not None and labelled.frame_idx not in frames:
            continue
        found = predictions.get(labelled.frame_idx) or FramePredictions.empty(labelled.frame_idx, n_nodes)
        out.append(FrameEval(labelled.points, found.points, np.nan_to_num(found.instance_scores, nan=0.0)))
    if not out:
        raise ConfigError("no labelled frames to evaluate" + (f" in frames {frames}" if frames else ""))
    return out


def tracked_frames(truth: LabelSet, predictions: Predictions) -> list[TrackedFrame] | None:
    """The labelled frames with identities on both sides, in time order; None when the ground truth has
    no tracks or the predictions have no tracked instance (then there is nothing to score)."""
    if not any((f.track_ids >= 0).any() for f in truth.frames):
        return None
    if not any((p.track_ids >= 0).any() for p in predictions.values()):
        return None
    n_nodes = truth.skeleton.n_nodes
    out = []
    for labelled in sorted(truth.frames, key=lambda f: (f.video, f.frame_idx)):
        found = predictions.get(labelled.frame_idx) or FramePredictions.empty(labelled.frame_idx, n_nodes)
        known = labelled.track_ids >= 0
        out.append(
            TrackedFrame(labelled.points[known], labelled.track_ids[known], found.points, found.track_ids)
        )
    return out


def evaluate_file(
    predictions_path: str,
    labels_path: str,
    frames: str | None = None,
    video_paths: list[str] = (),
    stddev: float = OKS_STDDEV,
) -> Report:
    """Metrics of a predictions file against labels (.slp, DeepLabCut's, or an analysis HDF5 file of ground
    truth); with tracking metrics when both sides have identities."""
    truth = load_labels(labels_path, video_paths, frames, need_images=False)
    predictions, track_names = load_predictions(predictions_path, truth.skeleton)
    report = evaluate(frames_to_evaluate(truth, predictions, None), stddev)
    tracked = tracked_frames(truth, predictions)
    if tracked is not None and set(track_names) & set(truth.track_names):  # identities named as the labels'
        report.identity = identity_accuracy(tracked, truth.track_names, track_names, stddev)
    if tracked is not None:
        try:
            report.tracking = tracking_metrics(tracked, stddev)
        except MissingExtraError as exc:  # the pose metrics stand on their own
            report.notes.append(f"no tracking metrics: {exc}")
    return report


def evaluate_runs(
    run_dirs: list[str],
    labels_path: str | None = None,
    frames: str | None = None,
    video_paths: list[str] = (),
    device: str = "cpu",
    peak_threshold: float = 0.2,
    stddev: float = OKS_STDDEV,
    progress: bool = True,
) -> Report:
    """Predict with trained runs (torch) or exported models (the engine's onnxruntime backend) on
    labelled frames and score the predictions.

    Defaults: the first run's labels (an exported model's source run), and its validation frames when
    ``frames`` is None. An identity model's report adds its identity accuracy against the labels' tracks.
    """
    from posestream.train.predict import PredictOptions, open_model, predict

    runs = [open_model(d, device) for d in run_dirs]
    first = runs[0].run
    if not first and not (labels_path and frames):
        raise ConfigError(
            f"{run_dirs[0]}: its training run is not here; name the ground truth with --labels and --frames"
        )
    own = labels_path is None or Path(labels_path).resolve() == Path(first["labels"]).resolve()
    labels_path = labels_path or first["labels"]
    # The run's videos go with the run's labels only: other labels name their own (or --video-path does).
    truth = load_labels(labels_path, video_paths or (first.get("video_paths", []) if own else []), frames)
    if frames is None:
        keep = set(first["val_frames"])
        truth = truth.subset([i for i, f in enumerate(truth.frames) if f.frame_idx in keep])
        if not len(truth):
            raise ConfigError(
                f"{run_dirs[0]} has no validation frames; name the frames to evaluate with --frames"
            )
    truth.load_images()
    options = PredictOptions(peak_threshold=peak_threshold)
    predictions = predict(runs, truth, list(range(len(truth))), options, progress=progress)
    names = next((r.class_names for r in runs if r.class_names), ())  # an identity model's classes
    return score(truth, predictions, names, stddev)


def score(
    truth: LabelSet, predictions: Predictions, class_names: Sequence[str], stddev: float = OKS_STDDEV
) -> Report:
    """OKS scores of ``predictions`` on ``truth``'s labelled frames; for an identity model (its
    ``class_names``), the identity accuracy against the labels' tracks too."""
    report = evaluate(frames_to_evaluate(truth, predictions, None), stddev)
    tracked = tracked_frames(truth, predictions) if class_names else None
    if tracked is not None:
        report.identity = identity_accuracy(tracked, truth.track_names, list(class_names), stddev)
    return report


def report_rows(report: Report) -> list[tuple[str, str]]:
    """The report as (metric, value) rows of text, in the order tables show them."""
    rows = [
        ("frames", f"{report.n_frames}"),
        (
            "instances (truth / predicted / matched)",
            f"{report.n_truth} / {report.n_predicted} / {report.matched_instances}",
        ),
        ("OKS mAP", f"{report.mAP:.3f}"),
        ("OKS mAR", f"{report.mAR:.3f}"),
        ("AP@0.50 / AP@0.75", f"{report.ap_by_threshold['0.50']:.3f} / {report.ap_by_threshold['0.75']:.3f}"),
        ("PCK " + " / ".join(report.pck), " / ".join(f"{v:.2f}" for v in report.pck.values())),
        ("error p50 / p90 / p95 (px)", " / ".join(f"{v:.2f}" for v in report.error_percentiles.values())),
        ("missed / false instances", f"{report.missed_instances} / {report.false_instances}"),
    ]
    if report.identity is not None:
        named = report.identity
        value = (
            f"{named.accuracy:.4f} ({named.correct} / {named.matched})"
            if named.matched
            else "- (none matched)"
        )
        rows.append(("identity accuracy (named right / matched)", value))
    if report.tracking is not None:
        t = report.tracking
        rows += [
            ("identities (true / predicted)", f"{t.true_identities} / {t.predicted_identities}"),
            ("identity switches", f"{t.id_switches}"),
            ("IDF1 / MOTA / MOTP", f"{t.idf1:.4f} / {t.mota:.4f} / {t.motp:.3f}"),
            ("HOTA", f"{t.hota:.4f}"),
        ]
    return rows


def print_report(report: Report, title: str) -> None:
    print_comparison({"value": report}, title)


def print_comparison(reports: dict[str, Report], title: str) -> None:
    """One table, a column per report (e.g. per engine's predictions of the same labels)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    for name in reports:
        table.add_column(name, justify="right")
    columns = [dict(report_rows(r)) for r in reports.values()]
    # tracking rows only where some report has them
    metrics = list(dict.fromkeys(m for c in columns for m in c))
    for metric in metrics:
        table.add_row(metric, *(c.get(metric, "-") for c in columns))
    Console().print(table)
    for name, report in reports.items():
        for note in report.notes:
            print(f"note ({name}): {note}" if len(reports) > 1 else f"note: {note}")


def write_json(report: Report, path: str | os.PathLike, extra: dict | None = None) -> None:
    Path(path).write_text(json.dumps({**report.to_dict(), **(extra or {})}, indent=2))
