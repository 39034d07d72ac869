"""What a lent GPU machine gives the engine's parts alone: the decoder by thread count, copies, the network.

    python benchmarks/gpu_probe.py [--parts decode,copies,network]

The GPU path's table (benchmarks/gpu.py) says which stage bounds a run; this says what that stage could do
on the machine, so that a bound is read as the engine's or the hardware's (RESULTS.md "GPU path"):

- decode: the engine's reader (``VideoFileReader.iter_frames``) on ``posestream synth`` videos of 384x384
  (3,000 frames) and 1024x1280 (400), on one FFmpeg thread, on FFmpeg's choice, on 4 and 8, and on NVDEC
  (``hwaccel=cuda``, where PyAV's FFmpeg has it).
- copies: uint8 frames in (pageable and pinned), fp16 maps out (pinned), batch 256.
- network: the single-instance profile's UNet at 384x384 alone, fp16, channels-last and NCHW, bf16; eager and
  in a CUDA graph; cudnn.benchmark on.

About a minute on one H200 (gpu_lease.sh runs it last). Prints one line per figure.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BATCH = 256


def decode(folder: Path) -> None:
    from posestream.engine.sources.video_file import VideoFileReader

    for size, frames in (("384x384", 3000), ("1280x1024", 400)):
        video = folder / f"synth_{size}.mp4"
        command = [sys.executable, "-m", "posestream.cli", "synth", str(video), "--num-frames", str(frames)]
        subprocess.run([*command, "--size", size, "--no-slp", "--quiet", "--seed", "3"], check=True)
        for threads, hwaccel in ((1, None), (0, None), (4, None), (8, None), (1, "cuda")):
            reader = VideoFileReader(video, threads=threads, hwaccel=hwaccel)
            started = time.perf_counter()
            count = sum(1 for _ in reader.iter_frames())
            fps = count / (time.perf_counter() - started)
            reader.close()
            print(
                f"decode {size}, threads {threads} (0: FFmpeg's), on {reader.hwaccel or 'cpu'}: {fps:.0f} FPS"
            )


def per_second(torch, run: Callable[[], object], repeats: int = 20) -> float:
    """Calls of ``run`` per second, on the GPU's clock (synchronised), after one untimed call."""
    run()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        run()
    torch.cuda.synchronize()
    return repeats / (time.perf_counter() - started)


def gb(tensor, rate: float) -> str:
    return f"{tensor.nbytes * rate / 1e9:.1f} GB/s"


def copies(torch) -> None:
    frames = torch.randint(0, 255, (BATCH, 384, 384, 1), dtype=torch.uint8)  # (B, H, W, 1)
    on_gpu = torch.empty_like(frames, device="cuda")
    for name, source in (("pageable", frames), ("pinned", frames.pin_memory())):
        rate = per_second(torch, lambda s=source: on_gpu.copy_(s, non_blocking=True))
        print(f"copy in, uint8 384x384, {name}: {BATCH * rate:.0f} frames/s, {gb(frames, rate)}")
    maps = torch.empty((BATCH, 17, 192, 192), dtype=torch.float16, device="cuda")  # (B, N, H/2, W/2)
    host = torch.empty(maps.shape, dtype=maps.dtype).pin_memory()
    rate = per_second(torch, lambda: host.copy_(maps, non_blocking=True))
    print(f"copy out, fp16 maps (17, 192, 192), pinned: {BATCH * rate:.0f} frames/s, {gb(maps, rate)}")


def network(torch) -> None:
    from posestream.train.config import load_config
    from posestream.train.models import build_model

    torch.backends.cudnn.benchmark = True
    net = build_model(load_config("single_instance", overrides=["backbone.max_stride=16"]), 1, 17, 16)
    net = net.cuda().eval()
    print(f"network: single-instance UNet, {sum(p.numel() for p in net.parameters()) / 1e6:.1f} M parameters")
    settings = (
        ("fp16 channels-last", torch.float16, torch.channels_last),
        ("fp16 NCHW", torch.float16, torch.contiguous_format),
        ("bf16 channels-last", torch.bfloat16, torch.channels_last),
    )
    for name, dtype, layout in settings:
        net = net.to(dtype=dtype, memory_format=layout)
        frames = torch.randn(BATCH, 1, 384, 384, device="cuda", dtype=dtype).to(memory_format=layout)
        with torch.inference_mode():
            eager = per_second(torch, lambda n=net, f=frames: n(f))
            graph = torch.cuda.CUDAGraph()
            for _ in range(3):  # warm-up on the capture's stream state
                net(frames)
            torch.cuda.synchronize()
            with torch.cuda.graph(graph):
                net(frames)
            captured = per_second(torch, graph.replay)
        print(
            f"network 384x384 {name}, b{BATCH}: {BATCH * eager:.0f} FPS eager, {BATCH * captured:.0f} graphed"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="decode,copies,network")
    parts = parser.parse_args().parts.split(",")
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device here: run this on a lent device (benchmarks/gpu.py's docstring)")
        return 1
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}", flush=True)
    if "decode" in parts:
        with tempfile.TemporaryDirectory() as folder:
            decode(Path(folder))
    if "copies" in parts:
        copies(torch)
    if "network" in parts:
        network(torch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
