"""Dynamic per-group precision: Dynamic Stripes (Delmas Lascorz et al., arXiv 1706.00504).

Stripes' array (``columns`` windows of bit-serial SIPs), but the activation width is detected at
run time for each group of activations processed together: ``group_columns`` windows' bricks at one
step. A group needs the width of its widest value (highest set bit plus one, plus a sign bit where
the layer is signed, negatives by their one's complement), or with ``trim_trailing`` that width less
the group's common trailing zeros. A column's step takes its group's width (at least one cycle);
a step lasts its slowest column unless columns may run ``run_ahead`` steps ahead. Fully connected
layers use Stripes' staggered schedule with each brick's own width: they gain at most the pipeline
fill. Activations may also be stored off chip at each brick's width with a per-brick header
(``dynamic_act_storage_bits``). Models in ``docs/engines.md``.

This module also holds what the value-aware engines share: reading a layer's values into padded
per-group tensors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from .. import kernels
from ..counters import ComputeCounters
from ..errors import SimulatorError
from ..layers import CONV, FC, LayerSpec
from .base import Engine, array_lanes, check_bits, out_write_bits, passes, steps, weight_read_bits


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass
class ConvGroup:
    """One group of a convolution: its padded input channels (C_g, Hp, Wp) as int64, its weights."""

    index: int
    padded: np.ndarray
    weights: Optional[np.ndarray]


def layer_values(layer: LayerSpec, activations: Optional[np.ndarray], who: str) -> np.ndarray:
    """The activations of one input, checked against the layer's shape: (C, H, W) conv as (C, H, W),
    fc as (C, 1, 1). Integers, widened to int64 (kernels specialise on one dtype)."""
    if activations is None:
        raise SimulatorError(f"layer {layer.name}: engine {who!r} needs the layer's activation values")
    a = np.asarray(activations)
    if not np.issubdtype(a.dtype, np.integer):
        raise SimulatorError(f"layer {layer.name}: activations must be integers, got {a.dtype}")
    if layer.kind == FC:
        if a.ndim != 1 or a.shape[0] != layer.in_channels:
            raise SimulatorError(f"layer {layer.name}: expected ({layer.in_channels},) activations, got {a.shape}")
        return a.astype(np.int64).reshape(-1, 1, 1)
    if layer.kind != CONV:
        raise SimulatorError(f"layer {layer.name}: kind {layer.kind!r} is not a compute layer (valid: conv, fc)")
    want = (layer.in_channels, *layer.input_hw)
    if a.shape != want:
        raise SimulatorError(f"layer {layer.name}: expected {want} activations, got {a.shape}")
    return a.astype(np.int64)


def conv_groups(layer: LayerSpec, values: np.ndarray, weights: Optional[np.ndarray] = None) -> Iterator[ConvGroup]:
    """The layer's groups with zero padding applied (the engines see the padded input the array reads)."""
    py, px = layer.padding
    padded = np.pad(values, ((0, 0), (py, py), (px, px))) if py or px else values
    cg, kg = layer.channels_per_group, layer.filters_per_group
    for g in range(layer.groups):
        w = None if weights is None else weights[g * kg:(g + 1) * kg]
        yield ConvGroup(g, np.ascontiguousarray(padded[g * cg:(g + 1) * cg]), w)


def coverage(layer: LayerSpec) -> np.ndarray:
    """How many (window, kernel position) pairs read each position of the padded input, (Hp, Wp);
    (1, 1) ones for a fully connected layer. Sum of value x coverage = the value summed over MACs."""
    if layer.kind == FC:
        return np.ones((1, 1), np.int64)
    (oy, ox), (sy, sx), (ky_n, kx_n) = layer.output_hw, layer.stride, layer.kernel
    h, w = layer.input_hw[0] + 2 * layer.padding[0], layer.input_hw[1] + 2 * layer.padding[1]
    cover = np.zeros((h, w), np.int64)
    for ky in range(ky_n):
        for kx in range(kx_n):
            cover[ky:ky + sy * (oy - 1) + 1:sy, kx:kx + sx * (ox - 1) + 1:sx] += 1
    return cover


def signedness(values: np.ndarray, given: Optional[bool]) -> bool:
    """A layer is signed when its format says so; without the format, when a value is negative."""
    return bool(given) if given is not None else bool(values.size and values.min() < 0)


def check_width(layer: LayerSpec, needed: int, bits: int, what: str) -> None:
    if needed > bits:
        raise SimulatorError(f"layer {layer.name}: {what} need {needed} bits but the layer's precision is {bits}")


