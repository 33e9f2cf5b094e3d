"""The shard plan of a BI build, from small records only: which samples exist, each
blend's foreground, and which shard and slot each sample goes to."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from blending.mix import RecipeMix
from landmarks.neighbours import choose_neighbour
from shards.keys import key_rng, sample_key, stable_hash
from shards.layout import SlotPlan


@dataclass(frozen=True)
class PlannedSample:
    """Sample `key` made from face row `background` by `method`: 'real'; 'bi', with face
    row `foreground`, its rank among the background's neighbours (0 nearest) and how many
    there were; or 'sbi', a self-blend (the foreground is the background)."""

    key: str
    background: int
    foreground: int = -1
    neighbour_rank: int = -1
    neighbours: int = 0
    method: str = "real"


def blends_per_face(face_key: str, fakes_per_real: float, seed: int) -> int:
    """How many blended samples use this face as background: floor(r), plus one with
    probability frac(r), decided per face key."""
    whole = int(fakes_per_real)
    extra = key_rng(seed, "blend-count", face_key).random() < fakes_per_real - whole
    return whole + int(extra)


def plan_samples(keys: Sequence[str], neighbours: Sequence[np.ndarray], fakes_per_real: float,
                 seed: int, mix: RecipeMix = RecipeMix((("bi", 1.0),))) -> tuple[list[PlannedSample],
                                                                          list[tuple[int, str]]]:
    """One real sample per face row and `blends_per_face` fakes, each made by a generator
    drawn from `mix` (keys `-bi<v>` / `-sbi<v>`); a BI blend's foreground is drawn uniformly
    from the row's neighbours (row numbers, nearest first).
    Returns the samples and (row, sample key) of each BI blend that had no neighbour."""
    samples, unpaired = [], []
    for row, (key, near) in enumerate(zip(keys, neighbours, strict=True)):
        samples.append(PlannedSample(sample_key(key, "real"), row))
        near = np.asarray(near, np.int64)
        for variant in range(blends_per_face(key, fakes_per_real, seed)):
            method = mix.draw(key_rng(seed, "recipe", key, variant))
            fake_key = sample_key(key, f"{method}{variant}")
            if method == "sbi":
                samples.append(PlannedSample(fake_key, row, row, method="sbi"))
                continue
            chosen = choose_neighbour(near, key_rng(seed, "neighbour", fake_key))
            if chosen is None:
                unpaired.append((row, fake_key))
                continue
            rank = int(np.flatnonzero(near == chosen)[0])
            samples.append(PlannedSample(fake_key, row, chosen, rank, len(near), "bi"))
    return samples, unpaired


def assign_shards(samples: Sequence[PlannedSample], samples_per_shard: int, seed: int) -> list[list[PlannedSample]]:
    """Samples per shard, each shard in slot order: a seeded hash-order shuffle across
    shards (`SlotPlan`) that depends only on the seed and the set of keys."""
    ranked = [(stable_hash(seed, "order", s.key), s.key) for s in samples]
    plan = SlotPlan(ranked, samples_per_shard)
    shards: list[list[tuple[int, PlannedSample]]] = [[] for _ in range(plan.shards)]
    for (rank, key), sample in zip(ranked, samples, strict=True):
        shard, position = plan.slot(rank, key)
        shards[shard].append((position, sample))
    return [[s for _, s in sorted(shard, key=lambda p: p[0])] for shard in shards]
