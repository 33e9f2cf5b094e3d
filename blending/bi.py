"""Face X-ray blended images (BI) from two aligned real faces (Li et al., CVPR 2020, Sec. 3.2).

    mask   M = blur_k(deform(hull(landmarks of I_B)))     random deformation and kernel k
    image  I_M = M * colour_corrected(I_F) + (1 - M) * I_B   (Eq. 1)
    X-ray  B = 4 * M * (1 - M)                               (Eq. 2)

M is quantised to 8 bits before it is used, so the stored `mask.png`, `xray.png` and image
agree exactly: where the stored mask is 0 the image is the background, where it is 255 the
colour-corrected foreground, and the stored X-ray is 4M(1-M) of the stored mask to 1/255.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from blending.color import COLOR_TRANSFERS, transfer_color
from blending.deform import grid_for
from blending.masks import hull_mask, quantize, xray_u8


@dataclass(frozen=True)
class BlendParams:
    """Ranges of the random choices of one blend.

    deform_std: std of the control-point offsets of the 4 x 4 grid, fraction of crop side.
    blur_min, blur_max: odd Gaussian kernel sizes (px), drawn uniformly among the odd
      sizes in [blur_min, blur_max].
    color_transfer: 'rgb_mean' (paper), 'reinhard' (L*a*b* mean and std) or 'none'.
    grid: control points per side of the deformation grid.
    """

    deform_std: float = 0.03
    blur_min: int = 5
    blur_max: int = 25
    color_transfer: str = "rgb_mean"
    grid: int = 4

    def __post_init__(self):
        if self.blur_min < 1 or self.blur_max < self.blur_min or self.blur_min % 2 == 0 or self.blur_max % 2 == 0:
            raise ValueError(f"blur kernel sizes must be odd with 1 <= min <= max, got {self.blur_min}..{self.blur_max}")
        if self.deform_std < 0:
            raise ValueError(f"deform_std must be >= 0, got {self.deform_std}")
        if self.color_transfer not in COLOR_TRANSFERS:
            raise ValueError(f"color_transfer must be one of {COLOR_TRANSFERS}, got {self.color_transfer!r}")


@dataclass(frozen=True)
class Blend:
    """A blended sample. Images are uint8: image (S, S, 3) RGB; mask, xray, hull (S, S)
    grey scaled 0..255. `choices` records every random choice."""

    image: np.ndarray
    mask: np.ndarray
    xray: np.ndarray
    hull: np.ndarray
    choices: dict


def blend_mask(landmarks: np.ndarray, size: int, rng: np.random.Generator,
               params: BlendParams) -> tuple[np.ndarray, np.ndarray, dict]:
    """The deformed, blurred hull mask of one blend.

    landmarks: (68, 2) background landmarks, crop px. Returns (hull uint8 {0, 255},
    mask uint8 0..255, choices)."""
    hull = hull_mask(landmarks, size)
    grid = grid_for(size, params.grid)
    targets = grid.random_targets(rng, params.deform_std * size)
    kernel = int(rng.choice(np.arange(params.blur_min, params.blur_max + 1, 2)))
    deformed = grid.warp(hull, targets)
    mask = quantize(cv2.GaussianBlur(deformed, (kernel, kernel), 0))
    choices = {"grid_targets": np.round(targets, 3).tolist(), "blur_kernel": kernel}
    return quantize(hull), mask, choices


def blend(background: np.ndarray, foreground: np.ndarray, background_landmarks: np.ndarray,
          rng: np.random.Generator, params: BlendParams = BlendParams()) -> Blend:
    """Blend `foreground` into `background` along a random mask from the background's hull.

    background, foreground: (S, S, 3) uint8 RGB aligned crops.
    background_landmarks: (68, 2) float32, crop px of the background.
    """
    size = background.shape[0]
    if background.shape != foreground.shape or background.shape[:2] != (size, size):
        raise ValueError(f"need two equal square crops, got {background.shape} and {foreground.shape}")
    hull, mask_u8, choices = blend_mask(background_landmarks, size, rng, params)
    rows, cols = np.flatnonzero(mask_u8.any(1)), np.flatnonzero(mask_u8.any(0))
    if len(rows) == 0:
        raise ValueError("the deformed mask is empty")
    # Outside the mask's box the image is the background: work inside the box only.
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    alpha = mask_u8[box].astype(np.float32)[..., None] / 255.0
    bg = background[box].astype(np.float32)
    corrected = transfer_color(params.color_transfer, foreground[box].astype(np.float32), bg, alpha[..., 0])
    image = background.copy()
    image[box] = np.round(bg + alpha * (corrected - bg)).astype(np.uint8)
    choices.update(color_transfer=params.color_transfer, params=asdict(params))
    return Blend(image=image, mask=mask_u8, xray=xray_u8(mask_u8), hull=hull, choices=choices)
