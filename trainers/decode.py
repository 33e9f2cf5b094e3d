"""Raw shard samples -> tensors, decoded in DataLoader workers."""
from __future__ import annotations

import json
from collections.abc import Callable

import cv2
import numpy as np
import torch

from blending.postprocess import parse_spec, postprocess
from shards.keys import key_rng
from shards.sample import decode_png

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


def make_decoder(members: tuple[str, ...], size: int, postprocessing: str = "none",
                 seed: int = 0) -> Callable[[dict], dict]:
    """Decoder of the given image `members` (of IMAGE_MEMBERS), resized to size x size.

    postprocessing: a `blending.postprocess` spec ('none', 'mix', 'jpeg:70', ...) applied
    to the image before resizing (robustness training / testing); each sample's random
    draw is seeded from `seed` and its key.
    Returns dict: image (3, S, S) uint8; xray / mask / hull (1, S, S) uint8 (those asked
    for); label int64 (cls); method_id int64; key, method str; video str, the
    sample's `video_group`. Raises on corrupt
    members, which the stream counts and skips."""
    unknown = set(members) - set(IMAGE_MEMBERS)
    if unknown:
        raise ValueError(f"unknown members {sorted(unknown)}")
    parse_spec(postprocessing)  # fail early on a bad spec

    def decode(sample: dict) -> dict:
        meta = json.loads(sample["json"])
        out = {"label": torch.tensor(int(sample["cls"]), dtype=torch.int64),
               "method_id": torch.tensor(int(meta.get("method_id", -1)), dtype=torch.int64),
               "key": sample["__key__"], "video": video_group(meta),
               "method": meta.get("method", "")}
        for member in members:
            image = decode_png(sample[member])
            if member == "img.png" and postprocessing != "none":
                image, _ = postprocess(image, postprocessing, key_rng(seed, "postprocess", sample["__key__"]))
            image = resize_square(image, size)
            tensor = torch.from_numpy(np.ascontiguousarray(image))
            out[IMAGE_MEMBERS[member]] = tensor.permute(2, 0, 1) if tensor.ndim == 3 else tensor[None]
        return out

    return decode
