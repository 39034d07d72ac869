"""The training loss: weighted squared error of every head's maps, plus online hard keypoint mining, and an
identity model's class loss.

Each map cell's squared error weighs ``1 + optim.foreground_weight * |target|``, so cells near a peak (or on
a limb, for part affinity fields) count more than the background that fills most of a map. A bottom-up
model's part affinity fields weigh ``optim.paf_weight`` against its confidence maps. The error is
computed by one autograd function that reads each map once and keeps one map for the backward pass (a
third of the passes of writing it out in tensor operations, which took a tenth of a bf16 step on the
bottom-up maps). An identity model's class vectors add their cross-entropy (instances without a track are left
out), its class maps their squared error, times ``optim.class_weight``.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from posestream.train.config import TrainConfig

# The class vectors' cross-entropy against the confidence maps' squared error (some 100x smaller) in the
# encoder they share. Adam scales each parameter's steps by its own gradients, so this weight sets how much
# the class loss steers the shared encoder, not how fast the class head learns. Measured on `synth
# --identities`, 2 animals, 4 epochs, scored on a held-out video with one centroid network (RESULTS.md
# "Identity models"): 0.02 left the poses at OKS mAP 0.03 (0.60 without a class head), 0.002 at 0.16
# (identity accuracy 0.81 and 0.935), 0.0002 at 0.57 with identity accuracy 0.993.
CLASS_VECTOR_WEIGHT = 2e-4


def training_loss(
    predictions: tuple[torch.Tensor, ...], targets: tuple[torch.Tensor, ...], config: TrainConfig
) -> torch.Tensor:
    """The loss of a batch: for each map head, the mean of its channels' weighted squared errors, plus the
    hardest channels' mean again when OHKM is on; for class vectors (logits (B, n_classes) against class
    indices (B,), -1 for none) their cross-entropy; each times the head's weight (heads in
    models.head_specs order: the confidence maps 1, then ``second_head_weight``)."""
    optim = config.optim
    total = predictions[0].new_zeros((), dtype=torch.float32)
    for pred, target, head_weight in zip(predictions, targets, (1.0, second_head_weight(config))):
        if target.dim() == 1:  # class vectors
            total = total + head_weight * class_vector_loss(pred, target)
            continue
        per_channel = WeightedSquaredError.apply(pred, target, optim.foreground_weight)  # (B, C)
        head = per_channel.mean()
        if optim.ohkm and per_channel.shape[1] > 1:
            k = max(1, math.ceil(optim.ohkm_fraction * per_channel.shape[1]))
            head = head + optim.ohkm_weight * per_channel.topk(k, dim=1).values.mean()
        total = total + head_weight * head
    return total


def second_head_weight(config: TrainConfig) -> float:
    """The weight of a model's second head: part affinity fields ``optim.paf_weight``, an identity model's
    class head ``optim.class_weight`` (unset: CLASS_VECTOR_WEIGHT for class vectors, 1 for class maps)."""
    optim = config.optim
    if not config.head.classes:
        return optim.paf_weight
    if optim.class_weight is not None:
        return optim.class_weight
    return 1.0 if config.model_type == "bottomup" else CLASS_VECTOR_WEIGHT


def class_vector_loss(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits (B, n_classes) against classes (B,) over the examples with a class (-1:
    an instance without a track); zero for a batch with none."""
    known = classes >= 0
    if not bool(known.any()):
        return logits.new_zeros((), dtype=torch.float32)
    return F.cross_entropy(logits[known].float(), classes[known])


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
