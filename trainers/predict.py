"""Scoring videos and images with a trained checkpoint: per-frame and video fake scores
and a picture of the input faces, their predicted X-rays / masks and an overlay."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import warnings
from collections import Counter

import cv2
import numpy as np
import torch
from torch import nn

from landmarks.detect import FaceDetector
from landmarks.frames import DecodeError, read_frames
from trainers.checkpoint import load_checkpoint
from trainers.families import Family, get_family
from trainers.loop import pick_device
from trainers.recipe import CropRecipe, RecipeWarning, crop_face


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


def output_names(paths: list[str]) -> list[str]:
    """A distinct output name per input: its file stem, or, for stems that several inputs
    share (same names in different folders), the stem and a hash of the absolute path."""
    stems = [os.path.splitext(os.path.basename(path))[0] for path in paths]
    counts = Counter(stems)
    return [stem if counts[stem] == 1 else
            f"{stem}-{hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:8]}"
            for stem, path in zip(stems, paths)]


class Predictor:
    """A checkpoint's model with the crop recipe of its training data
    (`trainers.recipe.CropRecipe`) and a face detector with the recipe's thresholds."""

    def __init__(self, checkpoint: str, device: str = "auto"):
        self.checkpoint, self.device = checkpoint, pick_device(device)
        self.family, self.model, state = load_model(checkpoint, self.device)
        self.size = int(state["image_size"])
        if "crop_recipe" in state:
            self.recipe = CropRecipe.from_dict(state["crop_recipe"])
        else:
            warnings.warn(f"{checkpoint} records no crop recipe; cropping with the defaults", RecipeWarning,
                          stacklevel=2)
            self.recipe = CropRecipe()
        self.detector = FaceDetector(self.recipe.detector())

    def close(self) -> None:
        self.detector.close()

    @torch.no_grad()
    def predict(self, path: str, out_dir: str, name: str, frames: int = 32, rows_in_picture: int = 8) -> dict:
        """Score the largest face of `frames` evenly spaced frames of a video (or an image),
        cropped with the recipe. Writes <out_dir>/<name>_scores.json ({path, status,
        frames: [{frame, score}], video_score}) and, when a face was found,
        <out_dir>/<name>_prediction.png (face | predicted map | overlay, up to
        `rows_in_picture` frames). status: 'ok', 'no_face' (video_score None) or
        'unreadable' (with `error`). Returns the scores dict."""
        scored, rows, error = [], [], ""
        try:
            for index, rgb in read_frames(path, frames):
                faces, _ = self.detector.detect(rgb)
                if not faces:
                    continue
                crop = crop_face(rgb, faces[0].landmarks, self.recipe, self.size)
                outputs = self.model(torch.from_numpy(crop).permute(2, 0, 1)[None].to(self.device))
                score = float(self.family.scores(outputs)[0])
                dense = self.family.dense(outputs)
                heat = None if dense is None else cv2.resize(dense[0, 0].cpu().numpy(), (self.size, self.size))
                scored.append({"frame": index, "score": score})
                if len(rows) < rows_in_picture:
                    rows.append((crop, heat, score, index))
        except (DecodeError, OSError, ValueError) as failure:
            error = f"{type(failure).__name__}: {failure}"
        status = "unreadable" if error and not scored else "ok" if scored else "no_face"
        result = {"path": path, "status": status, "checkpoint": self.checkpoint, "family": self.family.name,
                  "crop_recipe": self.recipe.as_dict(), "frames": scored,
                  "video_score": float(np.mean([s["score"] for s in scored])) if scored else None}
        if error:
            result["error"] = error
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, f"{name}_scores.json"), "w") as stream:
            json.dump(result, stream, indent=2)
        if rows:
            cv2.imwrite(os.path.join(out_dir, f"{name}_prediction.png"), cv2.cvtColor(_sheet(rows), cv2.COLOR_RGB2BGR))
        return result


def predict_media(checkpoint: str, paths: list[str], out_dir: str, frames: int = 32, device: str = "auto") -> list[dict]:
    """Score every input (see `Predictor.predict`), each under its own `output_names` name,
    and write <out_dir>/predictions.csv: one row per input (name, path, status,
    video_score, frames scored). Returns the per-input results, in input order."""
    predictor = Predictor(checkpoint, device)
    try:
        results = [predictor.predict(path, out_dir, name, frames) for path, name in zip(paths, output_names(paths))]
    finally:
        predictor.close()
    with open(os.path.join(out_dir, "predictions.csv"), "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["name", "path", "status", "video_score", "frames_scored"])
        for name, result in zip(output_names(paths), results):
            score = "" if result["video_score"] is None else f"{result['video_score']:.6f}"
            writer.writerow([name, result["path"], result["status"], score, len(result["frames"])])
    return results
