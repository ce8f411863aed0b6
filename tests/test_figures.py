"""Figures: each figure's data comes from result files (hand-built records written with write_csv,
hand-written JSON), and each draw function writes a PNG and a PDF. No torch, no simulation."""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from simulator.errors import SimulatorError
from simulator.figures import (data_for_precision, data_for_profiles, data_for_roofline, data_for_sweeps,
                               data_for_throughput, data_for_tradeoff, data_for_width, data_for_zoo,
                               draw_energy_efficiency, draw_precision, draw_profiles, draw_roofline,
                               draw_speedup, draw_sweeps, draw_throughput, draw_tradeoff, draw_width,
                               make_figures)
from simulator.figures.loading import PUBLISHED, published_profile
from simulator.figures.precision import profile_format
from simulator.figures.roofline import memory_bound_count
from simulator.results import LayerRecord, write_csv

ENGINES = {"dadiannao": "bit-parallel", "stripes": "bit-serial", "pragmatic": "pragmatic"}
DRAMS = {"on-chip": None, "ddr4": "DDR4-3200", "hbm": "HBM2"}


def rec(**kw) -> LayerRecord:
    """A record with every field zero / empty except those given."""
    base = {f.name: (0 if f.type == "int" else 0.0 if f.type == "float" else "") for f in fields(LayerRecord)}
    base.update(workload="net", input="all", kind="conv", bound="compute", loop_order="single-tile",
                footprint_dynamic_act_bits=-1)
    base.update(kw)
    base["engine"] = ENGINES[base["accelerator"]]
    base["total_cycles"] = base["compute_cycles"] + base["stall_cycles"]
    return LayerRecord(**base)


def write_results(folder: Path, records: list[LayerRecord], memories=("on-chip", "ddr4"),
                  baseline: str = "dadiannao") -> Path:
    write_csv(folder / "layers.csv", records)
    dram = {m: None if DRAMS[m] is None else {"name": DRAMS[m], "bandwidth_gbps": 25.6} for m in memories}
    (folder / "run.json").write_text(json.dumps({"baseline": baseline, "dram": dram}))
    return folder


def network(folder: Path, name: str, profiles=("uniform-16", PUBLISHED), scale: float = 1.0,
            accelerators=("dadiannao", "stripes", "pragmatic"), memories=("on-chip", "ddr4")) -> Path:
    """Two layers (conv1, fc1). Cycles per layer: dadiannao 100 / 10, stripes 50 / 10, pragmatic
    (two inputs) 20 and 40 / 10; DRAM adds 10 stall cycles per layer. Energy = 2 pJ per cycle."""
    cycles = {"dadiannao": {"all": (100, 10)}, "stripes": {"all": (50, 10)},
              "pragmatic": {"in0": (20, 10), "in1": (40, 10)}}
    out = []
    for p in profiles:
        for m in memories:
            for acc in accelerators:
                for inp, per_layer in cycles[acc].items():
                    for i, (layer, kind) in enumerate((("conv1", "conv"), ("fc1", "fc"))):
                        c = int(per_layer[i] * scale)
                        stall = 0 if m == "on-chip" else 10
                        mem_cycles = 0 if m == "on-chip" else (40 if kind == "fc" else 5)
                        out.append(rec(workload=name, profile=p, memory=m, accelerator=acc, input=inp, layer=layer,
                                       index=i, kind=kind, compute_cycles=c, stall_cycles=stall,
                                       memory_cycles=mem_cycles, energy_total_pj=2.0 * (c + stall),
                                       footprint_weight_bits=8 * 2**20 * (int(p.split("-")[1]) if "uniform" in p else 16),
                                       footprint_act_bits=8 * 2**20, footprint_fp32_bits=8 * 2**20 * 40))
    folder.mkdir(parents=True, exist_ok=True)
    return write_results(folder, out, memories)


def test_profile_rule():
    assert published_profile(["uniform-16", "stripes-100", "uniform-8"]) == "stripes-100"
    assert published_profile(["uniform-16", "uniform-4", "uniform-8"]) == "uniform-8"   # narrowest with N >= 8
    assert published_profile(["mine"]) == "mine"


