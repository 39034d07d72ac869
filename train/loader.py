"""Batches of training examples, made ahead in worker processes.

Each example is drawn from (seed, epoch, index) alone (``PoseDataset``), and each epoch's order from
(seed, epoch), so a run is reproducible whatever the number of workers. Workers get their copy of the
decoded frames when they start (forked: shared until written), make batches ``data.prefetch`` ahead, and
end with the run: at its end, on Ctrl-C, or on an error. An example that cannot be made stops the run with
one error naming its labelled frame (``TrainingExampleError``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, default_collate

from posestream.core.errors import TrainingExampleError
from posestream.train.config import DataConfig


@dataclass(frozen=True)
class FailedExample:
    """Stands in for an example that raised, so the error reaches the trainer as data, once."""

    message: str


class EpochBatches(Sampler):
    """Batches of (epoch, index) keys for epochs ``first_epoch``, ``first_epoch + 1``, ...: each epoch a
    permutation seeded by (seed, epoch) of the examples, example i ``repeats[i]`` times (None: once each;
    train/contact.py), cut to ``steps`` batches, without a short last batch when the epoch holds more than
    one batch."""

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        first_epoch: int,
        steps: int | None,
        repeats: np.ndarray | None = None,
    ):
        self.keys = np.arange(n) if repeats is None else np.repeat(np.arange(n), repeats)  # (epoch size,)
        self.batch_size, self.seed, self.first_epoch = batch_size, seed, first_epoch
        size = len(self.keys)
        full = size // batch_size if size > batch_size else 1
        self.steps = min(full, steps or full)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for epoch in itertools.count(self.first_epoch):
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            order = self.keys[torch.randperm(len(self.keys), generator=generator).numpy()].tolist()
            for step in range(self.steps):
                yield [(epoch, i) for i in order[step * self.batch_size : (step + 1) * self.batch_size]]


def collate(items: list) -> tuple[torch.Tensor, ...] | FailedExample:
    """Stack examples into a batch, or pass on the first that failed."""
    failed = next((item for item in items if isinstance(item, FailedExample)), None)
    return failed if failed is not None else default_collate(items)


def default_workers(device: torch.device) -> int:
    """Worker processes for this machine and device. On CPU: none below four cores, where making an example
    costs 3-8% of a step and a worker would take the network's cores from it (measured on two: 0.9-0.95x the
    examples per second with one worker, benchmarks/train_speed.py); one from four cores, two from eight. On
    CUDA the network needs no cores, and examples are what a GPU step waits for: all cores but one, up to
    8."""
    cores = len(os.sched_getaffinity(0))
    if device.type == "cuda":
        return max(1, min(8, cores - 1))
    return 0 if cores < 4 else 1 if cores < 8 else 2


class BatchStream:
    """The run's training batches, epoch after epoch; a context manager that ends its workers."""

    def __init__(
        self,
        dataset,
        data: DataConfig,
        seed: int,
        first_epoch: int,
        steps: int | None,
        workers: int,
        repeats: np.ndarray | None = None,  # (len(dataset),) draws of each example an epoch; None: 1
    ):
        self.sampler = EpochBatches(len(dataset), data.batch_size, seed, first_epoch, steps, repeats)
        self.workers = workers
        loader = DataLoader(
            dataset,
            batch_sampler=self.sampler,
            collate_fn=collate,
            num_workers=self.workers,
            prefetch_factor=data.prefetch if self.workers else None,
        )
        self._batches = iter(loader)

    @staticmethod
    def workers_for(data: DataConfig, device: torch.device) -> int:
        """``data.workers``, or the machine's default for ``device`` where it is None."""
        return default_workers(device) if data.workers is None else data.workers

    @staticmethod
    def steps_for(n: int, batch_size: int, steps: int | None, repeats: np.ndarray | None = None) -> int:
        """Batches per epoch of a set of ``n`` examples (each drawn ``repeats`` times)."""
        return EpochBatches(n, batch_size, 0, 0, steps, repeats).steps

    @property
    def steps_per_epoch(self) -> int:
        return self.sampler.steps

    def next(self) -> tuple[torch.Tensor, ...]:
        """The next batch (images, *targets); raises TrainingExampleError for an example that failed."""
        return self.checked(next(self._batches))

    @staticmethod
    def checked(batch: tuple[torch.Tensor, ...] | FailedExample) -> tuple[torch.Tensor, ...]:
        if isinstance(batch, FailedExample):
            raise TrainingExampleError(batch.message)
        return batch

    def close(self) -> None:
        """End the workers now (they would also end with this object)."""
        shutdown = getattr(self._batches, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
