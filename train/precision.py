"""The arithmetic a training run uses: its autocast dtype and memory format, chosen for the hardware.

bf16 autocast with channels-last tensors lets oneDNN run the convolutions in bf16 on CPUs with AVX-512 BF16
or AMX (2-2.6x the fp32 NCHW speed here, measured in benchmarks/train_speed.py). fp32 is the reference
path: no autocast, NCHW, as every run before 0.2 trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Precision:
    """What ``config.precision`` resolved to on this device."""

    name: str  # "fp32", "bf16" or "fp16"
    channels_last: bool
    note: str = ""  # why it differs from what was asked, in one line ("" when it does not)

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype (None: no autocast)."""
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.name)

    @property
    def scaled(self) -> bool:
        """Whether gradients need loss scaling (fp16 only)."""
        return self.name == "fp16"


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX) and torch dispatches to those kernels
    (``ATEN_CPU_CAPABILITY=avx2`` turns them off, and so does this)."""
    dispatch = torch.backends.cpu.get_cpu_capability()
    return dispatch.startswith(("AVX512", "AMX")) and (
        torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    )


def choose_precision(asked: str, device: torch.device) -> Precision:
    """``asked`` ("auto", "fp32", "bf16", "fp16") on ``device``; falls back to fp32, with a note, where the
    hardware lacks it."""
    if asked == "fp32":
        return Precision("fp32", channels_last=False)
    if device.type == "cuda":
        return _on_cuda(asked, device)
    if asked == "fp16":
        return Precision("fp32", False, "fp16 training is for CUDA; this CPU trains in fp32")
    if cpu_has_bf16():
        return Precision("bf16", channels_last=True)
    capability = torch.backends.cpu.get_cpu_capability()
    return Precision(
        "fp32", False, f"this CPU ({capability}) has no native bf16 (AVX-512 BF16 or AMX): training in fp32"
    )


def _on_cuda(asked: str, device: torch.device) -> Precision:
    bf16 = torch.cuda.is_bf16_supported()
    if asked == "bf16" and not bf16:
        return Precision("fp16", True, f"{torch.cuda.get_device_name(device)} has no bf16: training in fp16")
    if asked == "auto":
        return Precision("bf16" if bf16 else "fp16", channels_last=True)
    return Precision(asked, channels_last=True)