def test_zoo_data_from_files(tmp_path):
    a = network(tmp_path / "a", "a")
    b = network(tmp_path / "b", "b", profiles=("uniform-16", "uniform-8"), scale=2.0,
                accelerators=("dadiannao", "stripes"))
    d = data_for_zoo([a, b])
    assert d["networks"] == ["a", "b", "geomean"]
    assert d["profiles"] == {"a": "stripes-100", "b": "uniform-8"}
    assert list(d["accelerators"]) == ["stripes", "pragmatic"]
    assert d["baselines"] == ["dadiannao"]
    s = d["speedup"]["compute"]["stripes"]
    assert s[0] == pytest.approx(110 / 60) and s[1] == pytest.approx(220 / 120)
    assert s[2] == pytest.approx(math.sqrt(s[0] * s[1]))
    # pragmatic: network cycles per input (30, 50) averaged = 40; absent from b -> NaN, geomean of a only
    p = d["speedup"]["compute"]["pragmatic"]
    assert p[0] == pytest.approx(110 / 40) and math.isnan(p[1]) and p[2] == pytest.approx(p[0])
    # with DRAM: 10 stall cycles per layer
    assert d["speedup"]["dram"]["stripes"][0] == pytest.approx(130 / 80)
    assert d["energy_efficiency"]["dram"]["stripes"][0] == pytest.approx(130 / 80)
    assert d["memories"] == {"compute": ["on-chip"], "dram": ["ddr4 = DDR4-3200"]}


def test_roofline_data(tmp_path):
    r = network(tmp_path / "r", "r", profiles=(PUBLISHED,), memories=("ddr4", "hbm"))
    d = data_for_roofline(r)
    assert list(d["points"]) == ["ddr4", "hbm"] and d["memories"]["hbm"] == "HBM2"
    p = d["points"]["ddr4"]["pragmatic"]
    assert p["layers"] == ["conv1", "fc1"] and p["kinds"] == ["conv", "fc"]
    assert p["compute"].tolist() == [30.0, 10.0]      # mean over the two inputs
    assert p["dram"].tolist() == [5.0, 40.0]
    assert memory_bound_count(d, "ddr4", "dadiannao") == 1   # only fc1 waits on the DRAM
    with pytest.raises(SimulatorError, match="no memory system with DRAM"):
        data_for_roofline(network(tmp_path / "c", "c", memories=("on-chip",)))


def test_precision_data(tmp_path):
    s = network(tmp_path / "s", "s", profiles=("uniform-16", "uniform-4", "uniform-8", PUBLISHED))
    d = data_for_precision(s)
    assert d["bits"].tolist() == [4, 8, 16] and d["labels"] == ["4", "8", "16"]
    assert d["profiles"] == ["uniform-4", "uniform-8", "uniform-16"]
    assert d["weights_mib"].tolist() == [8.0, 16.0, 32.0] and d["fp32_mib"].tolist() == [80.0] * 3
    assert d["energy_pj"]["ddr4"]["stripes"].tolist() == [2.0 * 80] * 3
    assert profile_format("uniform-12") == ("fixed", 12) and profile_format(PUBLISHED) is None
    with pytest.raises(SimulatorError, match="uniform-N"):
        data_for_precision(network(tmp_path / "n", "n", profiles=(PUBLISHED,)))


def search_files(folder: Path) -> list[Path]:
    folder.mkdir(parents=True)
    layers = lambda a, w: [{"name": n, "act_bits": x, "weight_bits": y} for n, x, y in zip(("conv1", "fc1"), a, w)]
    judd = {"workload": "lenet", "method": "judd", "float_top1": 0.9,
            "profiles": [{"target": 1.0, "top1": 0.9, "footprint_reduction_vs_fp32": 0.7, "layers": layers((8, 6), (7, 5))},
                         {"target": 0.99, "top1": 0.891, "footprint_reduction_vs_fp32": 0.8, "layers": layers((6, 5), (6, 4))}]}
    uni = {"workload": "lenet", "method": "uniform", "float_top1": 0.9,
           "profiles": [{"target": 1.0, "top1": 0.9, "footprint_reduction_vs_fp32": 0.5, "layers": layers((9, 9), (9, 9))}]}
    sweeps = {"workload": "lenet", "float_top1": 0.9,
              "layers": [{"layer": "conv1", "tensor": "activations", "bits": [2, 4, 8], "top1": [0.45, 0.81, 0.9]},
                         {"layer": "conv1", "tensor": "weights", "part": "fraction", "bits": [1, 2], "top1": [0.5, 0.9]}],
              "uniform": {"bits": [2, 4, 8], "top1": [0.1, 0.6, 0.9]}}
    paths = [folder / "judd.json", folder / "uniform.json"]
    for p, doc in zip(paths, (judd, uni)):
        p.write_text(json.dumps(doc))
    (folder / "sweeps.json").write_text(json.dumps(sweeps))
    return paths


