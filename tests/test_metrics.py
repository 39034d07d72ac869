"""Evaluation metrics on constructed cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.train.metrics import FrameEval, evaluate
from posestream.train.oks import oks_matrix

# A 100 x 100 px instance with 5 nodes.
SQUARE = np.array([[0, 0], [100, 0], [100, 100], [0, 100], [50, 50]], np.float32)


def frames(truth, predicted, scores=None):
    predicted = np.asarray(predicted, np.float32).reshape(-1, 5, 2)
    scores = np.ones(len(predicted), np.float32) if scores is None else np.asarray(scores, np.float32)
    return [FrameEval(np.asarray(truth, np.float32).reshape(-1, 5, 2), predicted, scores)]


def test_perfect_predictions():
    report = evaluate(frames([SQUARE, SQUARE + 300], [SQUARE + 300, SQUARE]))
    assert report.mAP == pytest.approx(1.0) and report.mAR == pytest.approx(1.0)
    assert report.error_percentiles["p50"] == 0.0 and report.pck["1px"] == 1.0
    assert report.missed_instances == report.false_instances == 0


def test_known_shift():
    """Every node 5 px off: OKS = exp(-25 / (2 * 1e4 * 0.05^2)) = exp(-0.5) = 0.607."""
    shifted = SQUARE + np.array([3.0, 4.0])
    assert oks_matrix(SQUARE[None], shifted[None])[0, 0] == pytest.approx(np.exp(-0.5))
    report = evaluate(frames(SQUARE, shifted))
    assert report.ap_by_threshold["0.60"] == pytest.approx(1.0) and report.ap_by_threshold["0.65"] == 0.0
    assert report.mAP == pytest.approx(0.3)  # thresholds 0.50, 0.55, 0.60 of ten
    assert report.error_percentiles["p50"] == pytest.approx(5.0)
    assert report.pck["5px"] == 1.0 and report.pck["4px"] == 0.0


def test_missing_and_false_instances():
    report = evaluate(frames([SQUARE, SQUARE + 300], [SQUARE]))
    assert report.mAR == pytest.approx(0.5)
    assert report.mAP == pytest.approx(51 / 101)  # precision 1 up to recall 0.5
    assert report.missed_instances == 1 and report.false_instances == 0
    report = evaluate(frames(SQUARE, [SQUARE, SQUARE + 500], scores=[0.9, 0.1]))
    assert report.mAP == pytest.approx(1.0)  # the false one ranks last: no precision lost before full recall
    assert report.false_instances == 1
    report = evaluate(frames(SQUARE, [SQUARE, SQUARE + 500], scores=[0.1, 0.9]))
    assert report.mAP == pytest.approx(0.5, abs=0.01)  # ranked first, it halves the precision


def test_missing_nodes_count_as_misses():
    partial = SQUARE.copy()
    partial[:2] = np.nan
    assert oks_matrix(SQUARE[None], partial[None])[0, 0] == pytest.approx(3 / 5)
    report = evaluate(frames(SQUARE, partial))
    assert report.pck["10px"] == pytest.approx(3 / 5)
    # nodes missing from the ground truth do not count
    assert oks_matrix(partial[None], SQUARE[None])[0, 0] == pytest.approx(1.0)


def _relabelled(source, out, order, names=None):
    """The analysis HDF5 ``source`` with its nodes in ``order`` (and renamed to ``names``)."""
    from posestream.engine.sinks import AnalysisH5Writer, read_analysis_h5
    from posestream.engine.types import Skeleton

    data = read_analysis_h5(source)
    nodes = names or [data.skeleton.nodes[i] for i in order]
    with AnalysisH5Writer(out, Skeleton.from_names(nodes), tracked=True) as writer:
        for i in range(data.n_frames):
            frame = data.frame(i)
            frame.points, frame.point_scores = frame.points[:, order], frame.point_scores[:, order]
            writer.write(frame)
    return out


def test_evaluate_matches_nodes_by_name_and_refuses_other_skeletons(synth_gray, tmp_path):
    """The same labels with their nodes reversed scored mAP 0, and with every node renamed 0.91 silently."""
    from posestream.core.errors import ConfigError
    from posestream.engine.sinks import read_analysis_h5
    from posestream.train.evaluate import evaluate_file

    video, _ = synth_gray
    n_nodes = read_analysis_h5(video.analysis_h5).skeleton.n_nodes
    reversed_labels = _relabelled(video.analysis_h5, tmp_path / "reversed.h5", list(range(n_nodes))[::-1])
    assert evaluate_file(str(video.analysis_h5), str(reversed_labels)).mAP == pytest.approx(1.0)
    renamed = _relabelled(
        video.analysis_h5, tmp_path / "renamed.h5", list(range(n_nodes)), [f"part{i}" for i in range(n_nodes)]
    )
    with pytest.raises(ConfigError, match="skeleton differs from the labels'.*no predicted part0"):
        evaluate_file(str(video.analysis_h5), str(renamed))
