"""Fused bit-bricks: Bit Fusion (Sharma et al., "Bit Fusion: Bit-Level Dynamically Composable
Architecture for Accelerating Deep Neural Networks", ISCA 2018).

A Fusion Unit (FU) holds 16 BitBricks, each a 2-bit x 2-bit multiplier; at a layer's (p_a, p_w),
each rounded up to 2, 4, 8 or 16 bits, the FU fuses its bricks into 16 / ((p_a/2)(p_w/2)) multipliers
(spatial fusion: 16 at 2x2, 4 at 4x4, 1 at 8x8); above 8x8 one multiplier takes (p_a p_w)/64 cycles
(temporal fusion: 4 at 16x16). Widths above 16 bits take ceil(p/16) passes of 16. The FUs form an
array of ``lanes`` FU rows along the reduction (input channels x kernel positions, flattened as Bit
Fusion's compiler does) by ``tiles x rows`` FU columns along the filters; one window at a time
(``columns`` = 1). The default, 32 x 16 = 512 FUs, is the configuration recalled from the paper.
Time depends on shapes and precisions only. Models in ``docs/engines.md``.
"""
from __future__ import annotations

import numpy as np

from ..counters import ComputeCounters
from ..errors import SimulatorError
from ..layers import CONV, FC, LayerSpec
from .base import Engine, check_bits, out_write_bits, passes

BRICK_BITS = 2          # a BitBrick multiplies 2-bit operands
BRICKS_PER_FU = 16      # so an FU fuses up to one 8x8 multiplier spatially
FUSED_WIDTHS = (2, 4, 8, 16)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def fused_width(bits: int) -> tuple[int, int]:
    """(width, passes): ``bits`` rounded up to 2/4/8/16, and the 16-bit passes above 16 bits."""
    for w in FUSED_WIDTHS:
        if bits <= w:
            return w, 1
    return 16, passes(bits, 16)


def fusion(act_bits: int, weight_bits: int) -> tuple[int, int, int, int]:
    """(multipliers per FU, cycles per multiply, p_a rounded, p_w rounded) at one layer's precisions,
    passes excluded: the brick-cycles of one multiply, (p_a/2)(p_w/2), spread over an FU's 16 bricks."""
    a, _ = fused_width(act_bits)
    w, _ = fused_width(weight_bits)
    bricks = (a // BRICK_BITS) * (w // BRICK_BITS)
    return max(1, BRICKS_PER_FU // bricks), max(1, bricks // BRICKS_PER_FU), a, w


class BitFusionEngine(Engine):
    name = "bitfusion"
    needs_values = False

    @property
    def fusion_units(self) -> int:
        return self.config.tiles * self.config.rows * self.config.lanes

    def compute(self, layer: LayerSpec, act_bits: int, weight_bits: int,
                activations: np.ndarray | None = None, weights: np.ndarray | None = None,
                act_signed: bool | None = None, weight_signed: bool | None = None) -> ComputeCounters:
        check_bits(layer, act_bits, weight_bits)
        acc = self.config
        if acc.windows_per_step != 1:
            raise SimulatorError(f"accelerator {acc.name!r}: engine 'bitfusion' processes one window at a time "
                                 f"(columns: 1), got columns {acc.windows_per_step}")
        if layer.kind not in (CONV, FC):
            raise SimulatorError(f"layer {layer.name}: kind {layer.kind!r} is not a compute layer (valid: conv, fc)")
        spatial, temporal, a, w = fusion(act_bits, weight_bits)
        slices = fused_width(act_bits)[1] * fused_width(weight_bits)[1]
        reduction = layer.channels_per_group * layer.kernel[0] * layer.kernel[1]
        filters = acc.tiles * acc.rows
        # one step: one window, `filters` filters, lanes x spatial reduction elements (per group)
        n = (layer.groups * layer.windows * _ceil_div(layer.filters_per_group, filters)
             * _ceil_div(reduction, acc.lanes * spatial))
        cycles = n * temporal * slices
        per_step_inputs = acc.lanes * spatial
        return ComputeCounters(
            steps=n,
            compute_cycles=cycles,
            lane_slots=cycles * self.fusion_units * BRICKS_PER_FU,          # BitBrick-cycles
            useful_lane_slots=layer.macs * (a // BRICK_BITS) * (w // BRICK_BITS) * slices,
            # each step reads its inputs once (shared along the FU columns) and every FU's weights,
            # at the fused widths, once per 16-bit slice
            act_buffer_read_bits=n * slices * per_step_inputs * a,
            weight_buffer_read_bits=n * slices * per_step_inputs * filters * w,
            out_buffer_write_bits=out_write_bits(layer, acc),
            unit_events={"fusion_unit": cycles * self.fusion_units},
        )
