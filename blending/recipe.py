"""Blend recipes: the ranges of a blend's random choices, and drawing one set of choices.

A drawn set of choices (`draw_choices`) is a JSON-ready dict; `blending.bi.blend_from_choices`
turns it into pixels with no randomness, so a sample regenerates exactly from the choices
recorded in its json. Keys:

    hull          region the mask starts from (`blending.regions.REGIONS`)
    deform_std    std of the control-point offsets, fraction of the crop side
    grid_targets  (grid*grid, 2) where each control point of the deformation moves, crop px
    morph_kernel  signed ellipse kernel side, px: < 0 erodes, > 0 dilates, 0 leaves the region
    blur_kernel   odd Gaussian kernel side, px
    opacity       the mask's maximum, in (0, 1]
    color_transfer  colour correction of the foreground (`blending.color.COLOR_TRANSFERS`)
    params        the recipe the choices were drawn from (for the record only)

A choice whose range is a single value is recorded without consuming the generator, so
the `paper` recipe draws exactly what the single-recipe blend drew before recipes existed:
the grid offsets, then the blur kernel.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from blending.color import COLOR_TRANSFERS
from blending.deform import grid_for
from blending.regions import MESH_REGIONS, REGIONS


@dataclass(frozen=True)
class BlendParams:
    """Ranges of the random choices of one blend. The field defaults are the `paper` recipe.

    deform_std: std of the control-point offsets of the grid, fraction of crop side; the
      low end of a uniform range when `deform_std_max` is set, else fixed.
    deform_std_max: high end of that range, or None.
    blur_min, blur_max: odd Gaussian kernel sizes (px), drawn uniformly among the odd
      sizes in [blur_min, blur_max].
    color_transfer: 'rgb_mean' (paper), 'reinhard' (L*a*b* mean and std) or 'none'.
    grid: control points per side of the deformation grid.
    hulls: (region, weight) pairs; a region is drawn with probability proportional to its
      weight. Without a face mesh, `forehead` is never drawn: its weight goes to `full`.
    erode_max, dilate_max: largest erosion / dilation kernel side, fraction of crop side;
      the signed kernel side is drawn uniformly among the integers in
      [-round(erode_max * S), round(dilate_max * S)].
    opacity_min: the mask is scaled by an opacity drawn uniformly in [opacity_min, 1].
    """

    deform_std: float = 0.03
    deform_std_max: float | None = None
    blur_min: int = 5
    blur_max: int = 25
    color_transfer: str = "rgb_mean"
    grid: int = 4
    hulls: tuple[tuple[str, float], ...] = (("full", 1.0),)
    erode_max: float = 0.0
    dilate_max: float = 0.0
    opacity_min: float = 1.0

    def __post_init__(self):
        if self.blur_min < 1 or self.blur_max < self.blur_min or self.blur_min % 2 == 0 or self.blur_max % 2 == 0:
            raise ValueError(f"blur kernel sizes must be odd with 1 <= min <= max, got {self.blur_min}..{self.blur_max}")
        if self.deform_std < 0 or (self.deform_std_max is not None and self.deform_std_max < self.deform_std):
            raise ValueError(f"need 0 <= deform_std <= deform_std_max, got {self.deform_std}, {self.deform_std_max}")
        if self.color_transfer not in COLOR_TRANSFERS:
            raise ValueError(f"color_transfer must be one of {COLOR_TRANSFERS}, got {self.color_transfer!r}")
        if not self.hulls or any(r not in REGIONS or w <= 0 for r, w in self.hulls):
            raise ValueError(f"hulls must be (region, weight > 0) pairs with regions from {REGIONS}, got {self.hulls}")
        if not (0 <= self.erode_max < 0.5 and 0 <= self.dilate_max < 0.5):
            raise ValueError(f"erode_max and dilate_max must be in [0, 0.5), got {self.erode_max}, {self.dilate_max}")
        if not 0 < self.opacity_min <= 1:
            raise ValueError(f"opacity_min must be in (0, 1], got {self.opacity_min}")


RECIPES: dict[str, BlendParams] = {
    "paper": BlendParams(),
    "default": BlendParams(
        deform_std=0.01, deform_std_max=0.12, blur_min=5, blur_max=25,
        hulls=(("full", 0.3), ("inner", 0.2), ("lower", 0.2), ("forehead", 0.3)),
        erode_max=0.04, dilate_max=0.02, opacity_min=0.6),
}
"""Named recipes. `paper`: the Face X-ray paper's recipe (Sec. 3.2), full 68-point hull,
fixed deformation, blur, mean colour shift. `default`: the variety of the reference
generators (README, "Blend recipes"), the region, deformation strength, erosion /
dilation and opacity drawn per blend."""


def recipe(name: str) -> BlendParams:
    """The named recipe (a key of RECIPES)."""
    if name not in RECIPES:
        raise ValueError(f"unknown blend recipe {name!r}; choose from {', '.join(RECIPES)}")
    return RECIPES[name]


def _uniform(rng: np.random.Generator, low: float, high: float, decimals: int) -> float:
    """Uniform in [low, high], rounded; `low` itself, without a draw, when low == high."""
    return low if low == high else round(float(rng.uniform(low, high)), decimals)


def draw_region(rng: np.random.Generator, hulls: tuple[tuple[str, float], ...], has_mesh: bool) -> str:
    """A region drawn by weight. Without a mesh, the weight of a region that needs one goes
    to `full` (the 68-point hull it extends), so the mix of mask sizes stays close."""
    weights: dict[str, float] = {}
    for region, weight in hulls:
        region = region if has_mesh or region not in MESH_REGIONS else "full"
        weights[region] = weights.get(region, 0.0) + weight
    if len(weights) == 1:
        return next(iter(weights))
    p = np.array(list(weights.values()), np.float64)
    return list(weights)[int(rng.choice(len(p), p=p / p.sum()))]


def draw_choices(rng: np.random.Generator, params: BlendParams, size: int, has_mesh: bool) -> dict:
    """One blend's random choices (module docstring), from `rng` alone.

    size: crop side S, px. has_mesh: whether a 478-point face mesh is available; without
    one, regions that need it are never drawn (`full` takes their weight).
    """
    hull = draw_region(rng, params.hulls, has_mesh)
    deform_std = _uniform(rng, params.deform_std, params.deform_std_max or params.deform_std, 4)
    targets = grid_for(size, params.grid).random_targets(rng, deform_std * size)
    erode, dilate = round(params.erode_max * size), round(params.dilate_max * size)
    morph = 0 if erode == dilate == 0 else int(rng.integers(-erode, dilate + 1))
    kernel = int(rng.choice(np.arange(params.blur_min, params.blur_max + 1, 2)))
    opacity = _uniform(rng, params.opacity_min, 1.0, 3)
    return {"hull": hull, "deform_std": deform_std, "grid_targets": np.round(targets, 3).tolist(),
            "morph_kernel": morph, "blur_kernel": kernel, "opacity": opacity,
            "color_transfer": params.color_transfer, "params": asdict(params)}
