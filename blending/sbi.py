"""Self-blended images (SBI; Shiohara & Yamasaki, CVPR 2022, Sec. 3): a face blended with
an altered copy of itself, so the only forgery cues are blending boundaries and source-target
statistical inconsistencies.

    copies  source-target generator: one copy of the face is altered in colour (RGB shift,
            hue / saturation / value, brightness / contrast) and in frequency (down- then
            up-sampling, or sharpening); `swap` says which copy is the source (false: the
            altered copy is the source, the input the target; true: the other way round)
    source  shifted and scaled about the crop centre (`cv2.warpAffine`)
    mask    outline of the region hull (`forehead`: 68 points + mesh face oval, else the
            68-point hull) moved with the source and deformed by one forward piecewise-
            affine map (the source's affine map plus random grid offsets), filled ->
            erosion / dilation (square) -> Gaussian blur -> blending ratio r -> 8 bits ->
            zero outside `valid` (`render_sbi_mask`)
    image   I_SB = M * source + (1 - M) * target
    X-ray   4 M (1 - M) of the stored mask; hull: the full 68-point hull

A drawn set of choices (`draw_sbi_choices`) is a JSON-ready dict; `self_blend_from_choices`
turns it into pixels with no randomness. Keys:

    swap               bool: the input is the source and the altered copy the target
    rgb_shift          [R, G, B] int levels added to the altered copy ([0, 0, 0]: not applied)
    hsv_shift          [H, S, V] int levels of OpenCV's 8-bit HSV (hue wraps at 180)
    brightness         offset, fraction of 255;  contrast  gain - 1
    frequency          'downscale' or 'sharpen'
    downscale_factor   int side divisor (None when sharpening)
    sharpen_alpha, sharpen_lightness   floats (None when down-sampling)
    shift              [dx, dy] px the source moves;  scale  its scale about the crop centre
    hull               region the mask starts from (`blending.regions.REGIONS`)
    deform_std         std of the grid offsets, fraction of the crop side
    grid_targets       (grid*grid, 2) crop px where each control point of the mask goes
    morph_kernel       signed square side, px: < 0 erodes, > 0 dilates
    blur_kernel        odd Gaussian kernel side, px
    opacity            the blending ratio r, the mask's maximum
    params             the `SbiParams` drawn from (for the record only)
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import cv2
import numpy as np

from blending.alter import brightness_contrast, down_up_sample, sharpen, shift_hsv, shift_rgb
from blending.bi import Blend, EmptyMaskError, finish_mask
from blending.deform import grid_for
from blending.masks import hull_mask, quantize, xray_u8
from blending.recipe import draw_region
from blending.regions import REGIONS, region_points

__all__ = ["SbiParams", "altered_copy", "draw_sbi_choices", "render_sbi_mask", "self_blend", "self_blend_from_choices",
           "self_blend_target"]


@dataclass(frozen=True)
class SbiParams:
    """Ranges of the random choices of one self-blend. Defaults: the SBI paper's recipe as
    its reference code sets it (README, "Self-blended images (SBI)").

    swap_p: probability that the input is the source and the altered copy the target.
    rgb_shift_p, rgb_shift: probability of an RGB shift; each channel's shift is an integer
      uniform in [-rgb_shift, rgb_shift] levels.
    hsv_shift: (hue, saturation, value) largest shift, OpenCV 8-bit HSV levels; each is an
      integer uniform in [-x, x].
    brightness, contrast: offset (fraction of 255) and gain - 1, each uniform in [-x, x].
    downscale_p: probability of down- then up-sampling (else sharpening); the factor is
      drawn uniformly from downscale_factors.
    sharpen_alpha, sharpen_lightness: (low, high) uniform ranges of the sharpening filter.
    shift_x, shift_y: largest shift of the source, fraction of the crop side, uniform in [-x, x].
    scale_min: the source's scale is uniform in [scale_min, 1 / scale_min].
    hulls: (region, weight) pairs as `BlendParams.hulls`; without a mesh, `forehead`'s
      weight goes to `full`.
    grid, deform_std: control points per side of the mask deformation, and the std of
      their offsets (fraction of crop side).
    erode_max, dilate_max: largest erosion / dilation square side, fraction of crop side.
    blur_min, blur_max: Gaussian kernel side range, fraction of crop side (odd px in it).
    blend_ratios: the blending ratio r is drawn uniformly from this list (repeats weigh).
    """

    swap_p: float = 0.5
    rgb_shift_p: float = 0.3
    rgb_shift: int = 20
    hsv_shift: tuple[int, int, int] = (1, 1, 1)
    brightness: float = 0.1
    contrast: float = 0.1
    downscale_p: float = 0.5
    downscale_factors: tuple[int, ...] = (2, 4)
    sharpen_alpha: tuple[float, float] = (0.2, 0.5)
    sharpen_lightness: tuple[float, float] = (0.5, 1.0)
    shift_x: float = 0.03
    shift_y: float = 0.015
    scale_min: float = 0.95
    hulls: tuple[tuple[str, float], ...] = (("forehead", 0.75), ("full", 0.25))
    grid: int = 4
    deform_std: float = 0.01
    erode_max: float = 0.1
    dilate_max: float = 0.02
    blur_min: float = 0.02
    blur_max: float = 0.1
    blend_ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)

    def __post_init__(self):
        if not all(0 <= p <= 1 for p in (self.swap_p, self.rgb_shift_p, self.downscale_p)):
            raise ValueError("swap_p, rgb_shift_p and downscale_p must be in [0, 1]")
        if self.rgb_shift < 0 or len(self.hsv_shift) != 3 or min(self.hsv_shift) < 0:
            raise ValueError(f"need rgb_shift >= 0 and three hsv_shift >= 0, got {self.rgb_shift}, {self.hsv_shift}")
        if not (0 <= self.brightness < 1 and 0 <= self.contrast < 1):
            raise ValueError(f"brightness and contrast must be in [0, 1), got {self.brightness}, {self.contrast}")
        if not self.downscale_factors or min(self.downscale_factors) < 1:
            raise ValueError(f"downscale_factors must be integers >= 1, got {self.downscale_factors}")
        for low, high in (self.sharpen_alpha, self.sharpen_lightness):
            if not 0 <= low <= high:
                raise ValueError(f"sharpen ranges must be 0 <= low <= high, got {self.sharpen_alpha}, "
                                 f"{self.sharpen_lightness}")
        if not (0 <= self.shift_x < 0.5 and 0 <= self.shift_y < 0.5 and 0 < self.scale_min <= 1):
            raise ValueError(f"need shifts in [0, 0.5) and scale_min in (0, 1], got {self.shift_x}, {self.shift_y}, "
                             f"{self.scale_min}")
        if not self.hulls or any(r not in REGIONS or w <= 0 for r, w in self.hulls):
            raise ValueError(f"hulls must be (region, weight > 0) pairs with regions from {REGIONS}, got {self.hulls}")
        if self.grid < 2 or self.deform_std < 0:
            raise ValueError(f"need grid >= 2 and deform_std >= 0, got {self.grid}, {self.deform_std}")
        if not (0 <= self.erode_max < 0.5 and 0 <= self.dilate_max < 0.5):
            raise ValueError(f"erode_max and dilate_max must be in [0, 0.5), got {self.erode_max}, {self.dilate_max}")
        if not 0 < self.blur_min <= self.blur_max < 0.5:
            raise ValueError(f"need 0 < blur_min <= blur_max < 0.5, got {self.blur_min}, {self.blur_max}")
        if not self.blend_ratios or any(not 0 < r <= 1 for r in self.blend_ratios):
            raise ValueError(f"blend_ratios must be in (0, 1], got {self.blend_ratios}")


@lru_cache(maxsize=8)
def _record(params: SbiParams) -> dict:
    """`params` as the JSON-ready dict recorded with each draw (computed once per params)."""
    return asdict(params)


def _odd_kernels(low: float, high: float, size: int) -> np.ndarray:
    """The odd kernel sides (px) in [low * size, high * size], at least one: (K,) int."""
    first, last = max(1, round(low * size)) | 1, round(high * size)
    return np.arange(first, max(first, last - 1 + last % 2) + 1, 2)


def _source_affine(shift: list[float], scale: float, size: int) -> np.ndarray:
    """(2, 3) float64 map from input to source px: scale about the crop centre, then shift."""
    centre = (size - 1) / 2.0
    dx, dy = shift
    return np.array([[scale, 0.0, centre * (1 - scale) + dx], [0.0, scale, centre * (1 - scale) + dy]])


def _outline(polygon: np.ndarray, step: float) -> np.ndarray:
    """A closed polygon's outline with a vertex at least every `step` px: (N, 2) float64."""
    following = np.roll(polygon, -1, 0)
    counts = np.maximum(1, np.ceil(np.linalg.norm(following - polygon, axis=1) / step)).astype(np.int64)
    fraction = (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)) / np.repeat(counts, counts)
    start = np.repeat(polygon, counts, 0)
    return start + fraction[:, None] * (np.repeat(following, counts, 0) - start)


