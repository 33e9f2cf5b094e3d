"""Samples assembled from a face's record and pixels: the real, blended and manipulated
samples of the shards, with their `json` and their `index` row."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blending.bi import blend
from blending.sbi import self_blend
from blending.masks import hull_mask, quantize, xray
from blending.mix import FakeParams
from shards.faces import FaceRecord, cut_recipe_crop
from shards.keys import key_rng
from shards.plan import PlannedSample
from shards.labels import method_id
from shards.sample import EncodedSample, encode_sample


@dataclass(frozen=True)
class AssembledSample:
    """An encoded sample with its `index` row (every field but `shard`)."""

    sample: EncodedSample
    index: dict

    @property
    def key(self) -> str:
        return self.sample.key


def _meta(key: str, face: FaceRecord, kind: str, method: str) -> dict:
    return face.meta_json() | {"key": key, "kind": kind, "method": method, "method_id": method_id(method)}


def _index_row(key: str, face: FaceRecord, kind: str, label: int, method: str, foreground_key: str = "") -> dict:
    return {"key": key, "kind": kind, "label": label, "method": method, "split": face.split,
            "identity": face.identity, "video": face.video, "foreground_key": foreground_key}


def bi_index_row(key: str, background: FaceRecord, foreground: FaceRecord | None, method: str = "bi") -> dict:
    """`index` row of a BI build's sample: real when `foreground` is None, else blended by
    `method` (`bi`, or `sbi` with the face itself as its foreground)."""
    if foreground is None:
        return _index_row(key, background, "real", 0, "real")
    return _index_row(key, background, "blended", 1, method, foreground.key)


@dataclass(frozen=True)
class SampleArrays:
    """A sample before encoding. image: (S, S, 3) uint8 RGB, or its PNG bytes when it is
    stored as made (`shards.png.encode_png`); xray, mask, hull: (S, S) uint8 0..255;
    label: 0 real, 1 fake; meta: the sample's json."""

    key: str
    image: np.ndarray | bytes
    xray: np.ndarray
    mask: np.ndarray
    hull: np.ndarray
    label: int
    meta: dict

    def encode(self) -> EncodedSample:
        return encode_sample(self.key, self.image, self.xray, self.mask, self.hull, self.label, self.meta)


def real_arrays(key: str, face: FaceRecord, image: np.ndarray | bytes) -> SampleArrays:
    """The face as it is: label 0, all-zero X-ray and mask, hull of its landmarks.
    image: (S, S, 3) uint8 RGB crop, or its PNG bytes."""
    size = face.crop_size
    zeros = np.zeros((size, size), np.uint8)
    return SampleArrays(key, image, zeros, zeros, quantize(hull_mask(face.landmarks, size)), 0,
                        _meta(key, face, "real", "real"))


def blended_arrays(key: str, background: FaceRecord, foreground: FaceRecord, blend, draw: dict,
                   neighbour_rank: int, neighbours: int, method: str = "bi") -> SampleArrays:
    """A blended image (`blending.bi.Blend`, or a self-blend with `method` 'sbi' and the
    face as its own foreground): label 1, the foreground and every random choice in its
    json. draw: what seeded the choices (e.g. {"seed": 0}). neighbour_rank: rank of the
    foreground among the background's nearest faces (0 nearest) of `neighbours` eligible
    (-1 and 0 for a self-blend)."""
    meta = _meta(key, background, "blended", method) | draw | {
        "blend": blend.choices,
        "foreground": {"key": foreground.key, "video": foreground.video, "identity": foreground.identity,
                       "frame": foreground.frame, "neighbour_rank": neighbour_rank, "neighbours": neighbours}}
    return SampleArrays(key, blend.image, blend.xray, blend.mask, blend.hull, 1, meta)


def real_sample(key: str, face: FaceRecord, image: np.ndarray | bytes) -> AssembledSample:
    """`real_arrays`, encoded, with its index row."""
    return AssembledSample(real_arrays(key, face, image).encode(), bi_index_row(key, face, None))


