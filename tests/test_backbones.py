"""ConvNeXt and Swin-T backbones: strides and channels, ONNX parity, ImageNet weights from a local file, and a
model that trains and exports with one."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from posestream.engine import ConfigError  # noqa: E402
from posestream.train.backbones.convnext import ConvNeXtEncoder  # noqa: E402
from posestream.train.backbones.pretrained import load_pretrained  # noqa: E402
from posestream.train.backbones.pyramid import PyramidBackbone  # noqa: E402
from posestream.train.backbones.swint import SwinEncoder  # noqa: E402
from posestream.train.config import BackboneConfig, load_config  # noqa: E402

SMALL = {  # the real architectures, narrower and shallower, for speed
    "convnext": lambda channels: ConvNeXtEncoder(channels, (1, 1, 2, 1), (8, 16, 32, 64)),
    "swint": lambda channels: SwinEncoder(channels, 8, (2, 2, 2, 2), (1, 2, 2, 4)),
}


def small_backbone(kind: str, strides: list[int], channels: int = 1) -> PyramidBackbone:
    torch.manual_seed(0)
    return PyramidBackbone(SMALL[kind](channels), BackboneConfig(type=kind, max_stride=32), strides).eval()


@pytest.mark.parametrize("kind", ["convnext", "swint"])
def test_the_decoder_reaches_every_stride_the_heads_read(kind):
    backbone = small_backbone(kind, [1, 4, 32])
    x = torch.rand(2, 1, 96, 64)
    features = backbone(x)
    assert sorted(features) == [1, 4, 32]
    for stride, f in features.items():
        assert tuple(f.shape) == (2, backbone.out_channels[stride], 96 // stride, 64 // stride)
    assert backbone.out_channels[32] == 128 and backbone.out_channels[4] == 16  # 64 x 2; 8 x 2 ** (3 - 2)


@pytest.mark.parametrize("kind", ["convnext", "swint"])
def test_onnx_runs_the_backbone_as_torch_does(kind, tmp_path):
    """Window shifts, layer norms and the decoder's joins through ONNX Runtime, at the export's tolerance."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    backbone = small_backbone(kind, [2])
    path = tmp_path / f"{kind}.onnx"

    class Maps(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = backbone

        def forward(self, x):
            return self.backbone(x)[2]

    with warnings.catch_warnings():  # the tracer's notes on shapes it fixes (the export fixes them too)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Maps(),
            (torch.rand(2, 1, 64, 96),),
            str(path),
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    x = torch.rand(3, 1, 64, 96)  # another batch size than the traced one
    with torch.no_grad():
        expected = backbone(x)[2].numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_imagenet_weights_load_by_name_and_a_grey_stem_sums_the_colours(tmp_path):
    rgb = SMALL["convnext"](3)
    weights = {k: torch.randn_like(v) for k, v in rgb.state_dict().items()}
    weights["classifier.2.weight"] = torch.zeros(1000, 64)  # ImageNet's classifier: left out
    path = tmp_path / "convnext_small_test.pth"
    torch.save(weights, path)
    grey = SMALL["convnext"](1)
    load_pretrained(grey, path)
    loaded = grey.state_dict()
    torch.testing.assert_close(
        loaded["features.0.0.weight"], weights["features.0.0.weight"].sum(1, keepdim=True)
    )
    torch.testing.assert_close(loaded["features.3.0.block.3.weight"], weights["features.3.0.block.3.weight"])
    image = torch.rand(1, 1, 64, 64)
    with torch.no_grad():  # a grey image through the summed stem = the same image as RGB through the original
        rgb.load_state_dict({k: v for k, v in weights.items() if not k.startswith("classifier")})
        torch.testing.assert_close(grey(image)[0], rgb(image.expand(1, 3, 64, 64))[0], atol=1e-5, rtol=1e-5)


def test_weights_that_do_not_fit_are_refused_by_name(tmp_path):
    weights = SMALL["convnext"](1).state_dict()
    del weights["features.1.0.layer_scale"]
    weights["features.2.1.weight"] = torch.zeros(16, 8, 3, 3)
    path = tmp_path / "wrong.pth"
    torch.save(weights, path)
    with pytest.raises(ConfigError) as error:
        load_pretrained(SMALL["convnext"](1), path)
    assert "1 missing (features.1.0.layer_scale)" in str(error.value)
    assert "features.2.1.weight is (16, 8, 3, 3) there, (16, 8, 2, 2) here" in str(error.value)
    with pytest.raises(ConfigError, match="does not fit this SwinEncoder"):
        load_pretrained(SMALL["swint"](1), tmp_path / "wrong.pth")
    (tmp_path / "empty.pth").write_bytes(b"not torch")
    with pytest.raises(ConfigError, match="cannot read it"):
        load_pretrained(SMALL["swint"](1), tmp_path / "empty.pth")


def test_backbone_settings_are_checked():
    with pytest.raises(ConfigError, match="backbone.type"):
        load_config("centroid", overrides=["backbone.type=resnet"])
    with pytest.raises(ConfigError, match="backbone.max_stride.*32 for a convnext"):
        load_config("centroid", overrides=["backbone.type=convnext", "backbone.max_stride=16"])
    with pytest.raises(ConfigError, match="backbone.pretrained.*unet trains from scratch"):
        load_config("centroid", overrides=["backbone.pretrained=w.pth"])
    with pytest.raises(ConfigError, match="backbone.size"):
        load_config("centroid", overrides=["backbone.type=swint", "backbone.size=huge"])


def test_a_run_builds_sleap_nns_convnext_and_says_what_it_chose(synth_gray, tmp_path):
    """A centered-instance run with ``backbone.type=convnext``: the stride fitted is the bottleneck's, the
    start names the network (ConvNeXt-tiny, 88 M parameters), and the model gives maps at the head's
    stride. Not trained here: a checkpoint of it is 1 GB with the optimiser's state; the pyramid's ONNX
    parity is above, and its training step is the UNet's."""
    pytest.importorskip("sleap_io")
    from posestream.train.trainer import Trainer

    video, _ = synth_gray
    overrides = ["backbone.type=convnext", "head.crop_size=64", "data.val_fraction=0"]
    config = load_config("centered_instance", overrides=overrides, labels=str(video.slp))
    trainer = Trainer(config, tmp_path / "run", progress=False)
    described = trainer.describe()
    assert "max stride 32 (a convnext backbone's bottleneck)" in described
    assert "network: convnext tiny backbone, 87." in described
    with torch.no_grad():
        (maps,) = trainer.model.eval()(
            torch.rand(2, 1, 64, 64).contiguous(memory_format=trainer.memory_format)
        )
    assert tuple(maps.shape) == (2, 9, 32, 32) and torch.isfinite(maps).all()
