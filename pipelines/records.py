"""Records passed between the pipeline's transforms."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines import storage
from shards.faces import FaceRecord
from shards.sample import decode_png


@dataclass(frozen=True)
class Source:
    """One input file. `path`: where it lies relative to `root`, the input root (a local
    folder or a URL), '/'-separated: what records and tables keep, so they say nothing of
    where the data sat (the root is recorded once, in the run's run.json); open it at
    `location`. `video` is a sanitised id, unique within `dataset`; an image is a one-frame
    video. kind: 'real' or 'manipulated'. For a manipulated video: `method` (e.g.
    'Deepfakes'), `original` (relative path of the real video it was made from,
    frame-aligned) and `mask` (relative path of the dataset's own mask video, '' if none)."""

    path: str
    dataset: str
    video: str
    identity: str
    split: str = "train"
    kind: str = "real"
    method: str = ""
    original: str = ""
    mask: str = ""
    root: str = ""

    def locate(self, relative: str) -> str:
        """Where `relative` (a path below this source's root) lies: a local path or URL."""
        return storage.join(self.root, relative) if self.root else relative

    @property
    def location(self) -> str:
        """Where this input lies: a local path or URL."""
        return self.locate(self.path)


@dataclass(frozen=True)
class Face:
    """One aligned face crop of the supervised pipeline: its record, its input, and the
    (S, S, 3) RGB crop as lossless PNG (`shards.png`), the very bytes of its sample's img.png."""

    record: FaceRecord
    source: Source
    image: bytes

    @property
    def key(self) -> str:
        return self.record.key

    @property
    def crop(self) -> np.ndarray:
        """(S, S, 3) uint8 RGB crop, decoded from `image`."""
        return decode_png(self.image)


def failure(path: str, stage: str, reason: str, frame: int = -1, detail: str = "") -> dict:
    """Row of the `failures` table."""
    return {"path": path, "stage": stage, "reason": reason, "frame": frame, "detail": detail}