def manipulated_sample(key: str, face: FaceRecord, method: str, image: np.ndarray | bytes, mask: np.ndarray,
                       mask_source: str, original_key: str) -> AssembledSample:
    """A crop of a manipulated video: label 1, its forgery mask (S, S) float32 in [0, 1],
    X-ray 4M(1-M) of the mask (a hard mask is first softened by a 3 x 3 Gaussian, Face
    X-ray Sec. 3.1), and the hull of the original frame's landmarks."""
    meta = _meta(key, face, "manipulated", method) | {
        "original_key": original_key, "mask_source": mask_source, "mask_area": round(float(mask.mean()), 5)}
    encoded = SampleArrays(key, image, quantize(xray(mask)), quantize(mask),
                           quantize(hull_mask(face.landmarks, face.crop_size)), 1, meta).encode()
    return AssembledSample(encoded, _index_row(key, face, "manipulated", 1, method))


def bi_arrays(key: str, background: FaceRecord, background_crop: np.ndarray, background_mesh: np.ndarray | None,
              foreground: FaceRecord | None, donor: np.ndarray | None, size: int, margin: float,
              rng: np.random.Generator, params, draw: dict, neighbour_rank: int = -1,
              neighbours: int = 0) -> SampleArrays:
    """A sample from stored faces: the background's recipe crop (`size` px at `margin`) as
    a real sample when `foreground` is None, else the Face X-ray blend of the foreground's
    recipe crop `donor` into it, its random choices drawn from `rng` (`draw` records its
    seed); the mask never reaches pixels from outside the background's source frame.

    background_crop: (S, S, 3) uint8 stored crop (face shards); background_mesh: (478, 2)
    stored-crop px, or None; donor: (size, size, 3) uint8, `cut_recipe_crop(foreground,
    ...).image`. params: `blending.bi.BlendParams`.
    """
    cut = cut_recipe_crop(background, background_crop, size, margin, background_mesh)
    if foreground is None:
        real = real_arrays(key, cut.record, cut.image)
        return SampleArrays(real.key, real.image, real.xray, real.mask, real.hull, 0, real.meta | draw)
    result = blend(cut.image, donor, cut.record.landmarks, rng, params, mesh=cut.mesh, valid=cut.valid())
    return blended_arrays(key, cut.record, foreground, result, draw, neighbour_rank, neighbours)


def sbi_arrays(key: str, face: FaceRecord, stored_crop: np.ndarray, mesh: np.ndarray | None, size: int,
               margin: float, rng: np.random.Generator, params, draw: dict) -> SampleArrays:
    """A self-blended image (SBI) of a stored face: its recipe crop blended with an altered
    copy of itself (`blending.sbi.self_blend`), the mask kept inside the source frame.
    params: `blending.sbi.SbiParams`."""
    cut = cut_recipe_crop(face, stored_crop, size, margin, mesh)
    result = self_blend(cut.image, cut.record.landmarks, rng, params, mesh=cut.mesh, valid=cut.valid())
    return blended_arrays(key, cut.record, face, result, draw, -1, 0, method="sbi")


def planned_sample(planned: PlannedSample, background: FaceRecord, background_crop: np.ndarray,
                   background_mesh: np.ndarray | None, foreground: FaceRecord | None,
                   foreground_crop: np.ndarray | None, size: int, margin: float, seed: int,
                   params: FakeParams) -> AssembledSample:
    """A sample of an offline BI build as planned (real, BI blend or self-blend), its random
    choices drawn from (seed, key), encoded, with its index row. Crops are stored crops
    (face shards); background_mesh (478, 2) stored-crop px is needed for the fakes."""
    key, method = planned.key, planned.method
    if method == "sbi":
        made = sbi_arrays(key, background, background_crop, background_mesh, size, margin,
                          key_rng(seed, "sbi", key), params.sbi, {"seed": seed})
        return AssembledSample(made.encode(), bi_index_row(key, background, background, "sbi"))
    donor = None if foreground is None else cut_recipe_crop(foreground, foreground_crop, size, margin).image
    made = bi_arrays(key, background, background_crop, background_mesh, foreground, donor, size, margin,
                     key_rng(seed, "blend", key), params.bi, {"seed": seed} if foreground is not None else {},
                     planned.neighbour_rank, planned.neighbours)
    return AssembledSample(made.encode(), bi_index_row(key, background, foreground))
