"""Masks drawn from landmarks, and the Face X-ray of a mask."""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np


def hull_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Filled convex hull of the landmarks.

    landmarks: (N, 2) float, crop px. Returns (size, size) float32 in {0, 1}.
    """
    mask = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(np.round(landmarks).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(np.float32)


def quantize(mask: np.ndarray) -> np.ndarray:
    """Float mask in [0, 1] -> uint8 0..255 (rounded)."""
    return np.round(np.clip(mask, 0.0, 1.0) * 255.0).astype(np.uint8)


def is_binary(mask: np.ndarray) -> bool:
    """True when every value is 0 or the mask's maximum (a hard mask at any scale)."""
    peak = mask.max()
    return bool(peak == 0 or np.all((mask == 0) | (mask == peak)))


def xray(mask: np.ndarray) -> np.ndarray:
    """Face X-ray B = 4 * M * (1 - M) (Face X-ray, Eq. 2).

    mask: (H, W) float32 in [0, 1]. A binary mask is first softened by a 3 x 3 Gaussian,
    as the paper prescribes, since a hard mask has an all-zero X-ray.
    Returns (H, W) float32 in [0, 1].
    """
    if is_binary(mask):
        mask = cv2.GaussianBlur(mask, (3, 3), 0)
    return 4.0 * mask * (1.0 - mask)


@lru_cache(maxsize=1)
def _xray_table() -> np.ndarray:
    levels = np.arange(256, dtype=np.float32) / 255.0
    return quantize(4.0 * levels * (1.0 - levels))


def xray_u8(mask: np.ndarray) -> np.ndarray:
    """`xray` of a uint8 mask (0..255), as uint8 0..255: one table lookup per pixel for a
    soft mask; a binary mask is softened first, as in `xray`."""
    if is_binary(mask):
        return quantize(xray(mask.astype(np.float32) / 255.0))
    return cv2.LUT(mask, _xray_table())


def official_mask(crop: np.ndarray) -> np.ndarray:
    """A dataset's own mask frame, cropped like its video: (S, S, 3) RGB or (S, S) grey
    uint8 -> (S, S) float32 in {0, 1}, manipulated where the grey level is >= 128."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    return (grey >= 128).astype(np.float32)


def difference_mask(fake: np.ndarray, original: np.ndarray, smooth_sigma: float = 5.0,
                    threshold: float = 12.0, cleanup: int = 5) -> np.ndarray:
    """Forgery mask from a manipulated crop and its pixel-aligned original.

    The grey absolute difference (0..255) is smoothed by a Gaussian of `smooth_sigma` px,
    which averages away compression noise (both videos are coded separately) while keeping
    the manipulated region. With `threshold` > 0 the mask is where the smoothed difference
    reaches `threshold` grey levels, cleaned by a morphological opening then closing with
    a `cleanup` px ellipse (drops specks, fills holes); with `threshold` 0 it is the
    smoothed difference normalised by its maximum (Face X-ray, Fig. 6).

    fake, original: (S, S, 3) uint8 RGB. Returns (S, S) float32 in [0, 1].
    """
    difference = cv2.cvtColor(cv2.absdiff(fake, original), cv2.COLOR_RGB2GRAY).astype(np.float32)
    if smooth_sigma > 0:
        difference = cv2.GaussianBlur(difference, (0, 0), smooth_sigma)
    if threshold <= 0:
        peak = float(difference.max())
        return difference / peak if peak > 0 else difference
    mask = (difference >= threshold).astype(np.uint8)
    if cleanup > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (cleanup, cleanup))
        mask = cv2.morphologyEx(cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel), cv2.MORPH_CLOSE, kernel)
    return mask.astype(np.float32)
