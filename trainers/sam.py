"""Sharpness-aware minimisation (SAM; Foret et al., ICLR 2021), the optimiser of the SBI
detector, and the loop's one hook for optimisers that need a second forward/backward pass.

One SAM step, given the gradients g of the loss at the weights w (first pass):

    e = rho * g / ||g||_2          (||.||_2 over all parameters together)
    gradients of the loss at w + e (second pass: `closure`)
    w <- base optimiser step from w with those gradients
"""
from __future__ import annotations

from collections.abc import Callable

import torch


class MissingClosure(ValueError):
    """A two-pass optimiser was stepped without the closure that recomputes the loss."""


class SAM(torch.optim.Optimizer):
    """SAM around a base optimiser (`base(params, **kwargs)`, e.g. SGD with lr and momentum).
    rho: radius of the neighbourhood the loss is maximised over (0.05 in the paper).
    The parameter groups, learning rates and saved state are the base optimiser's, so LR
    schedulers and checkpoints treat SAM as the base."""

    two_pass = True

    def __init__(self, params, base: type[torch.optim.Optimizer], rho: float = 0.05, **kwargs):
        if rho < 0:
            raise ValueError(f"rho must be >= 0, got {rho}")
        super().__init__(params, dict(kwargs))
        self.rho = rho
        self.base = base(self.param_groups, **kwargs)
        self.param_groups = self.base.param_groups

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:
        """Perturb, run `closure` (zero the gradients, forward, loss, backward; returns the
        loss) at the perturbed weights, restore, step the base optimiser. Returns that loss."""
        if closure is None:
            raise MissingClosure("SAM needs a closure that recomputes the loss and its gradients")
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        perturbations = [p.grad * (self.rho / (norm + 1e-12)) for p in params]
        for p, e in zip(params, perturbations):
            p.add_(e)
        with torch.enable_grad():
            loss = closure()
        for p, e in zip(params, perturbations):
            p.sub_(e)
        self.base.step()
        return loss

    def state_dict(self) -> dict:
        return self.base.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.base.load_state_dict(state_dict)
        self.param_groups = self.base.param_groups


def optimizer_step(optimizer: torch.optim.Optimizer, loss_again: Callable[[], torch.Tensor]) -> None:
    """Step `optimizer` after the first backward pass. A two-pass optimiser (`two_pass`
    true, e.g. SAM) gets a closure that zeroes the gradients and backpropagates
    `loss_again()`, the loss recomputed with a fresh forward pass; others just step."""
    if not getattr(optimizer, "two_pass", False):
        optimizer.step()
        return

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_again()
        loss.backward()
        return loss
    optimizer.step(closure)
