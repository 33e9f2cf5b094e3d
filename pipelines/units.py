"""Extraction units: the inputs of a run cut into the pieces that workers are handed.

A unit is one video, or a run of up to `images_per_unit` consecutive images in sorted path
order. Units are numbered in sorted input order, so the same inputs give the same units
(and face-shard names) whatever the worker count. Each unit becomes one face shard.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from landmarks.frames import media_kind
from pipelines.records import Source

IMAGE_COST = 1.0
"""Estimated work of one image, the unit of `Unit.cost`."""
FRAME_COST = 1.0
"""Estimated work of detecting faces in one sampled video frame, as for an image."""
DECODE_COST_PER_MB = 2.0
"""Estimated work of decoding every frame of one MB of video (all frames are grabbed)."""


@dataclass(frozen=True)
class Unit:
    """index: position in sorted input order (names the face shard). sources: one video,
    or consecutive images. cost: estimated work (image detections), for balancing."""

    index: int
    sources: tuple[Source, ...]
    cost: float = 0.0


def plan_units(sources: list[Source], images_per_unit: int, frames_per_video: int,
               size_of: Callable[[str], int] = lambda path: 0) -> list[Unit]:
    """Units of `sources` in sorted path order. size_of: bytes of a source's location
    (cost estimate)."""
    if images_per_unit < 1:
        raise ValueError(f"images_per_unit must be >= 1, got {images_per_unit}")
    units: list[Unit] = []
    images: list[Source] = []

    def close_images():
        if images:
            units.append(Unit(len(units), tuple(images), IMAGE_COST * len(images)))
            images.clear()

    for source in sorted(sources, key=lambda s: s.path):
        if media_kind(source.path) == "video":
            close_images()
            cost = FRAME_COST * frames_per_video + DECODE_COST_PER_MB * size_of(source.location) / 1e6
            units.append(Unit(len(units), (source,), cost))
        else:
            images.append(source)
            if len(images) == images_per_unit:
                close_images()
    close_images()
    return units
