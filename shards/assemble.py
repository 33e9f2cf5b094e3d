"""Samples assembled from a face's record and pixels: the real, blended and manipulated
samples of the shards, with their `json` and their `index` row."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blending.bi import blend
from blending.masks import hull_mask, quantize, xray
from shards.faces import FaceRecord, cut_recipe_crop
from shards.keys import key_rng
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


def bi_index_row(key: str, background: FaceRecord, foreground: FaceRecord | None) -> dict:
    """`index` row of a BI build's sample: real when `foreground` is None, else blended."""
    if foreground is None:
        return _index_row(key, background, "real", 0, "real")
    return _index_row(key, background, "blended", 1, "bi", foreground.key)


def _zeros(size: int) -> np.ndarray:
    return np.zeros((size, size), np.uint8)


def real_sample(key: str, face: FaceRecord, image: np.ndarray | bytes) -> AssembledSample:
    """The face as it is: label 0, all-zero X-ray and mask, hull of its landmarks.
    image: (S, S, 3) uint8 RGB crop, or its PNG bytes (`shards.png.encode_png`)."""
    size = face.crop_size
    zeros = _zeros(size)
    encoded = encode_sample(key, image, zeros, zeros, quantize(hull_mask(face.landmarks, size)), 0,
                            _meta(key, face, "real", "real"))
    return AssembledSample(encoded, bi_index_row(key, face, None))


def blended_sample(key: str, background: FaceRecord, foreground: FaceRecord, blend, seed: int,
                   neighbour_rank: int, neighbours: int) -> AssembledSample:
    """A blended image (`blending.bi.Blend`) of `foreground` into `background`: label 1,
    the foreground and every random choice in its json. neighbour_rank: rank of the
    foreground among the background's nearest faces (0 nearest) of `neighbours` eligible."""
    meta = _meta(key, background, "blended", "bi") | {
        "seed": seed, "blend": blend.choices,
        "foreground": {"key": foreground.key, "video": foreground.video, "identity": foreground.identity,
                       "neighbour_rank": neighbour_rank, "neighbours": neighbours}}
    encoded = encode_sample(key, blend.image, blend.xray, blend.mask, blend.hull, 1, meta)
    return AssembledSample(encoded, bi_index_row(key, background, foreground))


def manipulated_sample(key: str, face: FaceRecord, method: str, image: np.ndarray | bytes, mask: np.ndarray,
                       mask_source: str, original_key: str) -> AssembledSample:
    """A crop of a manipulated video: label 1, its forgery mask (S, S) float32 in [0, 1],
    X-ray 4M(1-M) of the mask (a hard mask is first softened by a 3 x 3 Gaussian, Face
    X-ray Sec. 3.1), and the hull of the original frame's landmarks."""
    meta = _meta(key, face, "manipulated", method) | {
        "original_key": original_key, "mask_source": mask_source, "mask_area": round(float(mask.mean()), 5)}
    encoded = encode_sample(key, image, quantize(xray(mask)), quantize(mask),
                            quantize(hull_mask(face.landmarks, face.crop_size)), 1, meta)
    return AssembledSample(encoded, _index_row(key, face, "manipulated", 1, method))


def bi_sample(key: str, background: FaceRecord, background_crop: np.ndarray, background_mesh: np.ndarray | None,
              foreground: FaceRecord | None, foreground_crop: np.ndarray | None, size: int, margin: float,
              seed: int, params, neighbour_rank: int = -1, neighbours: int = 0) -> AssembledSample:
    """A sample of a BI build from stored faces: the background's recipe crop (`size` px
    at `margin`) as a real sample when `foreground` is None, else the Face X-ray blend of
    the foreground's recipe crop into it, its random choices drawn from (seed, key); the
    mask never reaches pixels from outside the background's source frame.

    background_crop, foreground_crop: (S, S, 3) uint8 stored crops (face shards);
    background_mesh: (478, 2) stored-crop px, or None. params: `blending.bi.BlendParams`.
    """
    cut = cut_recipe_crop(background, background_crop, size, margin, background_mesh)
    if foreground is None:
        return real_sample(key, cut.record, cut.image)
    donor = cut_recipe_crop(foreground, foreground_crop, size, margin)
    result = blend(cut.image, donor.image, cut.record.landmarks, key_rng(seed, "blend", key), params,
                   mesh=cut.mesh, valid=cut.valid)
    return blended_sample(key, cut.record, foreground, result, seed, neighbour_rank, neighbours)
