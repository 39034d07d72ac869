"""sleap-nn checkpoints (Lightning best.ckpt) load with torch's weights-only unpickler, their pickled config
mapped to inert stand-ins, and a checkpoint naming anything else is refused."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
yaml = pytest.importorskip("yaml")
from posestream.core.errors import ModelFormatError  # noqa: E402
from posestream.export.importers.lightning_ckpt import load_checkpoint  # noqa: E402

DATA_ENV = "POSESTREAM_SLEAP_NN_DATA"
CKPTS = [
    "bottomup",
    "centroid",
    "centered_instance",
    "single_instance",
    "multiclass_bottomup",
    "multiclass_centered_instance",
]


def ckpt_folder(kind: str) -> Path:
    root = Path(
        os.environ.get(DATA_ENV, Path(__file__).resolve().parents[2] / "shared" / "data" / "sleap-nn")
    )
    folder = root / "model_ckpts" / f"minimal_instance_{kind}"
    if not (folder / "best.ckpt").exists():
        pytest.skip(
            f"{folder.name} not found in {folder.parent} (set {DATA_ENV} to the sleap-nn fixtures folder)"
        )
    return folder


@pytest.mark.parametrize("kind", CKPTS)
def test_sleap_nn_checkpoint_loads_weights_only(kind):
    folder = ckpt_folder(kind)
    with pytest.raises(Exception, match="Unsupported global"):
        torch.load(folder / "best.ckpt", map_location="cpu", weights_only=True)  # why it needs the stand-ins
    checkpoint = load_checkpoint(folder / "best.ckpt")
    state = checkpoint["state_dict"]
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    config = yaml.safe_load((folder / "training_config.yaml").read_text())
    assert sum(v.numel() for v in state.values()) == config["model_config"]["total_params"]


def test_a_checkpoint_that_names_other_code_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hook": os.system}, path)
    with pytest.raises(ModelFormatError, match=r"names \['(posix|nt)\.system'\].*not loaded"):
        load_checkpoint(path)
    (tmp_path / "junk.ckpt").write_bytes(b"not a zip")
    with pytest.raises(ModelFormatError, match="not a PyTorch checkpoint"):
        load_checkpoint(tmp_path / "junk.ckpt")


@pytest.mark.parametrize("kind", CKPTS)
def test_sleap_nn_network_places_every_tensor(kind):
    from posestream.export.importers.sleap_nn_graph import load_sleap_nn

    graph, config = load_sleap_nn(ckpt_folder(kind))
    assert sum(p.numel() for p in graph.parameters()) == config["model_config"]["total_params"]
    channels = config["model_config"]["backbone_config"]["unet"]["in_channels"]
    with torch.no_grad():
        outputs = graph(torch.zeros(1, channels, 64, 64))
    assert outputs and all(torch.isfinite(v).all() for v in outputs.values())


def test_sleap_nn_bottomup_finds_the_labelled_animals(sleap_file):
    """The imported bottom-up checkpoint's confidence-map peaks on its own training frame lie on the
    labels."""
    sio = pytest.importorskip("sleap_io")
    from scipy.ndimage import maximum_filter

    from posestream.export.importers.sleap_nn_graph import load_sleap_nn

    graph, _ = load_sleap_nn(ckpt_folder("bottomup"))
    labels = sio.load_slp(str(sleap_file("minimal_instance.pkg.slp")))
    frame = labels.labeled_frames[0]
    image = np.asarray(frame.image, np.float32)[..., 0] / 255  # (384, 384)
    with torch.no_grad():
        maps = graph(torch.from_numpy(image)[None, None])["MultiInstanceConfmapsHead"][
            0
        ].numpy()  # (2, 192, 192)
    for node in range(2):
        # (x, y)
        peaks = np.argwhere((maps[node] == maximum_filter(maps[node], 3)) & (maps[node] > 0.2))[:, ::-1] * 2.0
        for instance in frame.instances:
            truth = instance.numpy()[node]
            assert np.min(np.linalg.norm(peaks - truth, axis=1)) < 3.0, (node, truth, peaks)
