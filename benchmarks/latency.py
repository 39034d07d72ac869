"""Live latency: camera-sim -> posestream live -> a subscriber, each in its own process, on one host.

    python benchmarks/latency.py [--frames 5000] [--warmup 150] [--only demo,topdown,null,soak]
    [--soak-minutes 10]

Per model (the embedded demo model on a synthetic 384x384 video; a top-down fly model of
benchmarks/same_size.py on centered_pair_small.mp4; a null model, a tiny single-instance network):

- model call only: ``Predictor.infer`` on one frame, as DeepLabCut-Live and SLEAP time theirs (and with
  postprocessing, as DeepLabCut-Live's ``get_pose`` does); capacity = 1 / its mean;
- live runs, each ``--frames`` frames per camera after ``--warmup``: 30 Hz; 70% of capacity; 2x
  capacity; two cameras at 30 Hz. ``posestream live --tracking --max-tracks 2 --processor`` (a no-op hook)
  publishes to this process, which reads every frame's stage times from the pose headers. Latency is
  publish minus capture time (the camera's schedule), on the host's monotonic clock.
- soak: 2x capacity for --soak-minutes with the demo model, RSS of the live process every 10 s.

Writes the "latency" sections of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from results import posestream_command, run_posestream, write_section

HERE = Path(__file__).resolve().parent
OUT = HERE / "data" / "latency"
SLEAP_DATA = Path(os.environ.get("POSESTREAM_SLEAP_DATA", HERE.parent.parent / "shared" / "data" / "sleap"))
FLY_MODELS = [
    HERE / "data" / "same_size" / "centroid_fp32",
    HERE / "data" / "same_size" / "centered_instance_fp32",
]
EXTRA: list = []  # more posestream live options (experiments)
THREADS = [0]  # the model's CPU threads (0: every core), for the model calls and posestream live
BREAKDOWN = {  # name -> (from stage, to stage) in the pose header
    "transport + queue": ("capture", "infer_start"),
    "infer": ("infer_start", "infer_end"),
    "postprocess": ("infer_end", "postprocess"),
    "tracking": ("postprocess", "track"),
    "hook": ("track", "hook"),
    "publish": ("hook", "publish"),
}


class NoopHook:
    """The closed-loop hook of the live runs: does nothing, so its row is the hook's own overhead."""

    def process(self, frame, meta) -> None:
        pass


# -- inputs -------------------------------------------------------------------------------------------------


def synth_video() -> Path:
    video = OUT / "pair.mp4"
    if not video.exists():
        run_posestream(
            "synth",
            video,
            "--num-frames",
            600,
            "--size",
            "384x384",
            "--animals",
            2,
            "--seed",
            31,
            "--quiet",
            "--no-slp",
        )
    return video


def null_model() -> Path:
    """A tiny single-instance network (4 filters, stride 16) exported at 384x384: the engine's overhead."""
    model = OUT / "null_model"
    if not (model / "metadata.json").exists():
        video = OUT / "one.mp4"
        run_posestream(
            "synth", video, "--num-frames", 20, "--size", "384x384", "--animals", 1, "--seed", 3, "--quiet"
        )
        run_posestream(
            "train",
            video.with_suffix(".slp"),
            "-o",
            OUT / "null_run",
            "--profile",
            "single_instance",
            "--max-minutes",
            0.2,
            "--quiet",
            "--set",
            "backbone.filters=4",
            "--set",
            "backbone.max_stride=16",
            "--set",
            "data.input_scale=0.25",
            "--set",
            "data.val_fraction=0",
        )
        run_posestream("export", OUT / "null_run", "-o", model, "--input-size", "384x384", "--quiet")
    return model


# -- model call only --------------------------------------------------------------------------------------


def model_call(models: list, video: Path, calls: int = 1000, rate: float | None = None) -> dict:
    """Batch-1 model call and model + postprocess times (ms) on the video's frames: back to back, or one
    call every 1 / ``rate`` s (a model called at a camera's pace runs colder)."""
    from posestream.engine.model.predictor import Predictor
    from posestream.engine.sources import open_source

    with open_source(video) as source:
        frames = [image for _, image in zip(range(50), (im for _, im in source.iter_frames()))]
    infer, full = [], []
    with Predictor([str(m) for m in models], threads=THREADS[0]) as predictor:
        for k in range(calls + 20):
            if rate:
                time.sleep(1 / rate)
            batch = frames[k % len(frames)][None]
            started = time.perf_counter()
            raw = predictor.infer(batch)
            middle = time.perf_counter()
            predictor.postprocess(raw)
            done = time.perf_counter()
            if k >= 20:
                infer.append((middle - started) * 1000)
                full.append((done - started) * 1000)
    infer, full = np.array(infer), np.array(full)
    return {
        "infer_p50": np.percentile(infer, 50),
        "infer_p99": np.percentile(infer, 99),
        "infer_mean": infer.mean(),
        "full_p50": np.percentile(full, 50),
        "full_p99": np.percentile(full, 99),
        "capacity_hz": 1000 / infer.mean(),
    }


