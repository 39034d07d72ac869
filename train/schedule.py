"""The learning-rate schedule: one object the trainer calls after every step and every epoch.

- ``cosine``: a short warm-up from the floor, then cosine annealing that reaches the floor
  (``optim.min_learning_rate``) at the deadline (``--max-minutes``) or at the last epoch, so a run cut by
  its budget spends its last minutes at a low rate instead of ending mid-descent. The budget counts the
  whole run: a resumed run continues the same curve. A run continued to a longer budget (``train --resume
  --max-minutes`` more) had annealed to the floor; it climbs back to the new curve over the warm-up share,
  as a fresh run does, instead of jumping from the floor to half the peak rate in one step.
- ``plateau``: the rate drops by ``optim.plateau_factor`` when the validation loss stalls.

Early stopping belongs with the schedule: ``optim.early_stopping_patience`` null stops after 10 stalled
epochs under ``plateau``, and never under ``cosine`` (the run ends where the rate does, by design).
"""

from __future__ import annotations

import math
import time

import torch

from posestream.train.config import OptimConfig

PLATEAU_STOPPING_PATIENCE = 10  # stalled epochs that end a plateau-scheduled run by default
REWARM_BELOW = 0.5  # a resumed run whose rate is under this share of the curve's climbs back to it


def _describe_stopping(patience: int | None) -> str:
    if patience is None:
        return "no early stopping"
    return f"early stopping after {patience} epochs without a better validation loss"


class CosineToDeadline:
    """Warm-up, then cosine annealing from ``learning_rate`` to ``min_learning_rate`` over the budget:
    ``total_steps`` steps (the last epoch's), or the wall-clock minutes from ``start()`` when ``max_minutes``
    is set and they run out first."""

    def __init__(self, optimizer: torch.optim.Optimizer, optim: OptimConfig, total_steps: int):
        self.optimizer, self.optim, self.total_steps = optimizer, optim, max(total_steps, 1)
        self.started, self.steps = time.monotonic(), 0
        self.rewarm: tuple[float, float] | None = None
        self._apply(0.0)

    def start(self, spent_seconds: float = 0.0, spent_steps: int = 0) -> None:
        """The run's first step is now, with ``spent_*`` of the budget spent before (a resumed run). A resumed
        run whose rate (the optimizer's, as saved) is well under the curve's climbs back to it."""
        saved = self.optimizer.param_groups[0]["lr"]
        self.started, self.steps = time.monotonic() - spent_seconds, spent_steps
        resumed = self.progress()
        self.rewarm = None
        if 0 < resumed < 1 and saved < REWARM_BELOW * self.curve(resumed):
            self.rewarm = (resumed, saved)  # (progress, rate) the climb starts from
        self._apply(resumed)

    def progress(self) -> float:
        """Share of the budget spent, 0 to 1: of the steps, or of the minutes where they are spent sooner."""
        steps = min(self.steps / self.total_steps, 1.0)
        if not self.optim.max_minutes:
            return steps
        return max(min((time.monotonic() - self.started) / (self.optim.max_minutes * 60), 1.0), steps)

    def after_step(self) -> None:
        self.steps += 1
        self._apply(self.progress())

    def after_epoch(self, val_loss: float) -> None:
        """Nothing: the rate follows the budget, not the loss."""

    def describe(self) -> str:
        budget = f"{self.total_steps} steps"
        if self.optim.max_minutes:
            budget = f"{self.optim.max_minutes:g} min, or {budget} if sooner"
        return (
            f"warm-up, then cosine annealing to {self.optim.min_learning_rate:g} at the end of the budget "
            f"({budget}); {_describe_stopping(self.early_stopping_patience)}"
        )

    @property
    def early_stopping_patience(self) -> int | None:
        """Stalled epochs that end the run; None (the default): never, the run ends where the rate does."""
        return self.optim.early_stopping_patience

    def rate(self, progress: float) -> float:
        """The learning rate at ``progress`` (0 to 1) of the budget: the curve, or the climb back to it over
        the warm-up share after a resume from below it."""
        curve, warmup = self.curve(progress), self.optim.warmup_fraction
        if self.rewarm is None or warmup == 0:
            return curve
        since, low = self.rewarm
        climbed = min(max((progress - since) / warmup, 0.0), 1.0)
        return low + (curve - low) * climbed

    def curve(self, progress: float) -> float:
        """Warm-up from the floor, then cosine annealing to it, at ``progress`` (0 to 1) of the budget."""
        peak, floor, warmup = (
            self.optim.learning_rate,
            self.optim.min_learning_rate,
            self.optim.warmup_fraction,
        )
        if progress < warmup:
            return floor + (peak - floor) * progress / warmup
        annealed = (progress - warmup) / (1 - warmup)
        return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * annealed))

    def _apply(self, progress: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.rate(progress)

    def state_dict(self) -> dict:
        return {"kind": "cosine"}

    def load_state_dict(self, state: dict) -> None:
        """Nothing: a resumed run continues by the budget it has spent (``start``)."""


class OnPlateau:
    """The rate drops when the validation loss stops improving (torch's ReduceLROnPlateau)."""

    def __init__(self, optimizer: torch.optim.Optimizer, optim: OptimConfig):
        self.optim = optim
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min",
            factor=optim.plateau_factor,
            patience=optim.plateau_patience,
            min_lr=optim.min_learning_rate,
        )

    def start(self, spent_seconds: float = 0.0, spent_steps: int = 0) -> None:
        """Nothing: the plateau rule has no budget."""

    def progress(self) -> float:
        return 0.0

    def after_step(self) -> None:
        """Nothing: the rate changes between epochs."""

    def after_epoch(self, val_loss: float) -> None:
        self.scheduler.step(val_loss)

    @property
    def early_stopping_patience(self) -> int:
        """Stalled epochs that end the run."""
        chosen = self.optim.early_stopping_patience
        return PLATEAU_STOPPING_PATIENCE if chosen is None else chosen

    def describe(self) -> str:
        rule = self.scheduler
        return (
            f"times {rule.factor:g} after {rule.patience} epochs without a better validation loss; "
            f"{_describe_stopping(self.early_stopping_patience)}"
        )

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Where the rule stands (best loss, stalled epochs), under the config's factor, patience and floor:
        ``--resume --set optim.plateau_*`` changes them."""
        if state.get("kind") != "cosine":
            self.scheduler.load_state_dict(state)
        rule, optim = self.scheduler, self.optim
        rule.factor, rule.patience = optim.plateau_factor, optim.plateau_patience
        rule.min_lrs = [optim.min_learning_rate] * len(rule.min_lrs)


def make_schedule(
    optimizer: torch.optim.Optimizer, optim: OptimConfig, total_steps: int
) -> CosineToDeadline | OnPlateau:
    """``optim.schedule``: "auto" anneals to the deadline when the run has one (``max_minutes``)."""
    kind = optim.schedule
    if kind == "auto":
        kind = "cosine" if optim.max_minutes else "plateau"
    if kind == "cosine":
        return CosineToDeadline(optimizer, optim, total_steps)
    return OnPlateau(optimizer, optim)
