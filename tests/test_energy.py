"""Energy tables and per-layer energy accounting (simulator/energy.py)."""
from __future__ import annotations

import math

import pytest
import yaml

from simulator.config import EnergyConfig
from simulator.counters import ComputeCounters, MemoryCounters
from simulator.energy import COMPONENTS, REQUIRED_ENTRIES, EnergyTable, describe_table, layer_energy, load_table
from simulator.errors import SimulatorError

# Horowitz, ISSCC 2014, 45 nm 0.9 V (shared/reference/README.md): the anchor points of the table.
MUL8, MUL32 = 0.2, 3.1          # pJ, integer multiply
ADD8, ADD32 = 0.03, 0.1         # pJ, integer add
SRAM_1MB_64BIT = 100.0          # pJ per 64-bit read (the point the buffers do not use; see docs/energy.md)
SRAM_32KB_64BIT = 20.0
SRAM_8KB_64BIT = 10.0


def mul_pj(width_a: int, width_b: int) -> float:
    """Multiply energy linear in the product of widths, through the 8x8 and 32x32 points."""
    return MUL8 + (width_a * width_b - 64) * (MUL32 - MUL8) / (1024 - 64)


def add_pj(width: int) -> float:
    """Add energy linear in width, through the 8- and 32-bit points."""
    return ADD8 + (width - 8) * (ADD32 - ADD8) / (32 - 8)


# A table of round numbers, so that the hand-worked examples below are exact.
HAND = EnergyTable(
    entries={"mul16x16": 0.5, "sip16": 2.0, "act_buffer_pj_per_bit": 0.25, "weight_buffer_pj_per_bit": 0.5,
             "out_buffer_pj_per_bit": 1.0, "leakage": 10.0},
    units={"mul16x16": "pJ", "sip16": "pJ", "act_buffer_pj_per_bit": "pJ/bit",
           "weight_buffer_pj_per_bit": "pJ/bit", "out_buffer_pj_per_bit": "pJ/bit", "leakage": "mW"},
    sources={k: "test" for k in ("mul16x16", "sip16", "act_buffer_pj_per_bit", "weight_buffer_pj_per_bit",
                                 "out_buffer_pj_per_bit", "leakage")},
    name="hand",
)


def compute_counters(**kw) -> ComputeCounters:
    base = dict(steps=10, compute_cycles=1000, lane_slots=4096, useful_lane_slots=4000,
                act_buffer_read_bits=640, weight_buffer_read_bits=1280, out_buffer_write_bits=64,
                unit_events={"mul16x16": 100, "sip16": 10})
    base.update(kw)
    return ComputeCounters(**base)


def memory_counters(**kw) -> MemoryCounters:
    base = dict(tiles=2, loop_order="weights-stationary", dram_act_read_bits=800, dram_weight_read_bits=150,
                dram_out_write_bits=50, memory_cycles=1500, stall_cycles=1000, total_cycles=2000)
    base.update(kw)
    return MemoryCounters(**base)


def test_interpolation_hits_its_anchor_points():
    assert mul_pj(8, 8) == pytest.approx(MUL8) and mul_pj(32, 32) == pytest.approx(MUL32)
    assert add_pj(8) == pytest.approx(ADD8) and add_pj(32) == pytest.approx(ADD32)


def test_default_table_follows_its_documented_derivation():
    t = load_table(EnergyConfig())
    assert t.name == "default"
    # mul16x16 = 16x16 multiply (0.78 pJ) + one 16-bit add (0.0533 pJ), both interpolated.
    assert mul_pj(16, 16) == pytest.approx(0.78)
    assert t.entries["mul16x16"] == pytest.approx(mul_pj(16, 16) + add_pj(16), rel=1e-3)
    # sip16 = 16 one-bit x 16-bit products + 15 16-bit adds (tree) + one 32-bit shift-accumulate.
    assert t.entries["sip16"] == pytest.approx(16 * mul_pj(1, 16) + 15 * add_pj(16) + ADD32, rel=1e-3)
    # buffers: the documented banking assumption (docs/energy.md): weights at the 8 KB point,
    # activation and output buffers at the 32 KB point
    assert t.entries["weight_buffer_pj_per_bit"] == pytest.approx(SRAM_8KB_64BIT / 64)
    for buf in ("act_buffer_pj_per_bit", "out_buffer_pj_per_bit"):
        assert t.entries[buf] == pytest.approx(SRAM_32KB_64BIT / 64)
    assert t.units["mul16x16"] == t.units["sip16"] == "pJ"
    assert t.units["leakage"] == "mW"
    assert "interpolated" in t.sources["mul16x16"]
    assert "assumption" in t.sources["leakage"]
    assert all(t.sources[k] for k in t.entries)


