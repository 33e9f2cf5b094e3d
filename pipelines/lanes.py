"""Lanes: how work reaches the workers of the local runner in balanced pieces.

Beam's local runner splits each stage's input statically, in equal counts, over its worker
processes, so a stage lasts as long as its slowest worker. With several local workers each
gets one lane holding every item (costliest first), and takes the next item no other lane
has claimed: a claim is a file created exclusively in a directory the run's workers share.
Items are thus handed out one at a time, as workers free up. Other runners (and a single
worker) get one item per lane and balance the work themselves.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Lane:
    """number: the lane's index. items: what it may work on, in order. claims: directory
    of the run's claim files ('' when the lane owns all of its items)."""

    number: int
    items: tuple[Any, ...]
    claims: str = ""


def deal(items: Sequence, lanes: int, claims: str, cost: Callable[[Any], float] | None = None) -> list[Lane]:
    """`lanes` lanes sharing every item through `claims` (costliest first), or, with one lane
    or no claims directory, one lane per item."""
    if lanes <= 1 or not claims:
        return [Lane(number, (item,)) for number, item in enumerate(items)]
    ordered = tuple(sorted(items, key=cost, reverse=True)) if cost else tuple(items)
    return [Lane(number, ordered, claims) for number in range(lanes)]


def claim(lane: Lane, name: str) -> bool:
    """Whether `lane` works on the item called `name`: it has no claims to make, or it is the
    first to claim it, or it claimed it before (a retried bundle of the same lane)."""
    if not lane.claims:
        return True
    path = os.path.join(lane.claims, name)
    mine = str(lane.number).encode()
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        with open(path, "rb") as stream:
            return stream.read() == mine
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(mine)
    return True
