"""Examples where animals touch are drawn more often (``data.contact_repeats``): the gaps they are chosen by,
the epochs that hold them that many times, and a run that says so."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sleap_io")
from posestream.core.errors import ConfigError
from posestream.engine.synth import SynthConfig, write_synthetic_video
from posestream.train.config import load_config
from posestream.train.contact import ContactSampling, nearest_gaps
from posestream.train.loader import EpochBatches
from posestream.train.trainer import Trainer

TINY = ["backbone.filters=8", "backbone.filters_rate=1.5", "data.val_fraction=0.25", "data.batch_size=2"]


def test_each_animal_gets_its_smallest_gap_to_another_and_a_lone_one_none():
    nan = np.nan
    points = np.array(
        [
            [[0, 0], [10, 0], [nan, nan]],  # animal 0
            [[13, 4], [50, 50], [nan, nan]],  # animal 1: (13, 4) is 5 px from (10, 0)
            [[100, 100], [nan, nan], [0, 1]],  # animal 2: NaN ignored; (0, 1) is 1 px from (0, 0)
        ],
        np.float32,
    )
    assert np.allclose(nearest_gaps(points), [1.0, 5.0, 1.0])
    assert nearest_gaps(points[:1]).tolist() == [np.inf]
    assert nearest_gaps(np.full((2, 3, 2), np.nan)).tolist() == [np.inf, np.inf]


def test_an_epoch_holds_each_example_as_many_times_as_it_is_repeated():
    plain = EpochBatches(4, 1, seed=3, first_epoch=0, steps=None)
    ones = EpochBatches(4, 1, seed=3, first_epoch=0, steps=None, repeats=np.ones(4, np.int64))
    first = [next(iter(b)) for b in (plain, ones)]
    assert first[0] == first[1]  # repeats of 1 leave the order as it was
    repeated = EpochBatches(4, 1, seed=3, first_epoch=5, steps=None, repeats=np.array([1, 3, 1, 2]))
    assert repeated.steps == 7
    batches = iter(repeated)
    for epoch in (5, 6):
        keys = [key for _ in range(repeated.steps) for key in next(batches)]
        assert {e for e, _ in keys} == {epoch}
        assert sorted(i for _, i in keys) == [0, 1, 1, 1, 2, 3, 3]


def test_the_same_seed_draws_the_same_repeated_epoch():
    def epoch(seed):
        batches = iter(
            EpochBatches(5, 2, seed=seed, first_epoch=0, steps=None, repeats=np.array([2, 1, 1, 3, 1]))
        )
        return [next(batches) for _ in range(4)]

    assert epoch(1) == epoch(1) and epoch(1) != epoch(2)


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Two animals a frame, 8 frames of 128x128."""
    config = SynthConfig(frames=8, width=128, height=128, animals=2, seed=5)
    return write_synthetic_video(tmp_path_factory.mktemp("contact") / "pairs.mp4", config, progress=False)


def _trainer(pairs, tmp_path, *settings):
    overrides = [*TINY, "head.crop_size=96", "data.workers=0", *settings]
    config = load_config("centered_instance", overrides=overrides, labels=str(pairs.slp))
    return Trainer(config, tmp_path / "run", progress=False)


def test_a_run_draws_its_touching_animals_more_often_and_says_so(pairs, tmp_path):
    plain = _trainer(pairs, tmp_path)
    assert plain.contact is None and "contact sampling" not in plain.describe()
    crops = plain.train_set
    gaps = crops.contact_gaps()  # one per crop: its own animal's gap to the other
    frames = crops.labels.frames
    expected = [nearest_gaps(frames[i].points)[k] for i, k in crops.examples]
    assert np.allclose(gaps, expected) and np.isfinite(gaps).all()

    middle = float(np.median(gaps))
    touching = _trainer(pairs, tmp_path, "data.contact_repeats=3", f"data.contact_px={middle}")
    in_contact = int((gaps < middle).sum())
    assert touching.contact.in_contact == in_contact and 0 < in_contact < len(gaps)
    assert touching.steps_per_epoch == (len(gaps) + 2 * in_contact) // 2  # batch size 2
    assert f"contact sampling: {in_contact} of {len(gaps)} examples" in touching.describe()

    fitted = _trainer(pairs, tmp_path, "data.contact_repeats=2")  # contact_px null: a tenth of the size
    assert fitted.contact.distance_px > 0 and "drawn 2 times an epoch" in fitted.describe()


def test_contact_settings_are_checked():
    with pytest.raises(ConfigError, match="data.contact_repeats"):
        load_config("centered_instance", overrides=["data.contact_repeats=0"])
    with pytest.raises(ConfigError, match="data.contact_px"):
        load_config("centered_instance", overrides=["data.contact_px=-1"])


def test_sampling_counts_examples_below_the_distance():
    sampling = ContactSampling.of(np.array([0.5, 3.0, np.inf, 1.9]), 2.0, 4)
    assert sampling.repeats.tolist() == [4, 1, 1, 4] and sampling.in_contact == 2
