"""Sakr & Shanbhag's analytical precision assignment (ICML 2017, "Analytical Guarantees on Numerical
Precision of Deep Neural Networks"; ICASSP 2018, per-layer precision).

The probability that the fixed-point network's decision differs from the float network's is bounded by

    p_m <= sum_l  Delta_{A_l}^2 E_{A_l} + Delta_{W_l}^2 E_{W_l}

with the quantization noise gains, restricted to layer l's input activations (resp. weights),

    E_{A_l} = E[ sum_{i != y} sum_{a in A_l} |d(z_i - z_y)/da|^2 / (24 |z_i - z_y|^2) ]

z the logits, y the float network's decision, the expectation over the data. They are computed here
with C backward passes over the batch (C classes): for class i, the gradient of
sum_n (z_i - z_y)_n / |z_i - z_y|_n (the weights detached) gives every input's
d(z_i - z_y)/da / |z_i - z_y| at once, samples being independent. Weight gains need per-sample weight
gradients: a fully connected layer's is the outer product g x^T (squared norm |g|^2 |x|^2); a
convolution's is the product of its output gradient with the unfolded input patches.

Steps of our fixed point. Sakr & Shanbhag assume values in [-1, 1), so B bits give a step
Delta = 2^-(B-1). Our quantizer gives every tensor I integer bits (sign included) from its observed
range and F = B - I fraction bits, so Delta_l = 2^-(B_l - I_l) = 2^-(B_l - 1) * 2^(I_l - 1). The range
factor is folded into the gain, E~_l = E_l * 4^(I_l - 1), and Sakr's per-tensor rule is applied to the
folded gains:

    B_l = B_min + round(log2 sqrt(E~_l / E~_min))

which equalises the tensors' contributions to the bound. B_min is the smallest B whose bound meets
the target mismatch p*. A relative accuracy target t allows p* = (1 - t) * (float top-1): a mismatch
can at worst turn a correct decision wrong. For t = 1 (100%) the bound never reaches 0, so p* is half
an input of the split, 1 / (2N). The bound is reported beside the measured mismatch; when the
measured accuracy misses the target (the bound is a first-order estimate, not a guarantee) every
tensor gets one more bit until it holds, and the result says so.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..accuracy import Accuracy, Evaluator
from ..errors import SimulatorError
from ..layers import compute_layers
from ..quantize import LayerPrecision, TensorPrecision
from .common import TENSORS, TensorRange, min_bits, tensor_ranges

Tensor = tuple[str, str]
MAX_BITS = 32


@dataclass
class NoiseGains:
    """Per layer, the noise gains of its input activations and of its weights."""

    activations: dict[str, float]
    weights: dict[str, float]
    n: int                                     # inputs the expectation was taken over

    def of(self, t: Tensor) -> float:
        return (self.activations if t[1] == "activations" else self.weights)[t[0]]

    def tensors(self) -> list[Tensor]:
        return [(n, t) for n in self.activations for t in TENSORS]


def per_sample_weight_grad_sq(module: nn.Module, x: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """|dL_n/dW|^2 for every input n, from the layer's input ``x`` and its output gradient ``gy``."""
    if isinstance(module, nn.Linear):
        if x.dim() == 2:
            return gy.pow(2).sum(1) * x.pow(2).sum(1)
        g = torch.einsum("n...o,n...i->noi", gy, x)
        return g.pow(2).flatten(1).sum(1)
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":
            raise SimulatorError(f"noise gains: padding mode {module.padding_mode!r} is not supported")
        n, groups = x.shape[0], module.groups
        cols = F.unfold(x, module.kernel_size, module.dilation, module.padding, module.stride)   # (N, C*k*k, P)
        cols = cols.reshape(n, groups, cols.shape[1] // groups, cols.shape[2])
        g = gy.reshape(n, groups, gy.shape[1] // groups, -1)
        per_sample = torch.einsum("ngkp,ngcp->ngkc", g, cols)
        return per_sample.pow(2).flatten(1).sum(1)
    raise TypeError(f"{type(module).__name__} is not a compute layer")


def noise_gains(model: nn.Module, images: torch.Tensor, chunk: int = 128) -> NoiseGains:
    """E_{A_l} and E_{W_l} of every compute layer of ``model`` on ``images`` (float network)."""
    layers = compute_layers(model)
    device = next(model.parameters()).device
    e_a = {n: 0.0 for n, _ in layers}
    e_w = {n: 0.0 for n, _ in layers}
    seen: dict[str, list[torch.Tensor]] = {}

    def capture(name: str):
        def hook(module: nn.Module, args: tuple, y: torch.Tensor) -> None:
            seen[name] = [args[0], y]
        return hook

    handles = [m.register_forward_hook(capture(n)) for n, m in layers]
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(images), chunk):
            x = images[start:start + chunk].to(device).requires_grad_(True)
            seen.clear()
            z = model(x)
            y = z.argmax(dim=1)
            z_y = z.gather(1, y[:, None])[:, 0]
            inputs = [seen[n][0] for n, _ in layers]
            outputs = [seen[n][1] for n, _ in layers]
            for i in range(z.shape[1]):
                d = z[:, i] - z_y
                # 1/|d| (detached) makes each input's gradient d(d)/da / |d|; the decided class adds nothing
                w = torch.where(y != i, 1.0 / d.detach().abs().clamp_min(1e-12), torch.zeros_like(d))
                grads = torch.autograd.grad((w * d).sum(), inputs + outputs, retain_graph=True, allow_unused=True)
                for k, (name, module) in enumerate(layers):
                    ga, gy = grads[k], grads[len(layers) + k]
                    if ga is not None:
                        e_a[name] += float(ga.detach().pow(2).sum())
                    if gy is not None:
                        e_w[name] += float(per_sample_weight_grad_sq(module, inputs[k].detach(), gy.detach()).sum())
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    n = len(images)
    return NoiseGains({k: v / (24 * n) for k, v in e_a.items()}, {k: v / (24 * n) for k, v in e_w.items()}, n)


# ------------------------------------------------------------------------------------ allocation

def folded_gains(gains: NoiseGains, ranges: dict[Tensor, TensorRange]) -> dict[Tensor, float]:
    """E~ = E * 4^(I - 1): each gain in units of Sakr's step 2^-(B-1) at our per-tensor range."""
    return {t: gains.of(t) * 4.0 ** (ranges[t].integer_bits - 1) for t in gains.tensors()}


def offsets(gains: NoiseGains, ranges: dict[Tensor, TensorRange]) -> dict[Tensor, int]:
    """round(log2 sqrt(E~ / E~_min)) per tensor (0 for a tensor with no gain at all)."""
    folded = folded_gains(gains, ranges)
    positive = [e for e in folded.values() if e > 0]
    if not positive:
        raise SimulatorError("noise gains: every gain is zero (does the network depend on its input?)")
    e_min = min(positive)
    return {t: round(0.5 * math.log2(e / e_min)) if e > 0 else 0 for t, e in folded.items()}


def allocation(b: int, offs: dict[Tensor, int], ranges: dict[Tensor, TensorRange]) -> dict[Tensor, int]:
    return {t: max(b + o, min_bits(ranges[t].signed)) for t, o in offs.items()}


def mismatch_bound(bits: dict[Tensor, int], gains: NoiseGains, ranges: dict[Tensor, TensorRange]) -> float:
    """sum over tensors of Delta^2 E with Delta = 2^-(B - I) (our step at B bits and the tensor's range)."""
    return sum(4.0 ** -(bits[t] - ranges[t].integer_bits) * gains.of(t) for t in bits)


def target_mismatch(target: float, float_top1: float, n: int) -> float:
    """The mismatch probability a relative top-1 target allows (see the module docstring)."""
    return (1.0 - target) * float_top1 if target < 1.0 else 1.0 / (2 * n)


def _precisions(bits: dict[Tensor, int], ranges: dict[Tensor, TensorRange]) -> dict[str, LayerPrecision]:
    layers = dict.fromkeys(n for n, _ in bits)
    return {n: LayerPrecision(*(TensorPrecision(bits[(n, t)], signed=ranges[(n, t)].signed) for t in TENSORS))
            for n in layers}


@dataclass
class SakrResult:
    b_min: int                                 # smallest B whose bound meets p*
    b: int                                     # B used (b_min, plus bits added if the measurement missed)
    precisions: dict[str, LayerPrecision]
    accuracy: Accuracy
    bound: float                               # the bound at b
    bound_at_b_min: float
    target_mismatch: float                     # p*
    offsets: dict[Tensor, int] = field(default_factory=dict)


def sakr_search(evaluator: Evaluator, target: float, gains: Optional[NoiseGains] = None,
                ranges: Optional[dict[Tensor, TensorRange]] = None) -> SakrResult:
    """Per-tensor bits from the noise gains, B_min from the bound, checked on the evaluator's split."""
    if gains is None:
        gains = noise_gains(evaluator.model, evaluator.images)
    ranges = ranges or tensor_ranges(evaluator)
    offs = offsets(gains, ranges)
    p_star = target_mismatch(target, evaluator.float_top1, evaluator.n)
    b_min = next((b for b in range(1, MAX_BITS + 1)
                  if mismatch_bound(allocation(b, offs, ranges), gains, ranges) <= p_star), None)
    if b_min is None:
        raise SimulatorError(f"sakr: no precision up to {MAX_BITS} bits brings the bound to {p_star:.2e}")
    b = b_min
    while True:
        bits = allocation(b, offs, ranges)
        acc = evaluator(_precisions(bits, ranges))
        if acc.meets(target):
            break
        b += 1
        if b > MAX_BITS:
            raise SimulatorError(f"sakr: the profile misses {target:.0%} of float top-1 even at B = {MAX_BITS}")
    return SakrResult(b_min, b, evaluator.resolve(_precisions(bits, ranges)), acc,
                      mismatch_bound(bits, gains, ranges),
                      mismatch_bound(allocation(b_min, offs, ranges), gains, ranges), p_star, offs)
