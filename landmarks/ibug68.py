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


def _mirror_pairs(pairs: tuple[tuple[int, int], ...], count: int) -> np.ndarray:
    """(count,) int permutation swapping each pair; points in no pair map to themselves."""
    flip = np.arange(count)
    for a, b in pairs:
        flip[a], flip[b] = b, a
    return flip


IBUG68_FLIP: np.ndarray = _mirror_pairs(
    tuple((i, 16 - i) for i in range(8))                        # jaw
    + tuple((17 + i, 26 - i) for i in range(5))                 # brows
    + ((31, 35), (32, 34))                                      # nostrils
    + ((36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46))  # eyes
    + ((48, 54), (49, 53), (50, 52), (55, 59), (56, 58))        # outer lips
    + ((60, 64), (61, 63), (65, 67)),                           # inner lips
    68)
"""(68,) int: `IBUG68_FLIP[i]` is the iBUG point that point i becomes in a horizontally
mirrored face (the subject's right and left swap). An involution; the nose bridge (27-30),
the nostril, lip and chin centres (8, 33, 51, 57, 62, 66) map to themselves."""

# Face-mesh vertices on the face's vertical midline; they mirror onto themselves.
_MESH_MIDLINE = (0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
                 94, 151, 152, 164, 168, 175, 195, 197, 199, 200)
# Iris centre and its 4 contour points, subject's right (468-472) and left (473-477).
_MESH_IRIS_PAIRS = ((468, 473), (469, 476), (470, 475), (471, 474), (472, 477))


def _mesh_flip() -> np.ndarray:
    """The mesh topology numbers mirrored vertices in the same order: the 220 vertices
    below 248 off the midline pair, in increasing order, with 248-467; the irises pair as
    listed. Derived by matching the 3-D mesh of each of 187 real photos to the mirrored
    mesh of the mirrored photo (optimal assignment) and voting: every vertex's match
    agreed with this rule on >= 167 of the 187 faces (the rest are near-ties)."""
    right = [i for i in range(248) if i not in _MESH_MIDLINE]
    return _mirror_pairs(tuple(zip(right, range(248, 468))) + _MESH_IRIS_PAIRS, 478)


MESH_FLIP: np.ndarray = _mesh_flip()
"""(478,) int: `MESH_FLIP[i]` is the face-mesh vertex that vertex i becomes in a
horizontally mirrored face. An involution with 28 fixed (midline) vertices."""

MESH_FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
"""Face-mesh vertices of the face oval (MediaPipe's FACEMESH_FACE_OVAL), from the top of
the forehead (10) clockwise on the image; unlike the iBUG jaw line it closes over the
forehead."""


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