def test_search_data(tmp_path):
    files = search_files(tmp_path / "search" / "lenet")
    d = data_for_profiles(files)
    assert d["layers"] == ["conv1", "fc1"]
    assert d["methods"]["judd"]["activations"].tolist() == [8, 6] and d["methods"]["judd"]["target"] == 1.0
    assert data_for_profiles(files, target=0.99)["methods"]["judd"]["weights"].tolist() == [6, 4]
    t = data_for_tradeoff(files)
    assert t["methods"]["judd"]["relative_top1"].tolist() == pytest.approx([99.0, 100.0])
    assert t["methods"]["judd"]["footprint_reduction"].tolist() == pytest.approx([80.0, 70.0])
    s = data_for_sweeps(tmp_path / "search" / "lenet" / "sweeps.json")
    assert list(s["panels"]) == ["activations", "weights, fraction bits"]
    assert s["panels"]["activations"]["conv1"]["relative"].tolist() == pytest.approx([0.5, 0.9, 1.0])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"workload": "x", "method": "m", "float_top1": 1, "profiles": [{"target": 1}]}))
    with pytest.raises(SimulatorError, match="profiles\\[0\\]: missing key.*top1"):
        data_for_profiles([bad])


def tradeoff_files(root: Path) -> tuple[Path, Path]:
    (root / "fpga").mkdir(parents=True)
    (root / "wrpn").mkdir(parents=True)
    fpga = root / "fpga" / "lenet.json"
    fpga.write_text(json.dumps({"workload": "lenet", "device": "ZC706", "points": [
        {"weight_bits": 1, "act_bits": 1, "top1": 0.95, "throughput_fps": 1e5},
        {"weight_bits": 4, "act_bits": 4, "top1": 0.99, "throughput_fps": 1e4}]}))
    wrpn = root / "wrpn" / "alexnet.json"
    wrpn.write_text(json.dumps({"workload": "alexnet", "float_top1": 0.57, "points": [
        {"width": 2, "bits": 4, "top1": 0.58}, {"width": 1, "bits": 4, "top1": 0.50},
        {"width": 1, "bits": 2, "top1": 0.45}]}))
    return fpga, wrpn


def test_tradeoff_data(tmp_path):
    fpga, wrpn = tradeoff_files(tmp_path)
    t = data_for_throughput(fpga)
    assert t["labels"] == ["w4a4", "w1a1"] and t["top1"].tolist() == pytest.approx([99.0, 95.0])
    w = data_for_width(wrpn)
    assert list(w["curves"]) == [1.0, 2.0] and w["curves"][1.0]["bits"].tolist() == [2, 4]
    assert w["float_top1"] == pytest.approx(57.0)


def test_every_draw_writes_png_and_pdf(tmp_path):
    a = network(tmp_path / "a", "a", profiles=("uniform-16", "uniform-4", "uniform-8", PUBLISHED),
                memories=("on-chip", "ddr4", "hbm"))
    files = search_files(tmp_path / "search" / "lenet")
    fpga, wrpn = tradeoff_files(tmp_path)
    zoo = data_for_zoo([a])
    jobs = [(draw_speedup, zoo), (draw_energy_efficiency, zoo), (draw_roofline, data_for_roofline(a)),
            (draw_precision, data_for_precision(a)), (draw_profiles, data_for_profiles(files)),
            (draw_tradeoff, data_for_tradeoff(files)),
            (draw_sweeps, data_for_sweeps(tmp_path / "search" / "lenet" / "sweeps.json")),
            (draw_throughput, data_for_throughput(fpga)), (draw_width, data_for_width(wrpn))]
    for draw, data in jobs:
        written = draw(data, tmp_path / "out" / draw.__name__)
        assert [p.suffix for p in written] == [".png", ".pdf"]
        assert all(p.stat().st_size > 1000 for p in written), draw.__name__


