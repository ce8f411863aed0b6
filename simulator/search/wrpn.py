"""WRPN: wide reduced-precision networks (Mishra, Nurvitadhi, Cook, Marr; ICLR 2018).

Instead of searching per-layer precisions for a trained network, WRPN widens the network (more
filters per layer, ``width`` x) and trains it from scratch at a low uniform precision with the
straight-through estimator (STE): the forward pass sees quantized values, the backward pass treats
the rounding as identity inside the clipping range. WRPN's quantizer, as the paper defines it:

* weights clipped to [-1, 1], k bits signed: round((2^(k-1) - 1) w) / (2^(k-1) - 1) (k = 2 is ternary);
* activations clipped to [0, 1], k bits unsigned: round((2^k - 1) a) / (2^k - 1).

Its grids are not powers of two, so it is WRPN's own number format, not the fixed point of
``simulator.quantize``; a k-bit WRPN tensor still occupies k bits, which is what its simulated cost
uses (a uniform k-bit profile on the widened network).

Choices of ours, since WRPN's networks have batch normalisation and these have none: each layer's
weights are its latent weights in [-1, 1] (initialised uniformly) times a fixed power of two,
2^round(log2 sqrt(6 / fan_in)), the Kaiming scale of a uniform [-1, 1] variable, a shift that
fixed-point hardware folds into the layer's output scaling. The network's input (the image, 17
grey levels) is not requantized, and the logits stay wide; every other layer's input activations
are WRPN-quantized.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..formats import wrpn_quantize
from ..layers import compute_layers
from ..models import build_model
from ..train import RECIPES, Recipe, accuracy, digits_batch, fit
from ..workload import Workload
from .common import ProfileCost, profile_cost, uniform


def wrpn_weights(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Weights clipped to [-1, 1] on WRPN's signed k-bit grid (1 bit: the sign), with a
    straight-through gradient; the grid is the one quantizer's (``formats.wrpn_quantize``)."""
    c = w.clamp(-1.0, 1.0)
    return c + (wrpn_quantize(c, bits, signed=True) - c).detach()


def wrpn_activations(a: torch.Tensor, bits: int) -> torch.Tensor:
    """Activations clipped to [0, 1] on WRPN's unsigned k-bit grid, with a straight-through gradient."""
    c = a.clamp(0.0, 1.0)
    return c + (wrpn_quantize(c, bits, signed=False) - c).detach()


class WRPNWeight(nn.Module):
    """Parametrization: the layer's weight is ``scale`` times its WRPN-quantized latent weight."""

    def __init__(self, bits: int, scale: float):
        super().__init__()
        self.bits, self.scale = bits, scale

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.scale * wrpn_weights(latent, self.bits)


def layer_scale(fan_in: int) -> float:
    """The power of two closest (in log) to sqrt(6 / fan_in)."""
    return 2.0 ** round(math.log2(math.sqrt(6.0 / fan_in)))


def make_wrpn(model: nn.Module, bits: int, seed: int = 0) -> nn.Module:
    """Turn a zoo model into its WRPN form in place: latent weights re-initialised uniformly in
    [-1, 1] (seeded), weights and inner activations WRPN-quantized in every forward pass."""
    gen = torch.Generator().manual_seed(seed)
    for index, (_, module) in enumerate(compute_layers(model)):
        fan_in = module.weight[0].numel()
        with torch.no_grad():
            module.weight.uniform_(-1.0, 1.0, generator=gen)
        parametrize.register_parametrization(module, "weight", WRPNWeight(bits, layer_scale(fan_in)))
        if index > 0:
            module.register_forward_pre_hook(lambda m, args: (wrpn_activations(args[0], bits), *args[1:]))
    return model


@dataclass
class WRPNRow:
    """One (width, bits) point: accuracy on the validation and test splits."""

    width: float
    bits: Optional[int]               # None: the float network of that width
    val_top1: float
    test_top1: float
    train_seconds: float
    float_test_top1: Optional[float] = None   # the 1x float network's, for relative accuracy
    cost: Optional[ProfileCost] = None        # uniform k-bit profile on the widened network

    @property
    def relative_test_top1(self) -> Optional[float]:
        return self.test_top1 / self.float_test_top1 if self.float_test_top1 else None

    def as_dict(self) -> dict:
        return {"width": self.width, "bits": self.bits, "val_top1": self.val_top1, "test_top1": self.test_top1,
                "relative_test_top1": self.relative_test_top1, "train_seconds": self.train_seconds,
                "cost": None if self.cost is None else self.cost.as_dict()}

    def summary(self) -> dict:
        """One row of the terminal table."""
        row = {"width": f"{self.width:g}x", "bits": "float" if self.bits is None else str(self.bits),
               "val top-1": self.val_top1, "test top-1": self.test_top1,
               "test vs 1x float": "-" if self.relative_test_top1 is None else f"{100 * self.relative_test_top1:.2f}%",
               "train s": self.train_seconds}
        if self.cost is not None:
            for r in self.cost.rows:
                row[f"{r['accelerator']} cycles"] = r["total_cycles"]
            row["footprint KiB"] = self.cost.footprint_bits / 8192
            row["saved vs fp32"] = f"{100 * self.cost.footprint_reduction_vs_fp32:.1f}%"
        return row


def train_wrpn(name: str, width: float, bits: Optional[int], recipe: Recipe) -> tuple[nn.Module, float]:
    """Train zoo model ``name`` at ``width`` on the digits' train split: WRPN with quantization-aware
    training at ``bits``, or plain float when ``bits`` is None. Returns the model and seconds taken."""
    torch.manual_seed(recipe.seed)
    model = build_model(name, width=width, seed=recipe.seed)
    if bits is not None:
        make_wrpn(model, bits, recipe.seed)
    train = digits_batch("train")
    t0 = time.perf_counter()
    fit(model, train, recipe)
    return model, time.perf_counter() - t0


def wrpn_table(name: str, widths: Sequence[float] = (1.0, 2.0), bits: Sequence[Optional[int]] = (None, 8, 4, 2),
               recipe: Optional[Recipe] = None) -> list[WRPNRow]:
    """Accuracy per (width, bits), each network trained from scratch with the same recipe."""
    recipe = recipe or RECIPES.get(name, Recipe())
    val, test = digits_batch("val"), digits_batch("test")
    rows = []
    for w in widths:
        for b in bits:
            model, seconds = train_wrpn(name, w, b, recipe)
            rows.append(WRPNRow(w, b, accuracy(model, val), accuracy(model, test), seconds))
    ref = next((r.test_top1 for r in rows if r.width == 1.0 and r.bits is None), None)
    for r in rows:
        r.float_test_top1 = ref
    return rows


def wrpn_cost_table(workload: Workload, widths: Sequence[float] = (1.0, 2.0), bits: Sequence[int] = (8, 4, 2),
                    recipe: Optional[Recipe] = None, cost: bool = True) -> list[WRPNRow]:
    """``wrpn_table`` for the workload's model (float rows included), each quantized row with the
    simulated cost of a uniform k-bit profile on the widened network. Cycles, energy and footprint of
    these engines do not depend on the values, so the widened network is simulated with seeded weights."""
    rows = wrpn_table(workload.model.name, widths, [None, *bits], recipe)
    if cost:
        for r in rows:
            if r.bits is None:
                continue
            model = workload.model.model_copy(update={"width": r.width, "weights": None})
            wl = workload.model_copy(update={"model": model})
            layers = [n for n, _ in compute_layers(build_model(model.name, width=r.width))]
            r.cost = profile_cost(wl, f"wrpn-{r.width:g}x-{r.bits}b", uniform(layers, r.bits))
    return rows
