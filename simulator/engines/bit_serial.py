"""Bit-serial engine: Stripes (Judd et al., MICRO 2016).

Activations are processed bit-serially, one bit per cycle, weights bit-parallel at ``base_width``
bits: a step takes act_bits * passes(weight_bits) cycles, but ``columns`` windows proceed together,
so a convolution whose windows fill the columns runs columns/act_bits times faster than DaDianNao
at 16 columns and 16 bits. A fully connected layer has one window; its serial units start one
brick per cycle across their columns instead (weights arrive one brick per cycle), which gives the
bit-parallel throughput plus a pipeline fill of act_bits - 1 cycles. See docs/engines.md.
"""
from __future__ import annotations

import numpy as np

from ..counters import ComputeCounters
from ..layers import FC, LayerSpec
from .base import Engine, array_lanes, check_bits, out_write_bits, passes, steps, weight_read_bits


def staggered_cycles(bricks: int, act_bits: int, columns: int) -> int:
    """Cycles to run ``bricks`` bit-serial bricks of ``act_bits`` cycles each when at most one brick
    starts per cycle and each of ``columns`` columns holds one brick at a time.

    Brick i goes to column i mod columns and starts at (i // columns) * max(act_bits, columns)
    + i mod columns; the last one ends act_bits cycles later. With act_bits <= columns this is
    bricks + act_bits - 1 (one start per cycle, then the pipeline drains).
    """
    if bricks <= 0:
        return 0
    last = bricks - 1
    return (last // columns) * max(act_bits, columns) + last % columns + act_bits


def serial_dot(a: np.ndarray, w: np.ndarray, bits: int, signed: bool) -> int:
    """Dot product of ``a`` and ``w`` computed the way a serial inner-product unit does it.

    Each cycle takes one bit of every activation (most significant first), ANDs it with the
    matching weight, sums the products in the adder tree and shift-accumulates the sum. For
    ``signed`` activations (two's complement) the most significant bit weighs -2^(bits-1), so its
    partial sum is subtracted. Weights are whole integers (bit-parallel). Python ints: no overflow.
    """
    a = np.asarray(a, dtype=np.int64).ravel()
    w = np.asarray(w, dtype=np.int64).ravel()
    if a.shape != w.shape:
        raise ValueError(f"serial_dot: {a.shape} activations against {w.shape} weights")
    if bits < 1:
        raise ValueError(f"serial_dot: bits must be at least 1, got {bits}")
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        raise ValueError(f"serial_dot: activations outside the {bits}-bit {'signed' if signed else 'unsigned'} range")
    code = a & ((1 << bits) - 1)          # two's complement bit pattern (unchanged when unsigned)
    total = 0
    for b in range(bits - 1, -1, -1):
        plane = (code >> b) & 1
        partial = int(w[plane == 1].sum())  # AND with the weights, then the adder tree
        if signed and b == bits - 1:
            partial = -partial
        total = (total << 1) + partial
    return total


class BitSerialEngine(Engine):
    name = "bit-serial"
    needs_values = False

    def cycles_per_step(self, act_bits: int, weight_bits: int) -> int:
        return act_bits * passes(weight_bits, self.config.base_width)

    def compute(self, layer: LayerSpec, act_bits: int, weight_bits: int,
                activations: np.ndarray | None = None, weights: np.ndarray | None = None,
                act_signed: bool | None = None, weight_signed: bool | None = None) -> ComputeCounters:
        check_bits(layer, act_bits, weight_bits)
        acc, cols = self.config, self.columns
        weight_passes = passes(weight_bits, acc.base_width)
        if layer.kind == FC:
            # One window: a step is one brick for one column; columns take bricks in turn.
            n = steps(layer, acc, 1)
            brick_columns = n * weight_passes
            cycles = staggered_cycles(brick_columns, act_bits, cols)
        else:
            n = steps(layer, acc, cols)
            brick_columns = n * cols * weight_passes
            cycles = n * self.cycles_per_step(act_bits, weight_bits)
        lanes = array_lanes(acc, cols)
        return ComputeCounters(
            steps=n,
            compute_cycles=cycles,
            lane_slots=cycles * lanes,
            useful_lane_slots=layer.macs * self.cycles_per_step(act_bits, weight_bits),
            # Each column busy with a brick reads one bit of its `lanes` activations per cycle.
            act_buffer_read_bits=brick_columns * acc.lanes * act_bits,
            weight_buffer_read_bits=weight_read_bits(acc, n, weight_bits),
            out_buffer_write_bits=out_write_bits(layer, acc),
            # Serial inner-product units (one per tile, row and column), not gated when idle.
            unit_events={f"sip{acc.base_width}": cycles * acc.tiles * acc.rows * cols},
        )
