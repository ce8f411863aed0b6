"""What every compute engine shares: the step count, precision passes, the counter formulas.

The reference organisation is DaDianNao's (Chen et al., MICRO 2014): ``tiles`` tiles, each with
``rows`` filter lanes taking a brick of ``lanes`` input channels per step; a bit-serial design such
as Stripes (Judd et al., MICRO 2016) adds ``columns`` windows side by side. One *step* feeds one
brick of one kernel position to every tile. An engine decides how many cycles a step takes at a
layer's precision; everything else (the step count, the buffer traffic formulas it shares with
other engines) lives here, each formula once. The models are written out in ``docs/engines.md``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from ..config import AcceleratorConfig
from ..counters import ComputeCounters
from ..errors import SimulatorError
from ..layers import CONV, FC, LayerSpec


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def passes(bits: int, base_width: int) -> int:
    """Datapath passes for an operand of ``bits`` on a ``base_width``-bit datapath: ceil(bits/base_width), at least 1."""
    if base_width < 1:
        raise ValueError(f"base_width must be positive, got {base_width}")
    return max(1, _ceil_div(bits, base_width))


def steps(layer: LayerSpec, acc: AcceleratorConfig, columns: int | None = None) -> int:
    """Steps to compute ``layer`` for one input; the one place the step formula lives.

    Per group:  ceil(Ox*Oy / columns) * ceil(K_g / (tiles*rows)) * ceil(C_g / lanes) * Kx * Ky,
    times ``groups``. A fully connected layer is one window of a 1x1 kernel. ``columns`` (windows
    processed side by side) defaults to the accelerator's ``windows_per_step``.
    """
    cols = acc.windows_per_step if columns is None else columns
    if cols < 1:
        raise SimulatorError(f"accelerator {acc.name!r}: field 'columns' must be at least 1, got {cols}")
    if layer.kind == FC:
        windows, kernel_positions = 1, 1
    elif layer.kind == CONV:
        windows, kernel_positions = layer.windows, layer.kernel[0] * layer.kernel[1]
    else:
        raise SimulatorError(f"layer {layer.name}: kind {layer.kind!r} is not a compute layer (valid: conv, fc)")
    per_group = (_ceil_div(windows, cols)
                 * _ceil_div(layer.filters_per_group, acc.tiles * acc.rows)
                 * _ceil_div(layer.channels_per_group, acc.lanes)
                 * kernel_positions)
    return layer.groups * per_group


def array_lanes(acc: AcceleratorConfig, columns: int) -> int:
    """Multiplier lanes of the array: one per (tile, filter row, channel lane, window column).

    For a bit-parallel engine a lane is a ``base_width`` x ``base_width`` multiplier; for a
    bit-serial one it is a 1-bit x ``base_width`` lane of a serial inner-product unit. Lane slots
    (lanes x cycles) are counted in that engine's own lane, so useful/provided is its utilisation.
    """
    return acc.tiles * acc.rows * acc.lanes * columns


def weight_read_bits(acc: AcceleratorConfig, weight_steps: int, weight_bits: int) -> int:
    """Weight buffer (SB) traffic: every tile reads ``rows*lanes`` weights per step and weight pass,
    ``base_width`` bits each, and holds them for the whole step (all its cycles and columns)."""
    per_step = acc.tiles * acc.rows * acc.lanes * acc.base_width
    return weight_steps * passes(weight_bits, acc.base_width) * per_step


def out_write_bits(layer: LayerSpec, acc: AcceleratorConfig) -> int:
    """Output buffer (NBout) traffic: each output value written once at ``base_width`` bits; partial
    sums stay in the units' accumulators across steps (DaDianNao's output registers)."""
    return layer.output_count * acc.base_width


def check_bits(layer: LayerSpec, act_bits: int, weight_bits: int) -> None:
    for field, bits in (("act_bits", act_bits), ("weight_bits", weight_bits)):
        if int(bits) != bits or bits < 1:
            raise SimulatorError(f"layer {layer.name}: {field} must be a positive integer, got {bits!r}")


class Engine(ABC):
    """A compute engine: counts one layer's cycles and events for one input at given precisions."""

    name: ClassVar[str]              # registry key, equal to AcceleratorConfig.engine
    needs_values: ClassVar[bool]     # True when compute() needs the activation/weight values

    @property
    def needs_weights(self) -> bool:
        """True when this configuration reads the weight values (Loom's dynamic weight widths)."""
        return False

    def __init__(self, config: AcceleratorConfig):
        if config.engine != self.name:
            raise SimulatorError(f"accelerator {config.name!r}: field 'engine' is {config.engine!r}, "
                                 f"but {type(self).__name__} models {self.name!r}")
        self.config = config

    @property
    def columns(self) -> int:
        """Windows processed side by side."""
        return self.config.windows_per_step

    @abstractmethod
    def compute(self, layer: LayerSpec, act_bits: int, weight_bits: int,
                activations: np.ndarray | None = None, weights: np.ndarray | None = None,
                act_signed: bool | None = None, weight_signed: bool | None = None) -> ComputeCounters:
        """Counters of ``layer`` for ONE input. ``activations`` (C, H, W) integers are given only
        to engines with ``needs_values``, ``weights`` only where ``needs_weights``; the others ignore
        them. ``act_signed``/``weight_signed`` are the formats' signedness (from the trace); None:
        inferred from the values."""