def storage_bits(hi: np.ndarray, layer: LayerSpec, lanes: int, channels: int, act_bits: int) -> int:
    """Off-chip bits of one group's activations stored brick by brick at each brick's width (at least
    one bit) plus a header of bit_length(act_bits - 1) bits giving the width (Dynamic Stripes'
    4-bit header at 16 bits). ``hi`` is the padded per-brick width map; padding is not stored."""
    py, px = layer.padding
    h, w = (1, 1) if layer.kind == FC else layer.input_hw
    inner = hi[:, py:py + h, px:px + w].astype(np.int64)
    per_brick = np.full(hi.shape[0], lanes, np.int64)
    per_brick[-1] = channels - lanes * (hi.shape[0] - 1)
    header = (act_bits - 1).bit_length()
    return int((np.maximum(inner, 1) * per_brick[:, None, None]).sum() + inner.size * header)


class DynamicEngine(Engine):
    name = "dynamic"
    needs_values = True

    def compute(self, layer: LayerSpec, act_bits: int, weight_bits: int,
                activations: np.ndarray | None = None, weights: np.ndarray | None = None,
                act_signed: Optional[bool] = None, weight_signed: Optional[bool] = None) -> ComputeCounters:
        check_bits(layer, act_bits, weight_bits)
        acc, cols = self.config, self.columns
        values = layer_values(layer, activations, self.name)
        signed = signedness(values, act_signed)
        trim = self.config.trim_trailing
        weight_passes = passes(weight_bits, acc.base_width)
        filter_tiles = _ceil_div(layer.filters_per_group, acc.tiles * acc.rows)

        if layer.kind == FC:
            hi, lo = kernels.brick_widths(values, acc.lanes, signed)
            check_width(layer, int(hi.max(initial=0)), act_bits, "activations")
            width = hi[:, 0, 0].astype(np.int64)
            if trim:
                t = lo[:, 0, 0].astype(np.int64)
                width = np.where(t == kernels.NO_TRAILING, width, width - t)
            brick = np.maximum(width, 1)
            # bricks in the order the array takes them: filter tile, brick, weight slice
            seq = np.repeat(np.tile(brick, filter_tiles), weight_passes)
            n = steps(layer, acc, 1)
            cycles = int(kernels.staggered_cycles_var(seq, cols))
            act_read = int(seq.sum()) * acc.lanes
            own = kernels.covered_widths(values, coverage(layer), signed, trim, 1)
            useful = int(own) * layer.out_channels * weight_passes
            stored = storage_bits(hi, layer, acc.lanes, layer.in_channels, act_bits)
        else:
            n = steps(layer, acc, cols)
            ones = np.ones((1, layer.kernel[0] * layer.kernel[1] * _ceil_div(layer.channels_per_group, acc.lanes)),
                           np.int64)
            cycles = column_cycles = own = stored = 0
            cover = coverage(layer)
            for grp in conv_groups(layer, values):
                hi, lo = kernels.brick_widths(grp.padded, acc.lanes, signed)
                check_width(layer, int(hi.max(initial=0)), act_bits, "activations")
                c, busy = kernels.conv_cycles(hi, lo, trim, *layer.output_hw, *layer.stride, *layer.kernel,
                                              cols, acc.columns_per_group, 1, ones, acc.column_registers)
                cycles += int(c)
                column_cycles += int(busy)
                own += int(kernels.covered_widths(grp.padded, cover, signed, trim, 1))
                stored += storage_bits(hi, layer, acc.lanes, layer.channels_per_group, act_bits)
            cycles *= filter_tiles * weight_passes
            act_read = column_cycles * filter_tiles * weight_passes * acc.lanes
            useful = own * layer.filters_per_group * weight_passes

        return ComputeCounters(
            steps=n,
            compute_cycles=cycles,
            lane_slots=cycles * array_lanes(acc, cols),
            # a MAC needs its activation's own width of 1-bit lane-cycles (per weight slice)
            useful_lane_slots=useful,
            # a busy column reads one bit of each of its `lanes` activations per cycle
            act_buffer_read_bits=act_read,
            weight_buffer_read_bits=weight_read_bits(acc, n, weight_bits),
            out_buffer_write_bits=out_write_bits(layer, acc),
            unit_events={f"sip{acc.base_width}": cycles * acc.tiles * acc.rows * cols},
            dynamic_act_storage_bits=stored,
        )
