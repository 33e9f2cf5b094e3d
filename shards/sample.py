"""One sample as WebDataset members: encoding (writing side) and decoding (reading side).

Members (DESIGN.md): img.png RGB, xray.png / mask.png / hull.png grey, cls, json. Every
image member is lossless PNG through the same encoder (`shards.png`), for real and fake alike.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import cv2
import numpy as np

from shards.png import encode_png

MEMBERS = ("img.png", "xray.png", "mask.png", "hull.png", "cls", "json")


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> (H, W) grey or (H, W, 3) RGB uint8."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("not a PNG image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image


def encode_json(meta: dict) -> bytes:
    """Canonical JSON: sorted keys, no spaces, so equal metadata gives equal bytes."""
    return json.dumps(meta, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True)
class EncodedSample:
    """A sample ready for a shard: `members` maps member name (see MEMBERS) to bytes."""

    key: str
    members: dict[str, bytes]


def encode_sample(key: str, image: np.ndarray | bytes, xray: np.ndarray, mask: np.ndarray,
                  hull: np.ndarray, label: int, meta: dict) -> EncodedSample:
    """image (S, S, 3) RGB, or PNG bytes already made by `shards.png.encode_png`; xray /
    mask / hull (S, S); all uint8. label 0 real, 1 fake."""
    return EncodedSample(key, {
        "img.png": image if isinstance(image, bytes) else encode_png(image),
        "xray.png": encode_png(xray),
        "mask.png": encode_png(mask),
        "hull.png": encode_png(hull),
        "cls": str(int(label)).encode(),
        "json": encode_json(meta),
    })
