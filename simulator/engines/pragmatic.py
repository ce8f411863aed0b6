"""Essential bits: Bit-Pragmatic (Albericio et al., arXiv 1610.06920, MICRO 2017).

Stripes' array, but each lane of a Pragmatic inner-product unit (PIP) processes only the terms of
its activation: the non-zero bits of its magnitude (with ``booth``, the non-zero digits of its
non-adjacent form), one per cycle, most significant first. A PIP shifts each lane's weight by its
term's position in two stages: a per-lane first stage reaching 2**shifter_bits positions below the
column's highest pending term, and a shared second stage. So each cycle, every lane whose next term
lies within that window processes it; the others wait. A column's step takes that schedule's cycles
(at least one); columns wait for the slowest at every step unless they may run ``run_ahead`` steps
ahead (column registers; Pragmatic's PRA-2b-1R design, recalled: a 2-bit first stage, one register).
Fully connected layers use Stripes' staggered schedule with each brick's term cycles: no gain beyond
the pipeline fill. Models in ``docs/engines.md``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .. import kernels
from ..counters import ComputeCounters
from ..layers import FC, LayerSpec
from .base import Engine, array_lanes, check_bits, out_write_bits, passes, steps, weight_read_bits
from .dynamic import _ceil_div, check_width, conv_groups, coverage, layer_values


def terms(value: int, booth: bool) -> list[tuple[int, int]]:
    """(position, sign) of each term of ``value``'s magnitude, most significant first: its set bits,
    or with ``booth`` the non-zero digits of its non-adjacent form (digit by digit, textbook)."""
    m = abs(int(value))
    out = []
    if not booth:
        out = [(p, 1) for p in range(m.bit_length()) if (m >> p) & 1]
    else:
        p = 0
        while m:
            if m & 1:
                d = 2 - (m & 3)          # +1 or -1: the digit that leaves m - d divisible by 4
                out.append((p, d))
                m -= d
            m >>= 1
            p += 1
    return out[::-1]


def pragmatic_dot(a: np.ndarray, w: np.ndarray, booth: bool = False, shifter_bits: int = 4) -> tuple[int, int]:
    """Dot product of ``a`` and ``w`` computed term by term as one PIP column does, and its cycles.

    Each cycle, the column's highest pending term sets the second-stage shift; every lane whose next
    term is within 2**shifter_bits positions of it adds its weight shifted by the term's position
    (negated for a negative activation or a negative Booth digit). Python ints: no overflow.
    """
    a = np.asarray(a, dtype=np.int64).ravel()
    w = np.asarray(w, dtype=np.int64).ravel()
    if a.shape != w.shape:
        raise ValueError(f"pragmatic_dot: {a.shape} activations against {w.shape} weights")
    pending = [terms(v, booth) for v in a]
    signs = [-1 if v < 0 else 1 for v in a]
    window = 1 << shifter_bits
    total = cycles = 0
    while any(pending):
        top = max(t[0][0] for t in pending if t)
        for lane, t in enumerate(pending):
            if t and t[0][0] > top - window:
                pos, digit = t.pop(0)
                total += signs[lane] * digit * (int(w[lane]) << pos)
        cycles += 1
    return total, cycles


class PragmaticEngine(Engine):
    name = "pragmatic"
    needs_values = True

    @property
    def unit(self) -> str:
        return f"pip{self.config.base_width}s{self.config.shifter_bits}"

    def compute(self, layer: LayerSpec, act_bits: int, weight_bits: int,
                activations: np.ndarray | None = None, weights: np.ndarray | None = None,
                act_signed: Optional[bool] = None, weight_signed: Optional[bool] = None) -> ComputeCounters:
        check_bits(layer, act_bits, weight_bits)
        acc, cols = self.config, self.columns
        values = layer_values(layer, activations, self.name)
        booth, shift = acc.booth, acc.shifter_bits
        check_width(layer, int(np.abs(values).max(initial=0)).bit_length(), act_bits, "activation magnitudes")
        weight_passes = passes(weight_bits, acc.base_width)
        filter_tiles = _ceil_div(layer.filters_per_group, acc.tiles * acc.rows)

        if layer.kind == FC:
            per_brick = kernels.brick_terms_cycles(values, acc.lanes, shift, booth)[:, 0, 0].astype(np.int64)
            seq = np.repeat(np.tile(np.maximum(per_brick, 1), filter_tiles), weight_passes)
            n = steps(layer, acc, 1)
            cycles = int(kernels.staggered_cycles_var(seq, cols))
            brick_columns = n * weight_passes
            useful = int(kernels.covered_terms(values, coverage(layer), booth)) * layer.out_channels * weight_passes
        else:
            n = steps(layer, acc, cols)
            s_n = layer.kernel[0] * layer.kernel[1] * _ceil_div(layer.channels_per_group, acc.lanes)
            ones = np.ones((1, s_n), np.int64)
            cycles = own = 0
            cover = coverage(layer)
            for grp in conv_groups(layer, values):
                cost = kernels.brick_terms_cycles(grp.padded, acc.lanes, shift, booth)
                c, _ = kernels.conv_cycles(cost, cost, False, *layer.output_hw, *layer.stride, *layer.kernel,
                                           cols, 1, 1, ones, acc.column_registers)
                cycles += int(c)
                own += int(kernels.covered_terms(grp.padded, cover, booth))
            cycles *= filter_tiles * weight_passes
            # busy columns x steps: every window meets every step of its pass once
            brick_columns = layer.groups * layer.windows * s_n * filter_tiles * weight_passes
            useful = own * layer.filters_per_group * weight_passes

        return ComputeCounters(
            steps=n,
            compute_cycles=cycles,
            lane_slots=cycles * array_lanes(acc, cols),
            # a MAC needs one lane-cycle per term of its activation (per weight slice)
            useful_lane_slots=useful,
            # each busy column reads its brick once per step at storage width; the offset
            # generators turn it into terms
            act_buffer_read_bits=brick_columns * acc.lanes * act_bits,
            weight_buffer_read_bits=weight_read_bits(acc, n, weight_bits),
            out_buffer_write_bits=out_write_bits(layer, acc),
            unit_events={self.unit: cycles * acc.tiles * acc.rows * cols},
        )
