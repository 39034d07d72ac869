"""Frame selections such as ``100-200`` or ``0-99,500-600`` (inclusive, as in SLEAP)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from posestream.core.errors import ConfigError, FrameIndexError


@dataclass(frozen=True)
class FrameRanges:
    """Sorted, non-overlapping half-open spans ``[start, stop)`` of frame indices.

    ``stop`` is None for an open end ("500-" means from 500 to the end of the
    video); ``resolve(n_frames)`` closes it once the video length is known.
    """

    spans: tuple[tuple[int, int | None], ...]

    @classmethod
    def parse(cls, text: str) -> FrameRanges:
        """Parse ``"A-B,C,D-"``: inclusive ranges, single frames and open ends."""
        spans = []
        for part in text.replace(" ", "").split(","):
            if not part:
                continue
            start_text, dash, stop_text = part.partition("-")
            try:
                start = int(start_text)
                stop = None if (dash and not stop_text) else int(stop_text or start_text) + 1
            except ValueError:
                raise ConfigError(
                    f"frame range {part!r} in {text!r} is not of the form A-B, A or A- "
                    "(inclusive, e.g. '0-99,500-600')"
                ) from None
            if start < 0 or (stop is not None and stop <= start):
                raise ConfigError(f"frame range {part!r} in {text!r} must satisfy 0 <= A <= B")
            spans.append((start, stop))
        if not spans:
            raise ConfigError(f"frame range {text!r} selects no frames")
        return cls.from_spans(spans)

    @classmethod
    def from_spans(cls, spans: list[tuple[int, int | None]]) -> FrameRanges:
        """Sort spans and merge those that overlap or touch."""
        ordered = sorted(spans, key=lambda s: s[0])
        merged: list[tuple[int, int | None]] = []
        for start, stop in ordered:
            if merged:
                last_start, last_stop = merged[-1]
                if last_stop is None or start <= last_stop:
                    new_stop = None if (last_stop is None or stop is None) else max(last_stop, stop)
                    merged[-1] = (last_start, new_stop)
                    continue
            merged.append((start, stop))
        return cls(tuple(merged))

    @classmethod
    def all(cls) -> FrameRanges:
        return cls(((0, None),))

    def resolve(self, n_frames: int, source: str = "video") -> FrameRanges:
        """Close open ends at ``n_frames``; error if a range starts past the end."""
        if n_frames == 0:
            raise FrameIndexError(
                f"{source} has no frames: nothing to run (is it the right file or dataset?)"
            )
        closed = []
        for start, stop in self.spans:
            stop = n_frames if stop is None else stop
            if start >= n_frames or stop > n_frames:
                raise FrameIndexError(
                    f"frame range {self._describe(start, stop)} is outside {source}, "
                    f"which has {n_frames} frames (0-{n_frames - 1})"
                )
            closed.append((start, stop))
        return FrameRanges(tuple(closed))

    def part(self, start: int, stop: int) -> FrameRanges:
        """The selected frames at positions ``[start, stop)`` of the selection, in order: ``part(0, 10)``
        is the first ten selected frames. Resolve open ends first."""
        spans, seen = [], 0
        for first, end in self.spans:
            if end is None:
                raise ValueError("resolve() an open-ended FrameRanges before taking part of it")
            lo, hi = max(first, first + start - seen), min(end, first + stop - seen)
            if lo < hi:
                spans.append((lo, hi))
            seen += end - first
        if not spans:
            raise ValueError(f"positions {start}-{stop} select none of the {seen} frames of {self}")
        return FrameRanges(tuple(spans))

    def __iter__(self) -> Iterator[int]:
        for start, stop in self.spans:
            if stop is None:
                raise ValueError("resolve() an open-ended FrameRanges before iterating it")
            yield from range(start, stop)

    def __len__(self) -> int:
        if any(stop is None for _, stop in self.spans):
            raise ValueError("an open-ended FrameRanges has no length until resolve()")
        return sum(stop - start for start, stop in self.spans)  # type: ignore[operator]

    def __contains__(self, frame_idx: object) -> bool:
        return isinstance(frame_idx, int) and any(
            start <= frame_idx and (stop is None or frame_idx < stop) for start, stop in self.spans
        )

    def __str__(self) -> str:
        return ",".join(self._describe(start, stop) for start, stop in self.spans)

    @staticmethod
    def _describe(start: int, stop: int | None) -> str:
        if stop is None:
            return f"{start}-"
        return str(start) if stop == start + 1 else f"{start}-{stop - 1}"
