"""The activity rollup's slots held in memory, with their unions per hour and per day kept.

A weekly cohort matrix over a year asks for the users active in each of 52
weeks: at 15-minute slots, a union of 672 bitmaps per week, 35,000 per
report. Slots are grouped into blocks of whole hours and whole days
(counted from the epoch, so they do not depend on the time zone), each
block's union is computed the first time a report spans it and kept, and a
period is then the union of the few days, hours and slots that tile it:
about 30 per week wherever its edges fall. A slot the store re-derived (a
write in it) drops the blocks that hold it.
"""

from __future__ import annotations

from bisect import bisect_left

from pyroaring import BitMap

__all__ = ["Slots"]

#: Block sizes in slots (with 15-minute slots: a day, an hour), largest first; 1 is the slot itself.
_BLOCKS = (96, 4)


class Slots:
    """``{slot: users}`` of one metric, slot length ``slot_us``, and the unions of whole blocks."""

    def __init__(self, slot_us: int, slots: dict[int, BitMap]) -> None:
        self.slot_us = slot_us
        self._slots = slots
        self._keys = sorted(slots)
        self._blocks: dict[tuple[int, int], BitMap] = {}

    def update(self, changed: dict[int, BitMap | None]) -> None:
        """Replace these slots' users (``None``: the slot has none now)."""
        for slot, users in changed.items():
            if users is None:
                self._slots.pop(slot, None)
            else:
                self._slots[slot] = users
            for size in _BLOCKS:
                self._blocks.pop((size, slot // size), None)
        self._keys = sorted(self._slots)

    def union(self, lo: int, hi: int) -> BitMap:
        """Users active in slots ``lo .. hi - 1``."""
        parts = []
        at = lo
        while at < hi:
            for size in _BLOCKS:
                if at % size == 0 and at + size <= hi:
                    parts.append(self._block(size, at // size))
                    at += size
                    break
            else:
                # Up to the next block edge (or `hi`), slot by slot.
                edge = min(hi, at - at % _BLOCKS[-1] + _BLOCKS[-1])
                keys = self._keys[bisect_left(self._keys, at):bisect_left(self._keys, edge)]
                parts.extend(self._slots[k] for k in keys)
                at = edge
        return BitMap.union(*parts) if parts else BitMap()

    def _block(self, size: int, index: int) -> BitMap:
        found = self._blocks.get((size, index))
        if found is None:
            keys = self._keys[bisect_left(self._keys, index * size):bisect_left(self._keys, (index + 1) * size)]
            found = BitMap.union(*(self._slots[k] for k in keys)) if keys else BitMap()
            self._blocks[size, index] = found
        return found
