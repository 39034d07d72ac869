"""What the driver shows: one progress bar for the run and the end-of-run table."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from posestream.engine.batch.manifest import DONE, FAILED


class BatchProgress:
    """Videos done of the run, frames per second over every worker, elapsed time and ETA (on stderr)."""

    def __init__(self, total: int, enabled: bool = True):
        self.enabled, self.started = enabled, time.monotonic()
        self._progress = Progress(
            TextColumn("batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("videos"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=Console(file=sys.stderr),
            disable=not enabled,
        )
        self._task = self._progress.add_task("batch", total=total, rate="", status="")

    def __enter__(self) -> BatchProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self._progress.__exit__(*exc_info)

    def frames(self, done: int) -> None:
        """Frames done so far over every worker."""
        seconds = time.monotonic() - self.started
        self._progress.update(self._task, rate=f"{done / seconds:7.1f} frames/s" if seconds > 0 else "")

    def unit_done(self, record) -> None:
        self._progress.update(self._task, advance=1, status=f"{record.status}: {record.unit}")
        if record.status == FAILED and self.enabled:
            self._progress.console.print(f"[red]failed[/red] {record.unit}: {record.error}")


def format_summary(summary) -> str:
    """The end-of-run table: one row per video run, then the failures and what to do."""
    lines = []
    if summary.ran:
        width = max(len(r.unit) for r in summary.ran)
        lines.append(
            f"{'video':<{width}}  {'status':<11}  {'frames':>8}  {'missing':>8}  {'FPS':>8}  {'seconds':>8}  "
            "why it ran"
        )
        for r in summary.ran:
            lines.append(
                f"{r.unit:<{width}}  {r.status:<11}  {r.frames:>8}  {r.frames_missing:>8}  {r.fps:>8.1f}  "
                f"{r.wall_s:>8.1f}  {summary.reasons.get(r.unit, '')}"
            )
    done = sum(r.status == DONE for r in summary.ran)
    frames = sum(r.frames for r in summary.ran if r.status == DONE)
    lines.append(
        f"{done} videos done now ({frames} frames in {summary.wall_s:.1f} s), {len(summary.skipped)} done "
        f"before (outputs checked), {len(summary.failed)} failed, {summary.not_started} not started"
    )
    for r in summary.failed:
        lines.append(f"failed: {r.unit}: {r.error}")
    if missing := [r for r in summary.ran if r.frames_missing and r.status == DONE]:
        lines.append(
            "frames that failed to decode (marked missing in the outputs): "
            + ", ".join(f"{r.unit} {r.frames_missing} of {r.frames}" for r in missing)
        )
    if summary.disk_full:
        lines.append(
            "the output disk is full: no more videos were started; free space, then run the same command "
            "again to finish"
        )
    elif summary.interrupted or summary.unfinished:
        lines.append("run the same command again to finish (done videos are skipped)")
    lines.append(f"outputs and manifest: {summary.out_dir}")
    return "\n".join(lines)
