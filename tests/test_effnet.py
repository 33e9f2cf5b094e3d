"""The SBI detector family: SAM against its definition, and EfficientNet-B4 training two
steps through the shared loop (two forward/backward passes a step) on CPU."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from shards.sample import encode_sample
from shards.tar import write_tar
from trainers.families import get_family
from trainers.families.effnet import MOMENTUM, PAPER, RHO, EffNet
from trainers.loop import TrainConfig, train
from trainers.models.efficientnet import WeightsMismatch, efficientnet_b4
from trainers.sam import SAM, MissingClosure, optimizer_step


def _tiny_problem():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    return model, lambda: torch.nn.functional.mse_loss(model(x), y)


def test_sam_step_is_sgd_from_the_gradient_at_the_perturbed_weights():
    model, loss_of = _tiny_problem()
    rho, lr = 0.05, 0.1
    w = [p.detach().clone() for p in model.parameters()]
    grads = torch.autograd.grad(loss_of(), list(model.parameters()))
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    with torch.no_grad():
        for p, g in zip(model.parameters(), grads):
            p.add_(rho * g / norm)
    perturbed = torch.autograd.grad(loss_of(), list(model.parameters()))
    expected = [wi - lr * gi for wi, gi in zip(w, perturbed)]
    with torch.no_grad():
        for p, wi in zip(model.parameters(), w):
            p.copy_(wi)

    optimizer = SAM(model.parameters(), torch.optim.SGD, rho=rho, lr=lr)
    passes = []

    def loss_again():
        passes.append(1)
        return loss_of()
    optimizer.zero_grad()
    loss_of().backward()
    optimizer_step(optimizer, loss_again)
    assert len(passes) == 1                      # the second forward/backward of the step
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.detach(), e)
    with pytest.raises(MissingClosure):
        optimizer.step()


def test_sam_state_and_learning_rate_are_the_base_optimisers():
    model, loss_of = _tiny_problem()
    optimizer = SAM(model.parameters(), torch.optim.SGD, lr=0.1, momentum=0.9)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 ** step)
    loss_of().backward()
    optimizer_step(optimizer, loss_of)
    schedule.step()
    assert optimizer.base.param_groups[0]["lr"] == pytest.approx(0.05)
    state = optimizer.state_dict()
    assert all("momentum_buffer" in s for s in state["state"].values())
    again = SAM(model.parameters(), torch.optim.SGD, lr=0.1, momentum=0.9)
    again.load_state_dict(state)
    assert again.param_groups is again.base.param_groups and again.param_groups[0]["lr"] == pytest.approx(0.05)
    plain = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer_step(plain, lambda: pytest.fail("a one-pass optimiser never recomputes the loss"))


def _random_shards(folder, count: int, size: int = 32) -> list[str]:
    rng = np.random.default_rng(0)
    zeros = np.zeros((size, size), np.uint8)
    samples = [encode_sample(f"syn__v{i}__{i:06d}__f0-{'fake' if i % 2 else 'real'}",
                             rng.integers(0, 256, (size, size, 3), np.uint8), zeros, zeros, zeros, i % 2,
                             {"video": f"v{i}", "method": "sbi" if i % 2 else "real"})
               for i in range(count)]
    path = folder / "shard-000000.tar"
    with open(path, "wb") as stream:
        write_tar(stream, samples)
    return [str(path)]


def test_effnet_trains_two_sam_steps_through_the_loop(tmp_path, monkeypatch):
    forwards = []
    build = EffNet.build

    def counting_build(self, image_size):
        model = build(self, image_size)
        model.register_forward_hook(lambda *_: forwards.append(1))
        return model
    monkeypatch.setattr(EffNet, "build", counting_build)
    out = tmp_path / "run"
    train(TrainConfig("effnet", _random_shards(tmp_path, 4), str(out), steps=2, batch_size=2, image_size=64,
                      samples_per_epoch=4, workers=0, shuffle_buffer=0, log_every=1, checkpoint_every=2,
                      eval_every=100, amp=False))
    assert len(forwards) == 4                    # two forward passes per step
    with open(out / "train_log.csv") as stream:
        losses = [float(row["loss"]) for row in csv.DictReader(stream)]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    torch.manual_seed(0)                          # the loop seeds torch with config.seed before building
    initial = build(EffNet(), 64).state_dict()
    trained = torch.load(out / "last.pt", weights_only=True)["model"]
    changed = [k for k, v in initial.items() if v.is_floating_point() and not torch.equal(v, trained[k])]
    assert "net._fc.weight" in changed and any(k.startswith("net._conv_stem") for k in changed)


def test_effnet_family_paper_values_and_local_weights(tmp_path):
    family = get_family("effnet")
    assert (family.defaults.image_size, family.defaults.batch_size, family.defaults.lr) == (380, 32, 1e-3)
    assert (PAPER.steps, RHO, MOMENTUM) == (36_000, 0.05, 0.9) and family.paper is PAPER
    optimizer = family.optimizer(torch.nn.Linear(2, 1).parameters(), 1e-3)
    assert isinstance(optimizer, SAM) and isinstance(optimizer.base, torch.optim.SGD)
    assert optimizer.param_groups[0]["momentum"] == 0.9 and optimizer.rho == 0.05

    imagenet = efficientnet_b4(num_classes=1000)
    path = tmp_path / "b4.pth"
    torch.save(imagenet.state_dict(), path)
    model = get_family("effnet", {"pretrained": str(path)}).build(380)
    loaded = model.net.state_dict()
    assert torch.equal(loaded["_conv_stem.weight"], imagenet.state_dict()["_conv_stem.weight"])
    assert loaded["_fc.weight"].shape == (1, 1792)
    with pytest.raises(FileNotFoundError):
        efficientnet_b4(weights=str(tmp_path / "absent.pth"))
    torch.save({"_conv_stem.weight": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(WeightsMismatch):
        efficientnet_b4(weights=str(tmp_path / "wrong.pth"))
