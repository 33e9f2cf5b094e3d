"""Colour correction of a foreground face towards a background face, inside a soft mask."""
from __future__ import annotations

import cv2
import numpy as np

COLOR_TRANSFERS = ("rgb_mean", "reinhard", "none")


def _weighted_mean(image: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-channel mean of (H, W, C) float32 `image` weighted by (H, W) `weights`: (C,)."""
    total = float(weights.sum(dtype=np.float64))
    if total <= 0:
        raise ValueError("colour transfer needs a non-empty mask")
    w = np.ascontiguousarray(weights, np.float32).reshape(-1)
    return (w @ np.ascontiguousarray(image).reshape(-1, image.shape[-1])).astype(np.float64) / total


def _weighted_stats(image: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted per-channel mean and standard deviation, (C,) float64 each."""
    mean = _weighted_mean(image, weights)
    square = _weighted_mean(image * image, weights)
    return mean, np.sqrt(np.maximum(square - mean ** 2, 0.0))


def rgb_mean_transfer(foreground: np.ndarray, background: np.ndarray,
                      weights: np.ndarray) -> np.ndarray:
    """Shift each RGB channel of the foreground so its mean inside the mask equals the
    background's (the Face X-ray recipe).

    foreground, background: (H, W, 3) float32, 0..255. weights: (H, W) float32 in [0, 1].
    Returns (H, W, 3) float32 clipped to 0..255.
    """
    shift = _weighted_mean(background, weights) - _weighted_mean(foreground, weights)
    return np.clip(foreground + shift.astype(np.float32), 0.0, 255.0)


def reinhard_transfer(foreground: np.ndarray, background: np.ndarray,
                      weights: np.ndarray) -> np.ndarray:
    """Reinhard et al. (2001) colour transfer: match mean and standard deviation of each
    L*a*b* channel inside the mask. Same arguments and result range as `rgb_mean_transfer`."""
    fg_lab = cv2.cvtColor(foreground / 255.0, cv2.COLOR_RGB2LAB)
    bg_lab = cv2.cvtColor(background / 255.0, cv2.COLOR_RGB2LAB)
    fg_mean, fg_std = _weighted_stats(fg_lab, weights)
    bg_mean, bg_std = _weighted_stats(bg_lab, weights)
    gain = (bg_std / np.maximum(fg_std, 1e-6)).astype(np.float32)
    matched = (fg_lab - fg_mean.astype(np.float32)) * gain + bg_mean.astype(np.float32)
    return np.clip(cv2.cvtColor(matched, cv2.COLOR_LAB2RGB) * 255.0, 0.0, 255.0)


def transfer_color(method: str, foreground: np.ndarray, background: np.ndarray,
                   weights: np.ndarray) -> np.ndarray:
    """Dispatch on `method` (one of COLOR_TRANSFERS); 'none' returns the foreground."""
    if method == "rgb_mean":
        return rgb_mean_transfer(foreground, background, weights)
    if method == "reinhard":
        return reinhard_transfer(foreground, background, weights)
    if method == "none":
        return foreground
    raise ValueError(f"unknown colour transfer {method!r}; choose from {COLOR_TRANSFERS}")
