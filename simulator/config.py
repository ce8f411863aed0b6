"""Typed configuration of the hardware side: accelerators, memory systems, energy tables.

These are plain pydantic models so that the workload loader can validate them with located errors;
the engines, the memory model and the energy accounting take them as arguments and never see YAML.
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator

ENGINES = ("bit-parallel", "bit-serial")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AcceleratorConfig(Strict):
    """A DaDianNao-style array: ``tiles`` tiles of ``rows`` filter lanes, each taking a brick of
    ``lanes`` input channels per step, ``columns`` windows side by side (bit-serial engines)."""

    name: str
    engine: Literal["bit-parallel", "bit-serial"]
    tiles: PositiveInt = 16
    rows: PositiveInt = 16
    lanes: PositiveInt = 16
    columns: Optional[PositiveInt] = None        # default: 1 bit-parallel, 16 bit-serial
    base_width: PositiveInt = 16                 # datapath width; wider values take ceil(p/base_width) passes
    frequency_mhz: PositiveFloat = 1000.0

    @property
    def windows_per_step(self) -> int:
        if self.columns is not None:
            return self.columns
        return 1 if self.engine == "bit-parallel" else 16


class MemoryConfig(Strict):
    """On-chip buffers and the off-chip DRAM behind them.

    ``dram`` names a preset (see ``simulator.memory.DRAM_PRESETS``) or ``none`` for DaDianNao's
    everything-on-chip organisation; the numeric fields override the preset's figures.
    """

    name: str
    dram: str = "DDR4-3200"
    activation_buffer_kib: Optional[PositiveFloat] = 2048.0
    weight_buffer_kib: Optional[PositiveFloat] = 2048.0
    bandwidth_gbps: Optional[PositiveFloat] = None      # GB/s (10^9 bytes per second)
    burst_bytes: Optional[PositiveInt] = None
    latency_ns: Optional[float] = Field(default=None, ge=0)
    energy_pj_per_bit: Optional[float] = Field(default=None, ge=0)
    channels: PositiveInt = 1

    @property
    def on_chip(self) -> bool:
        return self.dram.lower() in ("none", "on-chip")

    @model_validator(mode="after")
    def _buffers_needed(self) -> "MemoryConfig":
        if not self.on_chip and (self.activation_buffer_kib is None or self.weight_buffer_kib is None):
            raise ValueError("activation_buffer_kib and weight_buffer_kib are required when dram is not 'none'")
        return self


class EnergyConfig(Strict):
    """Which energy table to use (``default`` or a YAML path) and per-entry overrides in pJ."""

    table: str = "default"
    overrides: dict[str, float] = Field(default_factory=dict)


DEFAULT_ACCELERATORS = (
    AcceleratorConfig(name="dadiannao", engine="bit-parallel"),
    AcceleratorConfig(name="stripes", engine="bit-serial"),
)
DEFAULT_MEMORY = (MemoryConfig(name="on-chip", dram="none", activation_buffer_kib=None, weight_buffer_kib=None),)
