"""The back half end to end: traces -> engines x memory -> records, files and the run command."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from simulator.config import AcceleratorConfig, MemoryConfig
from simulator.results import CSV_NAMES, read_csv
from simulator.simulate import run_workload, simulate
from simulator.workload import workload_from_dict


def _workload(tmp_path: Path, **over) -> dict:
    wl = {
        "name": "tiny",
        "model": {"name": "lenet5", "seed": 1},
        "input": {"source": "random", "count": 2, "seed": 3},
        "profiles": {"uniform-16": "uniform-16", "uniform-8": "uniform-8",
                     "mixed": {"activations": {"conv1": 5, "conv2": 7}, "weights": 8, "default": 12}},
        "accelerators": [{"name": "dadn", "engine": "bit-parallel"}, {"name": "str", "engine": "bit-serial"}],
        "memory": [{"name": "on-chip", "dram": "none", "activation_buffer_kib": None, "weight_buffer_kib": None},
                   {"name": "ddr4", "dram": "DDR4-3200", "activation_buffer_kib": 4, "weight_buffer_kib": 4}],
        "baseline": "dadn",
        "traces_dir": str(tmp_path / "traces"),
        "results_dir": str(tmp_path / "results"),
    }
    wl.update(over)
    return wl


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sim")
    return run_workload(workload_from_dict(_workload(tmp), str(tmp / "tiny.yaml")), progress=False)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def test_every_layer_accelerator_profile_memory_has_one_record(result):
    layers = {r.layer for r in result.records}
    assert layers == {"conv1", "conv2", "fc1", "fc2", "fc3"}
    assert len(result.records) == 5 * 2 * 3 * 2


def test_compute_cycles_follow_the_step_formula(result):
    # independent of simulator.engines: DaDianNao 16x16x16, Stripes adds 16 window columns
    for r in result.records:
        spec = {"conv1": (28 * 28, 6, 1, 25), "conv2": (10 * 10, 16, 6, 25), "fc1": (1, 120, 400, 1),
                "fc2": (1, 84, 120, 1), "fc3": (1, 10, 84, 1)}[r.layer]
        windows, k, c, kk = spec
        if r.engine == "bit-parallel":
            assert r.compute_cycles == windows * _ceil(k, 256) * _ceil(c, 16) * kk
        elif r.kind == "conv":
            assert r.compute_cycles == _ceil(windows, 16) * _ceil(k, 256) * _ceil(c, 16) * kk * r.act_bits
        else:   # one window: bit-parallel rate plus the serial pipeline fill
            assert r.compute_cycles == _ceil(k, 256) * _ceil(c, 16) + r.act_bits - 1


def test_profiles_reach_the_engines(result):
    by = {(r.profile, r.accelerator, r.memory, r.layer): r for r in result.records}
    assert by[("mixed", "str", "on-chip", "conv1")].act_bits == 5
    assert by[("mixed", "str", "on-chip", "conv2")].act_bits == 7
    assert by[("mixed", "str", "on-chip", "fc1")].act_bits == 12
    assert by[("mixed", "str", "on-chip", "fc1")].weight_bits == 8
    # Stripes at 8 bits takes half its 16-bit conv cycles; DaDianNao is unchanged on chip
    for layer in ("conv1", "conv2"):
        assert by[("uniform-8", "str", "on-chip", layer)].compute_cycles * 2 == \
            by[("uniform-16", "str", "on-chip", layer)].compute_cycles
        assert by[("uniform-8", "dadn", "on-chip", layer)].total_cycles == \
            by[("uniform-16", "dadn", "on-chip", layer)].total_cycles


def test_on_chip_has_no_stalls_and_dram_adds_them(result):
    for r in result.records:
        if r.memory == "on-chip":
            assert r.stall_cycles == 0 and r.total_cycles == r.compute_cycles and r.dram_bits == 0
        else:
            assert r.total_cycles == r.compute_cycles + r.stall_cycles and r.dram_bits > 0


def test_packed_traffic_shrinks_with_precision(result):
    by = {(r.profile, r.accelerator, r.memory, r.layer): r for r in result.records}
    for layer in ("conv2", "fc1"):
        w16 = by[("uniform-16", "dadn", "ddr4", layer)].dram_weight_read_bits
        w8 = by[("uniform-8", "dadn", "ddr4", layer)].dram_weight_read_bits
        assert w8 <= w16 / 2 + 512 and w8 >= w16 / 2 - 512    # burst rounding (64-byte bursts)


def test_energy_is_the_sum_of_its_parts_and_speedup_is_against_the_baseline(result):
    by = {(r.profile, r.accelerator, r.memory, r.layer): r for r in result.records}
    for r in result.records:
        parts = (r.energy_compute_pj + r.energy_act_buffer_pj + r.energy_weight_buffer_pj
                 + r.energy_out_buffer_pj + r.energy_dram_pj + r.energy_leakage_pj)
        assert math.isclose(parts, r.energy_total_pj, rel_tol=1e-12)
        base = by[(r.profile, "dadn", r.memory, r.layer)]
        assert math.isclose(r.speedup, base.total_cycles / r.total_cycles)


def test_totals_add_up(result):
    for t in result.totals():
        recs = [r for r in result.records if (r.profile, r.accelerator, r.memory) ==
                (t["profile"], t["accelerator"], t["memory"])]
        assert t["total_cycles"] == sum(r.total_cycles for r in recs)
        base = sum(r.total_cycles for r in result.records if (r.profile, r.accelerator, r.memory) ==
                   (t["profile"], "dadn", t["memory"]))
        assert math.isclose(t["speedup"], base / t["total_cycles"])


def test_result_files_round_trip(result, tmp_path):
    csv_path, json_path = result.write(tmp_path / "out")
    back = read_csv(csv_path)
    assert len(back) == len(result.records)
    assert back[0] == result.records[0]
    header = csv_path.read_text().splitlines()[0].split(",")
    assert header == list(CSV_NAMES.values()) and "Total Cycles" in header and "Stall Cycles" in header
    meta = json.loads(json_path.read_text())
    assert meta["tool_version"] and meta["workload"]["name"] == "tiny"
    assert set(meta["traces"]) == {"uniform-16", "uniform-8", "mixed"}
    assert meta["workload"]["input"]["seed"] == 3 and len(meta["totals"]) == 12
    assert any(e["name"] == "mul16x16" and e["source"] for e in meta["energy_table"])


def test_simulate_reuses_a_trace_for_other_hardware(result):
    trace = result.traces["uniform-8"]
    wide = AcceleratorConfig(name="wide", engine="bit-serial", columns=32)
    unlimited = MemoryConfig(name="inf", dram="DDR4-3200", bandwidth_gbps=float("inf"), latency_ns=0.0,
                             activation_buffer_kib=1, weight_buffer_kib=1)
    recs = simulate(trace, [wide], [unlimited])
    assert {r.layer for r in recs} == {"conv1", "conv2", "fc1", "fc2", "fc3"}
    assert all(r.stall_cycles == 0 for r in recs)
    conv1 = next(r for r in recs if r.layer == "conv1")
    assert conv1.compute_cycles == _ceil(28 * 28, 32) * 25 * 8


@pytest.mark.parametrize("section,bad,expect", [
    ("accelerators", [{"name": "a", "engine": "bit-parallel", "tiles": 0}], "accelerators.0.tiles"),
    ("accelerators", [{"name": "a", "engine": "warp-drive"}], "accelerators.0.engine"),
    ("accelerators", [{"name": "a", "engine": "bit-serial", "colums": 4}], "valid keys"),
    ("memory", [{"name": "m", "dram": "DDR9", "activation_buffer_kib": 8, "weight_buffer_kib": 8}], "field 'dram'"),
    ("memory", [{"name": "m", "dram": "DDR4-3200", "activation_buffer_kib": -1, "weight_buffer_kib": 8}],
     "memory.0.activation_buffer_kib"),
])
def test_bad_hardware_fields_are_one_line_errors(tmp_path, section, bad, expect):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_workload(tmp_path, **{section: bad})))
    proc = subprocess.run([sys.executable, "-m", "simulator", "run", str(path), "--summary"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and expect in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "traces").exists() or not list((tmp_path / "traces").glob("*.h5"))


def test_run_command_prints_the_table_and_writes_results(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(_workload(tmp_path)))
    proc = subprocess.run([sys.executable, "-m", "simulator", "run", str(path)], capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "profile uniform-8 | memory ddr4" in out and "str speedup" in out and "Total Cycles" in out
    for layer in ("conv1", "conv2", "fc1", "fc2", "fc3"):
        assert f"\n{layer} " in out
    assert (tmp_path / "results" / "tiny" / "layers.csv").is_file()
    assert (tmp_path / "results" / "tiny" / "run.json").is_file()


def test_requests_command_writes_a_dram_trace(tmp_path):
    from simulator.cli import main
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(_workload(tmp_path)))
    out = tmp_path / "req.csv"
    assert main(["requests", str(path), "--layer", "conv2", "--profile", "uniform-8", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "cycle,address,rw,bytes,operand"
    rows = [l.split(",") for l in lines[1:]]
    recs = {(r.profile, r.memory, r.accelerator, r.layer): r
            for r in run_workload(workload_from_dict(_workload(tmp_path), str(path)), progress=False).records}
    r = recs[("uniform-8", "ddr4", "dadn", "conv2")]
    assert sum(int(x[3]) for x in rows) * 8 == r.dram_bits
    assert {x[4] for x in rows} == {"act", "weight", "out"}
    assert main(["requests", str(path), "--layer", "nope", "--out", str(out)]) == 2
