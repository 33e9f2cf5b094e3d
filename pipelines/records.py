"""Records passed between the pipeline's transforms."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shards.png import png_size
from shards.sample import EncodedSample, decode_png


@dataclass(frozen=True)
class Source:
    """One input file. `video` is a sanitised id, unique within `dataset`; an image is a
    one-frame video. kind: 'real' or 'manipulated'. For a manipulated video: `method`
    (e.g. 'Deepfakes'), `original` (path of the real video it was made from, frame-aligned)
    and `mask` (path of the dataset's own mask video, '' if none)."""

    path: str
    dataset: str
    video: str
    identity: str
    split: str = "train"
    kind: str = "real"
    method: str = ""
    original: str = ""
    mask: str = ""


@dataclass(frozen=True)
class Face:
    """One aligned face crop.

    box: (4,) float32 x0, y0, x1, y1 detector box, frame px. score: detector confidence.
    landmarks: (68, 2) float32 iBUG points, crop px. matrix: (2, 3) frame-to-crop affine
    transform. image: the (S, S, 3) RGB crop as lossless PNG (`shards.png`): half the bytes
    of the raw pixels wherever the runner moves a face between workers, and the very bytes
    of the real sample's img.png.
    """

    key: str
    source: Source
    frame: int
    box: np.ndarray
    score: float
    landmarks: np.ndarray
    image: bytes
    matrix: np.ndarray

    @property
    def crop(self) -> np.ndarray:
        """(S, S, 3) uint8 RGB crop, decoded from `image`."""
        return decode_png(self.image)

    @property
    def size(self) -> int:
        """Crop side S, px."""
        return png_size(self.image)[0]

    def table_row(self) -> dict:
        """Row of the `faces` table."""
        s = self.source
        return {"key": self.key, "dataset": s.dataset, "split": s.split, "video": s.video,
                "identity": s.identity, "frame": self.frame, "path": s.path,
                "box": self.box.astype(np.float32).tolist(), "score": float(self.score),
                "landmarks": self.landmarks.astype(np.float32).ravel().tolist(),
                "crop_matrix": self.matrix.astype(np.float32).ravel().tolist()}


@dataclass(frozen=True)
class ShardSample:
    """An encoded sample with its `index` row (all fields but `shard`)."""

    sample: EncodedSample
    index: dict

    @property
    def key(self) -> str:
        return self.sample.key


def failure(path: str, stage: str, reason: str, frame: int = -1, detail: str = "") -> dict:
    """Row of the `failures` table."""
    return {"path": path, "stage": stage, "reason": reason, "frame": frame, "detail": detail}