def test_command_draws_what_exists_and_notes_the_rest(tmp_path, capsys):
    from simulator.figures_command import add_parser
    a = network(tmp_path / "res" / "a", "a")
    network(tmp_path / "res" / "a-roofline", "a", profiles=(PUBLISHED,), memories=("ddr4", "hbm"))
    (tmp_path / "res" / "stale").mkdir()
    (tmp_path / "res" / "stale" / "layers.csv").write_text("Workload,Profile\nx,y\n")
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["figures", "--results-root", str(tmp_path / "res"), "--out", str(tmp_path / "figs")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert names == sorted(f"{n}.{e}" for n in ("zoo_speedup", "zoo_energy", "roofline_a-roofline") for e in ("png", "pdf"))
    assert "skipped" in out and "stale" in out and "figure 3" in out and "figure 6" in out
    # explicit folders must be readable: a broken one is an error, not a note
    args = parser.parse_args(["figures", str(tmp_path / "res" / "stale"), "--out", str(tmp_path / "f2")])
    with pytest.raises(SimulatorError, match="not a precision-sim results table"):
        args.func(args)
    rep = make_figures([a], tmp_path / "f3", root=tmp_path / "res", note=lambda s: None)
    assert len(rep.written) == 4 and any("roofline" in n for n in rep.notes)


def test_figures_never_import_torch_or_the_simulator():
    code = ("import sys, simulator.figures, simulator.figures_command; "
            "bad = [m for m in ('torch', 'simulator.simulate', 'simulator.export') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_search_reports_feed_figures_2_to_4(tmp_path):
    """The files `python -m simulator search` writes are read as they are."""
    from simulator.figures.search import (data_for_profiles, data_for_sweeps, data_for_tradeoff, search_reports,
                                          sweeps_from_reports)
    acc = lambda top1: {"top1": top1, "top5": 1.0, "relative_top1": 1.0, "n": 10}  # noqa: E731
    prec = lambda a, w: {"activations": {"bits": a}, "weights": {"bits": w}}  # noqa: E731
    folder = tmp_path / "net"
    folder.mkdir()
    for method, bits, table in (("judd", 4, None), ("uniform", 6, {"4": 0.5, "6": 0.9, "8": 1.0})):
        doc = {"workload": "workloads/net.yaml", "method": method, "float_val": acc(1.0), "float_test": acc(0.8),
               "profiles": [{"name": f"{method}-99", "target": 0.99, "precisions": {"c1": prec(bits, 8), "f1": prec(5, 3)},
                             "test": acc(0.78), "cost": {"rows": [{"footprint_reduction_vs_fp32": 0.7}]}}],
               "details": {"table": table} if table else
               {"sensitivity": {"c1.activations": {"integer": {"1": 0.5, "2": 1.0}, "fraction": {"3": 0.9},
                                                   "range_integer_bits": 2}}}}
        (folder / f"search-{method}.json").write_text(json.dumps(doc))
    files = search_reports(tmp_path)["net"]
    prof = data_for_profiles(files)
    assert prof["layers"] == ["c1", "f1"] and list(prof["methods"]["judd"]["activations"]) == [4, 5]
    trade = data_for_tradeoff(files)
    assert trade["methods"]["uniform"]["relative_top1"][0] == pytest.approx(100 * 0.78 / 0.8)
    assert trade["methods"]["judd"]["footprint_reduction"][0] == pytest.approx(70)
    sweeps = data_for_sweeps(sweeps_from_reports(files))
    assert list(sweeps["panels"]) == ["activations, integer bits", "activations, fraction bits"]
    assert list(sweeps["panels"]["activations, integer bits"]["c1"]["relative"]) == [0.5, 1.0]
    assert list(sweeps["uniform"]["bits"]) == [4, 6, 8]


def test_fpga_reports_feed_figure_6(tmp_path):
    """The report `python -m simulator fpga` writes gives both panels of figure 6."""
    from simulator.figures.tradeoffs import data_for_throughput, data_for_width, fpga_reports, from_fpga_report
    rows = [{"width": w, "weight_bits": b, "act_bits": b, "precision": f"w{b}a{b}", "test_top1": t, "frames_per_s": f}
            for w, b, t, f in ((1.0, 2, 0.99, 1e5), (2.0, 2, 0.995, 5e4), (1.0, 32, 0.98, 1e4))]
    (tmp_path / "net").mkdir()
    path = tmp_path / "net" / "fpga-dev.json"
    path.write_text(json.dumps({"workload": {"name": "net"}, "device": {"name": "dev"}, "rows": rows}))
    assert fpga_reports(tmp_path) == [path]
    throughput, width = from_fpga_report(path)
    t = data_for_throughput(throughput)
    assert list(t["throughput_fps"]) == [1e4, 5e4, 1e5] and t["labels"][0] == "w32a32 1×" and t["device"] == "dev"
    w = data_for_width(width)
    assert list(w["curves"]) == [1.0, 2.0] and list(w["curves"][1.0]["bits"]) == [2, 32]
