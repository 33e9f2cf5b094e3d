"""Where each sample goes: shard names and the deterministic sample -> (shard, slot) plan."""
from __future__ import annotations

from collections.abc import Iterable, Iterator

SHARD_PATTERN = "shard-{:06d}.tar"


def shard_name(index: int) -> str:
    """File name of shard `index`: shard-000000.tar, shard-000001.tar, ..."""
    return SHARD_PATTERN.format(index)


def assign_slots(ranked: Iterable[tuple[int, str]], samples_per_shard: int
                 ) -> Iterator[tuple[str, tuple[int, int]]]:
    """(rank, key) pairs -> (key, (shard index, position in shard)).

    Samples are laid out in (rank, key) order, `samples_per_shard` per shard (the last one
    may be shorter). With ranks from a seeded hash of the key this is a shuffle across
    shards that depends only on the seed and the set of keys.
    """
    if samples_per_shard < 1:
        raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
    for position, (_, key) in enumerate(sorted(ranked)):
        yield key, divmod(position, samples_per_shard)