def render_sbi_mask(landmarks: np.ndarray, size: int, choices: dict, mesh: np.ndarray | None = None,
                    valid: np.ndarray | None = None) -> np.ndarray:
    """The mask M of recorded self-blend `choices`, with no randomness: the region hull's
    outline (a vertex every 4 px) moved by the forward piecewise-affine map of
    choices["grid_targets"], filled, eroded / dilated by a square, Gaussian-blurred, then
    `finish_mask` (blending ratio, 8 bits, zero outside `valid`). All of it runs in the
    outline's box widened by what dilation and blur can reach; M is 0 outside it.

    landmarks: (68, 2) float32, crop px; mesh: (478, 2) float32, crop px, or None (needed
    for `forehead`); valid: (S, S) bool / uint8 or None. Returns (S, S) uint8 0..255.
    """
    if valid is not None and valid.shape != (size, size):
        raise ValueError(f"valid must be ({size}, {size}), got {valid.shape}")
    hull = cv2.convexHull(region_points(choices["hull"], landmarks, mesh)).reshape(-1, 2)
    targets = np.asarray(choices["grid_targets"], np.float64)
    outline = grid_for(size, round(len(targets) ** 0.5)).map_points(_outline(hull, 4.0), targets)
    outline = np.clip(np.round(outline), 0, size - 1).astype(np.int32)
    morph, blur = int(choices["morph_kernel"]), int(choices["blur_kernel"])
    reach = max(morph, 0) + blur // 2 + 1
    (left, top), (right, bottom) = np.maximum(outline.min(0) - reach, 0), np.minimum(outline.max(0) + reach + 1, size)
    window = (slice(top, bottom), slice(left, right))
    region = np.zeros((bottom - top, right - left), np.uint8)
    cv2.fillPoly(region, [outline - [left, top]], 1)
    if morph:
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (abs(morph), abs(morph)))
        region = (cv2.dilate if morph > 0 else cv2.erode)(region, kernel)
    soft = cv2.GaussianBlur(region.astype(np.float32), (blur, blur), 0)
    mask = np.zeros((size, size), np.uint8)
    mask[window] = finish_mask(soft, choices["opacity"], None if valid is None else valid[window])
    return mask


