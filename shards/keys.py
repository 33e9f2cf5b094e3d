"""Sample keys and the per-key random generators that make every output deterministic."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_KEY_FIELD_SEPARATOR = "__"


def sanitize(name: str) -> str:
    """A key field from any string: runs of characters outside [A-Za-z0-9_-] become '-',
    and '__' (the field separator) is shortened to '_'. When anything changed, a short hash
    of the original keeps distinct names distinct ('a b' and 'a-b' differ)."""
    clean = re.sub("_{2,}", "_", _UNSAFE.sub("-", name)).strip("-") or "x"
    if clean != name:
        clean = f"{clean}-{hashlib.blake2b(name.encode(), digest_size=3).hexdigest()}"
    return clean


def face_key(dataset: str, video: str, frame: int, face: int) -> str:
    """`<dataset>__<video>__<frame:06d>__f<face>`: one face crop. Fields must be sanitized."""
    return _KEY_FIELD_SEPARATOR.join([dataset, video, f"{frame:06d}", f"f{face}"])


def sample_key(face: str, variant: str) -> str:
    """Key of a sample made from face key `face`: its last field becomes `f<i>-<variant>`,
    e.g. `ffpp__004__000031__f0-real`, `...__f0-bi0`."""
    return f"{face}-{variant}"


@dataclass(frozen=True)
class KeyParts:
    """The fields of a face key (`variant` '') or a sample key."""

    dataset: str
    video: str
    frame: int
    face: int
    variant: str

    @property
    def face_key(self) -> str:
        """Key of the face this key names or was made from."""
        return face_key(self.dataset, self.video, self.frame, self.face)


_LAST_FIELD = re.compile(r"f(\d+)(?:-([A-Za-z0-9_-]+))?")


def parse_key(key: str) -> KeyParts:
    """Fields of a face key (`...__f0`) or sample key (`...__f0-real`); ValueError for
    anything else."""
    fields = key.split(_KEY_FIELD_SEPARATOR)
    last = _LAST_FIELD.fullmatch(fields[-1]) if len(fields) == 4 else None
    if last is None or not fields[2].isdigit():
        raise ValueError(f"not a face or sample key: {key!r}")
    return KeyParts(fields[0], fields[1], int(fields[2]), int(last[1]), last[2] or "")


def stable_hash(*parts: object) -> int:
    """Non-negative 63-bit hash of the parts' text (fits int64), identical across processes
    and machines."""
    text = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little") >> 1


def key_rng(seed: int, *parts: object) -> np.random.Generator:
    """Generator for one decision about one key, e.g. key_rng(seed, 'blend', key):
    independent of worker, bundle and element order."""
    return np.random.default_rng([seed & 0xFFFFFFFF, stable_hash(*parts)])
