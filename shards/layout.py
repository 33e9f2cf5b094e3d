"""Where each sample goes: shard names and the deterministic sample -> (shard, slot) plan."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

SHARD_PATTERN = "shard-{:06d}.tar"


def shard_name(index: int) -> str:
    """File name of shard `index`: shard-000000.tar, shard-000001.tar, ..."""
    return SHARD_PATTERN.format(index)


class SlotPlan:
    """Where each sample goes: (rank, key) pairs laid out in (rank, key) order,
    `samples_per_shard` to a shard (the last one may be shorter).

    With ranks from a seeded hash of the key this is a shuffle across shards that depends
    only on the seed and the set of keys. The plan keeps the sorted ranks (8 bytes a
    sample) and the keys of ranks shared by several samples, so it is small enough to
    broadcast to every worker.
    """

    def __init__(self, ranked: Iterable[tuple[int, str]], samples_per_shard: int):
        if samples_per_shard < 1:
            raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
        ordered = sorted(ranked)
        self.samples_per_shard = samples_per_shard
        self._ranks = np.array([rank for rank, _ in ordered], np.int64)
        shared = np.flatnonzero(self._ranks[1:] == self._ranks[:-1])
        self._ties: dict[int, list[str]] = {}
        for position in np.union1d(shared, shared + 1):
            self._ties.setdefault(int(self._ranks[position]), []).append(ordered[position][1])

    def __len__(self) -> int:
        return len(self._ranks)

    @property
    def shards(self) -> int:
        """Number of shards."""
        return -(-len(self) // self.samples_per_shard)

    def slot(self, rank: int, key: str) -> tuple[int, int]:
        """(shard index, position in the shard) of the sample with this rank and key.
        Raises KeyError for a sample the plan was not made with."""
        first = int(np.searchsorted(self._ranks, rank))
        if first == len(self._ranks) or self._ranks[first] != rank:
            raise KeyError(f"sample {key!r} is not in the shard plan")
        ties = self._ties.get(rank)
        if ties is not None:
            if key not in ties:
                raise KeyError(f"sample {key!r} is not in the shard plan")
            first += ties.index(key)
        return divmod(first, self.samples_per_shard)
