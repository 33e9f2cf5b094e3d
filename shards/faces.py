"""Face records and face shards: the durable intermediate between extraction and samples.

A face shard is a WebDataset tar with one sample per face: `img.png` (the stored crop, RGB),
`hull.png` (filled hull of the 68 landmarks) and `json` (the full `FaceRecord` plus the
478-point mesh). Crops are stored generously (default 384 px at margin 2) so that any
recipe's crop (1.3x at 256 px for BI, 2x for the pixel-level family) is cut from them
without decoding the video again. `faces.parquet` beside the shards holds one row per face
with where its members lie in its shard, so a reader fetches one crop by seeking.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np

from blending.masks import hull_mask, quantize
from landmarks.align import apply_affine, compose_affine, crop_matrix, frame_valid_map, warp_crop
from shards.png import encode_png
from shards.sample import EncodedSample, encode_json
from shards.tar import Span

FACE_MEMBERS = ("img.png", "hull.png", "json")
NO_SPAN: Span = (-1, -1)


def _points(values, count: int) -> np.ndarray:
    """(count, 2) float32 rounded to 1/100 px, so JSON text and Parquet float32 agree."""
    return np.round(np.asarray(values, np.float64).reshape(count, 2), 2).astype(np.float32)


def _point_list(points: np.ndarray) -> list[list[float]]:
    return [[round(float(x), 2), round(float(y), 2)] for x, y in points]


@dataclass(frozen=True)
class FaceRecord:
    """One face crop, without its pixels.

    frame: frame index (0 for an image). frame_size: (width, height) of the source frame, px.
    box: (4,) float32 x0, y0, x1, y1 detector box, frame px (1/100 px). score: detector
    confidence in [0, 1] (4 decimals).
    landmarks: (68, 2) float32 iBUG points, crop px (1/100 px). matrix: (2, 3) float64
    frame-to-crop affine. crop_size: crop side, px. crop_margin: crop side / face-box side.
    shard, image, meta: where a face shard holds this face's `img.png` and `json` data
    (`NO_SPAN` when not stored).
    """

    key: str
    dataset: str
    split: str
    video: str
    identity: str
    frame: int
    path: str
    frame_size: tuple[int, int]
    box: np.ndarray
    score: float
    landmarks: np.ndarray
    matrix: np.ndarray
    crop_size: int
    crop_margin: float
    shard: str = ""
    image: Span = NO_SPAN
    meta: Span = NO_SPAN

    def __post_init__(self):
        object.__setattr__(self, "landmarks", _points(self.landmarks, 68))
        object.__setattr__(self, "box", np.round(np.asarray(self.box, np.float64), 2).astype(np.float32))
        object.__setattr__(self, "matrix", np.asarray(self.matrix, np.float64).reshape(2, 3))
        object.__setattr__(self, "score", round(float(self.score), 4))

    def meta_json(self) -> dict:
        """The face's description in a sample's or face shard's `json`."""
        return {"key": self.key, "dataset": self.dataset, "split": self.split, "video": self.video,
                "identity": self.identity, "frame": self.frame, "path": self.path,
                "frame_size": list(self.frame_size), "box": [round(float(v), 2) for v in self.box],
                "score": self.score,
                "crop_matrix": np.round(self.matrix, 6).tolist(),
                "crop": {"size": self.crop_size, "margin": self.crop_margin},
                "landmarks": _point_list(self.landmarks)}

    def table_row(self) -> dict:
        """Row of `faces.parquet` (schema `shards.tables.FACES`)."""
        return {"key": self.key, "dataset": self.dataset, "split": self.split, "video": self.video,
                "identity": self.identity, "frame": self.frame, "path": self.path,
                "frame_width": self.frame_size[0], "frame_height": self.frame_size[1],
                "box": self.box.tolist(), "score": float(self.score),
                "landmarks": self.landmarks.ravel().tolist(),
                "crop_matrix": self.matrix.astype(np.float32).ravel().tolist(),
                "crop_size": self.crop_size, "crop_margin": float(self.crop_margin),
                "shard": self.shard, "image_offset": self.image[0], "image_bytes": self.image[1],
                "json_offset": self.meta[0], "json_bytes": self.meta[1]}

    @classmethod
    def from_row(cls, row: dict) -> FaceRecord:
        """The record of a `faces.parquet` row."""
        return cls(key=row["key"], dataset=row["dataset"], split=row["split"], video=row["video"],
                   identity=row["identity"], frame=int(row["frame"]), path=row["path"],
                   frame_size=(int(row["frame_width"]), int(row["frame_height"])),
                   box=np.asarray(row["box"], np.float32), score=float(row["score"]),
                   landmarks=np.asarray(row["landmarks"], np.float32),
                   matrix=np.asarray(row["crop_matrix"], np.float64),
                   crop_size=int(row["crop_size"]), crop_margin=float(row["crop_margin"]),
                   shard=row["shard"], image=(int(row["image_offset"]), int(row["image_bytes"])),
                   meta=(int(row["json_offset"]), int(row["json_bytes"])))


