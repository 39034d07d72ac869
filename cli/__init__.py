"""The ``posestream`` command: a thin layer over the Python API, one module per command family.

``options`` declares every option that several commands take, once; ``track`` (track, bench, retrack,
recover), ``video`` (synth, render), ``live`` (live, camera-sim, listen, keys), ``batch``, ``train`` (train,
evaluate, pack, preview-rf), ``export`` (export, import) and ``multiview`` (calibrate, triangulate)
declare their commands. Commands import what they need when they run, so ``posestream synth`` never loads
torch and a missing extra fails only the command that needs it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from posestream.cli import batch, export, live, multiview, options, track, train, video
from posestream.core.errors import ConfigError, PosestreamError
from posestream.engine.extras import package_version

FAMILIES = (video, track, train, export, live, batch, multiview)
"""In the order ``posestream --help`` lists their commands."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posestream", description="High-throughput streaming pose estimation."
    )
    parser.add_argument("--version", action="version", version=f"posestream {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.commands = sub.choices  # name -> the command's parser
    for family in FAMILIES:
        family.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(options.renamed(sys.argv[1:] if argv is None else argv))
    if unknown:  # said by the command's own parser, with its usage (not the top level's)
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return args.run(args)
    except (PosestreamError, FileNotFoundError) as exc:
        kind = "configuration error" if isinstance(exc, ConfigError) else "error"
        print(f"posestream {args.command}: {kind}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"posestream {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout piped into a reader that stopped (e.g. `| head`); the files are written
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 141
