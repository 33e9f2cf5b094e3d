"""Registry of detector families: `beam train <name>`."""
from __future__ import annotations

from trainers.families.amten import Amten
from trainers.families.base import Family
from trainers.families.effnet import EffNet
from trainers.families.local_features import LocalFeatures
from trainers.families.patch import Patch
from trainers.families.segmentation import Segmentation
from trainers.families.xray import FaceXray

FAMILIES: dict[str, type[Family]] = {
    family.name: family for family in (FaceXray, Amten, Segmentation, Patch, LocalFeatures, EffNet)}


def get_family(name: str, options: dict | None = None) -> Family:
    """The family `name` bound to `options` (its defaults for those not given)."""
    try:
        family = FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown family {name!r}; registered: {', '.join(FAMILIES)}") from None
    return family(options)
