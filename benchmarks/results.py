"""Shared by the benchmark scripts: RESULTS.md sections, the posestream CLI, and commands measured in their
own process.

benchmarks/RESULTS.md is made of sections, each between its own markers, that each script rewrites.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SLEAP_DATA = Path(
    os.environ.get("POSESTREAM_SLEAP_DATA", Path(__file__).resolve().parents[2] / "shared/data/sleap")
)
# The first lines of every script run in sleap-nn's venv: where the registry's torchvision wheel is built for
# CUDA torch (its compiled ops cannot load beside a CPU torch), sleap-nn fails at import; torchvision's meta
# registrations of those ops are skipped (nothing the scripts do uses them).
SLEAP_NN_SHIM = """import sys, types
sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
"""


def refuse_unknown(parser: argparse.ArgumentParser, option: str, given: list[str], known: list[str]) -> None:
    """Stop before any work when ``option`` names something this benchmark has not, listing what it has."""
    unknown = set(given) - set(known)
    if unknown:
        parser.error(f"{option}: no {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")


def add_centroid_option(parser: argparse.ArgumentParser) -> None:
    """``--centroid RUN``, the same option in every benchmark that scores top-down pairs."""
    parser.add_argument(
        "--centroid",
        type=Path,
        help="a trained centroid run shared by every top-down row, used as it is: never trained further "
        "(default: the benchmark trains one)",
    )


def checked_centroid(parser: argparse.ArgumentParser, run: Path | None) -> Path | None:
    """``--centroid``'s run, refused before any work when it is not a trained centroid run."""
    if run is None:
        return None
    facts = run / "run.json"
    if not facts.exists() or not (run / "best.pt").exists():
        parser.error(f"--centroid {run}: not a trained run (no run.json and best.pt); give a run directory")
    kind = json.loads(facts.read_text()).get("model_type")
    if kind != "centroid":
        parser.error(f"--centroid {run}: a {kind} run; give a centroid run")
    return run


def write_section(name: str, lines: list[str]) -> None:
    """Replace (or append) the section ``name`` of RESULTS.md with ``lines``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    section = "\n".join([start, *lines, end])
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if start in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(text)


_PROBE = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); subprocess.run(sys.argv[1:], "
    "check=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, time.perf_counter() - "
    "t)"
)


def peak_rss_and_seconds(command: list[str]) -> tuple[float, float]:
    """Run ``command`` in a child of a fresh interpreter: its peak RSS (MB) and wall seconds (start
    included)."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *command], check=True, capture_output=True, text=True
    )
    rss_mb, seconds = map(float, done.stdout.split()[-2:])
    return rss_mb, seconds


def sleap_files(*names: str) -> list[Path]:
    """The named files of the SLEAP data folder (POSESTREAM_SLEAP_DATA, else ../shared/data/sleap beside the
    repository); a missing one stops the script, saying where it was looked for."""
    paths = [SLEAP_DATA / name for name in names]
    for path in paths:
        if not path.exists():
            sys.exit(f"{path} not found: set POSESTREAM_SLEAP_DATA to the folder with the SLEAP data")
    return paths


def posestream_command(*args) -> list[str]:
    """``posestream ARGS`` from this interpreter's environment (arguments as strings): its console script,
    or ``python -m posestream.cli`` where the script lies elsewhere (a system python, as on a lent device)."""
    script = Path(sys.executable).with_name("posestream")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "posestream.cli"]
    return [*command, *map(str, args)]


def trained_minutes(run: Path) -> float:
    """Minutes of training a run has had (its log's epochs; 0 before the first)."""
    log = run / "training_log.csv"
    if not log.exists():
        return 0.0
    with log.open() as f:
        return sum(float(row["seconds"]) for row in csv.DictReader(f)) / 60


def stale(output: Path, *sources: Path) -> bool:
    """Whether ``output`` must be made again: missing, or older than one of the files it is made from."""
    if not output.exists():
        return True
    return any(source.stat().st_mtime > output.stat().st_mtime for source in sources)


def run_posestream(*args) -> None:
    """Run ``posestream ARGS``, echoing the command; a failure stops the script."""
    command = posestream_command(*args)
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def bench_json(video: Path, models: list, batch: int, out: Path, *options) -> dict:
    """``posestream bench`` of ``video`` with one pose model (its model dirs), and ``options`` (e.g.
    ``--frames``): the figures of its --json."""
    run_posestream(
        "bench", "-i", video, *[a for m in models for a in ("-m", m)], "--batch-size", batch, "--json", out,
        *options,
    )  # fmt: skip
    return json.loads(Path(out).read_text())
