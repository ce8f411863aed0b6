"""Result folders as the figures see them: ``layers.csv`` (through ``simulator.results.read_csv``)
and ``run.json``. Nothing here runs the simulator or imports torch."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from ..errors import SimulatorError
from ..results import LayerRecord, read_csv

UNIFORM = re.compile(r"^uniform-(\d+)$")
PUBLISHED = "stripes-100"        # Stripes' per-layer profile at 100% of top-1
FALLBACK_MIN_BITS = 8            # else: the narrowest uniform-N with N >= 8 (8-bit inference is the
#                                  usual lossless point for ImageNet networks)
PROFILE_RULE = f"{PUBLISHED} where published, else the narrowest uniform-N with N \u2265 {FALLBACK_MIN_BITS}"


@dataclass
class ResultSet:
    """One results folder: its records and (when present) its ``run.json``."""

    path: Path
    records: list[LayerRecord]
    run: dict[str, Any] = field(default_factory=dict)

    @property
    def workload(self) -> str:
        return self.records[0].workload if self.records else self.path.name

    @property
    def accelerators(self) -> dict[str, str]:
        """Accelerator name -> engine, in file order."""
        return dict((r.accelerator, r.engine) for r in self.records)

    @property
    def profiles(self) -> list[str]:
        return list(dict.fromkeys(r.profile for r in self.records))

    @property
    def memories(self) -> list[str]:
        return list(dict.fromkeys(r.memory for r in self.records))

    @property
    def baseline(self) -> str:
        """The accelerator speedups are measured against: run.json's, else the first bit-parallel one."""
        if self.run.get("baseline") in self.accelerators:
            return self.run["baseline"]
        accs = self.accelerators
        return next((a for a, e in accs.items() if e == "bit-parallel"), next(iter(accs)))

    def baseline_of(self, accelerator: str) -> str:
        """The accelerator ``accelerator`` is measured against: its own ``baseline`` in run.json's
        workload (e.g. a bit-parallel array of equal peak throughput), else the folder's baseline."""
        for a in self.run.get("workload", {}).get("accelerators", []):
            if a.get("name") == accelerator and a.get("baseline") in self.accelerators:
                return a["baseline"]
        return self.baseline

    def dram(self, memory: str) -> Optional[str]:
        """The DRAM preset behind ``memory``; None when everything is on chip."""
        drams = self.run.get("dram")
        if isinstance(drams, dict) and memory in drams:
            d = drams[memory]
            return None if d is None else str(d.get("name", memory))
        for m in self.run.get("workload", {}).get("memory", []):
            if m.get("name") == memory:
                return None if str(m.get("dram", "")).lower() in ("none", "on-chip") else str(m["dram"])
        # no run.json: an on-chip memory never has DRAM traffic or DRAM busy cycles
        rows = [r for r in self.records if r.memory == memory]
        return None if all(r.memory_cycles == 0 and r.dram_bits == 0 for r in rows) else memory

    @property
    def on_chip_memories(self) -> list[str]:
        return [m for m in self.memories if self.dram(m) is None]

    @property
    def dram_memories(self) -> list[str]:
        return [m for m in self.memories if self.dram(m) is not None]

    def select(self, profile: Optional[str] = None, memory: Optional[str] = None,
               accelerator: Optional[str] = None) -> list[LayerRecord]:
        return [r for r in self.records if (profile is None or r.profile == profile)
                and (memory is None or r.memory == memory) and (accelerator is None or r.accelerator == accelerator)]

    def network(self, profile: str, memory: str, accelerator: str) -> dict[str, float]:
        """Network totals of one accelerator: layers summed per input, then averaged over the inputs
        (value-aware engines have one row per input; the others one row with input ``all``)."""
        per_input: dict[str, dict[str, float]] = {}
        for r in self.select(profile, memory, accelerator):
            t = per_input.setdefault(r.input, {"cycles": 0.0, "compute_cycles": 0.0, "energy_pj": 0.0,
                                               "dram_energy_pj": 0.0, "weight_bits": 0.0, "act_bits": 0.0,
                                               "fp32_bits": 0.0})
            t["cycles"] += r.total_cycles
            t["compute_cycles"] += r.compute_cycles
            t["energy_pj"] += r.energy_total_pj
            t["dram_energy_pj"] += r.energy_dram_pj
            t["weight_bits"] += r.footprint_weight_bits
            t["act_bits"] += r.footprint_act_bits
            t["fp32_bits"] += r.footprint_fp32_bits
        if not per_input:
            return {}
        n = len(per_input)
        return {k: sum(t[k] for t in per_input.values()) / n for k in next(iter(per_input.values()))}


def load_results(path: Union[str, Path]) -> ResultSet:
    """A results folder (or its ``layers.csv``) as a ``ResultSet``; run.json is optional."""
    p = Path(path)
    csv_path = p if p.suffix == ".csv" else p / "layers.csv"
    if not csv_path.is_file():
        raise SimulatorError(f"{p}: no layers.csv (write one with `python -m simulator run WORKLOAD`)")
    try:
        records = read_csv(csv_path)
    except (KeyError, ValueError, TypeError) as e:
        raise SimulatorError(f"{csv_path}: not a precision-sim results table ({e})") from None
    if not records:
        raise SimulatorError(f"{csv_path}: no rows")
    run_path = csv_path.parent / "run.json"
    run = json.loads(run_path.read_text()) if run_path.is_file() else {}
    return ResultSet(csv_path.parent, records, run)


def uniform_bits(profile: str) -> Optional[int]:
    m = UNIFORM.match(profile)
    return int(m.group(1)) if m else None


def published_profile(profiles: Sequence[str]) -> str:
    """The profile the zoo figure shows for a network (``PROFILE_RULE``)."""
    if PUBLISHED in profiles:
        return PUBLISHED
    uniform = sorted((b, p) for p in profiles if (b := uniform_bits(p)) is not None and b >= FALLBACK_MIN_BITS)
    return uniform[0][1] if uniform else profiles[0]


def short_profile(profile: str) -> str:
    """``uniform-8`` -> ``u8``, ``stripes-100`` -> ``s100``: short enough for a tick label."""
    b = uniform_bits(profile)
    if b is not None:
        return f"u{b}"
    m = re.match(r"^stripes-(\d+)$", profile)
    return f"s{m.group(1)}" if m else profile
