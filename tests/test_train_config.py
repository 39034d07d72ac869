"""Training configs: profiles, files and overrides, validated with errors that name the key."""

from __future__ import annotations

import pytest

pytest.importorskip("yaml")
from posestream.engine import ConfigError
from posestream.train.config import available_profiles, load_config


def test_every_profile_loads_and_validates():
    identity = {"multi_class_bottomup": "bottomup", "multi_class_topdown": "centered_instance"}
    assert available_profiles() == sorted(
        ["bottomup", "centered_instance", "centroid", "single_instance", *identity]
    )
    for name in available_profiles():
        config = load_config(name)
        assert config.model_type == identity.get(name, name) and config.head.classes == (name in identity)


def test_layers_apply_in_order(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("optim: {learning_rate: 0.01, max_epochs: 7}\nbackbone: {filters: 8}\n")
    config = load_config("centroid", path, ["optim.learning_rate=3e-4"], seed=5, **{"optim.max_minutes": 2})
    assert config.optim.learning_rate == pytest.approx(3e-4)  # --set beats the file
    assert config.optim.max_epochs == 7 and config.backbone.filters == 8  # the file beats the profile
    assert config.optim.foreground_weight == 20  # the profile beats the defaults
    assert config.seed == 5 and config.optim.max_minutes == 2
    assert load_config(config_file=_saved(tmp_path, config)).to_dict() == config.to_dict()


def _saved(tmp_path, config):
    path = tmp_path / "saved.yaml"
    path.write_text(config.to_yaml())
    return path


@pytest.mark.parametrize(
    "override, message",
    [
        ("backbone.filter=8", "unknown config key 'backbone.filter'; did you mean 'backbone.filters'"),
        ("backbone.max_stride=12", "'backbone.max_stride' must be a power of 2"),
        ("optim.max_epochs=many", "'optim.max_epochs' must be int"),
        ("head.output_stride=3", "'head.output_stride' must be a power of 2"),
        ("model_type=topdown", "'model_type' must be one of"),
        ("data.frames=9-3", "'data.frames'"),
        ("augment.contrast=1.5", "'augment.contrast' must be in"),
        ("optim=3", "optim must be a mapping"),
        ("nonsense", "expected KEY=VALUE"),
    ],
)
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config("bottomup", overrides=[override])


def test_a_head_coarser_than_the_networks_stride_is_named():
    message = r"'head.output_stride' must be a power of 2 and <= backbone.max_stride \(16\)"
    with pytest.raises(ConfigError, match=message):
        load_config("bottomup", overrides=["backbone.max_stride=16", "head.output_stride=32"])


def test_bad_files_and_profiles(tmp_path):
    with pytest.raises(ConfigError, match="unknown profile 'topdown'; profiles: bottomup"):
        load_config("topdown")
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config("centroid", bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("centroid", tmp_path / "missing.yaml")


def test_bottomup_on_a_skeleton_without_edges_is_a_clear_error(synth_gray, tmp_path):
    """A raw torch RuntimeError from the PAF head, before."""
    pytest.importorskip("torch")
    from posestream.engine.sinks import AnalysisH5Writer, read_analysis_h5
    from posestream.engine.types import Skeleton
    from posestream.train.config import load_config
    from posestream.train.trainer import Trainer

    video, _ = synth_gray
    data = read_analysis_h5(video.analysis_h5)
    labels = tmp_path / "no_edges.h5"
    with AnalysisH5Writer(
        labels, Skeleton.from_names(list(data.skeleton.nodes)), video_path=str(video.video)
    ) as writer:
        for i in range(data.n_frames):
            writer.write(data.frame(i))
    with pytest.raises(ConfigError, match="no edges.*bottom-up"):
        Trainer(load_config("bottomup", labels=str(labels)), tmp_path / "run", progress=False)
