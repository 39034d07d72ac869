"""The training loop: epochs of augmented batches, validation, LR schedule, early stopping,
checkpoints and logs, resumable from the run directory.

RUN_DIR holds:
    config.yaml        the resolved configuration (crop size filled in)
    run.json           what inference needs: skeleton, input geometry, heads, split
    best.pt, last.pt   weights (last.pt also optimiser/scheduler state), loadable with weights_only=True
    training_log.csv, loss_curve.png, summary.json   what the run tells its user (train/report.py)

best.pt holds the weights with the best validation OKS mAP (measured every ``optim.map_every_minutes`` and
at the end; before the first measurement, and for a centroid model, the best validation loss).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from posestream.core.errors import ConfigError
from posestream.engine.frame_ranges import FrameRanges
from posestream.engine.progress import progress_bar
from posestream.train.checkpoint import load_checkpoint, write_checkpoint
from posestream.train.config import TrainConfig
from posestream.train.contact import CONTACT_FRACTION, ContactSampling
from posestream.train.data import InputGeometry, PoseDataset
from posestream.train.fit import animal_size, fit_to_labels
from posestream.train.host import keep_freed_memory
from posestream.train.labels import LabelSet, load_labels
from posestream.train.loader import BatchStream, collate
from posestream.train.loss import training_loss
from posestream.train.metrics import Report
from posestream.train.models import build_model, head_specs
from posestream.train.precision import choose_precision
from posestream.train.report import PHASES, BestMap, TrainResult, append_log, plot_curves
from posestream.train.schedule import CosineToDeadline, make_schedule
from posestream.train.validation import scores_map, validation_report


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


def identity_classes(labels: LabelSet, config: TrainConfig) -> tuple[list[str], str]:
    """An identity model's classes (the labels' tracks, in order) and a line saying what they are and how many
    labelled animals have none (their poses train, their class does not); no classes otherwise."""
    if not config.head.classes:
        return [], ""
    counts = np.bincount(
        np.concatenate([f.track_ids for f in labels.frames]) + 1, minlength=len(labels.track_names) + 1
    )  # (1 + n_classes,): untracked first
    if len(labels.track_names) < 2 or not counts[1:].any():
        raise ConfigError(
            f"{config.labels}: an identity model (head.classes) learns one class per track, and these labels "
            f"have {len(labels.track_names)} track(s) with {int(counts[1:].sum())} tracked instance(s); "
            "give labels whose instances carry tracks (two or more), or train a pose-only profile"
        )
    names = ", ".join(f"{name} ({n})" for name, n in zip(labels.track_names, counts[1:]))
    note = f"identities: {len(labels.track_names)} classes from the labels' tracks: {names}"
    if counts[0]:
        note += f"; {counts[0]} labelled animals have no track: their poses train, their class is ignored"
    return list(labels.track_names), note


class Trainer:
    """Trains one model; ``run()`` returns when training ends (stopping rule, time budget, max epochs, or
    ``request_stop`` from another thread or a signal handler)."""

    def __init__(self, config: TrainConfig, run_dir: str | os.PathLike, progress: bool = True):
        self.config, self.run_dir, self.progress = config, Path(run_dir), progress
        self.device = resolve_device(config.device)
        self.allocator = keep_freed_memory()
        torch.manual_seed(config.seed)
        labels = load_labels(config.labels, config.video_paths, config.data.frames)
        if config.model_type == "bottomup" and not config.head.classes and not labels.skeleton.edges:
            raise ConfigError(
                f"{config.labels}: its skeleton has no edges, and a bottom-up model groups nodes along "
                "them (part affinity fields); add edges to the skeleton (for DeepLabCut labels, give the "
                "project's config.yaml, whose skeleton has them), or train single_instance or the top-down "
                "pair"
            )
        began = time.perf_counter()
        labels.load_images()
        self.decoded = (len(labels), time.perf_counter() - began, labels.image_bytes)  # frames, s, bytes
        self.skeleton = labels.skeleton
        self.class_names, self.class_note = identity_classes(labels, config)
        self.train_labels, self.val_labels = split_labels(labels, config)
        self.fitted = fit_to_labels(config, self.train_labels)  # what was chosen for these labels, and why
        self.geometry = InputGeometry.for_config(config, self.train_labels)
        config.head.crop_size = self.geometry.crop_size or config.head.crop_size
        self.channels = labels.channels
        self.precision = choose_precision(config.precision, self.device)
        self.workers = BatchStream.workers_for(config.data, self.device)
        self.memory_format = torch.channels_last if self.precision.channels_last else torch.contiguous_format
        self.model = build_model(
            config, self.channels, self.skeleton.n_nodes, len(self.skeleton.edges), len(self.class_names)
        )
        self.model = self.model.to(self.device, memory_format=self.memory_format)
        self.train_set = PoseDataset(self.train_labels, config, self.geometry, augment=True, seed=config.seed)
        self.val_set = PoseDataset(self.val_labels, config, self.geometry, augment=False)
        self.optimizer = self._optimizer()
        self.contact = self._contact_sampling()
        self.steps_per_epoch = BatchStream.steps_for(
            len(self.train_set), config.data.batch_size, config.optim.steps_per_epoch, self._repeats()
        )
        self.schedule = make_schedule(
            self.optimizer, config.optim, self.steps_per_epoch * config.optim.max_epochs
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision.scaled)
        self.epoch, self.best_val, self.stale_epochs = 0, math.inf, 0
        self.best_map = BestMap()
        # wall seconds of training so far, resumes included (what --max-minutes counts)
        self.trained_seconds = 0.0
        self.stop_requested = False

    def _contact_sampling(self) -> ContactSampling | None:
        """How often each training example is drawn an epoch (``data.contact_repeats``); None: once each."""
        data = self.config.data
        if data.contact_repeats == 1:
            return None
        try:
            distance = data.contact_px or CONTACT_FRACTION * animal_size(self.train_labels)
        except ConfigError as error:  # fit.py's message names the settings of the input scale instead
            raise ConfigError(
                f"{self.train_labels.labels_path}: no labelled animal has two visible points, so the "
                "animals' size, which data.contact_px defaults from, is unknown; set data.contact_px"
            ) from error
        return ContactSampling.of(self.train_set.contact_gaps(), distance, data.contact_repeats)

    def _repeats(self) -> np.ndarray | None:
        return None if self.contact is None else self.contact.repeats

    def request_stop(self) -> None:
        """End the run after the step under way, kept in last.pt (``run`` then returns "interrupted")."""
        self.stop_requested = True

    def describe(self) -> str:
        """What this run will do, in the words a user checks before leaving it running."""
        precision = self.precision
        arithmetic = f"{precision.name}{', channels-last' if precision.channels_last else ''}"
        workers = self.workers
        making = (
            f"{workers} worker process{'es' if workers != 1 else ''}" if workers else "the training process"
        )
        optim = self.config.optim
        frames, seconds, size = self.decoded
        lines = [
            f"training {self.config.model_type} on {len(self.train_labels)} frames ({len(self.train_set)} "
            f"examples; {len(self.val_labels)} frames for validation), input {self.geometry.input_shape}"
            + self._crops()
            + f", device {self.device}",
            f"arithmetic {arithmetic}; examples made by {making}; {torch.get_num_threads()} threads for the "
            f"network; learning rate {optim.learning_rate:g}, {self.schedule.describe()}",
            f"frames: {frames} decoded once in {seconds:.1f} s, {size / 1e6:.0f} MB kept in memory"
            + (" (shared with the workers)" if workers else "")
            + (f"; {self.allocator}" if self.allocator else ""),
        ]
        lines.append(self._network())
        lines += [f"fitted to the labels: {reason}" for reason in self.fitted]
        lines += [self._flips()] if self.config.augment.flip else []
        lines += [self.contact.describe()] if self.contact else []
        lines += [self.class_note] if self.class_note else []
        if precision.note:
            lines.append(f"note: {precision.note}")
        return "\n".join(lines)

    def _network(self) -> str:
        """The backbone and its size, in the words of the config."""
        backbone = self.config.backbone
        kind = backbone.type if backbone.type == "unet" else f"{backbone.type} {backbone.size}"
        params = sum(p.numel() for p in self.model.parameters()) / 1e6
        start = f", ImageNet weights from {backbone.pretrained}" if backbone.pretrained else ""
        return f"network: {kind} backbone, {params:.1f} M parameters{start}"

    def _flips(self) -> str:
        """What ``augment.flip`` does with this skeleton: which node pairs it swaps, or why it cannot flip."""
        skeleton = self.train_labels.skeleton
        if not self.train_set.can_flip:
            why = "data.symmetries is none" if skeleton.symmetries else "the skeleton has no left/right pairs"
            return f"flips: none, although augment.flip is on: {why}"
        pairs = [f"{skeleton.nodes[a]}/{skeleton.nodes[b]}" for a, b in skeleton.symmetries]
        more = f" and {len(pairs) - 4} more" if len(pairs) > 4 else ""
        return f"flips: left/right half the time, swapping {', '.join(pairs[:4])}{more}"

    def _crops(self) -> str:
        """What crop sampling trains on, if it is on."""
        shape, augment = self.geometry.train_shape, self.config.augment
        if not shape:
            return ""
        return (
            f" (training on {shape[0]}x{shape[1]} crops: {augment.crop_sampling} sampling, "
            f"{augment.crop_ratio:g} of them placed by it, shifted up to {augment.max_shift:g} of a side)"
        )

    def _optimizer(self) -> torch.optim.Optimizer:
        optim = self.config.optim
        cls = torch.optim.AdamW if optim.optimizer == "adamw" else torch.optim.Adam
        # fused: one kernel for all parameters (CPU and CUDA)
        params = self.model.parameters()
        return cls(params, lr=optim.learning_rate, weight_decay=optim.weight_decay, fused=True)

    # -- run directory ------------------------------------------------------

    def write_run_files(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(self.config.to_yaml())
        (self.run_dir / "run.json").write_text(json.dumps(self.run_info(), indent=2))

    def run_info(self) -> dict:
        """RUN_DIR/run.json: what inference and evaluation need besides the weights."""
        return {
            "model_type": self.config.model_type,
            "skeleton": self.skeleton.to_dict(),
            "channels": self.channels,
            "geometry": asdict(self.geometry),
            "heads": [
                asdict(h)
                for h in head_specs(
                    self.config, self.skeleton.n_nodes, len(self.skeleton.edges), len(self.class_names)
                )
            ],
            "class_names": list(self.class_names),
            "labels": str(Path(self.config.labels).resolve()),  # absolute: evaluate works from any folder
            "video_paths": [str(Path(v).resolve()) for v in self.train_labels.video_paths],
            "train_frames": [f.frame_idx for f in self.train_labels.frames],
            "val_frames": [f.frame_idx for f in self.val_labels.frames],
            "config_hash": self.config.fingerprint(),
        }

    def save_checkpoint(self, best: bool) -> None:
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "epoch": self.epoch,
            "best_val": self.best_val,
            "stale_epochs": self.stale_epochs,
            "best_map": asdict(self.best_map),
            "trained_seconds": self.trained_seconds,
        }
        write_checkpoint(state, self.run_dir / "last.pt")
        if best:
            weights = {"model": self.model.state_dict(), "epoch": self.epoch}
            write_checkpoint(weights, self.run_dir / "best.pt")

    def resume(self, learning_rate: float | None = None) -> None:
        """Continue from RUN_DIR/last.pt; ``learning_rate`` replaces the saved one (fine-tuning a run) under
        the plateau schedule. Under the cosine schedule the rate is the curve's, whose peak is the config's
        ``optim.learning_rate``: the saved rate tells it where a continued run climbs back from."""
        path = self.run_dir / "last.pt"
        if not path.exists():
            raise FileNotFoundError(f"{path}: nothing to resume (no last.pt in {self.run_dir})")
        fix = f"resume with the network settings the run was trained with ({self.run_dir / 'config.yaml'})"
        state = load_checkpoint(path, self.model, self.device, fix)
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:  # the moments are the run's; its settings are the config's
            group["weight_decay"] = self.config.optim.weight_decay
        self.schedule.load_state_dict(state["scheduler"])
        if learning_rate is not None and not isinstance(self.schedule, CosineToDeadline):
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate
        self.epoch, self.best_val, self.stale_epochs = (
            int(state["epoch"]),
            float(state["best_val"]),
            int(state["stale_epochs"]),
        )
        self.best_map = BestMap(**state.get("best_map", {}))  # runs before 0.2 measured no mAP
        self.trained_seconds = float(state.get("trained_seconds", 0.0))

    def init_weights(self, source_run: str | os.PathLike) -> None:
        """Start from the weights of another run (its best.pt): fine-tuning on new labels.

        The network must be the same shape; the optimiser, epochs and best loss start afresh.
        """
        source_run = Path(source_run)
        path = source_run / "best.pt"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no weights to start from (is {source_run} a training run?)")
        fix = (
            f"train with the network settings of {source_run / 'config.yaml'} (e.g. --config "
            f"{source_run / 'config.yaml'})"
        )
        load_checkpoint(path, self.model, self.device, fix)

    # -- training -----------------------------------------------------------

    def run(self) -> TrainResult:
        optim = self.config.optim
        self.write_run_files()
        self.started, self.spent_before = time.monotonic(), self.trained_seconds
        budget = optim.max_minutes * 60 - self.trained_seconds if optim.max_minutes else math.inf
        deadline = self.started + budget
        self.seconds, self.samples, self.last_map = dict.fromkeys(PHASES, 0.0), 0, self.started
        reason = "max_epochs" if self.epoch >= optim.max_epochs else "max_minutes" if budget <= 0 else None
        if reason is not None:  # a resumed run with its budget spent: the run that spent it keeps its summary
            return self._result(reason)
        self.schedule.start(self.trained_seconds, self.epoch * self.steps_per_epoch)
        stream = BatchStream(
            self.train_set,
            self.config.data,
            self.config.seed,
            self.epoch,
            optim.steps_per_epoch,
            self.workers,
            self._repeats(),
        )
        with stream:
            while reason is None:
                reason = self._epoch(stream, deadline)
        plot_curves(self.run_dir)
        result = self._result(reason)
        (self.run_dir / "summary.json").write_text(result.to_json(self._settings()))
        return result

    def _result(self, reason: str) -> TrainResult:
        return TrainResult(
            self.run_dir, self.epoch, self.best_val, reason, self.samples, dict(self.seconds), self.best_map
        )

    def _epoch(self, stream: BatchStream, deadline: float) -> str | None:
        """Train one epoch, validate, keep the checkpoints and log it; why the run stops now, or None."""
        started = time.monotonic()
        train_loss, finished = self._train_epoch(stream, deadline)
        if train_loss is None or self.stop_requested:  # no step in budget, or stopped: keep the run as is
            self.trained_seconds = self.spent_before + time.monotonic() - self.started
            self.save_checkpoint(best=False)  # a resumed run continues from here, knowing what it spent
            return "interrupted" if self.stop_requested else "max_minutes"
        val_loss = self._evaluate(self.val_set) if len(self.val_set) else train_loss
        self.epoch += 1
        self.schedule.after_epoch(val_loss)
        improved = val_loss < self.best_val
        self.best_val, self.stale_epochs = (
            (val_loss, 0) if improved else (self.best_val, self.stale_epochs + 1)
        )
        reason = self._stop_reason(finished and time.monotonic() < deadline)
        scores = self._measure_map() if reason or self._map_due() else None
        identity = scores.identity.accuracy if scores and scores.identity else None
        if scores is not None:
            best = scores.mAP > self.best_map.value
            if best:
                minutes = (time.monotonic() - self.started) / 60
                self.best_map = BestMap(scores.mAP, self.epoch, minutes, identity)
        else:  # the loss decides until a first mAP exists (and always for a centroid model)
            best = improved and self.best_map.value < 0
        self.trained_seconds = self.spent_before + time.monotonic() - self.started
        self.save_checkpoint(best=best)
        row = {"epoch": self.epoch, "train_loss": f"{train_loss:.6g}", "val_loss": f"{val_loss:.6g}"}
        row["learning_rate"] = f"{self.optimizer.param_groups[0]['lr']:.3g}"
        row["seconds"] = f"{time.monotonic() - started:.1f}"
        row["val_map"] = "" if scores is None else f"{scores.mAP:.4f}"
        row["val_identity"] = "" if identity is None else f"{identity:.4f}"
        append_log(self.run_dir, row)
        return reason

    def _stop_reason(self, in_budget: bool) -> str | None:
        optim = self.config.optim
        if not in_budget:
            return "max_minutes"
        if self.epoch >= optim.max_epochs:
            return "max_epochs"
        patience = self.schedule.early_stopping_patience
        if patience is not None and self.stale_epochs >= patience:
            return "early_stopping"
        return None

    def _map_due(self) -> bool:
        every = self.config.optim.map_every_minutes
        return every is not None and time.monotonic() - self.last_map >= every * 60

    def _measure_map(self) -> Report | None:
        """Validation scores now (OKS mAP; an identity model's identity accuracy), or None where a run is not
        scored by mAP (train/validation.py)."""
        if not scores_map(self.config, self.val_labels):
            return None
        self.last_map = time.monotonic()
        info, run_dir, device = self.run_info(), self.run_dir, self.device
        return validation_report(self.model, info, self.config, run_dir, device, self.val_labels)

    def _settings(self) -> dict:
        """How this run trained, for summary.json."""
        decoded_frames, decoded_seconds, decoded_bytes = self.decoded
        return {
            "batch_size": self.config.data.batch_size,
            "precision": self.precision.name,
            "channels_last": self.precision.channels_last,
            "workers": self.workers,
            "threads": torch.get_num_threads(),
            "decoded": {"frames": decoded_frames, "seconds": decoded_seconds, "bytes": decoded_bytes},
        }

    def _train_epoch(self, stream: BatchStream, deadline: float) -> tuple[float | None, bool]:
        """One epoch; returns (mean loss or None if no step ran, whether it ran to the end)."""
        self.model.train()
        losses = []
        label = f"epoch {self.epoch + 1}/{self.config.optim.max_epochs}"
        with progress_bar(stream.steps_per_epoch, label, enabled=self.progress) as advance:
            for _ in range(stream.steps_per_epoch):
                # an epoch that was started takes one step at least, so the run's last epoch is scored
                if (losses and time.monotonic() > deadline) or self.stop_requested:
                    return (float(np.mean(losses)) if losses else None), False
                began = time.perf_counter()
                images, *targets = stream.next()
                self.seconds["data"] += time.perf_counter() - began
                losses.append(self._step(images, targets))
                self.samples += len(images)
                self.schedule.after_step()
                advance(status=f"loss {np.mean(losses[-20:]):.3g}")
        return float(np.mean(losses)), True

    def _step(self, images: torch.Tensor, targets: list[torch.Tensor]) -> float:
        """One optimiser step; adds its forward, backward and step seconds to ``self.seconds``."""
        clock = time.perf_counter()
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        targets = [self._on_device(t) for t in targets]
        with self._autocast():
            predictions = self.model(images)
        loss = training_loss(predictions, tuple(targets), self.config)
        clock = self._lap("forward", clock)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        clock = self._lap("backward", clock)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        value = float(loss.detach())
        self._lap("step", clock)
        return value

    def _on_device(self, target: torch.Tensor) -> torch.Tensor:
        """A target on the training device, maps (B, C, h, w) in the network's memory format."""
        target = target.to(self.device, non_blocking=True)
        return target.contiguous(memory_format=self.memory_format) if target.dim() == 4 else target

    def _lap(self, phase: str, since: float) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.seconds[phase] += now - since
        return now

    def _autocast(self) -> torch.autocast:
        dtype = self.precision.dtype
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    @torch.no_grad()
    def _evaluate(self, dataset: PoseDataset) -> float:
        self.model.eval()
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=self.config.data.batch_size, collate_fn=collate
        )
        total, count = 0.0, 0
        for batch in loader:
            images, *targets = BatchStream.checked(batch)
            with self._autocast():
                predictions = self.model(images.to(self.device).contiguous(memory_format=self.memory_format))
            targets = (self._on_device(t) for t in targets)
            loss = training_loss(predictions, tuple(targets), self.config)
            total, count = total + float(loss) * len(images), count + len(images)
        return total / count
