"""Networks: output shapes per head, both upsampling kinds, and traceable forward passes."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from posestream.train.config import load_config
from posestream.train.models import build_model

TINY = ["backbone.filters=4", "backbone.max_stride=8"]


@pytest.mark.parametrize("profile", ["single_instance", "centroid", "centered_instance", "bottomup"])
@pytest.mark.parametrize("up_interpolate", [True, False])
def test_output_shapes(profile, up_interpolate):
    config = load_config(
        profile,
        overrides=[
            *TINY,
            f"backbone.up_interpolate={str(up_interpolate).lower()}",
            "head.output_stride=2",
            "head.paf_output_stride=4",
        ],
    )
    model = build_model(config, in_channels=3, n_nodes=5, n_edges=4).eval()
    outputs = model(torch.rand(2, 3, 64, 48))
    channels = 1 if profile == "centroid" else 5
    assert outputs[0].shape == (2, channels, 32, 24)
    if profile == "bottomup":
        assert len(outputs) == 2 and outputs[1].shape == (2, 8, 16, 12)
    else:
        assert len(outputs) == 1


def test_models_export_with_a_dynamic_batch():
    config = load_config("bottomup", overrides=[*TINY, "backbone.batch_norm=true"])
    model = build_model(config, in_channels=1, n_nodes=3, n_edges=2).eval()
    x = torch.rand(2, 1, 32, 32)
    batch = torch.export.Dim("batch", min=1, max=16)
    program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    bigger = torch.rand(5, 1, 32, 32)
    for got, want in zip(program.module()(bigger), model(bigger)):
        torch.testing.assert_close(got, want)