def draw_sbi_choices(rng: np.random.Generator, params: SbiParams, size: int, has_mesh: bool) -> dict:
    """One self-blend's random choices (module docstring), from `rng` alone.
    size: crop side S, px. has_mesh: whether the 478-point mesh is given (`forehead`)."""
    swap = bool(rng.random() < params.swap_p)
    rgb = rng.integers(-params.rgb_shift, params.rgb_shift + 1, 3) if rng.random() < params.rgb_shift_p else np.zeros(3)
    hsv = [int(rng.integers(-x, x + 1)) for x in params.hsv_shift]
    brightness = round(float(rng.uniform(-params.brightness, params.brightness)), 4)
    contrast = round(float(rng.uniform(-params.contrast, params.contrast)), 4)
    downscale = bool(rng.random() < params.downscale_p)
    factor = params.downscale_factors[int(rng.integers(len(params.downscale_factors)))] if downscale else None
    alpha = None if downscale else round(float(rng.uniform(*params.sharpen_alpha)), 4)
    lightness = None if downscale else round(float(rng.uniform(*params.sharpen_lightness)), 4)
    shift = [round(float(rng.uniform(-params.shift_x, params.shift_x)) * size, 2),
             round(float(rng.uniform(-params.shift_y, params.shift_y)) * size, 2)]
    scale = round(float(rng.uniform(params.scale_min, 1.0 / params.scale_min)), 4)
    hull = draw_region(rng, params.hulls, has_mesh)
    # The mask moves with the source (affine A), then each control point by a random offset.
    control = grid_for(size, params.grid).control
    affine = _source_affine(shift, scale, size)
    targets = control @ affine[:, :2].T + affine[:, 2] + rng.normal(0.0, params.deform_std * size, control.shape)
    erode, dilate = round(params.erode_max * size), round(params.dilate_max * size)
    morph = 0 if erode == dilate == 0 else int(rng.integers(-erode, dilate + 1))
    kernels = _odd_kernels(params.blur_min, params.blur_max, size)
    kernel = int(kernels[rng.integers(len(kernels))])
    ratio = float(params.blend_ratios[int(rng.integers(len(params.blend_ratios)))])
    return {"swap": swap, "rgb_shift": [int(v) for v in rgb], "hsv_shift": hsv, "brightness": brightness,
            "contrast": contrast, "frequency": "downscale" if downscale else "sharpen",
            "downscale_factor": factor, "sharpen_alpha": alpha, "sharpen_lightness": lightness,
            "shift": shift, "scale": scale, "hull": hull, "deform_std": params.deform_std,
            "grid_targets": np.round(targets, 3).tolist(), "morph_kernel": morph, "blur_kernel": kernel,
            "opacity": ratio, "params": dict(_record(params))}


