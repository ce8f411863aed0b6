"""Serial weights and activations: Loom (Sharify et al., arXiv 1706.07853, DAC 2018).

Each lane of a Loom SIP multiplies ``bits_per_cycle`` activation bits by one weight bit per cycle,
so a step takes ceil(a / bits_per_cycle) x w cycles for activation width a and weight width w.
``a`` is the layer's p_a, or (``dynamic_activations``, the default) the width detected per group of
``group_columns`` windows as in Dynamic Stripes; ``w`` is the layer's p_w, or (``dynamic_weights``)
the widest weight the filter tile uses at that step. The default shape, 8 x 16 filters x 16 windows
of 16-lane 1b x 1b SIPs (32768 one-bit lanes), equals 128 16b x 16b MACs per cycle at 16 bits, the
configuration Loom's headline is given for (``config.ENGINE_SHAPES``; shape chosen here).

Fully connected layers have one window: columns take bricks in turn as in Stripes, but a brick's
activations are taken whole (passes(p_a) x base_width bits, bits_per_cycle at a time) against its
weights bit-serially, so fc time scales with the weight width alone, as Loom's abstract states.
Models in ``docs/engines.md``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import kernels
from ..counters import ComputeCounters
from ..errors import SimulatorError
from ..layers import FC, LayerSpec
from .base import Engine, array_lanes, check_bits, out_write_bits, passes, steps
from .dynamic import _ceil_div, check_width, conv_groups, coverage, layer_values, signedness


class LoomEngine(Engine):
    name = "loom"
    needs_values = True

    @property
    def needs_weights(self) -> bool:
        return bool(self.config.dynamic_weights)

    @property
    def unit(self) -> str:
        return f"loom_sip{self.config.bits_per_cycle}b"

    def compute(self, layer: LayerSpec, act_bits: int, weight_bits: int,
                activations: np.ndarray | None = None, weights: np.ndarray | None = None,
                act_signed: Optional[bool] = None, weight_signed: Optional[bool] = None) -> ComputeCounters:
        check_bits(layer, act_bits, weight_bits)
        acc, cols, k = self.config, self.columns, self.config.bits_per_cycle
        filters = acc.tiles * acc.rows
        filter_tiles = _ceil_div(layer.filters_per_group, filters)
        dyn_a, dyn_w = acc.dynamic_activations, acc.dynamic_weights
        values = layer_values(layer, activations, self.name)
        signed = signedness(values, act_signed)
        w4 = None
        if dyn_w:
            if weights is None:
                raise SimulatorError(f"layer {layer.name}: engine 'loom' with dynamic_weights needs the weights")
            w4 = np.asarray(weights)
            w_signed = signedness(w4, weight_signed)
            if layer.kind == FC:
                w4 = w4.reshape(layer.out_channels, layer.in_channels, 1, 1)

        if layer.kind == FC:
            n = steps(layer, acc, 1)
            a_cycles = _ceil_div(passes(act_bits, acc.base_width) * acc.base_width, k)
            b_n = _ceil_div(layer.in_channels, acc.lanes)
            if dyn_w:
                per, wsum = kernels.weight_tile_widths(w4, filters, acc.lanes, w_signed)   # (tiles, B)
                check_width(layer, int(per.max(initial=0)), weight_bits, "weights")
                wsum = int(wsum.sum())
            else:
                per = np.full((filter_tiles, b_n), weight_bits, np.int64)
                wsum = layer.weight_count * weight_bits
            seq = (a_cycles * per).reshape(-1)
            cycles = int(kernels.staggered_cycles_var(seq, cols))
            useful = int(a_cycles * wsum)
            act_read = n * acc.lanes * a_cycles * k
            weight_read = int(per.sum()) * filters * acc.lanes
        else:
            n = steps(layer, acc, cols)
            b_n = _ceil_div(layer.channels_per_group, acc.lanes)
            s_n = layer.kernel[0] * layer.kernel[1] * b_n
            groups_of_windows = _ceil_div(layer.windows, cols)
            cycles = useful = act_read = weight_read = 0
            cover = coverage(layer)
            for grp in conv_groups(layer, values, w4):
                if dyn_w:
                    # per (tile, step): widest weight; per (c, ky, kx): widths summed over the filters
                    per, wsum = kernels.weight_tile_widths(grp.weights, filters, acc.lanes, w_signed)
                    check_width(layer, int(per.max(initial=0)), weight_bits, "weights")
                else:
                    per = np.full((filter_tiles, s_n), weight_bits, np.int64)
                    wsum = np.full((layer.channels_per_group, *layer.kernel), layer.filters_per_group * weight_bits)
                if dyn_a:
                    hi, lo = kernels.brick_widths(grp.padded, acc.lanes, signed)
                    check_width(layer, int(hi.max(initial=0)), act_bits, "activations")
                    wmul = per if dyn_w else np.ones((1, s_n), np.int64)
                    c, busy = kernels.conv_cycles(hi, lo, acc.trim_trailing, *layer.output_hw, *layer.stride,
                                                  *layer.kernel, cols, acc.columns_per_group, k, wmul,
                                                  acc.column_registers)
                    cycles += int(c) * (1 if dyn_w else filter_tiles * weight_bits)
                    act_read += int(busy) * filter_tiles * k * acc.lanes
                    if dyn_w:       # weights differ per (c, ky, kx): sum per channel and kernel position
                        own = kernels.value_widths(grp.padded, signed, acc.trim_trailing).astype(np.int64)
                        own = (own + k - 1) // k
                        useful += int((kernels.window_sums(own, *layer.output_hw, *layer.stride, *layer.kernel)
                                       * wsum).sum())
                    else:
                        useful += int(kernels.covered_widths(grp.padded, cover, signed, acc.trim_trailing, k)
                                      * layer.filters_per_group * weight_bits)
                else:
                    # every column takes ceil(p_a / k) per weight bit: no value matters but the weights'
                    a_cycles = _ceil_div(act_bits, k)
                    cycles += groups_of_windows * a_cycles * int(per.sum())
                    act_read += layer.windows * s_n * filter_tiles * a_cycles * k * acc.lanes
                    useful += layer.windows * a_cycles * int(wsum.sum())
                # a tile reads its rows x lanes weights once per step, at the step's width
                weight_read += groups_of_windows * int(per.sum()) * filters * acc.lanes

        return ComputeCounters(
            steps=n,
            compute_cycles=cycles,
            lane_slots=cycles * array_lanes(acc, cols),
            # a MAC needs ceil(a/k) x w lane-cycles at its activation's and weight's own widths
            useful_lane_slots=useful,
            act_buffer_read_bits=act_read,
            weight_buffer_read_bits=weight_read,
            out_buffer_write_bits=out_write_bits(layer, acc),
            unit_events={self.unit: cycles * acc.tiles * acc.rows * cols},
        )
