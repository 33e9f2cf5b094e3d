"""Face X-ray blended images (BI) from two aligned real faces (Li et al., CVPR 2020, Sec. 3.2).

    mask   M = opacity * blur_k(morph(deform(hull(region of I_B))))   (blending.recipe)
    image  I_M = M * colour_corrected(I_F) + (1 - M) * I_B   (Eq. 1)
    X-ray  B = 4 * M * (1 - M)                               (Eq. 2)

M is quantised to 8 bits before it is used, so the stored `mask.png`, `xray.png` and image
agree exactly: where the stored mask is 0 the image is the background, where it is 255 the
colour-corrected foreground, and the stored X-ray is 4M(1-M) of the stored mask to 1/255.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from blending.color import transfer_color
from blending.deform import grid_for
from blending.masks import hull_mask, quantize, xray_u8
from blending.recipe import BlendParams, draw_choices
from blending.regions import region_mask

__all__ = ["Blend", "BlendParams", "EmptyMaskError", "blend", "blend_from_choices", "finish_mask", "render_mask"]


@dataclass(frozen=True)
class Blend:
    """A blended sample. Images are uint8: image (S, S, 3) RGB; mask, xray, hull (S, S)
    grey scaled 0..255. `choices` records every random choice."""

    image: np.ndarray
    mask: np.ndarray
    xray: np.ndarray
    hull: np.ndarray
    choices: dict


class EmptyMaskError(ValueError):
    """The blending mask of a set of choices is zero everywhere (the region was deformed,
    eroded or cut by the valid area down to nothing)."""


def render_mask(landmarks: np.ndarray, size: int, choices: dict, mesh: np.ndarray | None = None,
                valid: np.ndarray | None = None) -> np.ndarray:
    """The blending mask M of recorded `choices` (`blending.recipe`), with no randomness:
    region hull -> piecewise-affine deformation -> erosion / dilation -> Gaussian blur ->
    `finish_mask` (opacity -> 8 bits -> zero outside `valid`).

    landmarks: (68, 2) float32, crop px; mesh: (478, 2) float32, crop px, or None (needed
    for the `forehead` region); valid: (S, S) bool / uint8, crop pixels that came from
    inside the source frame, or None for all. Returns (S, S) uint8 0..255.
    """
    region = region_mask(choices["hull"], landmarks, size, mesh)
    targets = np.asarray(choices["grid_targets"], np.float32)
    mask = grid_for(size, round(len(targets) ** 0.5)).warp(region, targets)
    morph = int(choices["morph_kernel"])
    if morph:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (abs(morph), abs(morph)))
        mask = (cv2.dilate if morph > 0 else cv2.erode)(mask, kernel)
    kernel = int(choices["blur_kernel"])
    return finish_mask(cv2.GaussianBlur(mask, (kernel, kernel), 0), choices["opacity"], valid)


def finish_mask(mask: np.ndarray, opacity: float, valid: np.ndarray | None = None) -> np.ndarray:
    """The last steps of every blending mask: times `opacity` -> 8 bits -> zero outside
    `valid`. mask: (H, W) float32 in [0, 1]; valid: (H, W) bool / uint8, or None for all.
    Returns (H, W) uint8 0..255."""
    if opacity != 1:
        mask = mask * np.float32(opacity)
    mask = quantize(mask)
    if valid is not None:
        if valid.shape != mask.shape:
            raise ValueError(f"valid must be {mask.shape}, got {valid.shape}")
        mask[~valid.astype(bool)] = 0
    return mask


def blend_from_choices(background: np.ndarray, foreground: np.ndarray, background_landmarks: np.ndarray,
                       choices: dict, *, mesh: np.ndarray | None = None,
                       valid: np.ndarray | None = None) -> Blend:
    """The blend of recorded `choices`, with no randomness: a sample's json["blend"] and
    the same crops, landmarks, mesh and valid map rebuild its image, mask and X-ray bit
    for bit. Arguments as `blend`; raises EmptyMaskError when the mask is empty."""
    size = background.shape[0]
    if background.shape != foreground.shape or background.shape[:2] != (size, size):
        raise ValueError(f"need two equal square crops, got {background.shape} and {foreground.shape}")
    mask_u8 = render_mask(background_landmarks, size, choices, mesh, valid)
    rows, cols = np.flatnonzero(mask_u8.any(1)), np.flatnonzero(mask_u8.any(0))
    if len(rows) == 0:
        raise EmptyMaskError(f"the mask of region {choices['hull']!r} is empty")
    # Outside the mask's box the image is the background: work inside the box only.
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    alpha = mask_u8[box].astype(np.float32)[..., None] / 255.0
    bg = background[box].astype(np.float32)
    corrected = transfer_color(choices["color_transfer"], foreground[box].astype(np.float32), bg, alpha[..., 0])
    image = background.copy()
    image[box] = np.round(bg + alpha * (corrected - bg)).astype(np.uint8)
    hull = quantize(hull_mask(background_landmarks, size))
    return Blend(image=image, mask=mask_u8, xray=xray_u8(mask_u8), hull=hull, choices=dict(choices))


def blend(background: np.ndarray, foreground: np.ndarray, background_landmarks: np.ndarray,
          rng: np.random.Generator, params: BlendParams = BlendParams(), *,
          mesh: np.ndarray | None = None, valid: np.ndarray | None = None,
          attempts: int = 8) -> Blend:
    """Blend `foreground` into `background` along a random mask from the background's face.

    background, foreground: (S, S, 3) uint8 RGB aligned crops.
    background_landmarks: (68, 2) float32, crop px of the background.
    mesh: (478, 2) float32 face mesh of the background, crop px, or None (then the
      `forehead` region is never drawn).
    valid: (S, S) bool / uint8, background pixels that came from inside its source frame
      (`landmarks.align.frame_valid_map`), or None for all; the mask is zero elsewhere.
    Choices are drawn from `rng` alone (`blending.recipe.draw_choices`); a draw whose mask
    is empty is drawn again, up to `attempts` draws, then EmptyMaskError.
    """
    for _ in range(attempts):
        choices = draw_choices(rng, params, background.shape[0], mesh is not None)
        try:
            return blend_from_choices(background, foreground, background_landmarks, choices,
                                      mesh=mesh, valid=valid)
        except EmptyMaskError:
            continue
    raise EmptyMaskError(f"{attempts} draws all gave an empty mask")
