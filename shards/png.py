"""A fast lossless PNG encoder for 8-bit grey and RGB crops.

Every row uses PNG's "Up" filter (difference to the row above, computed with NumPy), and
zlib compresses with its run-length strategy at level 1. On 256 px face crops this is
~2.5x faster than OpenCV's encoder (whose adaptive per-row filter search dominates) at
about the same size (~94 KB vs ~90 KB), and masks compress ~5x faster. Any PNG decoder
reads the result.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_NO_FILTER, _UP_FILTER = 0, 2
_COLOR_TYPES = {1: 0, 3: 2}  # channels -> PNG colour type (grey, RGB)


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(image: np.ndarray, level: int = 1) -> bytes:
    """(H, W) grey or (H, W, 3) RGB uint8 -> PNG bytes (channels stored as given).

    level: zlib level; 0 stores the rows uncompressed (and unfiltered): ~3x the bytes of
    level 1 on face crops, but ~4x faster to decode (~0.5 ms for a 384 px RGB crop) and
    ~10x faster to encode."""
    if image.dtype != np.uint8:
        raise TypeError(f"PNG members are uint8, got {image.dtype}")
    channels = 1 if image.ndim == 2 else image.shape[2]
    if image.ndim not in (2, 3) or channels not in _COLOR_TYPES:
        raise ValueError(f"expected (H, W) or (H, W, 3), got {image.shape}")
    height, width = image.shape[:2]
    rows = np.ascontiguousarray(image).reshape(height, width * channels)
    scanlines = np.empty((height, width * channels + 1), np.uint8)
    if level == 0:
        scanlines[:, 0] = _NO_FILTER
        scanlines[:, 1:] = rows
    else:
        scanlines[:, 0] = _UP_FILTER
        scanlines[0, 1:] = rows[0]
        np.subtract(rows[1:], rows[:-1], out=scanlines[1:, 1:])  # wraps modulo 256, as PNG wants
    compressor = zlib.compressobj(level, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = compressor.compress(scanlines.data) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPES[channels], 0, 0, 0)
    return _SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) px of PNG bytes, read from the IHDR chunk without decoding."""
    if data[:8] != _SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    return struct.unpack(">II", data[16:24])
