"""Which generator makes a fake: Face X-ray blends (`bi`), self-blends (`sbi`), or a mix of
both drawn per sample (`mix:bi=0.5,sbi=0.5`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blending.recipe import BlendParams, recipe
from blending.sbi import SbiParams

GENERATORS = ("bi", "sbi")
"""bi: a neighbour's face pasted into the face (`blending.bi`); sbi: the face blended with
an altered copy of itself (`blending.sbi`)."""


class RecipeSpecError(ValueError):
    """A --recipe that is not `bi`, `sbi` or `mix:NAME=WEIGHT,...` of those."""


@dataclass(frozen=True)
class RecipeMix:
    """(generator, weight) pairs; a fake's generator is drawn with probability
    proportional to its weight."""

    weights: tuple[tuple[str, float], ...]

    @classmethod
    def parse(cls, spec: str) -> RecipeMix:
        """`bi`, `sbi`, or `mix:bi=0.5,sbi=0.5` (weights > 0, normalised)."""
        if spec in GENERATORS:
            return cls(((spec, 1.0),))
        if not spec.startswith("mix:"):
            raise RecipeSpecError(f"--recipe must be one of {', '.join(GENERATORS)} or mix:bi=W,sbi=W, got {spec!r}")
        weights = []
        for part in spec[4:].split(","):
            name, _, value = part.partition("=")
            try:
                weight = float(value)
            except ValueError:
                raise RecipeSpecError(f"--recipe {spec!r}: {part!r} is not NAME=WEIGHT") from None
            if name not in GENERATORS or weight <= 0 or name in dict(weights):
                raise RecipeSpecError(f"--recipe {spec!r}: each of {', '.join(GENERATORS)} at most once, weight > 0")
            weights.append((name, weight))
        return cls(tuple(weights))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.weights)

    def draw(self, rng: np.random.Generator) -> str:
        """One generator; a single one is returned without drawing."""
        if len(self.weights) == 1:
            return self.weights[0][0]
        p = np.array([w for _, w in self.weights], np.float64)
        return self.weights[int(rng.choice(len(p), p=p / p.sum()))][0]


@dataclass(frozen=True)
class FakeParams:
    """The ranges of every generator's choices: bi (a blend recipe), sbi (self-blends)."""

    bi: BlendParams = recipe("default")
    sbi: SbiParams = SbiParams()
