"""Masks drawn from landmarks, and the Face X-ray of a mask."""
from __future__ import annotations

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
