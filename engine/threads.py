"""The CPU thread budget: how many threads the network, the video decoder and postprocessing get.

On CPU every stage shares the same cores: onnxruntime's intra-op threads, FFmpeg's decoder threads,
the postprocessing pool (numpy and compiled kernels that release the GIL) and the caller writing the
outputs. More threads than cores, or threads spinning while they wait, take cores from the stage
that needs them. The budget, from the core count and one measurement of the network:

| | network threads | spinning | decoder threads | postprocessing threads |
|---|---|---|---|---|
| light network (< LIGHT_NETWORK_US a frame on every core) | 1 | no | | 0 (the infer stage's) |
| other networks | every core | one network: yes; two (top-down): no | | 1 at batch 1, else 2 |
| frames < SMALL_FRAME_PIXELS | | | 1 | |
| larger frames, or any network on a GPU | | | 0 (FFmpeg chooses: frame + slice threads) | |

Why (measured on 2 cores, benchmarks/RESULTS.md): a near-null network (62 us a frame) on every core runs
end-to-end at 3,900 FPS; on one core, with the decoder on one thread, at 6,900 FPS (the network's two
threads and FFmpeg's threads took turns with the decoding thread). The demo network (7 ms a frame)
needs both cores: 142 FPS against 98 on one. FFmpeg's threads double decoding of 1024x1024 frames
(149 against 85 FPS) and add nothing below 512x512 but hand-overs. Two networks called in turn with
spinning threads wait on each other (top-down 35.2 s against 20.8 s without spinning). A network on a GPU
leaves the cores to the decoder: on the H200 machine's 16 cores, FFmpeg's threads decode the 384x384 synthetic
video at 2,618 FPS against 398 on one thread, and 1024x1280 at 430 against 46 (engine/sources reader alone);
one thread bounded the GPU runs at 1,400 FPS end-to-end (benchmarks/RESULTS.md "GPU path").

Any value given (``--threads``, ``--decode-threads``, ``--workers``) replaces the budget's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from posestream.core.errors import ConfigError

LIGHT_NETWORK_US = 250.0  # a network faster than this a frame, on every core, gets one core
SMALL_FRAME_PIXELS = 512 * 512  # frames smaller than this decode on one thread
MEASURE_BATCH = 8  # frames in the batch the network is timed on


def cpu_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and taskset set)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class ThreadBudget:
    """Threads per stage on CPU. model: onnxruntime intra-op threads of each session; spin: its idle
    threads spin for the next call; decode: FFmpeg decoder threads (0: FFmpeg chooses); why: the reason,
    for the run's summary."""

    model: int
    spin: bool
    decode: int
    why: str
    light: bool = False  # the network was measured light

    def postprocess_workers(self, batch_size: int) -> int:
        """Postprocessing threads when the user gives none: none for a light network (the infer stage decodes
        its outputs: one thread fewer to wake per batch; null network at batch 8, 4,900 -> 6,500 FPS), one for
        batches of one frame (a network that heavy is far slower than its postprocessing, and each worker
        holds a batch of output maps: bottom-up 384x384, peak RSS 317 -> 310 MB at the same FPS), else 2."""
        return 0 if self.light else 1 if batch_size == 1 else 2

    def __post_init__(self) -> None:
        if self.model < 1 or self.decode < 0:
            raise ValueError(
                f"thread budget needs model >= 1 and decode >= 0 threads, got {self.model}, {self.decode}"
            )

    def describe(self) -> str:
        decode = "FFmpeg's choice" if self.decode == 0 else str(self.decode)
        return (
            f"network {self.model} thread(s){' spinning' if self.spin else ''}, decoder {decode} ({self.why})"
        )


def decode_threads_for(frame_shape: tuple[int, ...], network_on_gpu: bool = False) -> int:
    """FFmpeg threads for frames of (H, W, C): 1 below SMALL_FRAME_PIXELS when the network shares the cores,
    else 0 (FFmpeg chooses)."""
    return 1 if not network_on_gpu and frame_shape[0] * frame_shape[1] < SMALL_FRAME_PIXELS else 0


def network_us_per_frame(run: Callable[[np.ndarray], object], frame_shape: tuple[int, ...]) -> float:
    """Microseconds a frame of the network on black frames: one frame first; a network that may be light
    is then timed on MEASURE_BATCH frames (its per-call cost spread as in a batch). A heavy network is only
    ever called on one frame: onnxruntime keeps the memory of the largest batch it has run (80 MB a frame
    for a 384x384 UNet)."""

    def timed(frames: np.ndarray) -> float:
        run(frames)  # untimed: the first call of a shape allocates
        started = time.perf_counter()
        run(frames)
        return (time.perf_counter() - started) * 1e6 / len(frames)

    one = timed(np.zeros((1, *frame_shape), np.uint8))
    if one > 4 * LIGHT_NETWORK_US:
        return one
    return timed(np.zeros((MEASURE_BATCH, *frame_shape), np.uint8))


def budget(
    frame_shape: tuple[int, ...],
    networks: int,
    us_per_frame: float | None,
    model_threads: int = 0,
    decode_threads: int | None = None,
    cores: int | None = None,
    network_on_gpu: bool = False,
) -> ThreadBudget:
    """The budget for ``networks`` networks taking frames of ``frame_shape``; ``us_per_frame``: the network
    measured on every core (None: not measured, it gets every core). ``model_threads`` > 0 and
    ``decode_threads`` not None are the user's and are kept. ``network_on_gpu``: the network runs on a GPU
    (device cuda), so the decoder does not share the cores with it."""
    if model_threads < 0 or (decode_threads is not None and decode_threads < 0):
        raise ConfigError(
            "--threads and --decode-threads must be >= 0 (0: the thread budget's, README 'Benchmark "
            f"throughput'), got {model_threads} and {decode_threads}"
        )
    cores = cores or cpu_cores()
    decode = decode_threads_for(frame_shape, network_on_gpu) if decode_threads is None else decode_threads
    if model_threads > 0:
        return ThreadBudget(model_threads, networks == 1 and model_threads > 1, decode, "threads given")
    if networks == 1 and us_per_frame is not None and us_per_frame < LIGHT_NETWORK_US:
        return ThreadBudget(
            1, False, decode, f"light network, {us_per_frame:.0f} us a frame: it shares the cores", True
        )
    why = f"{cores} cores" + ("" if networks == 1 else ", two networks in turn: no spinning")
    return ThreadBudget(cores, networks == 1, decode, why)


def load_warning() -> str:
    """A warning when other work already loads this machine (the 1-minute load average above the core
    count), since timings then say little about the engine; "" otherwise or where the system cannot tell."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return ""
    cores = os.cpu_count() or 1
    if load <= cores:
        return ""
    return (
        f"the machine is loaded (load average {load:.1f} on {cores} cores): figures measured now mean "
        "little; stop other work for a fair measurement"
    )
