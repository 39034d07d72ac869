"""Track slots: which column of an output's track axis each instance goes to (analysis HDF5, NWB).

Two layouts (no instance is ever dropped):
- untracked (``tracked=False``): an instance with a track id goes to slot ``id``; untracked instances
  fill the free slots of their frame in order (as sleap-io does). Slot ``t`` is named ``track_<t>``.
- tracked (``tracked=True``): slot ``t`` holds one identity in every frame; slots are added as
  identities first appear and named after them (``track_<id>``, or the names given: an identity
  model's classes). Instances the tracker left untracked go to slots named ``untracked_<k>`` (the k-th
  untracked instance of its frame), so they never mix with an identity.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from posestream.engine.types import UNTRACKED, FrameBlock

UNTRACKED_SLOT_PREFIX = "untracked_"  # tracked layout: slots of instances the tracker left untracked


class TrackSlots:
    """The slots of one output, added as blocks of frames are assigned (in frame order)."""

    def __init__(self, tracked: bool = False, track_names: Sequence[str] = ()):
        self.tracked = tracked or bool(track_names)
        self.names: list[str] = []  # name of each slot, in slot order
        self._untracked_slots: list[
            int
        ] = []  # tracked layout: slot of the k-th untracked instance of a frame
        # identity -> slot
        self._slot_of_track = {i: self._new_slot(name) for i, name in enumerate(track_names)}

    def assign(self, block: FrameBlock) -> np.ndarray:
        """Track slot of each instance of the block in this layout, adding slots as needed.  # (M,)"""
        ids, frame_of = block.track_ids, block.frame_of_rows()
        tracked = ids != UNTRACKED
        check_unique_ids(block, frame_of, tracked)
        if not self.tracked:
            # the usual case: slots in order
            slots = np.arange(len(ids), dtype=np.int64) - block.starts[frame_of]
            for f in np.unique(frame_of[tracked]):  # frames where some instances have a track id
                rows = block.rows(f)
                slots[rows] = fill_free_slots(ids[rows])
            self._name_slots_up_to(int(slots.max()) + 1 if len(slots) else 0)
            return slots
        untracked = ~tracked
        seen = np.concatenate([[0], np.cumsum(untracked)])
        k = seen[:-1] - seen[block.starts[frame_of]]  # (M,) among its frame's untracked instances, for those
        self._add_tracked_slots(ids[tracked], frame_of[tracked], k[untracked], frame_of[untracked])
        slots = np.empty(len(ids), np.int64)
        slots[tracked] = [self._slot_of_track[i] for i in ids[tracked].tolist()]
        slots[untracked] = np.array(self._untracked_slots, np.int64)[k[untracked]] if untracked.any() else []
        return slots

    def _add_tracked_slots(
        self, ids: np.ndarray, id_frames: np.ndarray, ks: np.ndarray, k_frames: np.ndarray
    ) -> None:
        """Tracked layout: slots for the identities ``ids`` and the k-th untracked instances ``ks`` not seen
        before, added in the order a frame-by-frame writer adds them (by frame; in a frame, new identities by
        id, then untracked slots by k). ``id_frames``, ``k_frames``: their frames, in increasing order."""
        new_ids, first = np.unique(ids, return_index=True)
        events = [
            (int(id_frames[r]), 0, int(i))
            for i, r in zip(new_ids, first)
            if int(i) not in self._slot_of_track
        ]
        new_ks, first = np.unique(ks, return_index=True)
        events += [
            (int(k_frames[r]), 1, int(k)) for k, r in zip(new_ks, first) if k >= len(self._untracked_slots)
        ]
        for _, kind, key in sorted(events):
            if kind == 0:
                self._slot_of_track[key] = self._new_slot(f"track_{key}")
            else:
                self._untracked_slots.append(self._new_slot(f"{UNTRACKED_SLOT_PREFIX}{key}"))

    def _new_slot(self, name: str) -> int:
        self.names.append(name)
        return len(self.names) - 1

    def _name_slots_up_to(self, n_slots: int) -> None:
        """Untracked layout: slots 0..n_slots-1 exist, named track_<slot>."""
        while len(self.names) < n_slots:
            self._new_slot(f"track_{len(self.names)}")


def check_unique_ids(block: FrameBlock, frame_of: np.ndarray, tracked: np.ndarray) -> None:
    """No two instances of a frame share a track id."""
    pairs = np.stack([frame_of[tracked], block.track_ids[tracked]], axis=1)
    unique, counts = np.unique(pairs, axis=0, return_counts=True)
    if len(unique) != len(pairs):
        f = int(unique[counts > 1][0, 0])
        rows = block.rows(f)
        raise ValueError(
            f"frame {block.frame_idx[f]}: two instances share a track id {block.track_ids[rows].tolist()}"
        )


def fill_free_slots(track_ids: np.ndarray) -> np.ndarray:
    """Untracked layout: each instance's track id as its slot, or the lowest free slot if it has none.  #
    (n,)"""
    if (track_ids == UNTRACKED).all():  # the usual case: slots in order
        return np.arange(len(track_ids), dtype=np.int64)
    slots = track_ids.astype(np.int64).copy()
    taken = set(slots[slots != UNTRACKED].tolist())
    free = (s for s in range(len(slots) + len(taken)) if s not in taken)
    for i in np.flatnonzero(slots == UNTRACKED):
        slots[i] = next(free)
    return slots
