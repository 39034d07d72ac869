"""A network's OKS mAP on its run's validation frames while it trains, scored as `posestream evaluate`
scores a finished run (the exported graph's torch module, the engine's decoding, COCO-style OKS mAP); an
identity model's identity accuracy beside it."""

from __future__ import annotations

from pathlib import Path

import torch

from posestream.engine.types import ModelType
from posestream.train.config import TrainConfig
from posestream.train.evaluate import score
from posestream.train.labels import LabelSet
from posestream.train.metrics import Report
from posestream.train.models import PoseNet
from posestream.train.predict import PredictOptions, RunModel, predict


def scores_map(config: TrainConfig, labels: LabelSet) -> bool:
    """Whether a run of this type is scored by mAP: not a centroid model alone (it finds anchors, not
    poses: its loss decides), and not without validation frames."""
    return config.type is not ModelType.CENTROID and len(labels) > 0


def validation_report(
    network: PoseNet, run: dict, config: TrainConfig, run_dir: Path, device: torch.device, labels: LabelSet
) -> Report:
    """The scores of ``network`` as it is now on ``labels`` (centered-instance: crops on the true anchors):
    OKS mAP, and an identity model's identity accuracy."""
    model = RunModel.of_network(network, run, config, run_dir, device)
    predictions = predict([model], labels, list(range(len(labels))), PredictOptions())
    return score(labels, predictions, model.class_names)