def test_energy_is_the_sum_of_its_parts():
    e = layer_energy(compute_counters(), memory_counters(), 20.0, 1000.0, load_table(EnergyConfig()))
    assert set(e) == set(COMPONENTS) | {"total"}
    assert e["total"] == pytest.approx(sum(e[k] for k in COMPONENTS))
    assert all(e[k] > 0 for k in COMPONENTS)


def test_each_component_on_a_hand_worked_layer():
    e = layer_energy(compute_counters(), memory_counters(), 4.0, 500.0, HAND)
    assert e["compute"] == pytest.approx(100 * 0.5 + 10 * 2.0)           # 70 pJ
    assert e["act_buffer"] == pytest.approx(640 * 0.25)                  # 160 pJ
    assert e["weight_buffer"] == pytest.approx(1280 * 0.5)               # 640 pJ
    assert e["out_buffer"] == pytest.approx(64 * 1.0)                    # 64 pJ
    assert e["dram"] == pytest.approx((800 + 150 + 50) * 4.0)            # 4000 pJ
    # 10 mW for 2000 cycles at 500 MHz (4 us) = 4e-8 J = 40000 pJ; stalls count, not just compute.
    assert e["leakage"] == pytest.approx(40_000.0)
    assert e["total"] == pytest.approx(70 + 160 + 640 + 64 + 4000 + 40_000)


def test_on_chip_layer_has_no_dram_and_leaks_over_compute_cycles():
    e = layer_energy(compute_counters(), None, 4.0, 500.0, HAND)
    assert e["dram"] == 0.0
    assert e["leakage"] == pytest.approx(10.0 * 1000 / 500.0 * 1e3)      # 1000 compute cycles: 2 us
    assert e["total"] == pytest.approx(70 + 160 + 640 + 64 + 20_000)


def test_no_events_no_compute_energy():
    e = layer_energy(compute_counters(unit_events={}), None, 4.0, 500.0, HAND)
    assert e["compute"] == 0.0


def test_unknown_unit_key_is_named():
    with pytest.raises(SimulatorError, match=r"'mul4x4'.*mul16x16, sip16"):
        layer_energy(compute_counters(unit_events={"mul4x4": 3}), None, 4.0, 500.0, HAND)


def test_unit_key_must_be_a_per_event_entry():
    with pytest.raises(SimulatorError, match=r"'leakage'.*pJ"):
        layer_energy(compute_counters(unit_events={"leakage": 3}), None, 4.0, 500.0, HAND)


def test_frequency_must_be_positive():
    with pytest.raises(SimulatorError, match="frequency"):
        layer_energy(compute_counters(), None, 4.0, 0.0, HAND)


def test_overrides_change_exactly_their_entry():
    base = load_table(EnergyConfig())
    over = load_table(EnergyConfig(overrides={"sip16": 3.5, "leakage": 250.0}))
    assert over.entries["sip16"] == 3.5 and over.entries["leakage"] == 250.0
    assert over.sources["sip16"] == over.sources["leakage"] == "override"
    for k in base.entries:
        if k not in ("sip16", "leakage"):
            assert over.entries[k] == base.entries[k] and over.sources[k] == base.sources[k]
    assert over.units == base.units
    # Only the overridden components move.
    c = compute_counters(unit_events={"mul16x16": 100})
    e0 = layer_energy(c, None, 4.0, 1000.0, base)
    e1 = layer_energy(c, None, 4.0, 1000.0, load_table(EnergyConfig(overrides={"mul16x16": 2.0})))
    assert e1["compute"] == pytest.approx(200.0)
    assert {k: e1[k] for k in COMPONENTS if k != "compute"} == {k: e0[k] for k in COMPONENTS if k != "compute"}


def test_unknown_override_names_the_key_and_the_valid_ones():
    with pytest.raises(SimulatorError, match=r"'mul_16'.*valid:.*act_buffer_pj_per_bit.*mul16x16"):
        load_table(EnergyConfig(overrides={"mul_16": 1.0}))


