"""The FINN-style FPGA engine: lane cost, folding, throughput, bandwidth, devices and the fpga study."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from simulator.errors import SimulatorError
from simulator.format_costs import format_point
from simulator.fpga_study import TrainedPoint, best_at_target, fpga_study, pareto_front, plot_fpga, write_fpga
from simulator.fpga import (C0_LUTS_PER_LAYER, device_presets, fold, lane_cost, lane_luts, load_device,
                            parse_device)
from simulator.layers import CONV, FC, LayerSpec
from simulator.quantize import LayerPrecision

FC64 = LayerSpec("fc", FC, 64, 16, (1, 1), (1, 1), (0, 0), 1, (1, 1), (1, 1))       # 1024 MACs, 1024 weights
CONV_S = LayerSpec("conv", CONV, 2, 4, (3, 3), (1, 1), (1, 1), 1, (4, 4), (4, 4))   # 16 windows x 72 = 1152 MACs


def _prec(point: str, *layers: LayerSpec) -> dict[str, LayerPrecision]:
    p = format_point(point)
    return {l.name: LayerPrecision(p.activations, p.weights) for l in layers}


def _device(**kw):
    base = dict(name="hand", luts=10**9, dsps=10**6, bram_kib=10**6, clock_mhz=100.0, dram_gbps=1000.0,
                usable_luts=1.0, usable_dsps=1.0, usable_bram=1.0)
    return replace(device_presets()["zynq-7020"], **{**base, **kw})


def test_lane_cost_matches_finn_r_and_grows_with_the_widths():
    # the per-lane figures derived in shared/reference/README.md: 7, 13, 44, 123, 458 LUTs
    for bits, luts in ((1, 7), (2, 13), (4, 44), (8, 123), (16, 458)):
        assert round(lane_luts(bits, bits)) == luts
    for w in range(1, 16):
        for a in range(1, 16):
            assert lane_luts(w + 1, a) >= lane_luts(w, a) and lane_luts(w, a + 1) >= lane_luts(w, a)
    assert lane_luts(8, 8) > lane_luts(4, 4) > lane_luts(2, 2) > lane_luts(1, 1)
    # floats go to DSP slices
    f = lane_cost(_prec("float32", FC64)["fc"])
    assert f.dsps > 0 and lane_cost(_prec("wrpn-4", FC64)["fc"]).dsps == 0


def test_hand_worked_layer_throughput_is_lanes_times_clock_over_macs():
    # 1-bit x 1-bit lanes cost 1.1 * (2 + 4) = 6.6 LUTs; a budget of 300 + 6.6 * 128 LUTs holds 128 lanes
    assert lane_luts(1, 1) == pytest.approx(6.6)
    dev = _device(luts=math.ceil(C0_LUTS_PER_LAYER + 6.6 * 128))
    r = fold([FC64], _prec("wrpn-1", FC64), dev)
    layer = r.layers[0]
    assert layer.lanes == 128 and layer.cycles == 1024 // 128 == r.interval_cycles
    assert r.frames_per_s == layer.frames_per_s == pytest.approx(128 * 100e6 / 1024)
    assert r.ops_per_s == pytest.approx(2 * 1024 * r.frames_per_s) and r.bound == "compute"
    # a budget of 100 lanes: the smallest interval that fits is ceil(1024/100) = 11 cycles
    r = fold([FC64], _prec("wrpn-1", FC64), _device(luts=math.ceil(C0_LUTS_PER_LAYER + 6.6 * 100)))
    assert r.interval_cycles == 11 and r.layers[0].lanes == math.ceil(1024 / 11)


def test_lanes_stop_at_one_per_weight_and_the_slowest_layer_sets_the_pipeline():
    r = fold([CONV_S, FC64], _prec("wrpn-2", CONV_S, FC64), _device())
    conv, fc = r.layers
    assert conv.lanes == 72 and conv.cycles == 16           # fully unrolled: one window per cycle
    assert fc.lanes == 1024 // 16 and fc.cycles == 16       # needs only enough lanes to keep pace
    assert r.interval_cycles == 16 and r.frames_per_s == pytest.approx(100e6 / 16)


def test_wider_operands_fit_fewer_lanes():
    dev = _device(luts=20000)
    fps = [fold([FC64], _prec(f"wrpn-{b}", FC64), dev).frames_per_s for b in (1, 2, 4, 8)]
    assert fps == sorted(fps, reverse=True) and fps[0] > fps[-1]


def test_float_lanes_are_dsp_limited():
    dev = _device(dsps=50)                              # float32: 5 DSPs per lane -> 10 lanes
    r = fold([FC64], _prec("float32", FC64), dev)
    assert r.layers[0].lanes == 10 and r.dsps == 50 and r.interval_cycles == math.ceil(1024 / 10)


def test_weights_that_do_not_fit_stream_and_cap_the_frame_rate():
    # 1024 8-bit weights = 8192 bits > 4096 bits of on-chip RAM: streamed with the 64 x 8-bit input each frame
    dev = _device(bram_kib=0.5, dram_gbps=1.0)
    r = fold([FC64], _prec("wrpn-8", FC64), dev, input_bits=8)
    assert r.weight_bits_off_chip == 8192 and not r.layers[0].on_chip
    assert r.memory_frames_per_s == pytest.approx(8e9 / (8192 + 64 * 8))
    assert r.frames_per_s == r.memory_frames_per_s and r.bound == "memory"


def test_too_small_a_device_is_a_one_line_error():
    with pytest.raises(SimulatorError, match=r"^fpga: device 'hand' cannot hold one lane per layer"):
        fold([FC64], _prec("wrpn-8", FC64), _device(luts=100))


def test_presets_have_sources_and_one_small_one_large():
    presets = device_presets()
    assert {"zynq-7020", "u250"} <= set(presets)
    assert all(d.source for d in presets.values())
    assert presets["zynq-7020"].luts < 100_000 < presets["u250"].luts


@pytest.mark.parametrize("entry, message", [
    ({"luts": -5, "dsps": 1, "bram_kib": 1, "clock_mhz": 1, "dram_gbps": 1}, "field 'luts': -5 is not a positive"),
    ({"luts": 5, "dsps": 1, "bram_kib": 1, "clock_mhz": 1}, "field 'dram_gbps' is missing"),
    ({"luts": 5, "dsps": 1, "bram_kib": 1, "clock_mhz": 1, "dram_gbps": 1, "lutz": 3}, "field 'lutz': unknown"),
    ({"luts": 5.5, "dsps": 1, "bram_kib": 1, "clock_mhz": 1, "dram_gbps": 1}, "field 'luts': 5.5 is not a whole"),
])
def test_bad_device_fields_name_the_field(entry, message):
    with pytest.raises(SimulatorError) as e:
        parse_device("mine", entry, "dev.yaml")
    assert str(e.value).startswith("dev.yaml: device 'mine': ") and message in str(e.value)
    assert "\n" not in str(e.value)


def test_device_files_presets_and_overrides(tmp_path):
    with pytest.raises(SimulatorError, match=r"^--device: unknown FPGA 'zynq'; presets: zynq-7020"):
        load_device("zynq")
    f = tmp_path / "board.yaml"
    f.write_text("luts: 1000\ndsps: 2\nbram_kib: 4\nclock_mhz: 50\ndram_gbps: 1\nsource: mine\n")
    assert load_device(str(f)).luts == 1000
    assert load_device("zynq-7020", clock_mhz=200.0).clock_mhz == 200.0
    with pytest.raises(SimulatorError, match="field 'clock_mhz': 0 is not a positive number"):
        load_device("zynq-7020", clock_mhz=0)


def test_pareto_front():
    pts = [(0.9, 100.0), (0.95, 50.0), (0.85, 80.0), (0.95, 60.0), (float("nan"), 1e9)]
    assert pareto_front(pts) == [True, False, False, True, False]


def _fake_trainer(model, width, bits, seed, epochs, cache):
    # accuracy grows with width and bits: enough to exercise the front and the summary
    acc = min(1.0, 0.9 + 0.02 * width + (0.05 if bits is None else 0.01 * bits))
    return TrainedPoint(model, width, bits, seed, epochs or 1, acc, acc, 0.0)


def test_fpga_study_writes_data_and_figure(tmp_path):
    from simulator.workload import load_workload
    wl_file = tmp_path / "w.yaml"
    wl_file.write_text(f"name: tiny\nmodel: {{name: lenet5, weights: x.pt}}\ninput: {{source: digits}}\n"
                       f"results_dir: {tmp_path / 'results'}\n")
    (tmp_path / "x.pt").write_bytes(b"")
    study = fpga_study(load_workload(wl_file), "zynq-7020", widths=[0.5, 1.0], bits=[1, 4, 32],
                       progress=False, trainer=_fake_trainer, target=0.95)
    assert len(study.rows) == 6
    r1 = {(r["width"], r["precision"]): r for r in study.rows}
    assert r1[(1.0, "w4a4")]["macs"] > r1[(0.5, "w4a4")]["macs"]
    assert r1[(1.0, "w1a1")]["frames_per_s"] >= r1[(1.0, "w4a4")]["frames_per_s"] > r1[(1.0, "float32")]["frames_per_s"]
    assert any(r["pareto"] for r in study.rows)
    best = study.config["best_at_target"]
    assert best and all(b["test_top1"] >= 0.95 for b in best)
    assert best == best_at_target(study.rows, 0.95)
    csv_path, json_path = write_fpga(study, tmp_path / "out")
    assert json_path.name == "fpga-zynq-7020.json" and csv_path.name == "fpga-zynq-7020.csv"
    doc = json.loads(json_path.read_text())
    assert doc["device"]["source"] and doc["finn_r"]["c0_luts_per_layer"] == 300 and doc["tool_version"]
    pngs = plot_fpga(json_path)
    assert {p.suffix for p in pngs} == {".png", ".pdf"}


def test_fpga_study_rejects_bad_bits(tmp_path):
    from simulator.workload import load_workload
    wl_file = tmp_path / "w.yaml"
    wl_file.write_text("name: tiny\nmodel: {name: lenet5}\n")
    with pytest.raises(SimulatorError, match=r"^--bits: 24 is not a width"):
        fpga_study(load_workload(wl_file), "zynq-7020", widths=[1.0], bits=[24], accuracy=False, progress=False)
