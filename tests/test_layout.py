"""The house's plan, checked: one declaration per option, a light client, an acyclic import graph."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from posestream.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
HEAVY = {"av", "h5py", "onnxruntime", "numba", "scipy", "torch"}


def _options() -> dict[str, list[tuple[str, argparse.Action]]]:
    """Every option string of every command -> (command, its action)."""
    found = defaultdict(list)
    for command, parser in build_parser().commands.items():
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    found[flag].append((command, action))
    return found


def test_every_option_in_several_commands_has_one_help_and_one_type():
    differ = {}
    for flag, uses in _options().items():
        kinds = {
            (action.help, action.type, type(action).__name__, action.choices and tuple(action.choices))
            for _, action in uses
        }
        if len(kinds) > 1:
            differ[flag] = sorted(command for command, _ in uses)
    assert not differ, f"options declared more than once, with differing help or type: {differ}"


def test_frames_is_a_range_and_workers_are_threads_in_every_command():
    uses = _options()
    assert all(action.metavar == "A-B" for _, action in uses["--frames"])
    assert {command for command, _ in uses["--workers"]} == {"track", "bench"}


def test_old_spellings_still_work_with_a_note(tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    assert main(["synth", str(out), "--frames", "3", "--size", "64x64", "--no-slp", "--quiet"]) == 0
    assert "--frames is now --num-frames" in capsys.readouterr().err
    assert out.exists()


def test_the_live_client_imports_neither_video_nor_model_libraries():
    code = (
        f"import posestream.live, sys; print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_import_graph_is_acyclic():
    result = subprocess.run(
        [sys.executable, ROOT / "tools" / "import_graph.py"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