def test_negative_override_is_refused():
    with pytest.raises(SimulatorError, match="'sip16'"):
        load_table(EnergyConfig(overrides={"sip16": -1.0}))


def _user_table() -> dict:
    return {
        "source": "a test table",
        "technology": "7 nm",
        "entries": {
            "mul16x16": {"value": 0.1, "unit": "pJ", "source": "made up", "note": "x"},
            "mul8x8": {"value": 0.03, "unit": "pJ"},                           # a unit a later engine adds
            "act_buffer_pj_per_bit": {"value": 0.02, "unit": "pJ/bit", "source": "made up"},
            "weight_buffer_pj_per_bit": {"value": 0.03, "unit": "pJ/bit", "source": "made up"},
            "out_buffer_pj_per_bit": {"value": 0.04, "unit": "pJ/bit", "source": "made up"},
            "leakage": {"value": 5, "unit": "mW", "source": "made up"},
        },
    }


def test_user_yaml_table_round_trip(tmp_path):
    doc = _user_table()
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump(doc))
    t = load_table(EnergyConfig(table=str(path)))
    assert t.name == str(path)
    assert t.entries == {k: float(v["value"]) for k, v in doc["entries"].items()}
    assert t.units == {k: v["unit"] for k, v in doc["entries"].items()}
    assert t.sources["mul16x16"] == "made up"
    assert t.sources["mul8x8"] == "a test table"                             # falls back to the table's source
    e = layer_energy(compute_counters(unit_events={"mul8x8": 1000}), None, 0.0, 1000.0, t)
    assert e["compute"] == pytest.approx(30.0)


def test_missing_table_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SimulatorError, match="nope.yaml"):
        load_table(EnergyConfig(table=str(missing)))


@pytest.mark.parametrize("entry, bad", [
    ("sip16", {"value": "fast", "unit": "pJ"}),
    ("sip16", {"value": 1.0, "unit": "nJ"}),
    ("sip16", {"value": -1.0, "unit": "pJ"}),
    ("sip16", {"unit": "pJ"}),
    ("sip16", 1.78),
    ("leakage", {"value": 5, "unit": "pJ"}),
])
def test_malformed_entry_names_file_and_entry(tmp_path, entry, bad):
    doc = _user_table()
    doc["entries"][entry] = bad
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SimulatorError, match=rf"bad\.yaml.*'{entry}'"):
        load_table(EnergyConfig(table=str(path)))


def test_missing_required_entry_is_named(tmp_path):
    doc = _user_table()
    del doc["entries"]["out_buffer_pj_per_bit"]
    path = tmp_path / "short.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SimulatorError, match=r"short\.yaml.*'out_buffer_pj_per_bit'"):
        load_table(EnergyConfig(table=str(path)))


@pytest.mark.parametrize("text", ["entries: [1, 2]", "just a string", "entries: {a: {value: 1, unit: pJ}\n"])
def test_malformed_table_names_file(tmp_path, text):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(SimulatorError, match=r"broken\.yaml"):
        load_table(EnergyConfig(table=str(path)))


def test_required_entries_exist_in_default_table():
    t = load_table(EnergyConfig())
    for name, unit in REQUIRED_ENTRIES.items():
        assert t.units[name] == unit
    assert all(math.isfinite(v) and v >= 0 for v in t.entries.values())


def test_stripes_break_even_precision_of_the_default_table():
    """Stripes spends p sip16-cycles on 16 products where DaDianNao spends 16 mul16x16 lane-cycles,
    so its compute energy per MAC is lower when p < 16 * mul16x16 / sip16: 7.49 bits with this table
    (arithmetic only; buffer and leakage energy shift the whole-chip comparison)."""
    t = load_table(EnergyConfig())
    assert 16 * t.entries["mul16x16"] / t.entries["sip16"] == pytest.approx(7.49, abs=0.01)


def test_describe_table_carries_every_entry_with_its_source():
    rows = describe_table(load_table(EnergyConfig(overrides={"leakage": 5.0})))
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == set(load_table(EnergyConfig()).entries)
    assert by_name["leakage"] == {"name": "leakage", "value": 5.0, "unit": "mW", "source": "override"}
