"""``posestream synth``: render a synthetic video and write its ground truth beside it.

``OUT.mp4`` gets ``OUT.analysis.h5`` (analysis HDF5, always) and ``OUT.slp``
(SLEAP labels, when sleap-io from ``posestream[slp]`` is installed). With a
perturbation (jitter, dropped nodes, missing and false instances), the ground
truth perturbed into untracked "detections" goes to ``OUT.detections.h5`` (and
``OUT.detections.slp`` with the labels): the input a tracker would get.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from posestream.core.errors import OutputFileError
from posestream.engine.extras import require
from posestream.engine.progress import progress_bar
from posestream.engine.sinks.analysis_h5 import AnalysisH5Writer
from posestream.engine.sinks.slp import SlpWriter
from posestream.engine.synth.motion import SYNTH_SKELETON, PoseSimulator, SynthConfig
from posestream.engine.synth.perturb import PerturbConfig, Perturber
from posestream.engine.synth.render import FrameRenderer
from posestream.engine.types import FramePredictions


@dataclass(frozen=True)
class SynthOutput:
    """Files written for one synthetic video."""

    video: Path
    analysis_h5: Path
    slp: Path | None  # None when sleap-io is not installed or .slp was not asked for
    detections_h5: Path | None = None  # the perturbed ground truth, when a perturbation was asked for
    detections_slp: Path | None = None


def ground_truth_paths(video: str | os.PathLike) -> tuple[Path, Path]:
    """(analysis HDF5, .slp) paths beside a video: ``s.mp4`` -> ``s.analysis.h5``, ``s.slp``."""
    video = Path(video)
    return video.with_suffix(".analysis.h5"), video.with_suffix(".slp")


def detection_paths(video: str | os.PathLike) -> tuple[Path, Path]:
    """(analysis HDF5, .slp) paths of the perturbed detections: ``s.mp4`` -> ``s.detections.h5``, ``.slp``."""
    video = Path(video)
    return video.with_suffix(".detections.h5"), video.with_suffix(".detections.slp")


def write_synthetic_video(
    out: str | os.PathLike,
    config: SynthConfig,
    *,
    slp: bool = True,
    progress: bool = True,
    crf: int = 18,
    perturb: PerturbConfig | None = None,
    keyint: int | None = None,
) -> SynthOutput:
    """Render ``config`` into an H.264 video at ``out`` and write its ground truth.

    slp: also write SLEAP labels (needs ``posestream[slp]``; raises MissingExtraError without it).
    perturb: also write the ground truth perturbed into detections (``detection_paths``).
    keyint: at most this many frames between keyframes (default: x264's 250).
    """
    out = Path(out)
    if out.suffix.lower() not in (".mp4", ".mkv", ".avi", ".mov"):
        raise OutputFileError(f"{out}: the video must end in .mp4, .mkv, .avi or .mov")
    out.parent.mkdir(parents=True, exist_ok=True)
    h5_path, slp_path = ground_truth_paths(out)
    if slp:
        require(
            "sleap_io",
            extra="slp",
            feature=f"writing {slp_path.name}",
            hint="or skip the labels (CLI: --no-slp)",
        )
    renderer = FrameRenderer(
        config.height,
        config.width,
        config.rgb,
        config.body_length,
        config.animals,
        config.seed,
        config.identities,
    )
    provenance = {"generator": "posestream synth", **config.__dict__}
    truth = AnalysisH5Writer(
        h5_path, SYNTH_SKELETON, video_path=str(out), provenance=provenance, tracked=True
    )
    labels = SlpWriter(slp_path, SYNTH_SKELETON, str(out), user=True, provenance=provenance) if slp else None
    sinks = [truth, *([labels] if labels else [])]
    detections = _detection_sinks(out, config, perturb, slp, provenance)
    perturber = Perturber(perturb, config.width, config.height, config.animals) if detections else None
    with truth, open_video_output(out) as container:
        stream = h264_stream(container, config, crf, keyint)
        with progress_bar(config.frames, f"synth {out.name}", enabled=progress) as advance:
            for frame_idx, poses in enumerate(PoseSimulator(config)):
                frame = yuv420p_frame(renderer.render(poses, frame_idx))
                frame.pts, frame.time_base = frame_idx, 1 / stream.average_rate
                container.mux(stream.encode(frame))
                for sink in sinks:
                    sink.write(_truth_frame(frame_idx, poses))
                if perturber is not None:
                    found = perturber(frame_idx, poses)
                    for sink in detections:
                        sink.write(found)
                advance()
        container.mux(stream.encode(None))
    for sink in sinks[1:] + detections:
        sink.close()
    paths = detection_paths(out) if detections else (None, None)
    return SynthOutput(
        video=out,
        analysis_h5=h5_path,
        slp=slp_path if slp else None,
        detections_h5=paths[0],
        detections_slp=paths[1] if detections and slp else None,
    )


def _detection_sinks(
    out: Path, config: SynthConfig, perturb: PerturbConfig | None, slp: bool, provenance: dict
) -> list:
    """Writers of the perturbed detections (none without a perturbation)."""
    if perturb is None or not perturb.active:
        return []
    h5_path, slp_path = detection_paths(out)
    provenance = {**provenance, "perturbation": perturb.__dict__}
    sinks = [AnalysisH5Writer(h5_path, SYNTH_SKELETON, video_path=str(out), provenance=provenance)]
    if slp:
        sinks.append(SlpWriter(slp_path, SYNTH_SKELETON, str(out), provenance=provenance))
    return sinks


def open_video_output(path: Path) -> av.container.OutputContainer:
    try:
        return av.open(str(path), mode="w")
    except (OSError, av.error.FFmpegError) as exc:
        raise OutputFileError(f"{path}: cannot create the video ({exc})") from exc


def h264_stream(
    container: av.container.OutputContainer, config: SynthConfig, crf: int, keyint: int | None = None
) -> av.VideoStream:
    rate = Fraction(config.fps).limit_denominator(1001)
    stream = container.add_stream("libx264", rate=rate)
    stream.width, stream.height = config.width, config.height
    stream.pix_fmt = "yuv420p"
    # mbtree off: x264's macroblock-tree reads uninitialised padding at some frame sizes,
    # which makes the output differ between runs; the video must be the same for a seed.
    stream.options = {
        "crf": str(crf),
        "preset": "faster",
        "x264-params": "mbtree=0" + (f":keyint={keyint}" if keyint else ""),
    }
    return stream


# BT.601 video-range RGB -> Y, Cb, Cr (rows), the conversion FFmpeg inverts by default.
_RGB_TO_YCBCR = (
    np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], np.float32)
    / 255.0
)


def yuv420p_frame(image: np.ndarray) -> av.VideoFrame:
    """A yuv420p frame from a gray (H, W, 1) or RGB (H, W, 3) uint8 image.

    Converted here, not by swscale, whose gray -> yuv420p path leaves the chroma
    planes unwritten (the video then differed between runs). Gray needs only the
    luma plane: its chroma is the neutral 128.
    """
    height, width, channels = image.shape
    if channels == 1:
        luma = image[..., 0].astype(np.float32) * _RGB_TO_YCBCR[0].sum() + 16.0
        planes = [luma, np.full((height // 2, width // 2), 128.0, np.float32)]
        planes.append(planes[1])
    else:
        # (H, W, 3)
        ycc = image.astype(np.float32) @ _RGB_TO_YCBCR.T + np.array([16.0, 128.0, 128.0], np.float32)
        chroma = (ycc[0::2, 0::2, 1:] + ycc[1::2, 0::2, 1:] + ycc[0::2, 1::2, 1:] + ycc[1::2, 1::2, 1:]) / 4
        planes = [ycc[..., 0], chroma[..., 0], chroma[..., 1]]  # chroma: (H/2, W/2) means of 2x2 blocks
    stacked = np.concatenate([p.reshape(-1) for p in planes]).reshape(height * 3 // 2, width)
    return av.VideoFrame.from_ndarray(np.clip(np.rint(stacked), 0, 255).astype(np.uint8), format="yuv420p")


def _truth_frame(frame_idx: int, poses: np.ndarray) -> FramePredictions:
    """Ground truth of one frame: every animal, its own track, all scores 1."""
    n_animals, n_nodes, _ = poses.shape
    return FramePredictions(
        frame_idx=frame_idx,
        points=poses,
        point_scores=np.ones((n_animals, n_nodes), np.float32),
        instance_scores=np.ones(n_animals, np.float32),
        track_ids=np.arange(n_animals, dtype=np.int32),
        tracking_scores=np.ones(n_animals, np.float32),
    )
