"""Number formats: the quantizer's new formats, their arithmetic, storage and cost model, and the
``formats`` command on a tiny trained-free workload."""
from __future__ import annotations

import json
import math

import numpy as np
import pydantic
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from simulator.errors import SimulatorError
from simulator.format_costs import (AREA_PARTS, ENERGY_PARTS, format_point, layer_costs, load_cost_table,
                                    parse_cost_table, template_area)
from simulator.formats import (FIXED_WIDTH, FloatFormat, Pow2Format, TensorPrecision, Unit, choose_concrete, mac_unit,
                               precision, scale_overhead_bits, shift_dot, wrpn_quantize,
                               xnor_popcount_dot)
from simulator.layers import CONV, FC, LayerSpec
from simulator.profiles import parse_profile, precision_table, resolve_profile
from simulator.quantize import LayerPrecision, quantized

CONV_L = LayerSpec("conv1", CONV, 3, 8, (3, 3), (1, 1), (1, 1), 1, (8, 8), (8, 8))
FC_L = LayerSpec("fc", FC, 512, 10, (1, 1), (1, 1), (0, 0), 1, (1, 1), (1, 1))


# ---------------------------------------------------------------------------------------- arithmetic

@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([-1, 1]), min_size=1, max_size=200), st.randoms(use_true_random=False))
def test_xnor_popcount_equals_the_pm1_dot_product(a, rnd):
    w = [rnd.choice([-1, 1]) for _ in a]
    assert xnor_popcount_dot(np.array(a), np.array(w)) == int(np.dot(a, w))


def test_binary_codes_of_the_quantizer_feed_the_xnor_dot():
    torch.manual_seed(0)
    w, a = torch.randn(8, 37), torch.randn(37)
    fmt = choose_concrete(w, precision("binary-filter"), "weights")
    codes = fmt.codes(w).numpy()
    a_pm1 = np.where(a.numpy() >= 0, 1, -1)
    for row in codes:
        assert xnor_popcount_dot(a_pm1, row) == int(np.dot(a_pm1, row.astype(np.int64)))
    # and the fake-quantized weights are the codes times the per-filter alpha (mean |w| of the filter)
    assert torch.allclose(fmt.fake_quantize(w), torch.from_numpy(codes).float() * w.abs().mean(dim=1, keepdim=True))


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6), st.lists(st.floats(-8, 8, allow_nan=False), min_size=1, max_size=40),
       st.lists(st.integers(-2**15, 2**15 - 1), min_size=40, max_size=40), st.integers(0, 12))
def test_power_of_two_weights_multiply_by_shifting_exactly(bits, ws, acts, frac):
    w = torch.tensor(ws, dtype=torch.float64)
    fmt = choose_concrete(w, precision("pow2", bits), "weights")
    sign, shift = fmt.encode(w)
    q = np.array(acts[:len(ws)], dtype=np.int64)           # activations: integers * 2^-frac
    by_shift = shift_dot(q, sign.numpy(), shift.numpy()) * 2.0 ** (fmt.k_min - frac)
    exact = float(np.dot(q * 2.0 ** -frac, fmt.fake_quantize(w).numpy()))
    assert by_shift == exact
    vals = fmt.fake_quantize(w)
    nz = vals[vals != 0].abs()
    assert torch.all(torch.log2(nz) == torch.round(torch.log2(nz)))        # powers of two only
    assert len(set(vals.abs().tolist()) - {0.0}) <= 2 ** (bits - 1) - 1    # one code is zero


def test_power_of_two_rounds_to_the_nearest_value():
    fmt = Pow2Format(3, 0)                          # 0, +-2^-2, 2^-1, 2^0
    x = torch.tensor([1.0, 0.74, 0.76, 0.3, 0.12, 0.13, -0.6, 5.0])
    assert fmt.fake_quantize(x).tolist() == [1.0, 0.5, 1.0, 0.25, 0.0, 0.25, -0.5, 1.0]