# -- one live run -------------------------------------------------------------------------------------------


class Collector(threading.Thread):
    """Every pose header published, until stopped: (camera, counter, batch, times...)."""

    def __init__(self, address: str):
        super().__init__(daemon=True)
        from posestream.live import PoseSubscriber

        self.subscriber = PoseSubscriber(address, hwm=100_000)
        self.rows: list[tuple] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            message = self.subscriber.recv(timeout=0.2)
            if message is not None:
                h = message.header
                self.rows.append((h.camera, h.counter, h.batch, *h.times))
        self.subscriber.close()

    def measured(self, warmup: int) -> int:
        """Frames after the warm-up, of the camera with fewest."""
        counts: dict[int, int] = {}
        for camera, counter, *_ in self.rows[-50_000:]:
            if counter >= warmup:
                counts[camera] = counts.get(camera, 0) + 1
        return min(counts.values()) if counts else 0


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", text).group(1)) / 1024


def live_run(
    models: list,
    video: Path,
    rate: float,
    cameras: int,
    frames: int,
    warmup: int,
    minutes: float | None = None,
    name: str = "run",
) -> dict:
    """One setting: figures of the frames after ``warmup`` (or of ``minutes`` of serving)."""
    cam, pub = f"ipc://{OUT / (name + '.cam')}", f"ipc://{OUT / (name + '.pub')}"
    stats = OUT / f"{name}.stats.json"
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    live = subprocess.Popen(
        posestream_command(
            "live",
            *[a for m in models for a in ("-m", m)],
            "--camera",
            cam,
            "--publish",
            pub,
            "--quiet",
            "--stats-json",
            stats,
            "--tracking",
            "--max-tracks",
            2,
            "--processor",
            "latency:NoopHook",
            "--threads",
            THREADS[0],
            *EXTRA,
        ),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    collector = Collector(pub)
    collector.start()
    time.sleep(1.0)
    sim = subprocess.Popen(
        posestream_command(
            "camera-sim",
            video,
            "--address",
            cam,
            "--rate",
            rate,
            "--cameras",
            cameras,
            "--loop",
            "--wait",
            120,
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    rss: list[tuple[float, float]] = []
    started = None
    try:
        while sim.poll() is None:
            time.sleep(1.0)
            if collector.rows and started is None:
                started = time.monotonic()
            if started is not None:
                rss.append((time.monotonic() - started, rss_mb(live.pid)))
            if minutes is None and collector.measured(warmup) >= frames:
                break
            if minutes is not None and started is not None and time.monotonic() - started >= minutes * 60:
                break
        peak = rss_mb(live.pid, "VmHWM")
        sim.send_signal(signal.SIGINT)
        sim_out, _ = sim.communicate(timeout=30)
        time.sleep(1.0)
        live.send_signal(signal.SIGINT)
        _, live_err = live.communicate(timeout=60)
    finally:
        sim.kill()
        live.kill()
        collector.stop.set()
        collector.join(5)
    if live.returncode != 0:
        raise RuntimeError(f"posestream live failed:\n{live_err[-3000:]}")
    figures = json.loads(stats.read_text())
    return summarize(np.array(collector.rows, np.int64), warmup, rate, cameras, sim_out, figures, peak, rss)


def summarize(
    rows: np.ndarray,
    warmup: int,
    rate: float,
    cameras: int,
    sim_out: str,
    figures: dict,
    peak: float,
    rss: list,
) -> dict:
    from posestream.live.protocol import STAGES

    rows = rows[rows[:, 1] >= warmup]
    times = {stage: rows[:, 3 + i] for i, stage in enumerate(STAGES)}
    latency = (times["publish"] - times["capture"]) / 1e6
    overhead = latency - (times["infer_end"] - times["infer_start"]) / 1e6  # all but the model call
    achieved = float(re.search(r"([\d.]+) Hz achieved", sim_out).group(1))
    sent = int(re.search(r"(\d+) frames x", sim_out).group(1))
    cams = figures["cameras"]
    span = (times["publish"].max() - times["publish"].min()) / 1e9
    return {
        "frames": len(rows),
        "offered_hz": rate,
        "achieved_hz": achieved,
        "cameras": cameras,
        "processed_hz": len(rows) / cameras / span if span else 0.0,
        "latency": {
            q: float(np.percentile(latency, v))
            for q, v in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9))
        }
        | {"max": float(latency.max())},
        "breakdown": {
            name: (
                float(np.percentile((times[b] - times[a]) / 1e6, 50)),
                float(np.percentile((times[b] - times[a]) / 1e6, 99)),
            )
            for name, (a, b) in BREAKDOWN.items()
        },
        "overhead": {q: float(np.percentile(overhead, v)) for q, v in (("p50", 50), ("p99", 99))},
        "batch_mean": float(rows[:, 2].mean()),
        "sent": sent * cameras,
        "engine_sent": sum(c["frames_sent"] for c in cams.values()),
        "received": sum(c["frames_received"] for c in cams.values()),
        "dropped": sum(c["frames_dropped"] for c in cams.values()),
        "dropped_in_queue": sum(c["dropped_in_queue"] for c in cams.values()),
        "peak_rss_mb": peak,
        "rss": rss,
    }


# -- tables -------------------------------------------------------------------------------------------------


def model_rows(label: str, call: dict) -> list[str]:
    return [
        f"| {label} | {call['infer_p50']:.2f} | {call['infer_p99']:.2f} | {call['at30_p99']:.2f} | "
        f"{call['full_p50']:.2f} | {call['full_p99']:.2f} | {call['capacity_hz']:.0f} |"
    ]


def setting_row(label: str, setting: str, r: dict, bar: str) -> str:
    lat = r["latency"]
    exact = "yes" if r["received"] + r["dropped"] == r["engine_sent"] == r["sent"] else "NO"
    return (
        f"| {label} | {setting} | {r['offered_hz']:.0f} / {r['achieved_hz']:.1f} / {r['processed_hz']:.1f} | "
        f"{lat['p50']:.2f} | {lat['p90']:.2f} | {lat['p99']:.2f} | {lat['p999']:.2f} | {lat['max']:.1f} | "
        f"{r['dropped']} of {r['engine_sent']} ({exact}) | {r['batch_mean']:.2f} | "
        f"{r['peak_rss_mb']:.0f} | {bar} |"
    )


def breakdown_row(label: str, setting: str, r: dict) -> str:
    cells = " | ".join(f"{p50:.2f} / {p99:.2f}" for p50, p99 in r["breakdown"].values())
    return f"| {label} | {setting} | {cells} | {r['overhead']['p50']:.2f} / {r['overhead']['p99']:.2f} |"


def model_section(label: str, models: list, video: Path, args) -> tuple[list[str], list[str], list[str]]:
    """The settings of one model: result rows, breakdown rows, and the model-call row."""
    call = model_call(models, video)
    call["at30_p99"] = model_call(models, video, 300, rate=30.0)["infer_p99"]
    print(
        f"{label}: model call p50 {call['infer_p50']:.2f} p99 {call['infer_p99']:.2f} ms, capacity "
        f"{call['capacity_hz']:.0f} Hz",
        flush=True,
    )
    budget = call["infer_p99"] + 2.0
    settings = [
        ("30 Hz", 30.0, 1),
        ("70% capacity", 0.7 * call["capacity_hz"], 1),
        ("2x capacity", 2.0 * call["capacity_hz"], 1),
        ("2 cameras x 30 Hz", 30.0, 2),
    ]
    rows, breakdown = [], []
    for setting, rate, cameras in settings:
        r = live_run(
            models,
            video,
            rate,
            cameras,
            args.frames,
            args.warmup,
            name=f"{label}_{setting}".replace(" ", "_").replace("%", "pc"),
        )
        if setting == "2x capacity":
            bar_ms = 3 * call["infer_p99"]
            ok = r["latency"]["p99"] <= bar_ms and r["received"] + r["dropped"] == r["engine_sent"]
            bar = f"p99 <= {bar_ms:.1f}, exact drops: {'met' if ok else 'NOT met'}"
        elif setting == "2 cameras x 30 Hz":
            bar = "-"
        else:
            ok = r["latency"]["p99"] <= budget and r["dropped"] == 0
            bar = f"p99 <= {budget:.1f}, 0 drops: {'met' if ok else 'NOT met'}"
        if models == [str(OUT / "null_model")]:
            bar += (
                f"; overhead p99 {r['overhead']['p99']:.2f} <= 1 ms: "
                f"{'met' if r['overhead']['p99'] <= 1.0 else 'NOT met'}"
            )
        print(setting_row(label, setting, r, bar), flush=True)
        rows.append(setting_row(label, setting, r, bar))
        breakdown.append(breakdown_row(label, setting, r))
        (OUT / f"{label}_{setting}.json".replace(" ", "_").replace("%", "pc")).write_text(
            json.dumps(r, indent=1)
        )
    return rows, breakdown, model_rows(label, call)


RESULT_HEADER = [
    "| model | setting | offered / sent / processed Hz | p50 | p90 | p99 | p99.9 | max | drops of sent "
    "(exact) | mean batch | peak RSS MB | bar |",
    "|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|",
]
BREAKDOWN_HEADER = [
    "| model | setting | " + " | ".join(BREAKDOWN) + " | all but the model call |",
    "|---|---|" + "---|" * (len(BREAKDOWN) + 1),
]
CALL_HEADER = [
    "| model | model call p50 | model call p99 | p99 called at 30 Hz | + postprocess p50 | + postprocess "
    "p99 | capacity Hz (1 / mean call) |",
    "|---|---:|---:|---:|---:|---:|---:|",
]


def models_part(args) -> None:
    parts = {
        "demo": ("demo (bottom-up, 9 nodes)", ["demo"], synth_video),
        "topdown": (
            "top-down fly (24 nodes)",
            [str(m) for m in FLY_MODELS],
            lambda: SLEAP_DATA / "centered_pair_small.mp4",
        ),
        "null": ("null model", None, synth_video),
    }
    rows, breakdown, calls = [], [], []
    for key in [k for k in args.only.split(",") if k in parts]:
        label, models, video = parts[key]
        models = models or [str(null_model())]
        if key == "topdown" and not all((m / "metadata.json").exists() for m in FLY_MODELS):
            print(
                f"skipping the top-down model: {FLY_MODELS} not found (python benchmarks/same_size.py "
                "trains them)"
            )
            continue
        r, b, c = model_section(label, models, video(), args)
        rows += r
        breakdown += b
        calls += c
    suffix = f"-threads{THREADS[0]}" if THREADS[0] else ""
    write_section(
        "latency-runs" + suffix,
        [
            "### Camera to published pose "
            f"(ms){f', the model on {THREADS[0]} thread(s)' if THREADS[0] else ''}",
            "",
            f"{args.frames} frames per camera per setting after {args.warmup} frames of warm-up; `posestream "
            "live --tracking --max-tracks 2 --processor (no-op)`, camera-sim and the subscriber each in "
            "their own process. Bars: at 30 Hz and 70% of capacity, p99 <= the model call's batch-1 p99 + 2 "
            "ms with no drop; at 2x capacity, p99 <= 3x the model call's p99 and received + dropped = sent.",
            "",
            *RESULT_HEADER,
            *rows,
            "",
            "Where the time goes, p50 / p99 ms per stage (transport + queue: capture to the model's start; "
            "postprocess runs in the model's thread; tracking includes the hand-over to the last thread):",
            "",
            *BREAKDOWN_HEADER,
            *breakdown,
            "",
            "Model call only, batch 1 (the figure DeepLabCut-Live and SLEAP report; with postprocessing it "
            "is DeepLabCut-Live's `get_pose`):",
            "",
            *CALL_HEADER,
            *calls,
        ],
    )


def soak_part(args) -> None:
    video = synth_video()
    call = model_call(["demo"], video, 300)
    r = live_run(["demo"], video, 2 * call["capacity_hz"], 1, 0, 0, minutes=args.soak_minutes, name="soak")
    rss = r["rss"]
    first = (
        np.median([m for t, m in rss if 50 <= t <= 70]) if any(50 <= t <= 70 for t, _ in rss) else rss[0][1]
    )
    last = np.median([m for _, m in rss[-6:]])
    samples = " ".join(f"{m:.0f}" for t, m in rss[:: max(1, len(rss) // 12)])
    write_section(
        "latency-soak",
        [
            "### Memory under overload",
            "",
            f"The demo model at 2x capacity ({2 * call['capacity_hz']:.0f} Hz offered) for "
            f"{args.soak_minutes:g} minutes: {r['received']} frames served, {r['dropped']} dropped of "
            f"{r['engine_sent']} sent (received + dropped = sent: "
            f"{'yes' if r['received'] + r['dropped'] == r['engine_sent'] else 'NO'}); p99 "
            f"{r['latency']['p99']:.1f} ms.",
            "",
            f"RSS of the live process (MB, sampled through the run): {samples}. Minute 1: {first:.0f} MB, "
            f"the end: {last:.0f} MB, ratio {last / first:.3f} (bar: flat, <= 1.05).",
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=150)
    parser.add_argument("--only", default="demo,topdown,null,soak")
    parser.add_argument("--soak-minutes", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=0, help="the model's CPU threads (0: every core)")
    args = parser.parse_args()
    THREADS[0] = args.threads
    OUT.mkdir(parents=True, exist_ok=True)
    write_section(
        "latency",
        [
            "## Live latency",
            "",
            f"`python benchmarks/latency.py` ({platform.machine()}, {os.cpu_count()} cores; camera, engine "
            "and client on this host). Each subsection is rewritten by its part (`--only "
            "demo,topdown,null,soak`).",
        ],
    )
    if any(k in args.only for k in ("demo", "topdown", "null")):
        models_part(args)
    if "soak" in args.only:
        soak_part(args)


if __name__ == "__main__":
    sys.exit(main())
