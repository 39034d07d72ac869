"""Export: torch vs ONNX Runtime parity for every model type and output mode, on synthetic and real
frames; maps and peaks modes give the same poses; fp16 / int8 within stated tolerances; the metadata
contract; clear errors for bad runs and bad sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("sleap_io")
from posestream.core.errors import ConfigError, ModelFormatError, ModelNotFoundError
from posestream.engine.model.backends import OnnxRuntimeBackend
from posestream.engine.model.inference import ExportedModel
from posestream.engine.model.model_dir import load_model_dir
from posestream.engine.model.peaks import NOT_A_PEAK, find_candidates
from posestream.engine.sources import VideoFileReader
from posestream.engine.types import ModelType
from posestream.export.exporter import ExportOptions, export_run, parse_size
from posestream.train.graph import peak_candidates
from posestream.train.predict import PredictOptions, RunModel, open_model, predict

PROFILES = ["single_instance", "centroid", "centered_instance", "bottomup"]
FP32_TOLERANCE = 1e-4  # max abs difference of maps (values in [0, 1]) between torch and onnxruntime
FP16_TOLERANCE = 5e-3  # the same for an fp16 network
INT8_TOLERANCE = 0.05  # the same for int8 convolutions (accuracy is measured in benchmarks/export.py)


@pytest.fixture(scope="module")
def runs(tiny_runs):
    return tiny_runs


@pytest.fixture(scope="module")
def synth(tiny_runs):
    return tiny_runs["video"]


@pytest.fixture(scope="module")
def frames(synth):
    with VideoFileReader(synth.video) as reader:
        return np.stack([image for _, image in reader.iter_frames()])  # (8, 96, 96, 1)


def model_input(model_dir, frames):
    """Frames cut (or tiled) to the model's input size."""
    height, width, _ = model_dir.metadata.input_shape
    reps = (1, -(-height // frames.shape[1]), -(-width // frames.shape[2]), 1)
    return np.ascontiguousarray(np.tile(frames, reps)[:, :height, :width])


def assert_same_outputs(got: dict, want: list, edges, tolerance: float = FP32_TOLERANCE) -> None:
    """Graph outputs equal within ``tolerance``. Peak candidates of equal value (plateaus of a barely
    trained model) may come in any order, so candidates (and PAF samples between them) are compared
    by cell, leaving out those tied with the K-th."""
    for (name, a), b in zip(got.items(), want):
        assert a.shape == b.shape, name
        if name in ("confmaps", "pafs", "peak_values"):
            np.testing.assert_allclose(a, b, atol=tolerance, err_msg=name)
    if "peak_indices" not in got:
        return
    theirs = dict(zip(["peak_values", "peak_indices", "peak_patches", "paf_dots"], want))
    ours_by_cell, theirs_by_cell = ranked_cells(got), ranked_cells(theirs)
    assert ours_by_cell.keys() == theirs_by_cell.keys()
    for key, (k, patch) in ours_by_cell.items():
        np.testing.assert_allclose(patch, got["peak_patches"][key[0], key[1], k], atol=tolerance)
        np.testing.assert_allclose(
            patch, theirs["peak_patches"][key[0], key[1], theirs_by_cell[key][0]], atol=tolerance
        )
    if "paf_dots" not in got:
        return
    for (b, c, cell), (k, _) in ours_by_cell.items():
        for e, (src, dst) in enumerate(edges):
            if c != src:
                continue
            for (b2, c2, cell2), (k2, _) in ours_by_cell.items():
                if b2 == b and c2 == dst:
                    mine = got["paf_dots"][b, e, k, k2]
                    other = theirs["paf_dots"][
                        b, e, theirs_by_cell[(b, c, cell)][0], theirs_by_cell[(b2, c2, cell2)][0]
                    ]
                    np.testing.assert_allclose(mine, other, atol=tolerance)


def ranked_cells(outputs: dict) -> dict:
    """(sample, channel, cell) -> (rank k, patch) of each candidate not tied with the channel's K-th, nor
    with a neighbouring cell (on a plateau, which cell is the maximum is up to rounding)."""
    values, indices, patches = outputs["peak_values"], outputs["peak_indices"], outputs["peak_patches"]
    found = {}
    for b, c in np.ndindex(values.shape[:2]):
        for k in np.flatnonzero(values[b, c] > values[b, c, -1] + FP32_TOLERANCE):
            patch = np.ravel(patches[b, c, k])
            if np.sum(np.abs(patch - patch[len(patch) // 2]) <= FP32_TOLERANCE) > 1:
                continue
            found[(b, c, int(indices[b, c, k]))] = (int(k), patches[b, c, k])
    return found


def torch_outputs(run_dir, model_dir, batch):
    graph = RunModel(run_dir).graph(model_dir.metadata)
    with torch.no_grad():
        return [t.numpy() for t in graph(torch.from_numpy(batch))]


@pytest.mark.parametrize("mode", ["maps", "peaks"])
@pytest.mark.parametrize("profile", PROFILES)
def test_onnxruntime_matches_torch_on_synthetic_frames(runs, frames, tmp_path, profile, mode):
    model_dir = export_run(runs[profile], tmp_path / "m", ExportOptions(output_mode=mode))
    batch = model_input(model_dir, frames)
    edges = model_dir.metadata.skeleton.edges
    assert_same_outputs(
        OnnxRuntimeBackend(model_dir).run(batch), torch_outputs(runs[profile], model_dir, batch), edges
    )


@pytest.mark.parametrize("profile", ["single_instance", "bottomup", "centroid"])
def test_onnxruntime_matches_torch_on_real_frames(runs, sleap_file, tmp_path, profile):
    video = sleap_file("centered_pair_small.mp4")
    with VideoFileReader(video) as reader:
        real = np.stack([image for _, image in reader.iter_frames("0-3")])  # (4, 384, 384, 1)
    model_dir = export_run(
        runs[profile], tmp_path / "m", ExportOptions(input_size=(384, 384), output_mode="peaks")
    )
    edges = model_dir.metadata.skeleton.edges
    assert_same_outputs(
        OnnxRuntimeBackend(model_dir).run(real), torch_outputs(runs[profile], model_dir, real), edges
    )


@pytest.mark.parametrize("profile", PROFILES)
def test_maps_and_peaks_models_give_the_same_poses(runs, frames, tmp_path, profile):
    maps = ExportedModel(
        export_run(runs[profile], tmp_path / "maps", ExportOptions(output_mode="maps")).path,
        peak_threshold=0.05,
    )
    peaks = ExportedModel(
        export_run(runs[profile], tmp_path / "peaks", ExportOptions(output_mode="peaks")).path,
        peak_threshold=0.05,
    )
    batch = model_input(maps.model_dir, frames)
    found_any = False
    for a, b in zip(maps.predict(batch), peaks.predict(batch)):
        assert a.points.shape == b.points.shape
        np.testing.assert_allclose(a.points, b.points, atol=0.1)
        np.testing.assert_allclose(a.instance_scores, b.instance_scores, atol=1e-4)
        found_any |= bool(np.isfinite(a.points).any())
    assert found_any, "the models found nothing, so the comparison proves nothing"


def test_torch_and_numpy_candidates_agree_on_plateaus_and_borders():
    rng = np.random.default_rng(0)
    maps = rng.random((2, 3, 12, 10)).astype(np.float32)
    maps[0, 0, 4:6, 4:6] = 2.0  # a plateau: every cell of it is a local maximum
    maps[1, 2, 0, 0] = 3.0  # a peak in the corner
    values, flat, patches = peak_candidates(torch.from_numpy(maps), 6)
    ours = find_candidates(maps, 6, stride=2)
    np.testing.assert_allclose(values.numpy(), ours.values)
    cells = np.stack(np.divmod(flat.numpy(), 10), axis=-1)
    for b in range(2):  # equal values may come in another order: compare as sets of (value, cell, patch)
        for c in range(3):
            theirs = sorted(
                zip(values[b, c].tolist(), map(tuple, cells[b, c]), patches[b, c].reshape(6, 9).tolist())
            )
            mine = sorted(
                zip(
                    ours.values[b, c].tolist(),
                    zip(ours.rows[b, c], ours.cols[b, c]),
                    ours.patches[b, c].reshape(6, 9).tolist(),
                )
            )
            assert [(v, tuple(map(int, cell)), p) for v, cell, p in theirs] == [
                (v, tuple(map(int, cell)), p) for v, cell, p in mine
            ]


@pytest.mark.parametrize("precision, tolerance", [("fp16", FP16_TOLERANCE), ("int8", INT8_TOLERANCE)])
def test_reduced_precision_stays_close_to_fp32(runs, frames, tmp_path, precision, tolerance):
    fp32 = export_run(runs["bottomup"], tmp_path / "fp32")
    low = export_run(
        runs["bottomup"], tmp_path / precision, ExportOptions(precision=precision, calibration_frames=8)
    )
    assert low.metadata.precision == precision
    want, got = OnnxRuntimeBackend(fp32).run(frames), OnnxRuntimeBackend(low).run(frames)
    for name in want:
        assert got[name].dtype == np.float32
        assert np.abs(got[name] - want[name]).max() < tolerance, name
    if precision == "int8":
        import onnx

        ops = {node.op_type for node in onnx.load(str(low.file("onnx"))).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_torch_program_matches_onnx(runs, frames, tmp_path):
    model_dir = export_run(
        runs["centroid"], tmp_path / "m", ExportOptions(formats=("onnx", "torch"), output_mode="peaks")
    )
    program = torch.export.load(str(model_dir.file("torch"))).module()
    with torch.inference_mode():
        got = program(torch.from_numpy(frames[:3]))
    want = OnnxRuntimeBackend(model_dir).run(frames[:3])
    np.testing.assert_allclose(got[0].numpy(), want["peak_values"], atol=FP32_TOLERANCE)
    found = want["peak_values"] > NOT_A_PEAK / 2  # slots past a channel's last maximum tie, in any order
    assert found.sum() >= 3
    np.testing.assert_array_equal(got[1].numpy()[found], want["peak_indices"][found])


def test_metadata_is_written_embedded_and_checked(runs, frames, tmp_path):
    model_dir = export_run(
        runs["centered_instance"], tmp_path / "m", ExportOptions(output_mode="peaks", max_peaks=2)
    )
    meta = model_dir.metadata
    assert (
        meta.model_type is ModelType.CENTERED_INSTANCE and meta.max_peaks == 2 and meta.anchor_part == "neck"
    )
    assert meta.input_shape[:2] == meta.crop_size and meta.input_layout == "NHWC"
    assert meta.source_run == str(runs["centered_instance"].resolve()) and meta.config_hash
    OnnxRuntimeBackend(model_dir)  # embedded metadata == metadata.json
    path = tmp_path / "m" / "metadata.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "max_peaks": 3}))
    with pytest.raises(ModelFormatError, match="different exports"):
        OnnxRuntimeBackend(load_model_dir(tmp_path / "m"))
    path.write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(ModelFormatError, match="format_version 99 is not supported"):
        load_model_dir(tmp_path / "m")
    path.unlink()
    with pytest.raises(ModelFormatError, match="no metadata.json"):
        load_model_dir(tmp_path / "m")
    with pytest.raises(ModelNotFoundError, match="no such model directory"):
        load_model_dir(tmp_path / "nothing")


def test_frames_of_another_size_get_a_clear_error(runs, frames, tmp_path):
    model_dir = export_run(runs["single_instance"], tmp_path / "m")
    with pytest.raises(ModelFormatError, match=r"takes uint8 frames .*\(96, 96, 1\).*--input-size 64x96"):
        OnnxRuntimeBackend(model_dir).run(np.ascontiguousarray(frames[:, :64]))


def test_bad_runs_and_sizes_get_clear_errors(runs, tmp_path):
    with pytest.raises(ConfigError, match="multiple of the network's max stride"):
        export_run(runs["centered_instance"], tmp_path / "a", ExportOptions(input_size=(50, 50)))
    with pytest.raises(FileNotFoundError, match="not a training run directory"):
        export_run(tmp_path, tmp_path / "b")
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.yaml", "run.json"):
        (broken / name).write_text((runs["centroid"] / name).read_text())
    (broken / "best.pt").write_bytes((runs["centroid"] / "best.pt").read_bytes()[:100])
    with pytest.raises(ConfigError, match="cannot load the weights"):
        export_run(broken, tmp_path / "c")
    (broken / "best.pt").write_bytes((runs["centroid"] / "best.pt").read_bytes())
    run = json.loads((broken / "run.json").read_text())
    (broken / "run.json").write_text(json.dumps({**run, "model_type": "topdown"}))
    with pytest.raises(ConfigError, match="model_type"):
        export_run(broken, tmp_path / "d")
    with pytest.raises(ConfigError, match="HEIGHTxWIDTH"):
        parse_size("big")
    with pytest.raises(ConfigError, match="--precision"):
        ExportOptions(precision="int4")


def test_evaluating_exported_models_equals_evaluating_runs(runs, synth, tmp_path):
    """Top-down through the engine (two ONNX models, crops cut by the engine) = the torch runs."""
    from posestream.train.labels import load_labels

    labels = load_labels(synth.slp)
    exported = [
        export_run(runs[p], tmp_path / p, ExportOptions(output_mode="peaks")).path
        for p in ("centroid", "centered_instance")
    ]
    options = PredictOptions(peak_threshold=0.05)
    indices = list(range(len(labels)))
    via_torch = predict(
        [RunModel(runs["centroid"]), RunModel(runs["centered_instance"])], labels, indices, options
    )
    via_engine = predict([open_model(p) for p in exported], labels, indices, options)
    assert via_torch.keys() == via_engine.keys()
    for k in via_torch:
        np.testing.assert_allclose(via_engine[k].points, via_torch[k].points, atol=0.01)


def test_tensorrt_engine_matches_onnxruntime(runs, frames, tmp_path):
    trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed (pip install 'posestream[gpu]')")
    if not torch.cuda.is_available():
        pytest.skip("TensorRT needs an NVIDIA GPU")
    model_dir = export_run(
        runs["centroid"], tmp_path / "m", ExportOptions(formats=("onnx", "tensorrt"), max_batch=8)
    )
    assert model_dir.file("tensorrt").stat().st_size > 0 and trt.__version__
    again = export_run(
        runs["centroid"], tmp_path / "m2", ExportOptions(formats=("onnx", "tensorrt"), max_batch=8)
    )
    # from the engine cache
    assert again.file("tensorrt").read_bytes() == model_dir.file("tensorrt").read_bytes()
