"""Real faces with their 478-point face mesh, for the blend-recipe and augmentation tests.

The mesh runs on the aligned crop itself (the face shards store it in crop px as well)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from landmarks.align import align_face, frame_valid_map


@dataclass(frozen=True)
class MeshFace:
    """crop (S, S, 3) uint8 RGB; landmarks (68, 2) and mesh (478, 2) float32 crop px;
    valid (S, S) bool, crop pixels from inside the source photo."""

    crop: np.ndarray
    landmarks: np.ndarray
    mesh: np.ndarray
    valid: np.ndarray


class CropMesh:
    """MediaPipe's face mesh on a crop (static images, with irises: 478 points)."""

    def __init__(self):
        import mediapipe as mp

        self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                     refine_landmarks=True)

    def __call__(self, crop: np.ndarray) -> np.ndarray | None:
        """(478, 2) float32 crop px, or None when no face is found."""
        result = self._mesh.process(crop)
        if not result.multi_face_landmarks:
            return None
        points = result.multi_face_landmarks[0].landmark
        return np.array([(p.x * crop.shape[1], p.y * crop.shape[0]) for p in points], np.float32)

    def close(self) -> None:
        self._mesh.close()


def mesh_faces(paths: list[Path], detector, read_rgb, size: int = 256, margin: float = 1.3) -> list[MeshFace]:
    """The largest face of each photo where the detector and the mesh both find one."""
    mesher = CropMesh()
    faces = []
    for path in paths:
        rgb = read_rgb(path)
        found, _ = detector.detect(rgb)
        if not found:
            continue
        crop, landmarks, matrix = align_face(rgb, found[0].landmarks, size, margin)
        mesh = mesher(crop)
        if mesh is not None:
            faces.append(MeshFace(crop, landmarks, mesh, frame_valid_map(matrix, rgb.shape[1::-1], size)))
    mesher.close()
    return faces
