"""Whole archives: many videos on many workers, resumable (``posestream batch``).

    from posestream.engine.batch import BatchOptions, run_batch
    summary = run_batch(["archive/"], ["models/bu"], "out/", BatchOptions(workers=2))

Modules: ``inputs`` (finding videos, shares), ``manifest`` (the record of each unit), ``plan`` (what is
done, what runs and why), ``worker`` (one unit through the pipeline, outputs renamed when complete),
``local`` and ``ray_engine`` (where units run), ``runner`` (the run), ``progress`` (bar, table, Ctrl-C).
"""

from posestream.engine.batch.runner import BatchOptions, BatchSummary, run_batch

__all__ = ["BatchOptions", "BatchSummary", "run_batch"]
