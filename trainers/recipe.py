"""The crop recipe of a model's training data, recorded in its checkpoint and applied
again when it scores new media, so a face is cut exactly as the faces it learnt from."""
from __future__ import annotations

import json
import posixpath
import warnings
from dataclasses import asdict, dataclass, fields

import numpy as np

from landmarks.align import align_face
from landmarks.detect import DetectorConfig
from shards.tar import read_tar
from trainers.decode import resize_square
from trainers.urls import open_url


class RecipeWarning(UserWarning):
    """The training shards did not say how their faces were cropped, or disagree."""


@dataclass(frozen=True)
class CropRecipe:
    """How the training crops were made. size: crop side S, px. margin: crop side / face
    box side. face_size, face_margin: when the samples were re-cropped from face shards,
    that first crop's side (px) and margin (None otherwise). min_score, min_face_size (frame
    px), max_eye_error: the detector's acceptance thresholds. source: where this was read."""

    size: int = 256
    margin: float = 1.3
    face_size: int | None = None
    face_margin: float | None = None
    min_score: float = 0.5
    min_face_size: float = 64.0
    max_eye_error: float = 0.25
    source: str = "defaults"

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "CropRecipe":
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def detector(self) -> DetectorConfig:
        return DetectorConfig(min_score=self.min_score, min_size=self.min_face_size, max_eye_error=self.max_eye_error)

    def geometry(self) -> tuple:
        """What decides the pixels of a crop (everything but `source`)."""
        return tuple(v for k, v in asdict(self).items() if k != "source")


def _from_card(card: dict) -> dict:
    """Recipe fields of a dataset card's `parameters.crops`."""
    crops = card.get("parameters", {}).get("crops", {})
    detector = crops.get("detector", {})
    found = {k: crops[k] for k in ("size", "margin", "face_size", "face_margin") if k in crops}
    found |= {name: detector[key] for name, key in (("min_score", "min_score"), ("min_face_size", "min_size"),
                                                   ("max_eye_error", "max_eye_error")) if key in detector}
    return found


def _folder_recipe(url: str) -> CropRecipe | None:
    """The recipe of one shard's folder: the first sample's json `crop` ({size, margin})
    over the folder's `stats.json` parameters; None when neither says."""
    found, sources = {}, []
    if not url.startswith("pipe:"):
        try:
            with open_url(posixpath.join(posixpath.dirname(url), "stats.json")) as stream:
                found |= _from_card(json.load(stream))
                sources.append("stats.json")
        except (OSError, ValueError):
            pass
    try:
        with open_url(url) as stream:
            first = next(read_tar(stream), {})
        crop = json.loads(first.get("json", b"{}")).get("crop", {})
    except Exception:  # noqa: BLE001 - an unreadable shard says nothing about the recipe
        crop = {}
    if crop:
        found |= {k: crop[k] for k in ("size", "margin", "face_size", "face_margin") if k in crop}
        sources.append("sample json")
    if not found:
        return None
    return CropRecipe.from_dict(found | {"source": f"{' + '.join(sources)} of {posixpath.dirname(url) or '.'}"})


def read_recipe(urls: list[str]) -> CropRecipe:
    """The crop recipe of training shards, read once per shard folder. Falls back to the
    defaults (with a RecipeWarning) when no folder says; warns when folders disagree and
    keeps the first."""
    folders: dict[str, str] = {}
    for url in urls:
        folders.setdefault(posixpath.dirname(url), url)
    recipes = [r for r in (_folder_recipe(url) for url in folders.values()) if r is not None]
    if not recipes:
        warnings.warn("the training shards record no crop recipe (no json 'crop', no stats.json); "
                      "beam predict will crop with the defaults", RecipeWarning, stacklevel=2)
        return CropRecipe()
    if len({r.geometry() for r in recipes}) > 1:
        warnings.warn(f"training shard folders were cropped differently ({[r.source for r in recipes]}); "
                      f"recording {recipes[0].source}", RecipeWarning, stacklevel=2)
    return recipes[0]


def crop_face(rgb: np.ndarray, landmarks: np.ndarray, recipe: CropRecipe, image_size: int) -> np.ndarray:
    """The model input for a face: rgb (H, W, 3) uint8 frame, landmarks (68, 2) frame px
    -> (image_size, image_size, 3) uint8, cut as the training crops were (through the face
    shard's crop first when there was one), then resized as the training decoder does."""
    if recipe.face_size:
        rgb, landmarks, _ = align_face(rgb, landmarks, int(recipe.face_size), float(recipe.face_margin))
    crop, _, _ = align_face(rgb, landmarks, int(recipe.size), float(recipe.margin))
    return resize_square(crop, image_size)
