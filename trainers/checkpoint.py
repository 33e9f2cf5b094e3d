"""Checkpoints: written atomically, read with `weights_only=True` (no code from the file runs)."""
from __future__ import annotations

import os
import tempfile

import torch


def save_checkpoint(path: str, state: dict) -> None:
    """Write `state` to a temporary file beside `path`, then rename it into place."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix="partial-", suffix=".pt")
    os.close(handle)
    try:
        torch.save(state, temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def load_checkpoint(path: str) -> dict:
    """A checkpoint written by `save_checkpoint` (tensors, numbers, strings, dicts only)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return torch.load(path, map_location="cpu", weights_only=True)
