"""Whole-image alterations of a face copy (the source-target generator of self-blended
images, `blending.sbi`): colour shifts and frequency changes, each a pure function of a
(S, S, 3) uint8 RGB image and its parameters, returning a new uint8 image of the same shape.
All run in OpenCV: saturating arithmetic, a table lookup between colour conversions,
resizes, a 3 x 3 filter.
"""
from __future__ import annotations

import cv2
import numpy as np


def shift_rgb(image: np.ndarray, shift: tuple[int, int, int]) -> np.ndarray:
    """Add `shift` (R, G, B integer levels, any sign) to each channel, saturating at 0 and 255."""
    return cv2.add(image, (*map(float, shift), 0.0))


def shift_hsv(image: np.ndarray, shift: tuple[int, int, int]) -> np.ndarray:
    """Shift hue, saturation and value by `shift` levels of OpenCV's 8-bit HSV (hue 0..179,
    2 degrees a level, wrapping round; saturation and value 0..255, saturating)."""
    if not any(shift):
        return image
    hue, saturation, value = shift
    levels = np.arange(256)
    table = np.stack([np.mod(levels + hue, 180), levels + saturation, levels + value], 1)
    hsv = cv2.LUT(cv2.cvtColor(image, cv2.COLOR_RGB2HSV), np.clip(table, 0, 255).astype(np.uint8).reshape(1, 256, 3))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def brightness_contrast(image: np.ndarray, brightness: float, contrast: float) -> np.ndarray:
    """x -> (1 + contrast) * x + 255 * brightness on every channel, rounded and saturated.
    brightness: offset, fraction of full scale; contrast: gain - 1 (0 leaves the image)."""
    return cv2.addWeighted(image, 1.0 + contrast, image, 0.0, 255.0 * brightness)


def down_up_sample(image: np.ndarray, factor: int) -> np.ndarray:
    """Lose the high frequencies: nearest-neighbour down-sampling by `factor` (side
    S // factor), then bilinear up-sampling back to S."""
    size = image.shape[1], image.shape[0]
    small = cv2.resize(image, (max(1, size[0] // factor), max(1, size[1] // factor)), interpolation=cv2.INTER_NEAREST)
    return cv2.resize(small, size, interpolation=cv2.INTER_LINEAR)


def sharpen(image: np.ndarray, alpha: float, lightness: float) -> np.ndarray:
    """Boost the high frequencies: a 3 x 3 filter mixing identity (weight 1 - alpha) with a
    Laplacian-type kernel of centre 8 + lightness and -1 around (weight alpha). The kernel
    sums to 1 - alpha * (1 - lightness), so lightness < 1 also darkens slightly."""
    kernel = np.full((3, 3), -alpha, np.float32)
    kernel[1, 1] = (1.0 - alpha) + alpha * (8.0 + lightness)
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
