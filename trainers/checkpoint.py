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


class CheckpointError(Exception):
    """A checkpoint that is missing, unreadable, or not one that `beam train` wrote."""


REQUIRED = ("model", "family", "step")
"""What every checkpoint of `beam train` holds."""


def load_checkpoint(path: str) -> dict:
    """A checkpoint written by `save_checkpoint` (tensors, numbers, strings, dicts only);
    CheckpointError for anything else, naming the file."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for a file that is not a checkpoint
        raise CheckpointError(f"{path} is not a readable checkpoint of beam train "
                              f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from error
    missing = [key for key in REQUIRED if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(f"{path} is not a checkpoint of beam train (no {', '.join(missing)})")
    return state
