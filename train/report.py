"""What a training run tells its user: the per-epoch log, the loss and mAP curve, and the closing summary.

RUN_DIR/training_log.csv   one row per epoch (LOG_FIELDS; val_map empty where it was not measured;
                           val_identity also where the model has no classes)
RUN_DIR/loss_curve.png     training and validation loss per epoch, validation mAP beside them
RUN_DIR/summary.json       the run's throughput, where its time went, its best mAP (benchmarks read it)
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

LOG_FIELDS = ["epoch", "train_loss", "val_loss", "learning_rate", "seconds", "val_map", "val_identity"]
PHASES = ("data", "forward", "backward", "step")  # where a training step's time goes


@dataclass
class BestMap:
    """The best validation OKS mAP so far, and when it was reached."""

    value: float = -1.0  # -1: never measured
    epoch: int = 0
    minutes: float = 0.0  # since the start of this run's training
    identity: float | None = None  # an identity model's identity accuracy there


@dataclass
class TrainResult:
    run_dir: Path
    epochs: int
    best_val_loss: float
    stopped_because: str
    samples: int = 0  # training examples seen in this run
    seconds: dict[str, float] = field(default_factory=dict)  # PHASES -> seconds in this run
    best_map: BestMap = field(default_factory=BestMap)

    @property
    def samples_per_second(self) -> float:
        total = sum(self.seconds.values())
        return self.samples / total if total else 0.0

    def summary(self) -> str:
        """What a user reads at the end of ``posestream train``."""
        total = sum(self.seconds.values()) or 1.0
        split = ", ".join(f"{phase} {100 * self.seconds.get(phase, 0.0) / total:.0f}%" for phase in PHASES)
        best = self.best_map
        lines = [
            f"{self.run_dir}: {self.epochs} epochs, best validation loss {self.best_val_loss:.4g}, "
            f"stopped by {self.stopped_because}",
            f"{self.samples} examples in {total / 60:.1f} min of steps = {self.samples_per_second:.1f} "
            f"examples/s ({split})"
            if self.samples
            else "nothing trained: the run's budget was spent already; continue it with a larger "
            "--max-minutes or --max-epochs (summary.json keeps the figures of the run that spent it)",
        ]
        if best.value >= 0:
            named = "" if best.identity is None else f", identity accuracy {best.identity:.3f}"
            lines.append(
                f"best validation OKS mAP {best.value:.3f}{named} at epoch {best.epoch} ({best.minutes:.1f} "
                "min in): best.pt"
            )
        lines.append(f"curves: {self.run_dir / 'loss_curve.png'}")
        return "\n".join(lines)

    def to_json(self, extra: dict) -> str:
        fields = {
            "epochs": self.epochs,
            "stopped_because": self.stopped_because,
            "best_val_loss": self.best_val_loss,
            "best_map": asdict(self.best_map),
            "samples": self.samples,
            "samples_per_second": self.samples_per_second,
            "seconds": self.seconds,
        }
        return json.dumps({**fields, **extra}, indent=2)


def append_log(run_dir: Path, row: dict) -> None:
    """One epoch's row of training_log.csv (a log of an older run gets today's columns first)."""
    path = run_dir / "training_log.csv"
    rows = []
    if path.exists():
        with path.open() as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != LOG_FIELDS:
                rows = list(reader)
    if rows or not path.exists():
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, LOG_FIELDS, restval="")
            writer.writeheader()
            writer.writerows(rows)
    with path.open("a", newline="") as f:
        csv.DictWriter(f, LOG_FIELDS, restval="").writerow(row)


def plot_curves(run_dir: Path) -> Path | None:
    """Training and validation loss per epoch, and the validation mAP where measured: loss_curve.png."""
    log = run_dir / "training_log.csv"
    if not log.exists():
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    with log.open() as f:
        rows = list(csv.DictReader(f))
    epochs = [int(r["epoch"]) for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(epochs, [float(r["train_loss"]) for r in rows], label="train loss")
    ax.plot(epochs, [float(r["val_loss"]) for r in rows], label="validation loss")
    ax.set(xlabel="epoch", ylabel="loss", yscale="log", title=run_dir.name)
    scored = [(int(r["epoch"]), float(r["val_map"])) for r in rows if r.get("val_map")]
    if scored:
        right = ax.twinx()
        right.plot(*zip(*scored), "o-", color="tab:green", label="validation OKS mAP")
        right.set(ylabel="OKS mAP", ylim=(0, 1))
        right.legend(loc="upper right")
    ax.legend(loc="upper left" if scored else "best")
    fig.tight_layout()
    out = run_dir / "loss_curve.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
