"""Face detection and 478-point face mesh with MediaPipe, reduced to iBUG-68.

Two stages per frame: the full-range BlazeFace detector finds faces of any size; the face
mesh then runs on a square crop around each detection (twice the box side, resampled to
`MESH_INPUT` px), so small faces get the same landmark quality as large ones. Landmarks
are checked against the detector's own eye keypoints, which rejects most of MediaPipe's
false positives on non-faces (apples, drawings, animals).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from landmarks.frames import quiet_native_logs
from landmarks.ibug68 import LEFT_EYE, RIGHT_EYE, mesh_to_ibug68

MESH_INPUT = 256
"""Side in px of the square crop the face mesh runs on."""
_DETECTOR_FLOOR = 0.2
"""MediaPipe's own threshold; detections between it and `min_score` are reported as rejected."""
_RETRY_PADDING = 0.5
"""When nothing is found, detect again with this fraction of the longer side added as a black
border on every side: BlazeFace misses faces that fill the whole image (tight face crops)."""
DETECT_MAX_SIDE = 1920
"""Frames with a longer side are shrunk to it for the face detector only (BlazeFace
full-range sees a 192 px square, so nothing it could find is lost); the face mesh still
runs on a crop of the full frame. This bounds the detector's memory (a padded 19,000 px
frame crashed MediaPipe) and time."""
@dataclass(frozen=True)
class DetectedFace:
    """One accepted face.

    box: (4,) float32 x0, y0, x1, y1 of the detector box, frame px.
    score: detector confidence in [0, 1].
    landmarks: (68, 2) float32 iBUG points, frame px.
    mesh: (478, 2) float32 MediaPipe face-mesh points (refined), frame px.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    mesh: np.ndarray

    @property
    def size(self) -> float:
        """Longer side of the detector box, px."""
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


@dataclass(frozen=True)
class RejectedFace:
    """A detection that was dropped; `reason` is a short snake_case code."""

    box: np.ndarray
    score: float
    reason: str
    detail: str


@dataclass(frozen=True)
class DetectorConfig:
    """min_score: detector confidence below which a face is dropped.
    min_size: shorter faces (longer box side, frame px) are dropped.
    all_faces: keep every face instead of only the largest.
    max_eye_error: largest allowed distance between mesh and detector eye centres, as a
      fraction of the box side; larger means the mesh did not land on a face.
    """

    min_score: float = 0.5
    min_size: float = 64.0
    all_faces: bool = False
    max_eye_error: float = 0.25


def _detector_input(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """(frame for the detector, its scale relative to `rgb`): `rgb` itself, or a copy whose
    longer side is DETECT_MAX_SIDE."""
    longest = max(rgb.shape[:2])
    if longest <= DETECT_MAX_SIDE:
        return rgb, 1.0
    scale = DETECT_MAX_SIDE / longest
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


class FaceDetector:
    """Owns the MediaPipe graphs; create one per worker process (loading takes ~100 ms)."""

    def __init__(self, config: DetectorConfig = DetectorConfig()):
        import mediapipe as mp  # imported here: heavy, and only workers need it

        self.config = config
        with quiet_native_logs():  # graph set-up and the first run of each graph log at WARNING
            self._detector = mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=min(_DETECTOR_FLOOR, config.min_score))
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                min_detection_confidence=0.3)
            blank = np.zeros((MESH_INPUT, MESH_INPUT, 3), np.uint8)
            self._detector.process(blank)
            self._mesh.process(blank)
        self._mesh_quiet = False  # the mesh logs once more, at its first face: quiet until then

    def close(self) -> None:
        self._detector.close()
        self._mesh.close()

    def detect(self, rgb: np.ndarray) -> tuple[list[DetectedFace], list[RejectedFace]]:
        """rgb: (H, W, 3) uint8. Returns accepted faces, largest first, and rejected ones."""
        small, scale = _detector_input(rgb)
        candidates = self._run_detector(small, padding=0)
        if not candidates:
            candidates = self._run_detector(small, padding=int(_RETRY_PADDING * max(small.shape[:2])))
        if scale != 1.0:
            candidates = [(box / scale, score, eyes / scale) for box, score, eyes in candidates]
        candidates.sort(key=lambda c: -max(c[0][2] - c[0][0], c[0][3] - c[0][1]))
        if not self.config.all_faces:
            candidates = candidates[:1]

        accepted, rejected = [], []
        for box, score, eye_keypoints in candidates:
            outcome = self._check_and_mesh(rgb, box, score, eye_keypoints)
            (accepted if isinstance(outcome, DetectedFace) else rejected).append(outcome)
        return accepted, rejected

    def _run_detector(self, rgb: np.ndarray, padding: int) -> list[tuple[np.ndarray, float, np.ndarray]]:
        """(box, score, eye keypoints) per detection, frame px of the unpadded `rgb`."""
        if padding:
            rgb = cv2.copyMakeBorder(rgb, padding, padding, padding, padding, cv2.BORDER_CONSTANT)
        height, width = rgb.shape[:2]
        candidates = []
        for detection in self._detector.process(rgb).detections or []:
            rel = detection.location_data.relative_bounding_box
            box = np.array([rel.xmin * width, rel.ymin * height,
                            (rel.xmin + rel.width) * width, (rel.ymin + rel.height) * height],
                           np.float32) - padding
            keypoints = np.array([(k.x * width, k.y * height)
                                  for k in detection.location_data.relative_keypoints[:2]],
                                 np.float32) - padding  # detector's right eye, left eye
            candidates.append((box, float(detection.score[0]), keypoints))
        return candidates

    def _check_and_mesh(self, rgb, box, score, eye_keypoints) -> DetectedFace | RejectedFace:
        side = float(max(box[2] - box[0], box[3] - box[1]))
        if score < self.config.min_score:
            return RejectedFace(box, score, "low_score", f"score {score:.3f} < {self.config.min_score}")
        if side < self.config.min_size:
            return RejectedFace(box, score, "face_too_small", f"{side:.0f}px < {self.config.min_size:.0f}px")
        mesh = self._mesh_points(rgb, box)
        if mesh is None:
            return RejectedFace(box, score, "no_landmarks", "face mesh found no face in the box")
        landmarks = mesh_to_ibug68(mesh)
        eyes = np.stack([landmarks[RIGHT_EYE].mean(0), landmarks[LEFT_EYE].mean(0)])
        eye_error = float(np.linalg.norm(eyes - eye_keypoints, axis=1).max()) / side
        if eye_error > self.config.max_eye_error:
            return RejectedFace(box, score, "implausible_landmarks",
                                f"mesh eyes {eye_error:.2f} box sides from detector eyes")
        return DetectedFace(box, score, landmarks, mesh)

    def _mesh_points(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """(478, 2) float32 face-mesh points (frame px), the mesh run on a square crop around `box`."""
        centre = (box[:2] + box[2:]) / 2
        side = 2.0 * float(max(box[2] - box[0], box[3] - box[1]))
        scale = MESH_INPUT / side
        to_crop = np.array([[scale, 0, MESH_INPUT / 2 - scale * centre[0]],
                            [0, scale, MESH_INPUT / 2 - scale * centre[1]]], np.float32)
        crop = cv2.warpAffine(rgb, to_crop, (MESH_INPUT, MESH_INPUT), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        if self._mesh_quiet:
            result = self._mesh.process(crop)
        else:
            with quiet_native_logs():
                result = self._mesh.process(crop)
            self._mesh_quiet = bool(result.multi_face_landmarks)
        if not result.multi_face_landmarks:
            return None
        points = result.multi_face_landmarks[0].landmark
        mesh_crop = np.array([(p.x, p.y) for p in points], np.float32) * MESH_INPUT
        return ((mesh_crop - to_crop[:, 2]) / scale).astype(np.float32)
