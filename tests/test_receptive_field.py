"""preview-rf: the receptive field computed from a config equals the one of the network itself, and the
command writes a PNG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sleap_io")
from posestream.train.backbones.unet import UNet  # noqa: E402
from posestream.train.config import BackboneConfig  # noqa: E402
from posestream.train.receptive_field import receptive_field  # noqa: E402

POSESTREAM = str(Path(sys.executable).with_name("posestream"))


def measured_fields(backbone: BackboneConfig, output_stride: int) -> list[int]:
    """How many input columns reach each of 4 neighbouring output locations of a UNet with positive weights
    and no biases: on a black frame every activation is exactly 0, and one bright pixel makes positive
    every activation it reaches (ReLUs pass it, max pooling picks it), however small, and nothing else."""
    torch.manual_seed(0)
    net = UNet(1, backbone, [output_stride]).eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                module.weight.uniform_(0.5, 1.0)
                if module.bias is not None:
                    module.bias.zero_()
        margin = receptive_field(backbone, output_stride) + 8 * output_stride + 2 * backbone.max_stride
        size = -(-margin // backbone.max_stride) * backbone.max_stride
        frames = torch.zeros(size, 1, size, size)
        frames[torch.arange(size), 0, size // 2, torch.arange(size)] = 100.0  # one bright pixel per column
        centre = size // output_stride // 2
        out = net(frames)[output_stride][:, :, centre, centre : centre + 4]  # (columns, channels, 4)
    reached = (out > 0).any(dim=1).numpy()
    return [int(np.ptp(np.flatnonzero(reached[:, k])) + 1) for k in range(4)]


@pytest.mark.parametrize(
    "max_stride,convs,middle,interpolate,stride",
    [
        (8, 2, True, True, 2),
        (16, 2, True, True, 4),
        (8, 1, False, True, 1),
        (8, 2, True, False, 2),
        (4, 3, True, False, 4),
    ],
)
def test_receptive_field_is_the_networks(max_stride, convs, middle, interpolate, stride):
    backbone = BackboneConfig(
        filters=1,
        filters_rate=1.0,
        max_stride=max_stride,
        convs_per_block=convs,
        middle_block=middle,
        up_interpolate=interpolate,
    )
    # bilinear upsampling reaches one more coarse pixel on the left or the right, by position: the field
    # varies by a few pixels with the output location, and the computed one is its average
    assert receptive_field(backbone, stride) == np.mean(measured_fields(backbone, stride))


def test_preview_rf_writes_a_png(tmp_path, synth_gray):
    out, _ = synth_gray
    result = subprocess.run(
        [
            POSESTREAM,
            "preview-rf",
            str(out.slp),
            "--profile",
            "bottomup",
            "--set",
            "data.input_scale=0.5",
            "-o",
            str(tmp_path / "rf.png"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "receptive field" in result.stdout and "at input scale 0.5" in result.stdout
    assert (tmp_path / "rf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = subprocess.run(
        [POSESTREAM, "preview-rf", str(out.slp), "-o", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "--profile or --config" in result.stderr
