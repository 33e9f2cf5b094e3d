"""Scoring videos and images with a trained checkpoint: per-frame and video fake scores
and a picture of the input faces, their predicted X-rays / masks and an overlay."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import torch
from torch import nn

from landmarks.align import align_face
from landmarks.detect import FaceDetector
from landmarks.frames import read_frames
from trainers.checkpoint import load_checkpoint
from trainers.families import Family, get_family
from trainers.loop import pick_device


def load_model(checkpoint_path: str, device: torch.device) -> tuple[Family, nn.Module, dict]:
    """(family, model in eval mode on `device`, checkpoint) from a training checkpoint."""
    state = load_checkpoint(checkpoint_path)
    options = dict(state["options"])
    if "pretrained" in options:
        options["pretrained"] = ""  # the checkpoint holds the trained weights
    family = get_family(state["family"], options)
    model = family.build(int(state["image_size"]))
    model.load_state_dict(state["model"])
    return family, model.to(device).eval(), state


def overlay(crop: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """crop (S, S, 3) uint8 RGB, heat (S, S) in [0, 1] -> RGB blend with a JET colour map."""
    colored = cv2.applyColorMap(np.round(heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
    alpha = heat[..., None] * 0.6
    return np.round(crop * (1 - alpha) + colored * alpha).astype(np.uint8)


def _sheet(rows: list[tuple[np.ndarray, np.ndarray | None, float, int]]) -> np.ndarray:
    strips = []
    for crop, heat, score, frame in rows:
        panels = [crop] if heat is None else [crop, np.repeat(np.round(heat * 255).astype(np.uint8)[..., None], 3, 2),
                                              overlay(crop, heat)]
        strip = np.hstack(panels)
        cv2.putText(strip, f"frame {frame}  fake {score:.3f}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 2, cv2.LINE_AA)
        cv2.putText(strip, f"frame {frame}  fake {score:.3f}", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (200, 0, 0), 1, cv2.LINE_AA)
        strips.append(strip)
    return np.vstack(strips)


@torch.no_grad()
def predict_media(checkpoint: str, path: str, out_dir: str, frames: int = 32, margin: float = 1.3,
                  rows_in_picture: int = 8, device: str = "auto") -> dict:
    """Score the largest face of `frames` evenly spaced frames of a video (or an image).

    Writes <out_dir>/<stem>_scores.json ({frames: [{frame, score}], video_score}) and
    <out_dir>/<stem>_prediction.png (face | predicted map | overlay, up to
    `rows_in_picture` frames). Returns the scores dict."""
    torch_device = pick_device(device)
    family, model, state = load_model(checkpoint, torch_device)
    size = int(state["image_size"])
    detector = FaceDetector()
    scored, rows = [], []
    try:
        for index, rgb in read_frames(path, frames):
            faces, _ = detector.detect(rgb)
            if not faces:
                continue
            crop, _, _ = align_face(rgb, faces[0].landmarks, size, margin)
            outputs = model(torch.from_numpy(crop).permute(2, 0, 1)[None].to(torch_device))
            score = float(family.scores(outputs)[0])
            dense = family.dense(outputs)
            heat = None if dense is None else cv2.resize(dense[0, 0].cpu().numpy(), (size, size))
            scored.append({"frame": index, "score": score})
            if len(rows) < rows_in_picture:
                rows.append((crop, heat, score, index))
    finally:
        detector.close()
    if not scored:
        raise ValueError(f"no face found in {path}")
    result = {"path": path, "checkpoint": checkpoint, "family": family.name, "frames": scored,
              "video_score": float(np.mean([s["score"] for s in scored]))}
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.splitext(os.path.basename(path))[0]
    with open(os.path.join(out_dir, f"{stem}_scores.json"), "w") as stream:
        json.dump(result, stream, indent=2)
    cv2.imwrite(os.path.join(out_dir, f"{stem}_prediction.png"), cv2.cvtColor(_sheet(rows), cv2.COLOR_RGB2BGR))
    return result
