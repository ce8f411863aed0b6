"""Typed configuration of the hardware side: accelerators, memory systems, energy tables.

These are plain pydantic models so that the workload loader can validate them with located errors;
the engines, the memory model and the energy accounting take them as arguments and never see YAML.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

ENGINES = ("bit-parallel", "bit-serial", "dynamic", "pragmatic", "loom", "bitfusion")

# Array shapes that differ from DaDianNao's by default (fields left out of a workload take these).
# Loom: 8 x 16 filters x 16 windows of 16-lane 1b x 1b SIPs = 32768 one-bit lanes, the peak of
# 128 16b x 16b MACs per cycle that Loom is evaluated at (arXiv 1706.07853 v2; shape chosen here).
# Bit Fusion: 512 Fusion Units, 32 (reduction) x 16 (filters), as recalled from Sharma et al. ISCA 2018.
ENGINE_SHAPES: dict[str, dict[str, int]] = {
    "loom": {"tiles": 8, "rows": 16, "lanes": 16, "columns": 16},
    "bitfusion": {"tiles": 1, "rows": 16, "lanes": 32, "columns": 1},
}
# Fields read by one family of engines only; setting one for another engine is a mistake.
ENGINE_FIELDS: dict[str, tuple[str, ...]] = {
    "group_columns": ("dynamic", "loom"),
    "trim_trailing": ("dynamic", "loom"),
    "run_ahead": ("dynamic", "pragmatic", "loom"),
    "booth": ("pragmatic",),
    "shifter_bits": ("pragmatic",),
    "dynamic_activations": ("loom",),
    "dynamic_weights": ("loom",),
    "bits_per_cycle": ("loom",),
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AcceleratorConfig(Strict):
    """A DaDianNao-style array: ``tiles`` tiles of ``rows`` filter lanes, each taking a brick of
    ``lanes`` input channels per step, ``columns`` windows side by side (bit-serial engines)."""

    name: str
    engine: Literal["bit-parallel", "bit-serial", "dynamic", "pragmatic", "loom", "bitfusion"]
    tiles: PositiveInt = 16
    rows: PositiveInt = 16
    lanes: PositiveInt = 16
    columns: Optional[PositiveInt] = None        # default: 1 bit-parallel, 16 bit-serial
    base_width: PositiveInt = 16                 # datapath width; wider values take ceil(p/base_width) passes
    frequency_mhz: PositiveFloat = 1000.0
    baseline: Optional[str] = None               # accelerator its speedup is measured against (e.g. one of
    #                                              equal peak throughput); default: the workload's baseline
    # Value-aware engines (docs/engines.md has the models and their papers).
    group_columns: Optional[PositiveInt] = None  # windows sharing one detected precision; default: all columns
    trim_trailing: bool = False                  # dynamic width msb - lsb + 1 instead of msb + 1
    run_ahead: Optional[NonNegativeInt] = None   # column registers: steps a column may lead the slowest;
    #                                              default 1 for pragmatic (PRA-2b-1R), 0 otherwise
    booth: bool = False                          # Pragmatic: terms of the Booth (non-adjacent form) recoding
    shifter_bits: int = Field(default=2, ge=0, le=4)  # Pragmatic: first-stage shifter spans 2^b bit positions
    dynamic_activations: bool = True             # Loom: activation width detected per group at run time
    dynamic_weights: bool = False                # Loom: weight width per step from the filter tile's weights
    bits_per_cycle: Literal[1, 2, 4] = 1         # Loom: activation bits a lane takes per cycle

    @model_validator(mode="before")
    @classmethod
    def _engine_shape(cls, data: Any) -> Any:
        # Only the fields a workload leaves out take the engine's own shape.
        if isinstance(data, dict) and data.get("engine") in ENGINE_SHAPES:
            data = {**ENGINE_SHAPES[data["engine"]], **data}
        return data

    @model_validator(mode="after")
    def _engine_fields(self) -> "AcceleratorConfig":
        for name, engines in ENGINE_FIELDS.items():
            if name in self.model_fields_set and self.engine not in engines:
                raise ValueError(f"field '{name}' applies to engine {' / '.join(engines)} only, "
                                 f"not {self.engine!r}")
        if self.group_columns is not None and self.group_columns > self.windows_per_step:
            raise ValueError(f"group_columns ({self.group_columns}) exceeds the {self.windows_per_step} columns")
        return self

    @property
    def windows_per_step(self) -> int:
        if self.columns is not None:
            return self.columns
        return 1 if self.engine == "bit-parallel" else 16

    @property
    def columns_per_group(self) -> int:
        """Windows whose activations share one detected precision (a whole step by default)."""
        return self.group_columns if self.group_columns is not None else self.windows_per_step

    @property
    def column_registers(self) -> int:
        """Steps a column may run ahead of the slowest one (Pragmatic's default: one register)."""
        if self.run_ahead is not None:
            return self.run_ahead
        return 1 if self.engine == "pragmatic" else 0


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
