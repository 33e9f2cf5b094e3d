"""Raw shard samples -> tensors, decoded in DataLoader workers."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from blending.augment import AugmentParams, apply_augment, draw_augment
from blending.postprocess import parse_spec, postprocess
from shards.keys import key_rng, parse_key
from shards.sample import decode_png
from trainers.online import (FaceLibrary, OnlineConfig, check_face_sample, face_folder, online_sample,
                             paired_samples)
from trainers.urls import open_url

IMAGE_MEMBERS = {"img.png": "image", "xray.png": "xray", "mask.png": "mask", "hull.png": "hull"}


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """image (H, W[, C]) -> (size, size[, C]): area filter when shrinking, bilinear when
    enlarging; unchanged when already that size. The one resize of training and scoring."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def video_group(meta: dict) -> str:
    """The video-level group of a sample: the source of its pixels, '<dataset>/<video>'.
    A blend mixes two videos, so it forms a group of its own,
    '<dataset>/<background video>+<foreground video>'; a real or manipulated crop belongs
    to its own video (manipulated videos have their own ids, e.g. 'Deepfakes-004_982').
    No group ever mixes real and fake frames."""
    group = f"{meta.get('dataset', '')}/{meta.get('video', '')}"
    foreground = meta.get("foreground")
    return f"{group}+{foreground['video']}" if foreground else group


@dataclass
class Decoder:
    """Raw samples -> training tensors, in DataLoader workers.

    A sample-shard sample (it has `cls`) is decoded from its PNGs; a face-shard sample (an
    `img.png` and no `cls`) is made into a real sample or a fresh blend by `online` (`trainers.online`),
    which must then be given. `augment` (None for evaluation) is drawn per draw from
    (seed, draw, key), never from the label, and applied alike to real and fake samples;
    `postprocessing` (a `blending.postprocess` spec) degrades the image after it. Output:
    image (3, S, S) uint8; xray / mask / hull (1, S, S) uint8 (the `members` asked for);
    label and method_id int64; key, method, video (`video_group`) and json (the sample's
    metadata with its augmentation choices) str. Raises on corrupt members, which the
    stream records and skips."""

    members: tuple[str, ...]
    size: int
    postprocessing: str = "none"
    seed: int = 0
    augment: AugmentParams | None = None
    online: OnlineConfig | None = None
    opener: Callable = open_url
    _libraries: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        unknown = set(self.members) - set(IMAGE_MEMBERS)
        if unknown:
            raise ValueError(f"unknown members {sorted(unknown)}")
        parse_spec(self.postprocessing)  # fail early on a bad spec

    def library(self, url: str) -> FaceLibrary:
        """The face library of a face shard's folder, loaded once per process."""
        folder = face_folder(url)
        if folder not in self._libraries:
            self._libraries[folder] = FaceLibrary(folder, self.opener, self.online.cached_crops)
        return self._libraries[folder]

    def __call__(self, sample: dict) -> dict | list[dict]:
        draw = tuple(sample.get("__draw__", (0, 0, 0)))
        if "cls" in sample or "img.png" not in sample or self.online is None:      # a sample shard's
            needed = dict.fromkeys(("img.png", *self.members))
            missing = [m for m in ("cls", "json", *needed) if m not in sample]
            if missing:
                raise MissingMembers(f"no {', '.join(missing)}: a shard cut short, or not a sample shard (face "
                                     f"shards go to --train-faces)")
            meta, label = json.loads(sample["json"]), label_of(sample["cls"])
            images = {member: decode_member(member, sample[member]) for member in needed}
            return self._tensors(meta, label, images, draw, str(sample["__key__"]))
        library = self.library(sample["__url__"])
        if sample.get("__skipped__"):
            check_face_sample(sample, library)
            return [{}, {}] if self.online.paired else {}
        if self.online.paired:
            made = paired_samples(sample, library, self.online, self.seed, draw)
        else:
            made = [online_sample(sample, library, self.online, self.seed, draw)]
        out = [self._tensors(m.meta, m.label, {"img.png": m.image, "xray.png": m.xray, "mask.png": m.mask,
                                               "hull.png": m.hull}, draw, m.key) for m in made]
        return out if self.online.paired else out[0]

    def _tensors(self, meta: dict, label: int, images: dict, draw: tuple, key: str) -> dict:
        """Augmented (choices from the draw and the sample's face, never its label),
        post-processed, resized tensors of one sample."""
        if self.augment is not None:
            masks = [m for m in images if m != "img.png"]
            rng = key_rng(self.seed, "augment", *draw, _face_of(key))
            augmented = apply_augment(draw_augment(rng, self.augment), images["img.png"], [images[m] for m in masks])
            images = {"img.png": augmented.image, **dict(zip(masks, augmented.masks, strict=True))}
            meta = meta | {"augment": augmented.choices}
        out = {"label": torch.tensor(label, dtype=torch.int64),
               "method_id": torch.tensor(int(meta.get("method_id", -1)), dtype=torch.int64),
               "key": key, "video": video_group(meta), "method": meta.get("method", ""),
               "json": json.dumps(meta, sort_keys=True, separators=(",", ":"))}
        for member in dict.fromkeys(("img.png", *self.members)):
            image = images[member]
            if member == "img.png" and self.postprocessing != "none":
                image, _ = postprocess(image, self.postprocessing, key_rng(self.seed, "postprocess", key))
            tensor = torch.from_numpy(np.ascontiguousarray(resize_square(image, self.size)))
            out[IMAGE_MEMBERS[member]] = tensor.permute(2, 0, 1) if tensor.ndim == 3 else tensor[None]
        return out


class BadLabel(ValueError):
    """A sample whose `cls` is not 0 (real) or 1 (fake)."""


class MissingMembers(ValueError):
    """A sample without a member that a sample shard's samples all have."""


class BadImage(ValueError):
    """A sample member that decodes, but not to the image a sample shard holds there."""


def decode_member(member: str, data: bytes) -> np.ndarray:
    """A sample's PNG member: `img.png` as (H, W, 3) uint8 RGB, a mask (`xray.png`,
    `mask.png`, `hull.png`) as (H, W) uint8; BadImage for any other kind of image (grey or
    16-bit faces, colour masks), which the stream records by name and skips, as it does a
    PNG that does not decode."""
    image = decode_png(data)
    channels = 3 if member == "img.png" else None
    if image.dtype != np.uint8 or (image.shape[2:] != (channels,) if channels else image.ndim != 2):
        raise BadImage(f"{member} is a {'x'.join(map(str, image.shape))} {image.dtype} image, not "
                       f"{'RGB' if channels else 'grey'} uint8")
    return image


def label_of(cls: bytes) -> int:
    """The label of a sample's `cls` member: 0 or 1, else BadLabel (the stream records the
    sample by name and skips it)."""
    text = cls.decode(errors="replace").strip()
    if text not in ("0", "1"):
        raise BadLabel(f"cls {text!r} is not 0 (real) or 1 (fake)")
    return int(text)


def _face_of(key: str) -> str:
    """The face a sample key was made from (the key itself when it is not one of ours), so
    a real face and its self-blend of one draw get the same augmentation."""
    try:
        return parse_key(key).face_key
    except ValueError:
        return key


def make_decoder(members: tuple[str, ...], size: int, postprocessing: str = "none", seed: int = 0) -> Decoder:
    """A Decoder of sample shards, without augmentation (evaluation, scoring)."""
    return Decoder(members, size, postprocessing, seed)
