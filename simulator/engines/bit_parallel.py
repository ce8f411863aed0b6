"""Bit-parallel engine: DaDianNao (Chen et al., MICRO 2014).

Every multiplier lane takes a whole ``base_width``-bit activation and weight per cycle, so a step
takes one cycle whatever the layer's precision below ``base_width``: reduced precision saves
footprint and traffic but no time. Wider operands are split into ``base_width`` slices and take
passes(act_bits) * passes(weight_bits) cycles per step.
"""
from __future__ import annotations

import numpy as np

from ..counters import ComputeCounters
from ..layers import LayerSpec
from .base import Engine, array_lanes, check_bits, out_write_bits, passes, steps, weight_read_bits


class BitParallelEngine(Engine):
    name = "bit-parallel"
    needs_values = False

    def cycles_per_step(self, act_bits: int, weight_bits: int) -> int:
        bw = self.config.base_width
        return passes(act_bits, bw) * passes(weight_bits, bw)

    def compute(self, layer: LayerSpec, act_bits: int, weight_bits: int,
                activations: np.ndarray | None = None, weights: np.ndarray | None = None,
                act_signed: bool | None = None, weight_signed: bool | None = None) -> ComputeCounters:
        check_bits(layer, act_bits, weight_bits)
        acc, cols = self.config, self.columns
        n = steps(layer, acc, cols)
        per_step = self.cycles_per_step(act_bits, weight_bits)
        cycles = n * per_step
        lanes = array_lanes(acc, cols)
        # One brick of `lanes` activations per column per step, read at storage width (all its
        # base_width slices) and broadcast to every tile; it is held over the weight passes.
        act_bits_read = n * cols * acc.lanes * passes(act_bits, acc.base_width) * acc.base_width
        return ComputeCounters(
            steps=n,
            compute_cycles=cycles,
            lane_slots=cycles * lanes,
            useful_lane_slots=layer.macs * per_step,
            act_buffer_read_bits=act_bits_read,
            weight_buffer_read_bits=weight_read_bits(acc, n, weight_bits),
            out_buffer_write_bits=out_write_bits(layer, acc),
            # DaDianNao does not gate idle multipliers: every lane-cycle is an event.
            unit_events={f"mul{acc.base_width}x{acc.base_width}": cycles * lanes},
        )
