"""MediaPipe face-mesh (478 points) to the 68-point iBUG / dlib layout.

Each iBUG point is one mesh vertex, or the mean of two vertices where the iBUG point falls
between them. Indices below are iBUG numbers (0-based); "right"/"left" are the subject's.

| iBUG  | part                  | mesh vertices                                         |
|-------|-----------------------|-------------------------------------------------------|
| 0-16  | jaw, subject's right ear -> chin (8) -> left ear | 127, 234, 93, 132+58, 58+172, 136, 150, 176, 152, 400, 379, 365, 397+288, 361, 323, 454, 356 |
| 17-21 | right brow, outer -> inner | 70, 63, 105, 66, 107                             |
| 22-26 | left brow, inner -> outer  | 336, 296, 334, 293, 300                          |
| 27-30 | nose bridge, top -> tip    | 168+6, 197+195, 5, 4                             |
| 31-35 | nostrils, right -> left    | 75, 97, 2, 326, 305                              |
| 36-41 | right eye, outer corner clockwise | 33, 160, 158, 133, 153, 144               |
| 42-47 | left eye, inner corner clockwise  | 362, 385, 387, 263, 373, 380              |
| 48-59 | outer lips, right corner clockwise | 61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91 |
| 60-67 | inner lips, right corner clockwise | 78, 81, 13, 311, 308, 402, 14, 178       |
"""
from __future__ import annotations

import numpy as np

_MESH_VERTICES: tuple[tuple[int, ...], ...] = (
    # jaw 0-16
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,),
    (400,), (379,), (365,), (397, 288), (361,), (323,), (454,), (356,),
    # brows 17-26
    (70,), (63,), (105,), (66,), (107,), (336,), (296,), (334,), (293,), (300,),
    # nose 27-35
    (168, 6), (197, 195), (5,), (4,), (75,), (97,), (2,), (326,), (305,),
    # eyes 36-47
    (33,), (160,), (158,), (133,), (153,), (144,), (362,), (385,), (387,), (263,), (373,), (380,),
    # outer lips 48-59
    (61,), (40,), (37,), (0,), (267,), (270,), (291,), (321,), (314,), (17,), (84,), (91,),
    # inner lips 60-67
    (78,), (81,), (13,), (311,), (308,), (402,), (14,), (178,),
)


def _averaging_matrix() -> np.ndarray:
    weights = np.zeros((68, 478), np.float32)
    for row, vertices in enumerate(_MESH_VERTICES):
        weights[row, list(vertices)] = 1.0 / len(vertices)
    return weights


MESH_TO_IBUG68: np.ndarray = _averaging_matrix()
"""(68, 478) float32; `MESH_TO_IBUG68 @ mesh_xy` gives the 68 iBUG points."""

JAW = slice(0, 17)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
NOSE_TIP = 30
MOUTH_RIGHT, MOUTH_LEFT = 48, 54
OUTER_LIPS = slice(48, 60)


def mesh_to_ibug68(mesh_xy: np.ndarray) -> np.ndarray:
    """Map face-mesh points to iBUG-68.

    mesh_xy: (478, 2) float, any pixel frame. Returns (68, 2) float32 in the same frame.
    """
    if mesh_xy.shape != (478, 2):
        raise ValueError(f"expected (478, 2) mesh points, got {mesh_xy.shape}")
    return MESH_TO_IBUG68 @ mesh_xy.astype(np.float32)


def five_points(ibug: np.ndarray) -> np.ndarray:
    """(68, 2) iBUG points -> (5, 2) float32: right eye centre, left eye centre, nose tip,
    right mouth corner, left mouth corner (subject's sides)."""
    return np.stack([
        ibug[RIGHT_EYE].mean(0), ibug[LEFT_EYE].mean(0), ibug[NOSE_TIP],
        ibug[MOUTH_RIGHT], ibug[MOUTH_LEFT],
    ]).astype(np.float32)
