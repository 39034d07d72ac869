"""The training loss: weighted squared error of every head's maps, plus online hard keypoint mining.

Each map cell's squared error weighs ``1 + optim.foreground_weight * |target|``, so cells near a peak (or on
a limb, for part affinity fields) count more than the background that fills most of a map. A bottom-up
model's part affinity fields weigh ``optim.paf_weight`` against its confidence maps. The error is
computed by one autograd function that reads each map once and keeps one map for the backward pass (a
third of the passes of writing it out in tensor operations, which took a tenth of a bf16 step on the
bottom-up maps).
"""

from __future__ import annotations

import math

import torch

from posestream.train.config import TrainConfig


def map_loss(
    predictions: tuple[torch.Tensor, ...], targets: tuple[torch.Tensor, ...], config: TrainConfig
) -> torch.Tensor:
    """The loss of a batch: for each head, the mean of its channels' weighted squared errors, plus the
    hardest channels' mean again when OHKM is on, times the head's weight (the confidence maps 1, the
    part affinity fields ``optim.paf_weight``; heads in models.head_specs order)."""
    optim = config.optim
    total = predictions[0].new_zeros((), dtype=torch.float32)
    for pred, target, head_weight in zip(predictions, targets, (1.0, optim.paf_weight)):
        per_channel = WeightedSquaredError.apply(pred, target, optim.foreground_weight)  # (B, C)
        head = per_channel.mean()
        if optim.ohkm and per_channel.shape[1] > 1:
            k = max(1, math.ceil(optim.ohkm_fraction * per_channel.shape[1]))
            head = head + optim.ohkm_weight * per_channel.topk(k, dim=1).values.mean()
        total = total + head_weight * head
    return total


class WeightedSquaredError(torch.autograd.Function):
    """Per channel, the mean over cells of ``(1 + weight * |target|) * (pred - target)**2``, in fp32 whatever
    the prediction's dtype.  pred: (B, C, H, W), any float dtype; target: (B, C, H, W) float32.
    Returns (B, C) float32."""

    @staticmethod
    def forward(ctx, pred: torch.Tensor, target: torch.Tensor, weight: float) -> torch.Tensor:
        error = torch.sub(pred, target, out=torch.empty_like(target))  # fp32, in the target's layout
        weighted = torch.addcmul(error, target.abs(), error, value=weight) if weight else error
        ctx.save_for_backward(weighted)
        ctx.pred_dtype, ctx.cells = pred.dtype, pred.shape[2] * pred.shape[3]
        return (weighted * error).sum(dim=(2, 3)) / ctx.cells

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (weighted,) = ctx.saved_tensors
        scale = (grad * (2 / ctx.cells))[:, :, None, None]  # (B, C, 1, 1)
        return (weighted * scale).to(ctx.pred_dtype), None, None
