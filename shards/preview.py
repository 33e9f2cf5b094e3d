"""Contact sheets: one row per sample (image, mask, X-ray, hull) with its label and key."""
from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from shards.sample import decode_png

PANELS = ("img.png", "mask.png", "xray.png", "hull.png")
_CAPTION_HEIGHT = 22


def _panel(data: bytes, side: int) -> np.ndarray:
    image = decode_png(data)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, 2)
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)


def sample_row(sample: dict, side: int = 128) -> np.ndarray:
    """A (caption + side, panels * side, 3) uint8 RGB strip for one sample: the PANELS it has
    (a face-shard sample has only the image and the hull).

    sample: raw WebDataset members (bytes for the PNGs and `cls`, bytes or dict for `json`),
    plus `__key__`.
    """
    panels = np.hstack([_panel(sample[name], side) for name in PANELS if name in sample])
    meta = sample.get("json", {})
    if isinstance(meta, (bytes, str)):
        import json
        meta = json.loads(meta)
    label = int(sample.get("cls", b"-1"))
    caption = np.full((_CAPTION_HEIGHT, panels.shape[1], 3), 255, np.uint8)
    tag = {0: "REAL", 1: "FAKE"}.get(label, "FACE")
    text = f"{tag}  {meta.get('method', '')}  {sample['__key__']}"
    cv2.putText(caption, text[: panels.shape[1] // 8], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.42,
                (200, 0, 0) if label == 1 else (0, 120, 0), 1, cv2.LINE_AA)
    return np.vstack([caption, panels])


def contact_sheet(samples: Iterable[dict], side: int = 128) -> np.ndarray:
    """Stack the rows of `samples` under a header naming the columns. Returns RGB uint8."""
    samples = list(samples)
    rows = [sample_row(s, side) for s in samples]
    if not rows:
        raise ValueError("no samples to draw")
    first = samples[0]
    header = np.full((_CAPTION_HEIGHT, rows[0].shape[1], 3), 235, np.uint8)
    names = dict(zip(PANELS, ("image", "mask M", "X-ray 4M(1-M)", "hull"), strict=True))
    for column, name in enumerate(names[p] for p in PANELS if p in first):
        cv2.putText(header, name, (column * side + 4, 16), cv2.FONT_HERSHEY_SIMPLEX,
                    min(0.45, 0.4 * side / 128), (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([header, *rows])
