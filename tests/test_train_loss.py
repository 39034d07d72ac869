"""The fused training loss against the same formula written in tensor operations, values and gradients."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
from posestream.train.loss import training_loss  # noqa: E402


def written_out(predictions, targets, config):
    """The loss as the trainer wrote it before the fused function: the reference."""
    optim = config.optim
    total = predictions[0].new_zeros((), dtype=torch.float32)
    for pred, target, head_weight in zip(predictions, targets, (1.0, optim.paf_weight)):
        weight = 1.0 + optim.foreground_weight * target.abs()
        per_channel = (weight * (pred.float() - target) ** 2).mean(dim=(2, 3))
        total = total + head_weight * per_channel.mean()
        if optim.ohkm and per_channel.shape[1] > 1:
            k = max(1, math.ceil(optim.ohkm_fraction * per_channel.shape[1]))
            total = total + head_weight * optim.ohkm_weight * per_channel.topk(k, dim=1).values.mean()
    return total


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("weight, ohkm, paf_weight", [(20.0, False, 1.0), (0.0, True, 0.5), (5.0, True, 3.0)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_the_fused_loss_equals_the_written_out_formula(dtype, weight, ohkm, paf_weight, layout):
    optim = SimpleNamespace(
        foreground_weight=weight, ohkm=ohkm, ohkm_fraction=0.5, ohkm_weight=2.0, paf_weight=paf_weight
    )
    config = SimpleNamespace(optim=optim, head=SimpleNamespace(classes=False))
    generator = torch.Generator().manual_seed(0)
    shapes = [(3, 5, 12, 10), (3, 4, 6, 5)]  # a confidence-map head and a PAF head at half the size
    raw = [torch.randn(s, generator=generator) for s in shapes]
    targets = [torch.rand(s, generator=generator).contiguous(memory_format=layout) for s in shapes]
    results = []
    for loss in (written_out, training_loss):
        predictions = [r.to(dtype).contiguous(memory_format=layout).requires_grad_() for r in raw]
        value = loss(predictions, targets, config)
        value.backward()
        results.append((value.detach(), [p.grad for p in predictions]))
    (reference, reference_grads), (fused, fused_grads) = results
    assert fused.dtype == torch.float32
    torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-6)
    for got, want in zip(fused_grads, reference_grads):
        assert got.dtype == dtype
        tolerance = {"rtol": 1e-2, "atol": 1e-3} if dtype == torch.bfloat16 else {}
        torch.testing.assert_close(got, want, **tolerance)
