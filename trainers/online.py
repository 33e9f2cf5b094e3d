"""Online blending: training samples made from face shards at every draw.

Each time a real face is drawn from the face-shard stream it yields either its real sample
or, with probability `fake_fraction`, a fresh Face X-ray blend: a foreground drawn from its
`neighbours.parquet` candidates (the global nearest faces, read by offset from the face
shards) and new recipe choices. Every random choice comes from (seed, epoch, draw, key):
the same seed gives the same samples for a given world size and loader workers, and a
dumped sample regenerates exactly from its json. Augmentation is drawn from a generator
that never sees the label.
"""
from __future__ import annotations

import posixpath
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import pyarrow.parquet as pq

from blending.augment import AUGMENTS, AugmentParams, apply_augment, draw_augment
from blending.bi import BlendParams
from blending.recipe import recipe
from shards.assemble import SampleArrays, bi_arrays
from shards.faces import FaceRecord, cut_recipe_crop, stored_mesh
from shards.keys import key_rng, sample_key
from shards.sample import decode_png
from shards.tar import read_member


class FaceFolderError(Exception):
    """A face-shard folder lacks its tables, or a shard names faces its tables do not hold."""


@dataclass(frozen=True)
class OnlineConfig:
    """fake_fraction: probability that a draw is a blend. params: the blend recipe. augment:
    per-draw augmentation. size, margin: the sample crop cut from the stored crops. seed:
    of every choice. cached_crops: decoded foreground crops kept per loader worker."""

    fake_fraction: float = 0.5
    params: BlendParams = field(default_factory=lambda: recipe("default"))
    augment: AugmentParams = AUGMENTS["default"]
    size: int = 256
    margin: float = 1.3
    seed: int = 0
    cached_crops: int = 256

    def __post_init__(self):
        if not 0 <= self.fake_fraction <= 1:
            raise ValueError(f"fake_fraction must be in [0, 1], got {self.fake_fraction}")


def face_folder(url: str) -> str:
    """The face-shard folder of a shard URL or path (its tables lie beside the shards)."""
    return posixpath.dirname(url)


class FaceLibrary:
    """The records and neighbours of one face-shard folder, and its stored crops read by
    offset: a few shard files open at a time and the last `cached` decoded crops kept.
    `opener(path) -> binary seekable stream` opens local paths or URLs."""

    def __init__(self, folder: str, opener, cached: int = 256, open_files: int = 8):
        self.folder, self._opener = folder, opener
        try:
            faces = self._table("faces").to_pylist()
            neighbours = self._table("neighbours").column("neighbours").to_pylist()
        except (OSError, KeyError) as error:
            raise FaceFolderError(f"{folder}: no faces.parquet / neighbours.parquet beside the face shards "
                                  f"(made by `beam run extract_faces`): {error}") from error
        self.records = [FaceRecord.from_row(row) for row in faces]
        self.neighbours = [np.asarray(row, np.int64) for row in neighbours]
        self.rows = {record.key: number for number, record in enumerate(self.records)}
        self._cached, self._open_files = cached, open_files
        self._crops: OrderedDict[int, np.ndarray] = OrderedDict()
        self._files: OrderedDict[str, object] = OrderedDict()

    def _table(self, name: str):
        with self._opener(f"{self.folder}/{name}.parquet") as stream:
            return pq.read_table(stream)

    def row(self, key: str) -> int:
        """Row of face `key` in faces.parquet."""
        try:
            return self.rows[key]
        except KeyError:
            raise FaceFolderError(f"{self.folder}: face {key} is in a shard but not in faces.parquet") from None

    def donor(self, row: int, size: int, margin: float) -> np.ndarray:
        """(size, size, 3) uint8 RGB recipe crop of face `row` (`cut_recipe_crop`), cached."""
        crop = self._crops.pop(row, None)
        if crop is None or crop.shape[0] != size:
            record = self.records[row]
            stored = decode_png(read_member(self._file(record.shard), record.image))
            crop = cut_recipe_crop(record, stored, size, margin).image
            if len(self._crops) >= self._cached:
                self._crops.popitem(last=False)
        self._crops[row] = crop
        return crop

    def _file(self, shard: str):
        stream = self._files.pop(shard, None)
        if stream is None:
            stream = self._opener(f"{self.folder}/{shard}")
            if len(self._files) >= self._open_files:
                self._files.popitem(last=False)[1].close()
        self._files[shard] = stream
        return stream


@dataclass(frozen=True)
class Draw:
    """Which draw a sample is: epoch, the reader slot (rank x loader worker) and the
    position in that slot's sequence."""

    epoch: int
    slot: int
    position: int

    def parts(self) -> tuple[int, int, int]:
        return self.epoch, self.slot, self.position

    def variant(self) -> str:
        """The key variant of the sample this draw makes: `e<epoch>s<slot>p<position>`."""
        return f"e{self.epoch}s{self.slot}p{self.position}"


def online_sample(raw: dict, library: FaceLibrary, config: OnlineConfig, draw: Draw) -> tuple[SampleArrays, dict]:
    """The sample one draw of a stored face makes, augmented, and its augmentation choices.

    raw: the face-shard sample (`__key__`, `img.png`, `json` bytes). The json holds the
    draw, the blend choices (for a blend), the foreground, and `augment`.
    """
    key = raw["__key__"]
    row = library.row(key)
    background = library.records[row]
    decide = key_rng(config.seed, "online", *draw.parts(), key)
    candidates = library.neighbours[row]
    fake = len(candidates) > 0 and decide.random() < config.fake_fraction
    made_draw = {"draw": {"seed": config.seed, "epoch": draw.epoch, "slot": draw.slot, "position": draw.position}}
    crop, name = decode_png(raw["img.png"]), sample_key(key, draw.variant())
    if fake:
        rank = int(decide.integers(len(candidates)))
        foreground = int(candidates[rank])
        made = bi_arrays(name, background, crop, stored_mesh(raw["json"]), library.records[foreground],
                         library.donor(foreground, config.size, config.margin), config.size, config.margin,
                         key_rng(config.seed, "online-blend", *draw.parts(), key), config.params, made_draw, rank,
                         len(candidates))
    else:
        made = bi_arrays(name, background, crop, None, None, None, config.size, config.margin, decide,
                         config.params, made_draw)
    choices = draw_augment(key_rng(config.seed, "augment", *draw.parts(), key), config.augment)
    augmented = apply_augment(choices, _rgb(made.image), (made.mask, made.xray, made.hull))
    mask, xray, hull = augmented.masks
    meta = made.meta | {"augment": augmented.choices}
    return SampleArrays(made.key, augmented.image, xray, mask, hull, made.label, meta), augmented.choices


def _rgb(image: np.ndarray | bytes) -> np.ndarray:
    return decode_png(image) if isinstance(image, bytes) else image
