"""Result records, their file formats and the terminal summary.

One ``LayerRecord`` per layer x accelerator x profile x memory x input. CSV columns use SCALE-Sim's
names where one exists (``Total Cycles``, ``Stall Cycles``, ``Compute Util %``, ``SRAM IFMAP ...``,
``DRAM FILTER ...``) so scripts written for it carry over; ``docs/results.md`` lists every column.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Union


@dataclass
class LayerRecord:
    workload: str
    profile: str
    accelerator: str
    engine: str
    memory: str
    input: str                 # input id, or "all" when the engine's counts do not depend on values
    layer: str
    index: int
    kind: str
    macs: int
    act_bits: int
    weight_bits: int
    out_bits: int
    steps: int
    compute_cycles: int
    stall_cycles: int
    total_cycles: int
    memory_cycles: int
    bound: str
    tiles: int
    loop_order: str
    utilization: float        # useful lane slots / lane slots, in %
    idle_lane_slots: int
    act_buffer_read_bits: int
    weight_buffer_read_bits: int
    out_buffer_write_bits: int
    dram_act_read_bits: int
    dram_weight_read_bits: int
    dram_out_write_bits: int
    speedup: float            # baseline accelerator's total cycles (same profile, memory, input) / these
    energy_compute_pj: float
    energy_act_buffer_pj: float
    energy_weight_buffer_pj: float
    energy_out_buffer_pj: float
    energy_dram_pj: float
    energy_leakage_pj: float
    energy_total_pj: float
    footprint_weight_bits: int
    footprint_act_bits: int
    footprint_fp32_bits: int
    footprint_fixed16_bits: int
    footprint_dynamic_act_bits: int   # activations stored at per-group run-time widths (+ headers); -1 if n/a

    @property
    def dram_bits(self) -> int:
        return self.dram_act_read_bits + self.dram_weight_read_bits + self.dram_out_write_bits


CSV_NAMES: dict[str, str] = {
    "workload": "Workload", "profile": "Profile", "accelerator": "Accelerator", "engine": "Engine",
    "memory": "Memory", "input": "Input", "layer": "Layer", "index": "LayerID", "kind": "Kind", "macs": "MACs",
    "act_bits": "Act Bits", "weight_bits": "Weight Bits", "out_bits": "Out Bits", "steps": "Steps",
    "compute_cycles": "Compute Cycles", "stall_cycles": "Stall Cycles", "total_cycles": "Total Cycles",
    "memory_cycles": "DRAM Busy Cycles", "bound": "Bound", "tiles": "Tiles", "loop_order": "Loop Order",
    "utilization": "Compute Util %", "idle_lane_slots": "Idle Lane Slots",
    "act_buffer_read_bits": "SRAM IFMAP Read Bits", "weight_buffer_read_bits": "SRAM Filter Read Bits",
    "out_buffer_write_bits": "SRAM OFMAP Write Bits", "dram_act_read_bits": "DRAM IFMAP Read Bits",
    "dram_weight_read_bits": "DRAM Filter Read Bits", "dram_out_write_bits": "DRAM OFMAP Write Bits",
    "speedup": "Speedup", "energy_compute_pj": "Energy Compute pJ", "energy_act_buffer_pj": "Energy IFMAP SRAM pJ",
    "energy_weight_buffer_pj": "Energy Filter SRAM pJ", "energy_out_buffer_pj": "Energy OFMAP SRAM pJ",
    "energy_dram_pj": "Energy DRAM pJ", "energy_leakage_pj": "Energy Leakage pJ", "energy_total_pj": "Energy Total pJ",
    "footprint_weight_bits": "Footprint Weight Bits", "footprint_act_bits": "Footprint Act Bits",
    "footprint_fp32_bits": "Footprint FP32 Bits", "footprint_fixed16_bits": "Footprint Fixed16 Bits",
    "footprint_dynamic_act_bits": "Footprint Dynamic Act Bits",
}
assert set(CSV_NAMES) == {f.name for f in fields(LayerRecord)}

SUMMED = ("macs", "steps", "compute_cycles", "stall_cycles", "total_cycles", "memory_cycles",
          "act_buffer_read_bits", "weight_buffer_read_bits", "out_buffer_write_bits", "dram_act_read_bits",
          "dram_weight_read_bits", "dram_out_write_bits", "energy_compute_pj", "energy_act_buffer_pj",
          "energy_weight_buffer_pj", "energy_out_buffer_pj", "energy_dram_pj", "energy_leakage_pj",
          "energy_total_pj", "footprint_weight_bits", "footprint_act_bits", "footprint_fp32_bits",
          "footprint_fixed16_bits")


def totals(records: Iterable[LayerRecord]) -> list[dict[str, Any]]:
    """Network totals per (profile, accelerator, memory, input), with speedup against the baseline's totals."""
    groups: dict[tuple, dict[str, Any]] = {}
    for r in records:
        key = (r.profile, r.accelerator, r.memory, r.input)
        g = groups.setdefault(key, {"profile": r.profile, "accelerator": r.accelerator, "engine": r.engine,
                                    "memory": r.memory, "input": r.input, "layers": 0, "memory_bound_layers": 0,
                                    "_base": 0.0, **{k: 0 for k in SUMMED}})
        g["layers"] += 1
        g["memory_bound_layers"] += r.bound == "memory"
        g["_base"] += r.total_cycles * r.speedup     # the baseline's cycles for this layer
        for k in SUMMED:
            g[k] += getattr(r, k)
    out = []
    for g in groups.values():
        g["speedup"] = g.pop("_base") / g["total_cycles"] if g["total_cycles"] else float("nan")
        fp = g["footprint_weight_bits"] + g["footprint_act_bits"]
        g["footprint_reduction_vs_fp32"] = 1 - fp / g["footprint_fp32_bits"] if g["footprint_fp32_bits"] else 0.0
        out.append(g)
    return out


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", newline="") as f:
            write(f)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_csv(path: Union[str, Path], records: list[LayerRecord]) -> Path:
    path = Path(path)

    def write(f):
        w = csv.writer(f)
        w.writerow(CSV_NAMES.values())
        for r in records:
            w.writerow([getattr(r, k) for k in CSV_NAMES])
    _atomic_write(path, write)
    return path


def read_csv(path: Union[str, Path]) -> list[LayerRecord]:
    """Records back from a CSV written by ``write_csv`` (figures read results only this way)."""
    back = {v: k for k, v in CSV_NAMES.items()}
    types = {f.name: f.type for f in fields(LayerRecord)}
    conv = {"int": int, "float": float, "str": str}
    out = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out.append(LayerRecord(**{back[k]: conv[str(types[back[k]])](v) for k, v in row.items()}))
    return out


def write_json(path: Union[str, Path], payload: dict[str, Any]) -> Path:
    path = Path(path)
    _atomic_write(path, lambda f: json.dump(payload, f, indent=2, default=str))
    return path


def record_dicts(records: Iterable[LayerRecord]) -> list[dict[str, Any]]:
    return [asdict(r) for r in records]
