"""Per-draw augmentation, applied alike to real and fake samples: horizontal flip, small
colour jitter, JPEG round trip.

The choices are drawn from a generator alone, never from the sample (there is no label
argument): a real and a fake drawn with the same generator state get the same choices.
The caller derives that generator independently of the label. Choices (JSON-ready dict):

    flip          bool, mirror left-right (image, masks, landmarks, mesh)
    brightness    factor on RGB, 1 = unchanged
    contrast      factor on the distance to the image's mean grey, 1 = unchanged
    saturation    factor on the distance to each pixel's grey, 1 = unchanged
    jpeg_quality  int 0..100 of an OpenCV JPEG round trip, or None for none

Order: flip, colour jitter (one 3 x 4 affine colour transform), JPEG.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from blending.postprocess import jpeg
from landmarks.ibug68 import IBUG68_FLIP, MESH_FLIP

_GREY = np.array([0.299, 0.587, 0.114], np.float64)
"""RGB weights of grey (ITU-R BT.601, as OpenCV's RGB2GRAY)."""


@dataclass(frozen=True)
class AugmentParams:
    """Ranges of the augmentation choices.

    flip_p: probability of a horizontal flip.
    brightness, contrast, saturation: each factor is drawn uniformly in [1 - x, 1 + x].
    jpeg_p: probability of a JPEG round trip; its quality is drawn uniformly among the
      integers in [jpeg_min, jpeg_max].
    """

    flip_p: float = 0.5
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    jpeg_p: float = 0.5
    jpeg_min: int = 60
    jpeg_max: int = 100

    def __post_init__(self):
        if not (0 <= self.flip_p <= 1 and 0 <= self.jpeg_p <= 1):
            raise ValueError(f"probabilities must be in [0, 1], got flip_p {self.flip_p}, jpeg_p {self.jpeg_p}")
        if not all(0 <= x < 1 for x in (self.brightness, self.contrast, self.saturation)):
            raise ValueError("brightness, contrast and saturation must be in [0, 1)")
        if not 0 <= self.jpeg_min <= self.jpeg_max <= 100:
            raise ValueError(f"need 0 <= jpeg_min <= jpeg_max <= 100, got {self.jpeg_min}..{self.jpeg_max}")


AUGMENTS: dict[str, AugmentParams] = {
    "default": AugmentParams(),
    "none": AugmentParams(flip_p=0.0, brightness=0.0, contrast=0.0, saturation=0.0, jpeg_p=0.0),
}
"""Named augmentations; `none` leaves every sample unchanged."""


def augment_params(name: str) -> AugmentParams:
    """The named augmentation (a key of AUGMENTS)."""
    if name not in AUGMENTS:
        raise ValueError(f"unknown augmentation {name!r}; choose from {', '.join(AUGMENTS)}")
    return AUGMENTS[name]


@dataclass(frozen=True)
class Augmented:
    """An augmented sample. image: (S, S, 3) uint8 RGB; masks: the given (S, S) masks,
    flipped with the image; landmarks (68, 2) / mesh (478, 2) float32 crop px, or None."""

    image: np.ndarray
    masks: tuple[np.ndarray, ...]
    landmarks: np.ndarray | None
    mesh: np.ndarray | None
    choices: dict


def draw_augment(rng: np.random.Generator, params: AugmentParams) -> dict:
    """One draw of the choices (module docstring). Always consumes the same number of
    values from `rng`, whatever the ranges, so what follows in the stream does not depend
    on the parameters."""
    u = rng.uniform(size=6)
    factors = [round(1.0 + x * (2.0 * v - 1.0), 3)
               for x, v in zip((params.brightness, params.contrast, params.saturation), u[1:4])]
    quality = params.jpeg_min + int(u[5] * (params.jpeg_max - params.jpeg_min + 1))
    return {"flip": bool(u[0] < params.flip_p), "brightness": factors[0], "contrast": factors[1],
            "saturation": factors[2], "jpeg_quality": quality if u[4] < params.jpeg_p else None}


def flip_points(points: np.ndarray, size: int, permutation: np.ndarray) -> np.ndarray:
    """Points of a mirrored S x S crop: x -> S - 1 - x, then renumbered by `permutation`
    (IBUG68_FLIP or MESH_FLIP) so each index keeps naming the same side of the face.
    points: (N, 2) float, crop px. Returns (N, 2) float32."""
    mirrored = np.asarray(points, np.float32).copy()
    mirrored[:, 0] = (size - 1) - mirrored[:, 0]
    return mirrored[permutation]


def jitter_colour(image: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
    """Brightness, then contrast, then saturation, as one affine colour transform.

    brightness: x -> b x. contrast: x -> c x + (1 - c) g, g the image's mean grey.
    saturation: x -> s x + (1 - s) grey(x). image: (H, W, 3) uint8 RGB; returns the same,
    rounded and saturated to 0..255."""
    if brightness == contrast == saturation == 1:
        return image
    mean_grey = float(np.dot(cv2.mean(image)[:3], _GREY))
    desaturate = saturation * np.eye(3) + (1.0 - saturation) * np.outer(np.ones(3), _GREY)
    matrix = contrast * brightness * desaturate
    offset = (1.0 - contrast) * brightness * mean_grey  # grey is kept by `desaturate`
    return cv2.transform(image, np.hstack([matrix, np.full((3, 1), offset)]))


def apply_augment(choices: dict, image: np.ndarray, masks: Sequence[np.ndarray] = (),
                  landmarks: np.ndarray | None = None, mesh: np.ndarray | None = None) -> Augmented:
    """Apply drawn `choices` to a sample, with no randomness.

    image: (S, S, 3) uint8 RGB; masks: (S, S) arrays (mask, X-ray, hull), only flipped;
    landmarks: (68, 2) float32 crop px or None; mesh: (478, 2) float32 crop px or None.
    """
    size = image.shape[1]
    masks = tuple(masks)
    if choices["flip"]:
        image = np.ascontiguousarray(image[:, ::-1])
        masks = tuple(np.ascontiguousarray(m[:, ::-1]) for m in masks)
        landmarks = None if landmarks is None else flip_points(landmarks, size, IBUG68_FLIP)
        mesh = None if mesh is None else flip_points(mesh, size, MESH_FLIP)
    image = jitter_colour(image, choices["brightness"], choices["contrast"], choices["saturation"])
    if choices["jpeg_quality"] is not None:
        image = jpeg(image, choices["jpeg_quality"])
    return Augmented(image=image, masks=masks, landmarks=landmarks, mesh=mesh, choices=dict(choices))


def augment(image: np.ndarray, rng: np.random.Generator, params: AugmentParams = AUGMENTS["default"],
            masks: Sequence[np.ndarray] = (), landmarks: np.ndarray | None = None,
            mesh: np.ndarray | None = None) -> Augmented:
    """Draw choices from `rng` (`draw_augment`) and apply them (`apply_augment`)."""
    return apply_augment(draw_augment(rng, params), image, masks, landmarks, mesh)
