"""The counters every engine and the memory model report, per layer and per input.

Engines fill ``ComputeCounters``; the memory model fills ``MemoryCounters``; energy accounting reads
both. Keeping them here (not in an engine) is what lets every engine report the same columns.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional


@dataclass
class ComputeCounters:
    """Compute side of one layer for one input, with every value on chip.

    ``unit_events`` counts activations of the engine's arithmetic unit, keyed by the unit's name in
    the energy table (e.g. ``"mul16x16"`` for a bit-parallel multiplier lane-cycle, ``"sip16"``
    for one cycle of a 16-lane serial inner-product unit); energy multiplies each by its table entry.
    ``dynamic_act_storage_bits`` is set by engines that detect precision per group at run time: the
    input activations stored off chip at each group's width plus its per-group header.
    """

    steps: int
    compute_cycles: int
    lane_slots: int                 # multiplier-lane cycles provided: cycles x all lanes of the array
    useful_lane_slots: int          # of those, the ones doing a real multiply-accumulate
    act_buffer_read_bits: int       # on-chip activation buffer reads (NBin)
    weight_buffer_read_bits: int    # on-chip weight buffer reads (SB)
    out_buffer_write_bits: int      # on-chip output buffer writes (NBout)
    unit_events: dict[str, int] = field(default_factory=dict)
    dynamic_act_storage_bits: Optional[int] = None

    @property
    def idle_lane_slots(self) -> int:
        return self.lane_slots - self.useful_lane_slots

    def as_dict(self) -> dict:
        d = asdict(self)
        d["idle_lane_slots"] = self.idle_lane_slots
        return d


@dataclass
class MemoryCounters:
    """Off-chip side of one layer for one input, after overlapping fetches with compute."""

    tiles: int
    loop_order: str                 # which operand stays on chip while the other streams
    dram_act_read_bits: int
    dram_weight_read_bits: int
    dram_out_write_bits: int
    memory_cycles: int              # cycles the DRAM channel is busy, latency included
    stall_cycles: int               # cycles compute waits for data
    total_cycles: int               # compute + stalls

    @property
    def dram_bits(self) -> int:
        return self.dram_act_read_bits + self.dram_weight_read_bits + self.dram_out_write_bits

    @property
    def bound(self) -> str:
        # the first fetch and last write never overlap compute, so "any stall" would call every layer
        # memory-bound: a layer is memory-bound when the channel is busy longer than the array
        return "memory" if self.memory_cycles > self.total_cycles - self.stall_cycles else "compute"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["dram_bits"] = self.dram_bits
        d["bound"] = self.bound
        return d