def test_ternary_threshold_and_scale_follow_twn():
    w = torch.tensor([[0.9, -0.1, 0.5, -0.8]])
    fmt = choose_concrete(w, precision("ternary"), "weights")
    thr = 0.7 * 0.575
    kept = [0.9, 0.5, 0.8]                          # |w| above 0.7 * mean |w|
    assert fmt.threshold[0] == pytest.approx(thr)
    assert fmt.fake_quantize(w)[0].tolist() == pytest.approx([sum(kept) / 3, 0.0, sum(kept) / 3, -sum(kept) / 3])


def test_wrpn_grids():
    x = torch.tensor([-2.0, -0.4, 0.0, 0.2, 0.6, 3.0])
    assert wrpn_quantize(x, 2, True).tolist() == [-1.0, 0.0, 0.0, 0.0, 1.0, 1.0]            # ternary
    assert wrpn_quantize(x, 3, True).tolist() == pytest.approx([-1, -1 / 3, 0, 1 / 3, 2 / 3, 1])
    assert wrpn_quantize(x, 2, False).tolist() == pytest.approx([0, 0, 0, 1 / 3, 2 / 3, 1])
    assert wrpn_quantize(x, 1, True).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]          # 1 bit: sign


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_half_floats_round_like_torch(name):
    x = torch.linspace(-3, 3, 101) * 1.000123
    dtype = torch.float16 if name == "float16" else torch.bfloat16
    assert torch.equal(FloatFormat(name).fake_quantize(x), x.to(dtype).float())


# ---------------------------------------------------------------------------------------- the one quantizer

def _tiny() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


@pytest.mark.parametrize("wfmt", ["float16", "bfloat16", "pow2", "binary", "binary-filter", "ternary", "wrpn"])
def test_quantized_applies_each_weight_format_and_restores_floats(wfmt):
    net, x = _tiny(), torch.rand(2, 1, 8, 8)
    w0 = net[0].weight.detach().clone()
    p = LayerPrecision(precision("fixed", 8), precision(wfmt, 4 if FIXED_WIDTH[wfmt] is None else None))
    formats: dict = {}
    with torch.no_grad(), quantized(net, {"0": p, "3": p}, formats=formats) as q:
        wq = q[0].weight.detach().clone()
        y = q(x)
    assert torch.equal(net[0].weight, w0)                        # float weights come back
    assert torch.equal(wq, formats["0"][1].fake_quantize(w0))    # the stored concrete format made them
    assert y.shape == (2, 3) and torch.isfinite(y).all()


def test_activation_formats_and_traces():
    net, x = _tiny(), torch.rand(2, 1, 8, 8) - 0.5
    p = LayerPrecision(precision("wrpn", 2), precision("fixed", 8))
    seen = {}
    with torch.no_grad(), quantized(net, {"0": p}) as q:
        net[0].register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0]))
        q(x)
    grid = torch.tensor([0.0, 1 / 3, 2 / 3, 1.0])                               # clipped to [0, 1], 2 bits
    assert torch.isin(seen["x"], grid).all() and (seen["x"] == 0).any() and (seen["x"] > 0).any()
    with pytest.raises(SimulatorError, match="layer 0: activations format 'wrpn' has no integer trace"):
        with quantized(net, {"0": p}, on_layer=lambda *a: None):
            pass


# ---------------------------------------------------------------------------------------- profiles and errors

def test_profile_entries_take_a_format():
    layers = [CONV_L, FC_L]
    prof = parse_profile({"activations": {"format": "float16"}, "weights": {"conv1": {"format": "binary"},
                                                                            "default": {"bits": 5, "format": "pow2"}}})
    pr = resolve_profile("p", prof, layers)
    assert pr["conv1"].activations == TensorPrecision(16, format="float16")
    assert pr["conv1"].weights == TensorPrecision(1, format="binary")
    assert pr["fc"].weights == TensorPrecision(5, format="pow2")
    assert precision_table(pr)["fc"]["weights"] == {"bits": 5, "frac": None, "signed": None, "format": "pow2"}
    # fixed-point entries keep their old JSON (and so their trace keys)
    assert precision_table(resolve_profile("u", parse_profile("uniform-8"), layers))["fc"]["weights"] == \
        {"bits": 8, "frac": None, "signed": None}


