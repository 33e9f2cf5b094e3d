"""Post-processing operations of AMTENnet's robustness study (Guo et al., Table IX), for
robustness training and testing: spatial filters, gamma, JPEG, JPEG 2000, rescaling.

Every operation maps an (H, W, 3) uint8 RGB image to an image of the same shape and dtype.
An operation is named by a spec string `<op>:<parameter>`, e.g. 'jpeg:70', 'median:5',
'gamma:1.4', 'jpeg2000:4', 'upscale:10', 'downscale:25'; 'mix' draws an operation and a
parameter from Table IX's lists at random for each image.
"""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

TABLE_IX: dict[str, tuple[float, ...]] = {
    "mean": (3, 5, 7),
    "gaussian": (3, 5, 7),
    "median": (3, 5, 7),
    "gamma": (0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0),
    "jpeg": tuple(range(60, 91)),
    "jpeg2000": (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0),
    "upscale": (1, 3, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90),
    "downscale": (1, 3, 5, 10, 15, 20, 25, 30, 35, 40, 45),
}
"""Parameter lists per operation: kernel size (px), gamma, JPEG quality, JPEG 2000
compression ratio, up- / down-sampling percentage."""


def _odd_kernel(size: float) -> int:
    k = int(size)
    if k < 1 or k % 2 == 0:
        raise ValueError(f"filter kernel size must be odd and positive, got {size}")
    return k


def mean_filter(image: np.ndarray, size: float) -> np.ndarray:
    k = _odd_kernel(size)
    return cv2.blur(image, (k, k))


def gaussian_filter(image: np.ndarray, size: float) -> np.ndarray:
    """Gaussian blur, kernel size x size, sigma derived from the size (sigma 0 in OpenCV)."""
    k = _odd_kernel(size)
    return cv2.GaussianBlur(image, (k, k), 0)


def median_filter(image: np.ndarray, size: float) -> np.ndarray:
    return cv2.medianBlur(image, _odd_kernel(size))


def gamma_correction(image: np.ndarray, gamma: float) -> np.ndarray:
    """out = 255 * (in / 255) ** gamma; gamma 1 is the identity."""
    if gamma <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    table = np.round(255.0 * (np.arange(256) / 255.0) ** gamma).astype(np.uint8)
    return cv2.LUT(image, table)


def _recode(image: np.ndarray, extension: str, params: list[int]) -> np.ndarray:
    ok, data = cv2.imencode(extension, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ValueError(f"{extension} encoding failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def jpeg(image: np.ndarray, quality: float) -> np.ndarray:
    """JPEG round trip at `quality` (0-100)."""
    if not 0 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in [0, 100], got {quality}")
    return _recode(image, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(round(quality))])


def jpeg2000(image: np.ndarray, ratio: float) -> np.ndarray:
    """JPEG 2000 round trip at compression ratio `ratio` (>= 1; larger is lossier)."""
    if ratio < 1:
        raise ValueError(f"JPEG 2000 compression ratio must be >= 1, got {ratio}")
    return _recode(image, ".jp2", [cv2.IMWRITE_JPEG2000_COMPRESSION_X1000, int(round(1000 / ratio))])


def _rescale(image: np.ndarray, factor: float) -> np.ndarray:
    """Resample by `factor`, then back to the original size (the model's input size is
    fixed): what survives is the resampling's loss of detail or interpolation artefacts."""
    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    scaled = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    return cv2.resize(scaled, (width, height), interpolation=cv2.INTER_LINEAR)


def upscale(image: np.ndarray, percent: float) -> np.ndarray:
    return _rescale(image, 1 + percent / 100)


def downscale(image: np.ndarray, percent: float) -> np.ndarray:
    if not 0 <= percent < 100:
        raise ValueError(f"down-sampling percentage must be in [0, 100), got {percent}")
    return _rescale(image, 1 - percent / 100)


OPERATIONS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "mean": mean_filter, "gaussian": gaussian_filter, "median": median_filter, "gamma": gamma_correction,
    "jpeg": jpeg, "jpeg2000": jpeg2000, "upscale": upscale, "downscale": downscale,
}


def parse_spec(spec: str) -> tuple[str, float | None]:
    """'jpeg:70' -> ('jpeg', 70.0); 'mix' -> ('mix', None); 'none' -> ('none', None)."""
    name, _, value = spec.partition(":")
    if name in ("mix", "none") and not value:
        return name, None
    if name not in OPERATIONS or not value:
        raise ValueError(f"post-processing spec {spec!r}: use 'none', 'mix' or <op>:<value> with op in "
                         f"{', '.join(OPERATIONS)}")
    return name, float(value)


def postprocess(image: np.ndarray, spec: str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Apply `spec` ('none', 'mix' or '<op>:<value>'). Returns the image and the concrete
    operation applied (for 'mix', the one drawn)."""
    name, value = parse_spec(spec)
    if name == "none":
        return image, "none"
    if name == "mix":
        name = str(rng.choice(sorted(TABLE_IX)))
        value = float(rng.choice(TABLE_IX[name]))
    return OPERATIONS[name](image, value), f"{name}:{value:g}"
