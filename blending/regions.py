"""Face regions a blending mask starts from: convex hulls of landmark subsets.

| region     | points                                                        |
|------------|---------------------------------------------------------------|
| `full`     | all 68 iBUG points (the Face X-ray paper's hull; `hull.png`)  |
| `inner`    | brows, eyes, nose and mouth (iBUG 17-67): no jaw line          |
| `lower`    | jaw 2-14 and the nose bridge point 29: cheeks, nose, mouth, chin |
| `forehead` | all 68 points and the face-mesh face oval, which closes over the forehead |

`forehead` needs the 478-point face mesh; the others need only the 68 iBUG points.
"""
from __future__ import annotations

import numpy as np

from blending.masks import hull_mask
from landmarks.ibug68 import MESH_FACE_OVAL

REGIONS = ("full", "inner", "lower", "forehead")
MESH_REGIONS = frozenset({"forehead"})
"""Regions that need the face mesh."""

_IBUG_POINTS: dict[str, np.ndarray] = {
    "full": np.arange(68),
    "inner": np.arange(17, 68),
    "lower": np.r_[2:15, 29],
    "forehead": np.arange(68),
}


class MissingMeshError(ValueError):
    """A region that needs the 478-point face mesh was asked for without one."""


def region_points(region: str, landmarks: np.ndarray, mesh: np.ndarray | None = None) -> np.ndarray:
    """The points whose convex hull is `region`.

    landmarks: (68, 2) float32, crop px; mesh: (478, 2) float32, crop px, or None.
    Returns (N, 2) float32, crop px.
    """
    if region not in _IBUG_POINTS:
        raise ValueError(f"unknown region {region!r}; choose from {REGIONS}")
    points = landmarks[_IBUG_POINTS[region]]
    if region in MESH_REGIONS:
        if mesh is None:
            raise MissingMeshError(f"region {region!r} needs the 478-point face mesh")
        points = np.concatenate([points, mesh[list(MESH_FACE_OVAL)]])
    return points.astype(np.float32)


def region_mask(region: str, landmarks: np.ndarray, size: int, mesh: np.ndarray | None = None) -> np.ndarray:
    """Filled convex hull of `region_points`: (size, size) float32 in {0, 1}."""
    return hull_mask(region_points(region, landmarks, mesh), size)