@pytest.mark.parametrize("entry, message", [
    ({"format": "float64"}, "unknown number format 'float64'; valid: fixed, float32"),
    ({"format": "float16", "bits": 8}, "bits: format 'float16' is 16 bits wide, not 8"),
    ({"format": "pow2"}, "bits: format 'pow2' needs a width in bits"),
    ({"format": "binary", "frac": 2}, "frac and signed apply to format 'fixed' only"),
])
def test_bad_format_entries_are_one_line_errors(entry, message):
    with pytest.raises(pydantic.ValidationError) as e:
        parse_profile({"weights": entry})
    assert message in str(e.value)


def test_weight_only_format_on_activations_is_refused():
    with pytest.raises(SimulatorError, match=r"^profile 'p': activations of layer conv1: format 'binary' applies"):
        resolve_profile("p", parse_profile({"activations": {"format": "binary"}}), [CONV_L])


@pytest.mark.parametrize("name, message", [
    ("fixed", "format point 'fixed': unknown; valid forms: float32"),
    ("pow2-1", "format point 'pow2-1': bits: format 'pow2' needs at least 2 bits, not 1"),
    ("float8", "unknown; valid forms"),
])
def test_bad_format_points(name, message):
    with pytest.raises(SimulatorError) as e:
        format_point(name)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_bad_cost_table_names_the_entry_and_field():
    bad = "entries:\n  m8: {unit: int_mul, widths: [8, 8], pJ: -1, um2: 3, source: x}\n"
    with pytest.raises(SimulatorError, match=r"^cost table t.yaml, entry 'm8': field 'pJ': -1 is not"):
        parse_cost_table(bad, "t.yaml")
    with pytest.raises(SimulatorError, match=r"entry 'm8': field 'source' is missing"):
        parse_cost_table("entries:\n  m8: {unit: int_mul, widths: [8, 8], pJ: 1, um2: 3}\n", "t.yaml")


# ---------------------------------------------------------------------------------------- storage and units

@pytest.mark.parametrize("point, a_bits, w_bits, scales", [
    ("float32", 32, 32, 0), ("float16", 16, 16, 0), ("bfloat16", 16, 16, 0), ("fixed8", 8, 8, 0),
    ("pow2-5", 16, 5, 0), ("binary", 16, 1, 1), ("binary-filter", 16, 1, 8), ("ternary-filter", 16, 2, 8),
    ("wrpn-2x4", 2, 4, 0)])
def test_footprint_is_exact_per_format(point, a_bits, w_bits, scales):
    p = format_point(point)
    costs = layer_costs([CONV_L], {"conv1": LayerPrecision(p.activations, p.weights)}, mem=_on_chip())
    c = costs[0]
    assert c.footprint_act_bits == 3 * 8 * 8 * a_bits
    assert c.footprint_weight_bits == 8 * 3 * 9 * w_bits + 32 * scales
    assert scale_overhead_bits(p.weights, CONV_L) == 32 * scales


@pytest.mark.parametrize("point, kind, labels", [
    ("float32", "float multiplier", ["fp_mulfloat32", "fp_addfloat32"]),
    ("fixed8", "multiplier", ["int_mul8x8", "int_add20"]),
    ("pow2-5", "shifter", ["shift16x4", "int_add34"]),
    ("binary", "add/sub", ["int_add20"]),
    ("wrpn-1", "xnor-popcount", ["xnor1x1", "int_add5"]),
    ("wrpn-2", "add/sub", ["int_add6"]),
])
def test_each_format_names_its_arithmetic_unit(point, kind, labels):
    p = format_point(point)
    mac = mac_unit(p.activations, p.weights)
    assert mac.kind == kind and [u.label() for u in mac.units()] == labels