def altered_copy(image: np.ndarray, choices: dict) -> np.ndarray:
    """The source-target generator's altered copy of `image` ((S, S, 3) uint8 RGB): RGB
    shift, HSV shift, brightness / contrast, then down-up-sampling or sharpening."""
    altered = shift_rgb(image, choices["rgb_shift"]) if any(choices["rgb_shift"]) else image
    altered = shift_hsv(altered, choices["hsv_shift"])
    altered = brightness_contrast(altered, choices["brightness"], choices["contrast"])
    if choices["frequency"] == "downscale":
        return down_up_sample(altered, choices["downscale_factor"])
    return sharpen(altered, choices["sharpen_alpha"], choices["sharpen_lightness"])


def self_blend_target(image: np.ndarray, choices: dict) -> np.ndarray:
    """The target copy of a self-blend: `image` itself, or its altered copy when
    choices["swap"]. Outside the mask the self-blend is this copy exactly; it is the real
    counterpart SBI training pairs with the blend."""
    return altered_copy(image, choices) if choices["swap"] else image


def self_blend_from_choices(image: np.ndarray, landmarks: np.ndarray, choices: dict, *,
                            mesh: np.ndarray | None = None, valid: np.ndarray | None = None) -> Blend:
    """The self-blend of recorded `choices`, with no randomness: a sample's json["blend"]
    and the same crop, landmarks, mesh and valid map rebuild it bit for bit. Arguments as
    `self_blend`; raises EmptyMaskError when the mask is empty."""
    size = image.shape[0]
    if image.shape != (size, size, 3) or image.dtype != np.uint8:
        raise ValueError(f"need a square (S, S, 3) uint8 crop, got {image.shape} {image.dtype}")
    mask_u8 = render_sbi_mask(landmarks, size, choices, mesh, valid)
    rows, cols = np.flatnonzero(mask_u8.any(1)), np.flatnonzero(mask_u8.any(0))
    if len(rows) == 0:
        raise EmptyMaskError(f"the mask of region {choices['hull']!r} is empty")
    altered = altered_copy(image, choices)
    source, target = (image, altered) if choices["swap"] else (altered, image)
    # Outside the mask's box the image is the target: move the source into the box only.
    top, left, height, width = rows[0], cols[0], rows[-1] + 1 - rows[0], cols[-1] + 1 - cols[0]
    affine = _source_affine(choices["shift"], choices["scale"], size) - [[0, 0, left], [0, 0, top]]
    moved = cv2.warpAffine(source, affine, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    box = (slice(top, top + height), slice(left, left + width))
    alpha = mask_u8[box].astype(np.float32) / 255.0
    blended = target.copy()
    # (alpha * source + (1 - alpha) * target) / (1 + 1e-5), rounded: exactly the target where alpha is 0
    blended[box] = cv2.blendLinear(moved, target[box], alpha, 1.0 - alpha)
    hull = quantize(hull_mask(landmarks, size))
    return Blend(image=blended, mask=mask_u8, xray=xray_u8(mask_u8), hull=hull, choices=dict(choices))


def self_blend(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
               params: SbiParams = SbiParams(), *, mesh: np.ndarray | None = None,
               valid: np.ndarray | None = None, attempts: int = 8) -> Blend:
    """Blend a face with an altered copy of itself along a random mask from its landmarks.

    image: (S, S, 3) uint8 RGB aligned crop. landmarks: (68, 2) float32, crop px.
    mesh: (478, 2) float32 face mesh, crop px, or None (then `forehead` is never drawn).
    valid: (S, S) bool / uint8, crop pixels from inside the source frame, or None for all;
      the mask is zero elsewhere.
    Choices are drawn from `rng` alone (`draw_sbi_choices`); a draw whose mask is empty is
    drawn again, up to `attempts` draws, then EmptyMaskError.
    """
    for _ in range(attempts):
        choices = draw_sbi_choices(rng, params, image.shape[0], mesh is not None)
        try:
            return self_blend_from_choices(image, landmarks, choices, mesh=mesh, valid=valid)
        except EmptyMaskError:
            continue
    raise EmptyMaskError(f"{attempts} draws all gave an empty mask")
