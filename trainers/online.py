"""Online blending: training samples made from face shards at every draw.

Each time a real face is drawn from the face-shard stream it yields either its real sample
or, with probability `fake_fraction`, a fresh Face X-ray blend: a foreground drawn from its
`neighbours.parquet` candidates (the global nearest faces, read by offset from the face
shards) and new recipe choices, from the same core as offline shards
(`shards.assemble.bi_arrays`). Every random choice comes from (seed, draw, key), a draw
being (epoch, reader slot, position): the same seed gives the same samples for a given
world size and loader workers, and a sample regenerates exactly from its json
(`regenerate`).
"""
from __future__ import annotations

import json
import posixpath
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq

from blending.bi import blend_from_choices
from blending.mix import FakeParams, RecipeMix
from blending.sbi import self_blend_from_choices, self_blend_target
from shards.assemble import SampleArrays, bi_arrays, blended_arrays, real_arrays, sbi_arrays
from shards.faces import FaceRecord, cut_recipe_crop, stored_mesh
from shards.keys import key_rng, parse_key, sample_key
from shards.png import png_size
from shards.sample import decode_png
from shards.tar import read_member


RECORD_BLOCK, RECORD_BLOCKS_KEPT = 64, 32
"""Rows of faces.parquet converted to records at a time, and blocks kept per library."""


class OnlineOptionsError(ValueError):
    """Online blending options that do not go together."""


class FaceFolderError(Exception):
    """A face-shard folder lacks its tables, or a shard holds a face its tables do not."""


@dataclass(frozen=True)
class OnlineConfig:
    """fake_fraction: probability that a draw is a fake. mix: which generator makes it (BI
    blend or self-blend). params: the generators' ranges. size, margin: the sample crop cut
    from the stored crops. cached_crops: foreground recipe crops kept per loader worker
    (size^2 x 3 bytes each). paired: every draw gives two samples, the face's real target
    copy and its self-blend, as SBI training pairs them (recipe 'sbi'; fake_fraction unused)."""

    fake_fraction: float = 0.5
    params: FakeParams = FakeParams()
    mix: RecipeMix = RecipeMix.parse("bi")
    size: int = 256
    margin: float = 1.3
    cached_crops: int = 512
    paired: bool = False

    def __post_init__(self):
        if not 0 <= self.fake_fraction <= 1:
            raise OnlineOptionsError(f"fake_fraction must be in [0, 1], got {self.fake_fraction}")
        if self.paired and self.mix.names != ("sbi",):
            raise OnlineOptionsError("--paired draws a real face and its own self-blend: it needs --recipe sbi")


def face_folder(url: str) -> str:
    """The face-shard folder of a shard URL or path (its tables lie beside the shards)."""
    return posixpath.dirname(url)