def test_cost_table_hits_published_points_and_interpolates_as_documented():
    t = load_cost_table()
    assert t.cost(Unit("int_mul", (8, 8))).pj == 0.2 and t.cost(Unit("int_mul", (32, 32))).pj == 3.1
    assert t.cost(Unit("fp_mul", ("float32",))).um2 == 7700
    # between points: linear in a*w (16x16: 0.2 + (256-64)/(1024-64) * 2.9 = 0.78, energy_45nm.yaml's figure)
    assert t.cost(Unit("int_mul", (16, 16))).pj == pytest.approx(0.78)
    # below the first point: proportional to a*w, to width for adders
    assert t.cost(Unit("int_mul", (2, 4))).pj == pytest.approx(0.2 * 8 / 64)
    assert t.cost(Unit("int_add", (4,))).pj == pytest.approx(0.03 / 2)
    assert "interpolated" in t.cost(Unit("int_mul", (16, 16))).source
    # costs grow with the widths
    pj = [t.cost(Unit("int_mul", (b, b))).pj for b in (1, 2, 4, 8, 16, 32, 64)]
    assert pj == sorted(pj) and len(set(pj)) == len(pj)


def _on_chip():
    from simulator.config import MemoryConfig
    return MemoryConfig(name="on-chip", dram="none", activation_buffer_kib=None, weight_buffer_kib=None)


@pytest.mark.parametrize("point", ["float32", "fixed8", "pow2-5", "binary-filter", "wrpn-1"])
def test_energy_and_area_equal_the_sum_of_their_parts(point):
    p = format_point(point)
    pr = {l.name: LayerPrecision(p.activations, p.weights) for l in (CONV_L, FC_L)}
    t = load_cost_table()
    for c in layer_costs([CONV_L, FC_L], pr, t):
        assert c.energy_pj["total"] == pytest.approx(sum(c.energy_pj[k] for k in ENERGY_PARTS), rel=1e-12)
        prod, acc = t.mac_cost(mac_unit(p.activations, p.weights))
        assert c.energy_pj["compute_product"] == pytest.approx(c.macs * prod.pj)
        assert c.energy_pj["compute_accumulate"] == pytest.approx(c.macs * acc.pj)
    area = template_area(pr, t)
    assert area["total"] == pytest.approx(sum(area[k] for k in AREA_PARTS))
    prod, acc = t.mac_cost(mac_unit(p.activations, p.weights))
    assert area["product"] == pytest.approx(4096 * prod.um2 / 1e6)
    assert area["buffers"] == pytest.approx(8192 * 4096 * 0.69 / 1e6)        # 2 x 2048 KiB at 0.69 um^2/bit


def test_narrower_formats_cost_less_energy():
    pr = lambda n: {l.name: LayerPrecision(format_point(n).activations, format_point(n).weights)  # noqa: E731
                    for l in (CONV_L, FC_L)}
    total = {n: sum(c.energy_pj["total"] for c in layer_costs([CONV_L, FC_L], pr(n))) for n in
             ("float32", "fixed16", "fixed8", "fixed4")}
    assert total["float32"] > total["fixed16"] > total["fixed8"] > total["fixed4"]


# ---------------------------------------------------------------------------------------- the command

def test_formats_study_writes_files_and_figure(tmp_path):
    from simulator.formats_study import formats_study, plot_formats, write_formats
    from simulator.workload import load_workload
    wl_file = tmp_path / "w.yaml"
    wl_file.write_text("name: tiny\nmodel: {name: lenet5}\ninput: {source: random, count: 1, size: 32}\n")
    res = formats_study(load_workload(wl_file), ["fixed8", "binary"], progress=False)
    names = [r["format"] for r in res.rows]
    assert names == ["float32", "fixed8", "binary"]
    assert all(math.isnan(r["top1"]) for r in res.rows)       # no trained weights: costs only, and says so
    assert res.config["accuracy"].startswith("not measured")
    ref = res.rows[0]
    assert ref["energy_vs_fp32"] == 1.0 and res.rows[1]["footprint_vs_fp32"] == pytest.approx(0.25)
    csv_path, json_path = write_formats(res, tmp_path / "out")
    doc = json.loads(json_path.read_text())
    assert doc["tool_version"] and doc["cost_table"]["int_mul"][0]["source"] and len(doc["rows"]) == 3
    assert csv_path.read_text().splitlines()[0].startswith("format,")
    pngs = plot_formats(json_path)
    assert {p.suffix for p in pngs} == {".png", ".pdf"} and all(p.stat().st_size > 0 for p in pngs)