FACE_COMPRESSION = {"none": 0, "zlib": 1}
"""zlib level of a stored crop's PNG by name: `none` is ~3x larger than `zlib` but ~4x
faster to decode, which online blending does at every draw."""


def stored_face(record: FaceRecord, crop: np.ndarray, mesh: np.ndarray, compression: str = "none") -> EncodedSample:
    """A face-shard sample: crop (S, S, 3) uint8 RGB; mesh (478, 2) float, crop px;
    compression: of the crop's PNG, a key of FACE_COMPRESSION."""
    meta = record.meta_json() | {"mesh": _point_list(_points(mesh, len(mesh)))}
    hull = quantize(hull_mask(record.landmarks, record.crop_size))
    return EncodedSample(record.key, {"img.png": encode_png(crop, FACE_COMPRESSION[compression]),
                                      "hull.png": encode_png(hull), "json": encode_json(meta)})


def stored_mesh(meta: bytes) -> np.ndarray:
    """(478, 2) float32 face mesh, stored-crop px, from a face shard's `json` member."""
    return np.asarray(json.loads(meta)["mesh"], np.float32)


@dataclass(frozen=True)
class RecipeCrop:
    """A recipe's crop of a stored face. image: (s, s, 3) uint8 RGB. record: the face's
    record in the recipe crop (landmarks in its px, frame-to-crop matrix, crop settings).
    mesh: (478, 2) float32 crop px, or None."""

    image: np.ndarray
    record: FaceRecord
    mesh: np.ndarray | None

    def valid(self) -> np.ndarray:
        """(s, s) bool: the crop's pixels that came from inside the source frame."""
        return frame_valid_map(self.record.matrix, self.record.frame_size, self.record.crop_size)


def cut_recipe_crop(record: FaceRecord, stored: np.ndarray, size: int, margin: float,
                    mesh: np.ndarray | None = None) -> RecipeCrop:
    """A recipe's crop (side `size` px, `margin` x the face box) cut from a stored crop.

    stored: (S, S, 3) uint8, the face's stored crop; mesh: its (478, 2) face mesh, stored
    px, or None. The alignment is the one extraction uses, computed from the stored
    landmarks. Raises ValueError when the recipe asks for more context than was stored.
    """
    if margin > record.crop_margin + 1e-6:
        raise ValueError(f"a crop at margin {margin} needs more context than the stored margin {record.crop_margin}")
    to_recipe = crop_matrix(record.landmarks, size, margin)
    matrix = compose_affine(to_recipe, record.matrix)
    face = replace(record, landmarks=apply_affine(to_recipe, record.landmarks), matrix=matrix, crop_size=size,
                   crop_margin=margin, shard="", image=NO_SPAN, meta=NO_SPAN)
    return RecipeCrop(warp_crop(stored, to_recipe, size), face, None if mesh is None else apply_affine(to_recipe, mesh))