class FaceLibrary:
    """The faces and neighbours of one face-shard folder, and its stored crops read by
    offset: a few shard files open at a time and the last `cached` foreground recipe crops
    kept. `opener(path) -> seekable binary stream` opens local paths or URLs. Records are
    built on demand from the Parquet table, so a loader worker holds the table's columns,
    not a million Python objects."""

    def __init__(self, folder: str, opener: Callable, cached: int = 512, open_files: int = 8):
        self.folder, self._opener = folder, opener
        try:
            self._faces = self._table("faces")
            neighbours = self._table("neighbours").column("neighbours").combine_chunks()
        except (OSError, KeyError) as error:
            raise FaceFolderError(f"{folder}: no faces.parquet / neighbours.parquet beside the face shards "
                                  f"(made by `beam run extract_faces`): {error}") from error
        self._offsets = neighbours.offsets.to_numpy()
        self._neighbours = neighbours.values.to_numpy()
        self.rows = {key: number for number, key in enumerate(self._faces.column("key").to_pylist())}
        self._cached, self._open_files = cached, open_files
        self._crops: OrderedDict[int, tuple[FaceRecord, np.ndarray]] = OrderedDict()
        self._files: OrderedDict[str, object] = OrderedDict()
        self._blocks: OrderedDict[int, list[dict]] = OrderedDict()

    def _table(self, name: str):
        with self._opener(f"{self.folder}/{name}.parquet") as stream:
            return pq.read_table(stream)

    def row(self, key: str) -> int:
        """Row of face `key` in faces.parquet."""
        try:
            return self.rows[key]
        except KeyError:
            raise FaceFolderError(f"{self.folder}: face {key} is in a shard but not in faces.parquet") from None

    def record(self, row: int) -> FaceRecord:
        """The record of face `row`. Rows are converted from the table a block at a time
        (a stream reads each shard in order), a few blocks kept."""
        block, offset = divmod(row, RECORD_BLOCK)
        rows = self._blocks.pop(block, None)
        if rows is None:
            rows = self._faces.slice(block * RECORD_BLOCK, RECORD_BLOCK).to_pylist()
            if len(self._blocks) >= RECORD_BLOCKS_KEPT:
                self._blocks.popitem(last=False)
        self._blocks[block] = rows
        return FaceRecord.from_row(rows[offset])

    def neighbours(self, row: int) -> np.ndarray:
        """(k,) int32 rows of the face's nearest faces, nearest first."""
        return self._neighbours[self._offsets[row]:self._offsets[row + 1]]

    def donor(self, row: int, size: int, margin: float) -> tuple[FaceRecord, np.ndarray]:
        """Face `row`'s record and (size, size, 3) uint8 RGB recipe crop, cached."""
        entry = self._crops.pop(row, None)
        if entry is None or entry[1].shape[0] != size:
            record = self.record(row)
            stored = decode_png(self.member(record.shard, record.image))
            entry = record, cut_recipe_crop(record, stored, size, margin).image
            if len(self._crops) >= self._cached:
                self._crops.popitem(last=False)
        self._crops[row] = entry
        return entry

    def member(self, shard: str, span: tuple[int, int]) -> bytes:
        """The bytes of one member of a face shard (`shards.tar.read_member`)."""
        return read_member(self._file(shard), span)

    def _file(self, shard: str):
        stream = self._files.pop(shard, None)
        if stream is None:
            stream = self._opener(f"{self.folder}/{shard}")
            if len(self._files) >= self._open_files:
                self._files.popitem(last=False)[1].close()
        self._files[shard] = stream
        return stream


def draw_variant(draw: tuple[int, int, int]) -> str:
    """Key variant of the sample a draw (epoch, slot, position) makes: `e<e>s<s>p<p>`."""
    return "e{}s{}p{}".format(*draw)


def online_sample(raw: dict, library: FaceLibrary, config: OnlineConfig, seed: int,
                  draw: tuple[int, int, int]) -> SampleArrays:
    """The sample one draw of a stored face makes. raw: the face-shard sample (`__key__`,
    `img.png`, `json` bytes). Its json records the draw and, for a blend, the foreground
    and every choice."""
    key = raw["__key__"]
    row = library.row(key)
    decide = key_rng(seed, "online", *draw, key)
    candidates = library.neighbours(row)
    made_draw = {"draw": {"seed": seed, "epoch": draw[0], "slot": draw[1], "position": draw[2]}}
    name, background = sample_key(key, draw_variant(draw)), library.record(row)
    method = config.mix.draw(decide) if decide.random() < config.fake_fraction else "real"
    if method == "sbi":
        return sbi_arrays(name, background, decode_png(raw["img.png"]), stored_mesh(raw["json"]), config.size,
                          config.margin, key_rng(seed, "online-sbi", *draw, key), config.params.sbi, made_draw)
    if method == "bi" and len(candidates):
        rank = int(decide.integers(len(candidates)))
        foreground, donor = library.donor(int(candidates[rank]), config.size, config.margin)
        return bi_arrays(name, background, decode_png(raw["img.png"]), stored_mesh(raw["json"]), foreground, donor,
                         config.size, config.margin, key_rng(seed, "online-blend", *draw, key), config.params.bi,
                         made_draw, rank, len(candidates))
    return bi_arrays(name, background, decode_png(raw["img.png"]), None, None, None, config.size, config.margin,
                     decide, config.params.bi, made_draw)


