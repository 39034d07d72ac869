"""The shared data model validates what it is given."""

from __future__ import annotations

import numpy as np
import pytest

from posestream.engine import ConfigError, FramePredictions, ModelMetadata, ModelType, OutputMode, Skeleton
from posestream.engine.types import MODEL_METADATA_VERSION


def test_skeleton_by_names_and_flip():
    sk = Skeleton.from_names(
        ["nose", "l", "r"], edges=[("nose", "l"), ("nose", "r")], symmetries=[("l", "r")]
    )
    assert sk.edges == ((0, 1), (0, 2))
    assert sk.edge_names == [("nose", "l"), ("nose", "r")]
    assert sk.flip_permutation().tolist() == [0, 2, 1]
    assert Skeleton.from_dict(sk.to_dict()) == sk


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(nodes=()), "at least one node"),
        (dict(nodes=("a", "a")), "unique"),
        (dict(nodes=("a", "b"), edges=((0, 2),)), "edge"),
        (dict(nodes=("a", "b"), symmetries=((1, 1),)), "symmetry"),
    ],
)
def test_skeleton_rejects_bad_definitions(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Skeleton(**kwargs)


def test_skeleton_unknown_node_name():
    with pytest.raises(ConfigError, match="no node named 'tail'"):
        Skeleton.from_names(["a"], edges=[("a", "tail")])


def test_frame_predictions_defaults_and_shapes():
    frame = FramePredictions(3, np.zeros((2, 4, 2)), np.ones((2, 4)), np.ones(2))
    assert frame.points.dtype == np.float32
    assert frame.track_ids.tolist() == [-1, -1]
    assert np.isnan(frame.tracking_scores).all()
    assert (frame.n_instances, frame.n_nodes) == (2, 4)
    with pytest.raises(ValueError, match=r"point_scores must have shape \(2, 4\)"):
        FramePredictions(3, np.zeros((2, 4, 2)), np.ones((2, 3)), np.ones(2))
    with pytest.raises(ValueError, match="points must have shape"):
        FramePredictions(3, np.zeros((2, 4)), np.ones((2, 4)), np.ones(2))


def metadata(**overrides):
    fields = dict(
        model_type="centered_instance",
        skeleton=Skeleton.from_names(["a", "b"]),
        input_shape=(64, 64, 1),
        crop_size=(64, 64),
        anchor_part="a",
        output_strides={"confmaps": 2},
        output_shapes={"confmaps": (32, 32)},
    )
    fields.update(overrides)
    return ModelMetadata(**fields)


def test_model_metadata_json_round_trip():
    meta = metadata(output_mode="peaks", max_peaks=8)
    again = ModelMetadata.from_json(meta.to_json())
    assert again == meta
    assert again.model_type is ModelType.CENTERED_INSTANCE and again.output_mode is OutputMode.PEAKS


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(model_type="topdown"), "model_type must be one of"),
        (dict(crop_size=None), "needs crop_size"),
        (dict(anchor_part="z"), "not a skeleton node"),
        (dict(input_shape=(64, 64, 2)), "input_shape"),
        (dict(max_peaks=0), "max_peaks"),
        (dict(output_shapes={}), "must name the same outputs"),
    ],
)
def test_model_metadata_rejects_bad_values(overrides, message):
    with pytest.raises(ConfigError, match=message):
        metadata(**overrides)


def test_model_metadata_refuses_unknown_versions():
    text = (
        metadata()
        .to_json()
        .replace(
            f'"format_version": {MODEL_METADATA_VERSION}', f'"format_version": {MODEL_METADATA_VERSION + 1}'
        )
    )
    with pytest.raises(ConfigError, match="format_version 2 is not supported"):
        ModelMetadata.from_json(text, source="m/metadata.json")
    with pytest.raises(ConfigError, match="m/metadata.json: no format_version"):
        ModelMetadata.from_json('{"model_type": "centroid"}', source="m/metadata.json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ModelMetadata.from_json("{", source="m/metadata.json")


def test_a_frame_block_gives_back_its_frames_and_joins_with_others():
    from posestream.engine.types import FrameBlock

    rng = np.random.default_rng(4)
    frames = [
        FramePredictions(
            i,
            rng.uniform(0, 9, (n, 3, 2)),
            rng.uniform(size=(n, 3)),
            rng.uniform(size=n),
            track_ids=np.arange(n),
            tracking_scores=np.ones(n),
        )
        for i, n in enumerate([2, 0, 3, 1])
    ]
    frames.insert(2, FramePredictions.empty(9, 3, missing=True))
    block = FrameBlock.from_frames(frames, 3)
    assert (
        len(block) == 5
        and block.counts.tolist() == [2, 0, 0, 3, 1]
        and block.missing.tolist() == [0, 0, 1, 0, 0]
    )
    assert block.frame_of_rows().tolist() == [0, 0, 3, 3, 3, 4]
    joined = FrameBlock.concat([FrameBlock.from_frames(frames[:2], 3), FrameBlock.from_frames(frames[2:], 3)])
    for got in (block.frames(), joined.frames()):
        assert [f.frame_idx for f in got] == [f.frame_idx for f in frames]
        for a, b in zip(got, frames):
            assert a.missing == b.missing
            np.testing.assert_array_equal(a.points, b.points)
            np.testing.assert_array_equal(a.track_ids, b.track_ids)
    block.track_ids[:] = 7  # a frame's arrays are views of the block's: a tracker writes into the block
    assert block.frame(3).track_ids.tolist() == [7, 7, 7]


def test_a_frame_block_whose_counts_do_not_match_its_rows_is_refused():
    from posestream.engine.types import FrameBlock

    with pytest.raises(ValueError, match="counts summing to 3"):
        FrameBlock(
            np.arange(2),
            np.array([1, 2]),
            np.zeros((2, 3, 2), np.float32),
            np.zeros((2, 3), np.float32),
            np.zeros(2, np.float32),
            np.zeros(2, np.int32),
            np.zeros(2, np.float32),
            np.zeros(2, bool),
        )
