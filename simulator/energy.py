"""Energy accounting: event counts from the engines and the memory model times energy per event.

The per-event energies live in a YAML table with units and a source per entry (the default one,
``simulator/data/energy_45nm.yaml``, is derived from Horowitz's ISSCC 2014 45 nm figures and
documented in ``docs/energy.md``). The table is open: an engine that reports a new arithmetic unit
in ``ComputeCounters.unit_events`` needs only a new ``pJ`` entry of the same name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from simulator.config import EnergyConfig
from simulator.counters import ComputeCounters, MemoryCounters
from simulator.errors import SimulatorError

DEFAULT_TABLE = "default"
DEFAULT_TABLE_FILE = "energy_45nm.yaml"
UNITS = ("pJ", "pJ/bit", "mW")

# Entries the accounting itself reads, with the unit each must have; compute units are looked up
# by the names the engines report and only need to exist when an engine uses them.
REQUIRED_ENTRIES = {
    "act_buffer_pj_per_bit": "pJ/bit",
    "weight_buffer_pj_per_bit": "pJ/bit",
    "out_buffer_pj_per_bit": "pJ/bit",
    "leakage": "mW",
}
COMPONENTS = ("compute", "act_buffer", "weight_buffer", "out_buffer", "dram", "leakage")


@dataclass(frozen=True)
class EnergyTable:
    """Energy per event (``pJ``), per bit (``pJ/bit``) or static power (``mW``), by entry name."""

    entries: dict[str, float]
    units: dict[str, str]
    sources: dict[str, str]
    name: str


def _read_default_text() -> str:
    # Package data, so that the table ships with a wheel install as well as an editable one.
    return (resources.files("simulator") / "data" / DEFAULT_TABLE_FILE).read_text(encoding="utf-8")


def _parse_table(text: str, where: str) -> EnergyTable:
    """Validate one table's YAML; every error names ``where`` (the file) and the entry at fault."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SimulatorError(f"energy table {where}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), dict) or not doc["entries"]:
        raise SimulatorError(f"energy table {where}: expected a mapping with a non-empty 'entries:' mapping")
    table_source = str(doc.get("source", ""))
    entries: dict[str, float] = {}
    units: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name, entry in doc["entries"].items():
        at = f"energy table {where}, entry {name!r}"
        if not isinstance(entry, dict) or "value" not in entry or "unit" not in entry:
            raise SimulatorError(f"{at}: expected a mapping with 'value' and 'unit' (and 'source', 'note')")
        value = entry["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise SimulatorError(f"{at}: value {value!r} is not a finite non-negative number")
        if entry["unit"] not in UNITS:
            raise SimulatorError(f"{at}: unit {entry['unit']!r} is not one of {', '.join(UNITS)}")
        entries[str(name)] = float(value)
        units[str(name)] = entry["unit"]
        sources[str(name)] = str(entry.get("source", table_source))
    for name, unit in REQUIRED_ENTRIES.items():
        if name not in entries:
            raise SimulatorError(f"energy table {where}: missing entry {name!r} (required: {', '.join(REQUIRED_ENTRIES)})")
        if units[name] != unit:
            raise SimulatorError(f"energy table {where}, entry {name!r}: unit must be {unit!r}, not {units[name]!r}")
    return EnergyTable(entries, units, sources, where)


def load_table(cfg: EnergyConfig) -> EnergyTable:
    """The table ``cfg`` names (``default`` or a YAML path), with ``cfg.overrides`` applied."""
    if cfg.table == DEFAULT_TABLE:
        table = _parse_table(_read_default_text(), DEFAULT_TABLE)
    else:
        path = Path(cfg.table)
        if not path.is_file():
            raise SimulatorError(f"energy table {cfg.table}: no such file")
        table = _parse_table(path.read_text(encoding="utf-8"), str(path))
    if not cfg.overrides:
        return table
    entries, sources = dict(table.entries), dict(table.sources)
    for name, value in cfg.overrides.items():
        if name not in entries:
            raise SimulatorError(f"energy override {name!r}: no such entry in table {table.name} "
                                 f"(valid: {', '.join(sorted(entries))})")
        if not math.isfinite(value) or value < 0:
            raise SimulatorError(f"energy override {name!r}: value {value!r} is not a finite non-negative number")
        entries[name] = float(value)
        sources[name] = "override"
    return EnergyTable(entries, dict(table.units), sources, table.name)


def _pj_per_event(table: EnergyTable, unit: str) -> float:
    if unit not in table.entries:
        events = sorted(k for k, u in table.units.items() if u == "pJ")
        raise SimulatorError(f"energy table {table.name}: no entry for compute unit {unit!r} "
                             f"(per-event entries: {', '.join(events) or 'none'})")
    if table.units[unit] != "pJ":
        raise SimulatorError(f"energy table {table.name}, entry {unit!r}: a compute unit must be in 'pJ' "
                             f"per event, not {table.units[unit]!r}")
    return table.entries[unit]


def layer_energy(compute: ComputeCounters, memory: MemoryCounters | None, dram_pj_per_bit: float,
                 frequency_mhz: float, table: EnergyTable) -> dict[str, float]:
    """Energy in pJ per component of one layer for one input, and their ``total``.

    ``memory`` is None for an everything-on-chip organisation (no DRAM traffic, no stalls).
    Leakage is static power over the layer's run time: mW x cycles / MHz x 1e3 gives pJ.
    """
    if not frequency_mhz > 0:
        raise SimulatorError(f"frequency_mhz must be positive, not {frequency_mhz!r}")
    e = table.entries
    cycles = memory.total_cycles if memory is not None else compute.compute_cycles
    parts = {
        "compute": sum(count * _pj_per_event(table, unit) for unit, count in compute.unit_events.items()),
        "act_buffer": compute.act_buffer_read_bits * e["act_buffer_pj_per_bit"],
        "weight_buffer": compute.weight_buffer_read_bits * e["weight_buffer_pj_per_bit"],
        "out_buffer": compute.out_buffer_write_bits * e["out_buffer_pj_per_bit"],
        "dram": memory.dram_bits * dram_pj_per_bit if memory is not None else 0.0,
        "leakage": e["leakage"] * cycles / frequency_mhz * 1e3,
    }
    parts = {k: float(v) for k, v in parts.items()}
    parts["total"] = sum(parts[k] for k in COMPONENTS)
    return parts


def describe_table(table: EnergyTable) -> list[dict[str, Any]]:
    """The table as rows (name, value, unit, source), for result files that must carry their source."""
    return [{"name": k, "value": v, "unit": table.units[k], "source": table.sources[k]}
            for k, v in table.entries.items()]