def paired_samples(raw: dict, library: FaceLibrary, config: OnlineConfig, seed: int,
                   draw: tuple[int, int, int]) -> list[SampleArrays]:
    """A draw of `--paired` SBI: [the real target copy, its self-blend]. The real sample is
    the copy the self-blend equals outside its mask (`blending.sbi.self_blend_target`); its
    json holds the blend's choices under `target_of`, so it regenerates too."""
    key = raw["__key__"]
    background = library.record(library.row(key))
    made_draw = {"draw": {"seed": seed, "epoch": draw[0], "slot": draw[1], "position": draw[2]}}
    stored = decode_png(raw["img.png"])
    fake = sbi_arrays(sample_key(key, draw_variant(draw) + "f"), background, stored, stored_mesh(raw["json"]),
                      config.size, config.margin, key_rng(seed, "online-sbi", *draw, key), config.params.sbi,
                      made_draw)
    cut = cut_recipe_crop(background, stored, config.size, config.margin)
    target = real_arrays(sample_key(key, draw_variant(draw) + "r"), cut.record,
                         self_blend_target(cut.image, fake.meta["blend"]))
    meta = target.meta | made_draw | {"target_of": {"key": fake.key, "blend": fake.meta["blend"]}}
    return [SampleArrays(target.key, target.image, target.xray, target.mask, target.hull, 0, meta), fake]


def check_face_sample(raw: dict, library: FaceLibrary) -> None:
    """What a skipped draw checks (a resumed run consumes it unseen): the face is known and
    its members are there; raises like `online_sample` would on a missing face."""
    library.row(raw["__key__"])
    png_size(raw["img.png"])
    if "mesh" not in json.loads(raw["json"]):
        raise ValueError(f"{raw['__key__']}: face json without its mesh")


def regenerate(meta: dict, library: FaceLibrary) -> SampleArrays:
    """An online sample, before augmentation, rebuilt from its json alone (the faces are
    read from `library`, the blend from the recorded choices): bit-identical to the one
    drawn."""
    face_key = parse_key(meta["key"]).face_key
    row = library.row(face_key)
    record = library.record(row)
    stored = decode_png(library.member(record.shard, record.image))
    mesh = stored_mesh(library.member(record.shard, record.meta))
    size, margin = meta["crop"]["size"], meta["crop"]["margin"]
    cut = cut_recipe_crop(record, stored, size, margin, mesh)
    draw = {"draw": meta["draw"]}
    if meta["kind"] == "real":
        pair = meta.get("target_of")
        image = cut.image if pair is None else self_blend_target(cut.image, pair["blend"])
        real = real_arrays(meta["key"], cut.record, image)
        return SampleArrays(real.key, real.image, real.xray, real.mask, real.hull, 0,
                            real.meta | draw | ({"target_of": pair} if pair else {}))
    if meta["method"] == "sbi":
        result = self_blend_from_choices(cut.image, cut.record.landmarks, meta["blend"], mesh=cut.mesh,
                                         valid=cut.valid())
        return blended_arrays(meta["key"], cut.record, record, result, draw, -1, 0, method="sbi")
    foreground, donor = library.donor(library.row(meta["foreground"]["key"]), size, margin)
    result = blend_from_choices(cut.image, donor, cut.record.landmarks, meta["blend"], mesh=cut.mesh,
                                valid=cut.valid())
    return blended_arrays(meta["key"], cut.record, foreground, result, draw, meta["foreground"]["neighbour_rank"],
                          meta["foreground"]["neighbours"])
