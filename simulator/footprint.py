"""Data footprint of a network at a precision profile, and its peak live activation memory.

The footprint is what storing each layer's input activations and weights costs in bits at the
profile's precision, against the same tensors in 32-bit float and 16-bit fixed point (the
baselines of Judd et al. 2015, who report 74% less than float on average). Biases are not counted:
``LayerSpec`` does not carry them, and they are a small fraction of any layer's weights.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from numbers import Integral

from simulator.errors import SimulatorError
from simulator.layers import LayerSpec

FP32_BITS = 32
FIXED16_BITS = 16


@dataclass(frozen=True)
class Footprint:
    """Bits of weights and input activations, at the profile's precision and at the two baselines."""

    weight_bits: int
    activation_bits: int
    weight_bits_fp32: int
    activation_bits_fp32: int
    weight_bits_fixed16: int
    activation_bits_fixed16: int

    @property
    def total_bits(self) -> int:
        return self.weight_bits + self.activation_bits

    @property
    def total_bits_fp32(self) -> int:
        return self.weight_bits_fp32 + self.activation_bits_fp32

    @property
    def total_bits_fixed16(self) -> int:
        return self.weight_bits_fixed16 + self.activation_bits_fixed16

    @property
    def reduction_vs_fp32(self) -> float:
        """Fraction of the 32-bit float footprint saved (0.75 at 8 bits everywhere)."""
        return 1.0 - self.total_bits / self.total_bits_fp32 if self.total_bits_fp32 else 0.0

    @property
    def reduction_vs_fixed16(self) -> float:
        """Fraction of the 16-bit fixed-point footprint saved (negative above 16 bits)."""
        return 1.0 - self.total_bits / self.total_bits_fixed16 if self.total_bits_fixed16 else 0.0

    def __add__(self, other: "Footprint") -> "Footprint":
        return Footprint(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


ZERO = Footprint(0, 0, 0, 0, 0, 0)


def _check_bits(layer: LayerSpec, what: str, bits: int) -> int:
    # Integral, not int: profiles may come as numpy integers.
    if isinstance(bits, bool) or not isinstance(bits, Integral) or bits < 1:
        raise SimulatorError(f"layer {layer.name}: {what} precision {bits!r} is not a positive integer")
    return int(bits)


def layer_footprint(layer: LayerSpec, act_bits: int, weight_bits: int) -> Footprint:
    """Exact footprint of one layer: its input activations at ``act_bits``, its weights at ``weight_bits``."""
    act_bits = _check_bits(layer, "activation", act_bits)
    weight_bits = _check_bits(layer, "weight", weight_bits)
    a, w = layer.activation_count, layer.weight_count
    return Footprint(w * weight_bits, a * act_bits, w * FP32_BITS, a * FP32_BITS,
                     w * FIXED16_BITS, a * FIXED16_BITS)


def _check_lengths(layers: list[LayerSpec], **per_layer: list[int]) -> None:
    for name, values in per_layer.items():
        if len(values) != len(layers):
            raise SimulatorError(f"{name} has {len(values)} entries for {len(layers)} layers")


def network_footprint(layers: list[LayerSpec], act_bits: list[int], weight_bits: list[int]) -> Footprint:
    """Sum of the layers' footprints, each at its own precision."""
    _check_lengths(layers, act_bits=act_bits, weight_bits=weight_bits)
    total = ZERO
    for layer, a, w in zip(layers, act_bits, weight_bits):
        total = total + layer_footprint(layer, a, w)
    return total


def peak_live_activation_bits(layers: list[LayerSpec], act_bits: list[int],
                              out_bits: list[int]) -> tuple[int, str]:
    """Peak activation memory running layer by layer, and the layer where it peaks (the first on a tie).

    "Bounded memory" (Judd et al. 2015): a layer needs its input activations (at ``act_bits``) and
    its output activations (at ``out_bits``, usually the next layer's input precision) live at
    once; earlier tensors can be dropped. That holds for a chain. In a network with branches
    (residual shortcuts, inception modules) other tensors stay live while a layer runs, so this
    per-layer figure is a lower bound of the peak there.
    """
    if not layers:
        raise SimulatorError("peak live activation memory of an empty network")
    _check_lengths(layers, act_bits=act_bits, out_bits=out_bits)
    peak, where = -1, ""
    for layer, a, o in zip(layers, act_bits, out_bits):
        live = (layer.activation_count * _check_bits(layer, "activation", a)
                + layer.output_count * _check_bits(layer, "output", o))
        if live > peak:
            peak, where = live, layer.name
    return peak, where
