"""The training loop: epochs of augmented batches, validation, LR schedule, early stopping,
checkpoints and logs, resumable from the run directory.

RUN_DIR holds:
    config.yaml        the resolved configuration (crop size filled in)
    run.json           what inference needs: skeleton, input geometry, heads, split
    best.pt, last.pt   weights (last.pt also optimiser/scheduler state), loadable with weights_only=True
    training_log.csv   one row per epoch
    loss_curve.png     training and validation loss per epoch
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from posestream.core.errors import ConfigError
from posestream.engine.frame_ranges import FrameRanges
from posestream.engine.progress import progress_bar
from posestream.train.config import TrainConfig
from posestream.train.data import InputGeometry, PoseDataset
from posestream.train.labels import LabelSet, load_labels
from posestream.train.models import PoseNet, build_model, head_specs

LOG_FIELDS = ["epoch", "train_loss", "val_loss", "learning_rate", "seconds"]


@dataclass
class TrainResult:
    run_dir: Path
    epochs: int
    best_val_loss: float
    stopped_because: str


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"config key 'device' is {name!r} but this torch has no CUDA device; use 'cpu' or 'auto'"
        )
    return device


def split_labels(labels: LabelSet, config: TrainConfig) -> tuple[LabelSet, LabelSet]:
    """Train / validation split: by frame range when ``data.val_frames`` is set, else random by seed."""
    n = len(labels)
    if config.data.val_frames:
        val = labels.in_ranges(FrameRanges.parse(config.data.val_frames))
        train = sorted(set(range(n)) - set(val))
    else:
        order = np.random.default_rng(config.seed).permutation(n)
        n_val = int(round(n * config.data.val_fraction)) if n > 1 else 0
        val, train = sorted(order[:n_val].tolist()), sorted(order[n_val:].tolist())
    if not train:
        raise ConfigError(
            "no labelled frames left for training after the validation split; lower data.val_fraction"
        )
    return labels.subset(train), labels.subset(val)


def map_loss(
    predictions: tuple[torch.Tensor, ...], targets: tuple[torch.Tensor, ...], config: TrainConfig
) -> torch.Tensor:
    """Mean squared error of every head, plus online hard keypoint mining when enabled."""
    total = predictions[0].new_zeros(())
    for pred, target in zip(predictions, targets):
        weight = 1.0 + config.optim.foreground_weight * target.abs()
        per_channel = (weight * (pred.float() - target) ** 2).mean(dim=(2, 3))  # (B, C)
        total = total + per_channel.mean()
        if config.optim.ohkm and per_channel.shape[1] > 1:
            k = max(1, math.ceil(config.optim.ohkm_fraction * per_channel.shape[1]))
            total = total + config.optim.ohkm_weight * per_channel.topk(k, dim=1).values.mean()
    return total


class Trainer:
    """Trains one model; ``run()`` returns when training ends (stopping rule, time budget or max epochs)."""

    def __init__(self, config: TrainConfig, run_dir: str | os.PathLike, progress: bool = True):
        self.config, self.run_dir, self.progress = config, Path(run_dir), progress
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        labels = load_labels(config.labels, config.video_paths, config.data.frames)
        if config.model_type == "bottomup" and not labels.skeleton.edges:
            raise ConfigError(
                f"{config.labels}: its skeleton has no edges, and a bottom-up model groups nodes along "
                "them (part affinity fields); add edges to the skeleton, or train single_instance or "
                "the top-down pair"
            )
        labels.load_images()
        self.skeleton = labels.skeleton
        self.train_labels, self.val_labels = split_labels(labels, config)
        self.geometry = InputGeometry.for_config(config, self.train_labels)
        config.head.crop_size = self.geometry.crop_size or config.head.crop_size
        self.channels = labels.channels
        self.model = build_model(config, self.channels, self.skeleton.n_nodes, len(self.skeleton.edges)).to(
            self.device
        )
        self.optimizer = self._optimizer()
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer,
            mode="min",
            factor=config.optim.plateau_factor,
            patience=config.optim.plateau_patience,
            min_lr=config.optim.min_learning_rate,
        )
        self.use_amp = config.mixed_precision and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.epoch, self.best_val, self.stale_epochs = 0, math.inf, 0

    def _optimizer(self) -> torch.optim.Optimizer:
        optim = self.config.optim
        cls = torch.optim.AdamW if optim.optimizer == "adamw" else torch.optim.Adam
        return cls(self.model.parameters(), lr=optim.learning_rate, weight_decay=optim.weight_decay)

    # -- run directory ------------------------------------------------------

    def write_run_files(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(self.config.to_yaml())
        run = {
            "model_type": self.config.model_type,
            "skeleton": self.skeleton.to_dict(),
            "channels": self.channels,
            "geometry": asdict(self.geometry),
            "heads": [
                asdict(h) for h in head_specs(self.config, self.skeleton.n_nodes, len(self.skeleton.edges))
            ],
            "labels": str(Path(self.config.labels).resolve()),  # absolute: evaluate works from any folder
            "video_paths": [str(Path(v).resolve()) for v in self.train_labels.video_paths],
            "train_frames": [f.frame_idx for f in self.train_labels.frames],
            "val_frames": [f.frame_idx for f in self.val_labels.frames],
            "config_hash": self.config.fingerprint(),
        }
        (self.run_dir / "run.json").write_text(json.dumps(run, indent=2))

    def save_checkpoint(self, best: bool) -> None:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "best_val": self.best_val,
            "stale_epochs": self.stale_epochs,
        }
        _atomic_save(state, self.run_dir / "last.pt")
        if best:
            _atomic_save({"model": self.model.state_dict(), "epoch": self.epoch}, self.run_dir / "best.pt")

    def resume(self, learning_rate: float | None = None) -> None:
        """Continue from RUN_DIR/last.pt; ``learning_rate`` replaces the saved one (fine-tuning a run)."""
        path = self.run_dir / "last.pt"
        if not path.exists():
            raise FileNotFoundError(f"{path}: nothing to resume (no last.pt in {self.run_dir})")
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if learning_rate is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate
        self.epoch, self.best_val, self.stale_epochs = (
            int(state["epoch"]),
            float(state["best_val"]),
            int(state["stale_epochs"]),
        )

    def init_weights(self, source_run: str | os.PathLike) -> None:
        """Start from the weights of another run (its best.pt): fine-tuning on new labels.

        The network must be the same shape; the optimiser, epochs and best loss start afresh.
        """
        source_run = Path(source_run)
        path = source_run / "best.pt"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no weights to start from (is {source_run} a training run?)")
        weights = torch.load(path, map_location=self.device, weights_only=True)["model"]
        own = self.model.state_dict()
        for name, tensor in weights.items():
            if name not in own or own[name].shape != tensor.shape:
                got = tuple(own[name].shape) if name in own else "no such layer"
                raise ConfigError(
                    f"{path}: layer {name} is {tuple(tensor.shape)} there but {got} here; train with the "
                    f"network settings of {source_run / 'config.yaml'} (e.g. --config "
                    f"{source_run / 'config.yaml'})"
                )
        missing = sorted(set(own) - set(weights))
        if missing:
            raise ConfigError(
                f"{path}: has no weights for {missing[0]} (and {len(missing) - 1} more); "
                f"train with the network settings of {source_run / 'config.yaml'}"
            )
        self.model.load_state_dict(weights)

    # -- training -----------------------------------------------------------

    def run(self) -> TrainResult:
        optim = self.config.optim
        self.write_run_files()
        train_set = PoseDataset(
            self.train_labels, self.config, self.geometry, augment=True, seed=self.config.seed
        )
        val_set = PoseDataset(self.val_labels, self.config, self.geometry, augment=False)
        deadline = time.monotonic() + optim.max_minutes * 60 if optim.max_minutes else math.inf
        reason = "max_epochs"
        while self.epoch < optim.max_epochs:
            started = time.monotonic()
            train_loss, finished = self._train_epoch(train_set, deadline)
            if train_loss is None:  # the time budget ran out before this epoch's first step
                reason = "max_minutes"
                break
            val_loss = self._evaluate(val_set) if len(val_set) else train_loss
            self.epoch += 1
            self.scheduler.step(val_loss)
            improved = val_loss < self.best_val
            self.best_val, self.stale_epochs = (
                (val_loss, 0) if improved else (self.best_val, self.stale_epochs + 1)
            )
            self.save_checkpoint(best=improved)
            self._log(train_loss, val_loss, time.monotonic() - started)
            if not finished:
                reason = "max_minutes"
                break
            if self.stale_epochs >= optim.early_stopping_patience:
                reason = "early_stopping"
                break
        plot_loss_curve(self.run_dir)
        return TrainResult(self.run_dir, self.epoch, self.best_val, reason)

    def _train_epoch(self, dataset: PoseDataset, deadline: float) -> tuple[float | None, bool]:
        """One epoch; returns (mean loss or None if no step ran, whether it ran to the end)."""
        dataset.epoch = self.epoch
        generator = torch.Generator().manual_seed(self.config.seed * 100_003 + self.epoch)
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=self.config.data.batch_size,
            shuffle=True,
            generator=generator,
            drop_last=len(dataset) > self.config.data.batch_size,
        )
        steps = min(len(loader), self.config.optim.steps_per_epoch or len(loader))
        self.model.train()
        losses = []
        label = f"epoch {self.epoch + 1}/{self.config.optim.max_epochs}"
        with progress_bar(steps, label, enabled=self.progress) as advance:
            for step, (images, *targets) in enumerate(loader):
                if step >= steps:
                    break
                if time.monotonic() > deadline:
                    return (float(np.mean(losses)) if losses else None), False
                loss = self._step(images, targets)
                losses.append(loss)
                advance(status=f"loss {np.mean(losses[-20:]):.3g}")
        return float(np.mean(losses)), True

    def _step(self, images: torch.Tensor, targets: list[torch.Tensor]) -> float:
        images = images.to(self.device, non_blocking=True)
        targets = [t.to(self.device, non_blocking=True) for t in targets]
        with torch.autocast(self.device.type, enabled=self.use_amp):
            predictions = self.model(images)
        loss = map_loss(predictions, tuple(targets), self.config)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())

    @torch.no_grad()
    def _evaluate(self, dataset: PoseDataset) -> float:
        self.model.eval()
        loader = torch.utils.data.DataLoader(dataset, batch_size=self.config.data.batch_size)
        total, count = 0.0, 0
        for images, *targets in loader:
            with torch.autocast(self.device.type, enabled=self.use_amp):
                predictions = self.model(images.to(self.device))
            loss = map_loss(predictions, tuple(t.to(self.device) for t in targets), self.config)
            total, count = total + float(loss) * len(images), count + len(images)
        return total / count

    def _log(self, train_loss: float, val_loss: float, seconds: float) -> None:
        path = self.run_dir / "training_log.csv"
        new = not path.exists()
        with path.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(LOG_FIELDS)
            lr = self.optimizer.param_groups[0]["lr"]
            writer.writerow(
                [self.epoch, f"{train_loss:.6g}", f"{val_loss:.6g}", f"{lr:.3g}", f"{seconds:.1f}"]
            )


def _atomic_save(state: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def plot_loss_curve(run_dir: Path) -> Path | None:
    """Training and validation loss per epoch as RUN_DIR/loss_curve.png."""
    log = run_dir / "training_log.csv"
    if not log.exists():
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    with log.open() as f:
        rows = list(csv.DictReader(f))
    epochs = [int(r["epoch"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [float(r["train_loss"]) for r in rows], label="train")
    ax.plot(epochs, [float(r["val_loss"]) for r in rows], label="validation")
    ax.set(xlabel="epoch", ylabel="loss", yscale="log", title=run_dir.name)
    ax.legend()
    fig.tight_layout()
    out = run_dir / "loss_curve.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def load_run(
    run_dir: str | os.PathLike, device: str = "cpu", checkpoint: str = "best.pt"
) -> tuple[PoseNet, dict, TrainConfig]:
    """A trained model in eval mode, its run.json and its config."""
    from posestream.train.config import load_config

    run_dir = Path(run_dir)
    for name in ("config.yaml", "run.json", checkpoint):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir}: not a training run directory (no {name})")
    config = load_config(config_file=run_dir / "config.yaml")
    run = json.loads((run_dir / "run.json").read_text())
    skeleton = run["skeleton"]
    model = build_model(config, run["channels"], len(skeleton["nodes"]), len(skeleton["edges"]))
    try:
        state = torch.load(run_dir / checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
    except Exception as exc:  # a truncated file, other weights
        raise ConfigError(
            f"{run_dir / checkpoint}: cannot load the weights ({type(exc).__name__}: {exc})"
        ) from exc
    return model.to(device).eval(), run, config
