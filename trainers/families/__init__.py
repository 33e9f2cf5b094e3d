"""Registry of detector families: `beam train <name>`."""
from __future__ import annotations

from trainers.families.base import Family
from trainers.families.xray import FaceXray

FAMILIES: dict[str, Family] = {family.name: family for family in (FaceXray(),)}


def get_family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; registered: {', '.join(FAMILIES)}") from None
