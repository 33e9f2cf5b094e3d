"""Similarity alignment of a face to a canonical template, and the S x S crop around it."""
from __future__ import annotations

import cv2
import numpy as np

from landmarks.ibug68 import five_points

# Canonical five points (right eye, left eye, nose tip, right and left mouth corner) in
# "face-box units": the box of the 68 iBUG points of a frontal face is [0, 1] x [0, 1].
# Only the rotation of the fit to it is used; scale and position come from the face box.
# Mean over 67 frontal single-person photos of the project's test corpus, symmetrised.
CANONICAL_FIVE = np.array([
    [0.274, 0.165], [0.726, 0.165], [0.500, 0.420], [0.294, 0.638], [0.706, 0.638],
], np.float32)


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking src to dst.

    src, dst: (N, 2) float points, N >= 2. Returns the (2, 3) float64 affine matrix.
    Closed form of Umeyama (1991) without reflection.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    # Complex-number form: dst_c ~ a * src_c with a = scale * exp(i * angle).
    s = src_c[:, 0] + 1j * src_c[:, 1]
    d = dst_c[:, 0] + 1j * dst_c[:, 1]
    denominator = float(np.vdot(s, s).real)
    if denominator == 0.0:
        raise ValueError("source points are all identical")
    a = np.vdot(s, d) / denominator
    rotation_scale = np.array([[a.real, -a.imag], [a.imag, a.real]])
    translation = dst_mean - rotation_scale @ src_mean
    return np.hstack([rotation_scale, translation[:, None]])


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """matrix: (2, 3); points: (N, 2). Returns (N, 2) float32 transformed points."""
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def crop_matrix(landmarks: np.ndarray, size: int, margin: float) -> np.ndarray:
    """Frame-to-crop (2, 3) matrix: rotated upright by a similarity fit of the five
    points to the canonical template, then scaled and shifted so the landmarks' box, made
    square and enlarged `margin` times, fills the `size` x `size` crop."""
    upright = fit_similarity(five_points(landmarks), CANONICAL_FIVE)
    points = apply_affine(upright, landmarks)
    low, high = points.min(0), points.max(0)
    scale = size / (margin * float((high - low).max()))
    matrix = upright * scale
    matrix[:, 2] += size / 2 - scale * (low + high) / 2
    return matrix


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """(2, 3) matrix of `outer` applied after `inner` (both (2, 3) affine)."""
    return outer[:, :2] @ inner + np.hstack([np.zeros((2, 2)), outer[:, 2:]])


def warp_crop(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The `size` x `size` crop of `image` ((H, W) or (H, W, C) uint8) under the (2, 3)
    image-to-crop `matrix`: bilinear, pixels from outside the image black."""
    return cv2.warpAffine(image, np.asarray(matrix, np.float64), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)


def align_face(rgb: np.ndarray, landmarks: np.ndarray, size: int = 256,
               margin: float = 1.3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop an aligned face.

    rgb: (H, W, 3) uint8 frame; landmarks: (68, 2) iBUG points, frame px.
    size: crop side S, px. margin: crop side / face-box side (1.3 = 30 % context), where
    the face box is the square around the upright landmarks.
    Returns crop (S, S, 3) uint8, landmarks (68, 2) float32 in crop px, and the (2, 3)
    frame-to-crop matrix. Pixels outside the frame are black.

    Cutting a recipe crop from a stored, more generous crop is the same call on the stored
    crop and its landmarks (the alignment is equivariant under similarity transforms); the
    frame-to-recipe matrix is then `compose_affine(returned, stored matrix)`.
    """
    if margin <= 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    matrix = crop_matrix(landmarks, size, margin)
    return warp_crop(rgb, matrix, size), apply_affine(matrix, landmarks), matrix


def align_detected(rgb: np.ndarray, landmarks: np.ndarray, mesh: np.ndarray, size: int,
                   margin: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`align_face` that also carries the face mesh into the crop.

    mesh: (478, 2) float, frame px. Returns crop (S, S, 3) uint8, landmarks (68, 2) and mesh
    (478, 2) float32 in crop px, and the (2, 3) frame-to-crop matrix.
    """
    crop, crop_landmarks, matrix = align_face(rgb, landmarks, size, margin)
    return crop, crop_landmarks, apply_affine(matrix, mesh), matrix


def frame_valid_map(matrix: np.ndarray, frame_size: tuple[int, int], size: int) -> np.ndarray:
    """Which pixels of an S x S crop came from inside the source frame.

    matrix: (2, 3) frame-to-crop affine (as `align_face` returns); frame_size: (width,
    height) of the frame, px; size: crop side S, px. A crop pixel is valid when the frame
    point it samples lies within the frame's outer pixel centres, [0, W-1] x [0, H-1]:
    `align_face`'s bilinear crop then reads only frame pixels there, never its black
    border. Returns (S, S) bool. O(S^2), independent of the frame size.
    """
    width, height = frame_size
    to_frame = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float64)
    x, y = (corners @ to_frame[:, :2].T + to_frame[:, 2]).T
    if (x >= 0).all() and (x <= width - 1).all() and (y >= 0).all() and (y <= height - 1).all():
        return np.ones((size, size), bool)      # the corners are inside, so is the whole (convex) crop
    axis = np.arange(size, dtype=np.float64)
    x = to_frame[0, 0] * axis[None, :] + to_frame[0, 1] * axis[:, None] + to_frame[0, 2]
    y = to_frame[1, 0] * axis[None, :] + to_frame[1, 1] * axis[:, None] + to_frame[1, 2]
    return (x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1)
