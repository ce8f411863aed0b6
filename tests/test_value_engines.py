"""Value-aware engines (Dynamic Stripes, Pragmatic, Loom) and Bit Fusion: their orderings against
Stripes and DaDianNao, hand-worked counts, step enumeration, groups, fully connected layers, the
term-by-term arithmetic, configuration and energy-table integration."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from simulator.config import AcceleratorConfig
from simulator.energy import load_table
from simulator.config import EnergyConfig
from simulator.engines import ENGINES, make_engine, pragmatic_dot, steps
from simulator.engines.bitfusion import fusion
from simulator.errors import SimulatorError
from simulator.layers import CONV, FC, LayerSpec

REPO = Path(__file__).resolve().parents[1]


def acc(engine: str, **kw) -> AcceleratorConfig:
    return AcceleratorConfig(name=engine, engine=engine, **kw)


def conv(c: int, k: int, kernel: int, hw: int, stride: int = 1, pad: int = 0, groups: int = 1) -> LayerSpec:
    out = (hw + 2 * pad - kernel) // stride + 1
    return LayerSpec("conv", CONV, c, k, (kernel, kernel), (stride, stride), (pad, pad), groups, (hw, hw), (out, out))


def fc(c: int, k: int) -> LayerSpec:
    return LayerSpec("fc", FC, c, k, (1, 1), (1, 1), (0, 0), 1, (1, 1), (1, 1))


def acts(layer: LayerSpec, bits: int, signed: bool = False, kind: str = "random", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (layer.in_channels,) if layer.kind == FC else (layer.in_channels, *layer.input_hw)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if kind == "max":
        return np.full(shape, hi, np.int64)
    if kind == "zeros":
        return np.zeros(shape, np.int64)
    x = rng.integers(lo, hi + 1, shape)
    if kind == "relu":           # mostly small values, many zeros: what ReLU layers look like
        x = (rng.exponential(2.0 ** (bits / 3), shape) * (rng.random(shape) < 0.5)).astype(np.int64).clip(0, hi)
    return x


def weights(layer: LayerSpec, bits: int = 16, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (layer.out_channels, layer.in_channels) if layer.kind == FC else \
        (layer.out_channels, layer.channels_per_group, *layer.kernel)
    return rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), shape).astype(np.int16 if bits <= 16 else np.int32)


LAYERS = [conv(3, 20, 5, 15, stride=2), conv(20, 33, 3, 9, pad=1), conv(32, 64, 3, 7, pad=1, groups=2),
          conv(16, 16, 3, 6, pad=1, groups=16), conv(40, 300, 1, 5)]


def run(engine: str, layer: LayerSpec, bits: int, x: np.ndarray, w=None, wbits: int = 16, **kw):
    return make_engine(acc(engine, **kw)).compute(layer, bits, wbits, x, weights(layer) if w is None else w)


# ================================================================== orderings

@pytest.mark.parametrize("layer", LAYERS, ids=lambda l: f"{l.in_channels}x{l.input_hw[0]}g{l.groups}")
@pytest.mark.parametrize("bits,signed", [(1, False), (8, False), (9, True), (16, False), (16, True)])
@pytest.mark.parametrize("kind", ["random", "relu", "max", "zeros"])
def test_dynamic_and_pragmatic_never_slower_than_stripes(layer, bits, signed, kind):
    x = acts(layer, bits, signed, kind)
    stripes = run("bit-serial", layer, bits, x)
    dyn = run("dynamic", layer, bits, x)
    pra = run("pragmatic", layer, bits, x, run_ahead=0)
    assert dyn.steps == pra.steps == stripes.steps == steps(layer, acc("bit-serial"))
    assert dyn.compute_cycles <= stripes.compute_cycles
    assert pra.compute_cycles <= stripes.compute_cycles
    if kind == "max" and not signed and layer.padding == (0, 0):   # every group needs every bit
        # (with padding, steps whose columns all read padding zeros take one cycle)
        assert dyn.compute_cycles == stripes.compute_cycles
    if kind == "zeros":                        # one cycle per step (a step still has to happen)
        assert dyn.compute_cycles == pra.compute_cycles == stripes.steps
    for c in (dyn, pra):
        assert 0 <= c.useful_lane_slots <= c.lane_slots


def test_dynamic_width_hand_worked():
    # one 1x1 conv: 16 channels, 4x4 windows (one window group of 16 columns), one brick
    layer = conv(16, 8, 1, 4)
    x = np.zeros((16, 4, 4), np.int64)
    x[0, 0, 0] = 5               # 3 bits: the step's width at group_columns = 16
    x[3, 2, 1] = 12              # 4 bits (0b1100), 2 trailing zeros
    dyn = run("dynamic", layer, 8, x)
    assert dyn.compute_cycles == 4                          # max over the step's columns
    # trimming: width = max msb+1 (4) - min trailing zeros (0, from 5) = 4; alone, 12 trims to 2
    assert run("dynamic", layer, 8, x, trim_trailing=True).compute_cycles == 4
    x[0, 0, 0] = 0
    assert run("dynamic", layer, 8, x, trim_trailing=True).compute_cycles == 2
    # per-window groups with unlimited run-ahead: the slowest column alone
    x[0, 0, 0] = 5
    assert run("dynamic", layer, 8, x, group_columns=1, run_ahead=1000).compute_cycles == 4
    # storage: 16 bricks of 16 values; widths 3 and 4 and 14 zero bricks at 1 bit; 3-bit header (p=8)
    assert run("dynamic", layer, 8, x).dynamic_act_storage_bits == 16 * (3 + 4 + 14 * 1) + 16 * 3


def test_signed_layers_count_the_sign_bit():
    layer = conv(16, 8, 1, 4)
    x = np.zeros((16, 4, 4), np.int64)
    x[0, 0, 0] = -4              # one's complement 3: 2 bits + sign = 3
    assert run("dynamic", layer, 8, x).compute_cycles == 3
    assert make_engine(acc("dynamic")).compute(layer, 8, 16, np.abs(x), weights(layer), act_signed=True).compute_cycles == 4


def test_run_ahead_and_groups_only_help():
    layer = conv(32, 16, 3, 10, pad=1)
    x = acts(layer, 12, kind="relu", seed=4)
    c = [run("dynamic", layer, 12, x, group_columns=1, run_ahead=r).compute_cycles for r in (0, 1, 4, 10 ** 6)]
    assert c == sorted(c, reverse=True) and c[-1] < c[0]
    p = [run("pragmatic", layer, 12, x, run_ahead=r).compute_cycles for r in (0, 1, 4, 10 ** 6)]
    assert p == sorted(p, reverse=True) and p[-1] < p[0]
    # a wider first-stage shifter never hurts; Booth never needs more cycles on unsigned data here
    s = [run("pragmatic", layer, 12, x, shifter_bits=b).compute_cycles for b in (0, 1, 2, 4)]
    assert s == sorted(s, reverse=True)


def test_pragmatic_cycles_track_essential_bits():
    layer = conv(32, 16, 3, 10, pad=1)
    dense = acts(layer, 12, seed=1)                 # about 6 essential bits per value
    sparse = dense & 0b100100100100                 # at most 4, most far fewer
    assert run("pragmatic", layer, 12, sparse).compute_cycles < run("pragmatic", layer, 12, dense).compute_cycles
    powers = np.where(dense > 0, 1 << 11, 0)        # one term each, at the same position: 1 cycle a step
    assert run("pragmatic", layer, 12, powers).compute_cycles == steps(layer, acc("pragmatic"))


# ================================================================== groups and depthwise

@pytest.mark.parametrize("engine", ["dynamic", "pragmatic", "loom"])
def test_grouped_conv_is_the_sum_of_its_groups(engine):
    layer = conv(32, 64, 3, 7, pad=1, groups=2)
    half = conv(16, 32, 3, 7, pad=1)
    x, w = acts(layer, 10, kind="relu", seed=2), weights(layer)
    whole = run(engine, layer, 10, x, w)
    parts = [run(engine, half, 10, x[g * 16:(g + 1) * 16], w[g * 32:(g + 1) * 32]) for g in range(2)]
    assert whole.compute_cycles == sum(p.compute_cycles for p in parts)
    assert whole.steps == sum(p.steps for p in parts)
    assert whole.useful_lane_slots == sum(p.useful_lane_slots for p in parts)


# ================================================================== fully connected

def test_fc_gains_at_most_the_pipeline_fill():
    layer = fc(1000, 600)
    x = acts(layer, 12, kind="relu")
    bp = run("bit-parallel", layer, 12, x).compute_cycles
    stripes = run("bit-serial", layer, 12, x).compute_cycles
    assert stripes == bp + 12 - 1
    for engine in ("dynamic", "pragmatic"):
        c = run(engine, layer, 12, x).compute_cycles
        assert bp <= c <= stripes
    assert run("dynamic", layer, 12, acts(layer, 12, kind="max")).compute_cycles == stripes


def test_loom_fc_scales_with_weight_precision_only():
    layer = fc(2048, 1024)
    x = acts(layer, 8, kind="relu")
    c16 = run("loom", layer, 8, x, wbits=16).compute_cycles
    c8 = run("loom", layer, 8, x, wbits=8).compute_cycles
    assert c8 * 2 == pytest.approx(c16, rel=0.01)
    assert run("loom", layer, 4, x >> 4, wbits=16).compute_cycles == c16       # activations do not matter
    # 128 filters x 16 lanes per brick, 256 cycles each at 16x16 over 16 columns: 128 MACs a cycle
    assert c16 == pytest.approx(layer.macs / 128, rel=0.01)


def test_loom_conv_static_and_dynamic():
    layer = conv(32, 256, 3, 8, pad=1)          # 64 windows: 4 groups of 16; 256 filters: 2 tiles
    x = acts(layer, 8, kind="max")
    static = run("loom", layer, 8, x, wbits=8, dynamic_activations=False)
    assert static.compute_cycles == steps(layer, acc("loom")) * 8 * 8
    assert static.compute_cycles == layer.macs * 64 // (128 * 16 * 16)   # full array: 32768 1b lanes
    assert run("loom", layer, 8, x, wbits=8).compute_cycles == static.compute_cycles   # all bits needed
    assert run("loom", layer, 8, x, wbits=8, bits_per_cycle=2).compute_cycles * 2 == static.compute_cycles
    small = acts(layer, 8, kind="relu")
    assert run("loom", layer, 8, small, wbits=8).compute_cycles < static.compute_cycles
    w = weights(layer, 8) >> 3                                                # 5-bit weights in an 8-bit layer
    dw = run("loom", layer, 8, x, w, wbits=8, dynamic_activations=False, dynamic_weights=True)
    assert dw.compute_cycles == static.compute_cycles * 5 // 8


def test_loom_rejects_values_wider_than_the_layer():
    layer = conv(16, 16, 1, 4)
    with pytest.raises(SimulatorError, match="need 9 bits"):
        run("loom", layer, 8, np.full((16, 4, 4), 256))


# ================================================================== Bit Fusion

@pytest.mark.parametrize("a,w,spatial,temporal", [(8, 8, 1, 1), (4, 4, 4, 1), (2, 2, 16, 1), (1, 1, 16, 1),
                                                  (2, 8, 4, 1), (16, 16, 1, 4), (16, 8, 1, 2), (16, 2, 2, 1),
                                                  (5, 3, 2, 1)])
def test_bitfusion_fusion(a, w, spatial, temporal):
    assert fusion(a, w)[:2] == (spatial, temporal)


def test_bitfusion_cycles_hand_worked():
    layer = conv(64, 32, 3, 10)                 # reduction 576 = 18 x 32; 32 filters = 2 x 16; 64 windows
    bf = make_engine(acc("bitfusion"))
    assert bf.compute(layer, 8, 8).compute_cycles == 64 * 2 * 18
    assert bf.compute(layer, 4, 4).compute_cycles == 64 * 2 * 5          # ceil(576 / 128)
    assert bf.compute(layer, 16, 16).compute_cycles == 64 * 2 * 18 * 4
    assert bf.compute(layer, 3, 4).compute_cycles == bf.compute(layer, 4, 4).compute_cycles
    c = bf.compute(layer, 8, 8)
    assert c.useful_lane_slots == c.lane_slots              # a full array at 8x8
    assert bf.compute(fc(4096, 1024), 8, 8).compute_cycles == 64 * 128


# ================================================================== the arithmetic

@pytest.mark.parametrize("booth", [False, True])
@pytest.mark.parametrize("shifter_bits", [0, 2, 4])
def test_pragmatic_dot_is_the_integer_dot_product(booth, shifter_bits):
    from simulator import kernels
    rng = np.random.default_rng(shifter_bits)
    cases = [rng.integers(0, 1 << 16, 16), rng.integers(-(1 << 15), 1 << 15, 16), np.zeros(16, np.int64),
             np.full(16, (1 << 16) - 1), np.full(16, -(1 << 15)), rng.integers(0, 2, 16)]
    for a in cases:
        w = rng.integers(-(1 << 15), 1 << 15, a.size)
        value, cycles = pragmatic_dot(a, w, booth, shifter_bits)
        assert value == int(np.dot(a.astype(object), w.astype(object)))
        masks = [kernels.term_mask(int(v), booth) for v in a]
        assert cycles == kernels.pragmatic_schedule(masks, shifter_bits)


# ================================================================== configuration and energy

def test_config_defaults_and_validation():
    assert acc("pragmatic").column_registers == 1 and acc("dynamic").column_registers == 0
    loom = acc("loom")
    assert (loom.tiles * loom.rows * loom.lanes * loom.windows_per_step) == 128 * 16 * 16   # 128 16b MACs
    assert acc("loom", tiles=2).rows == 16 and acc("bitfusion").windows_per_step == 1
    assert acc("bit-parallel").tiles == 16 and acc("bit-serial").windows_per_step == 16      # unchanged
    for bad in ({"engine": "bit-serial", "booth": True}, {"engine": "dynamic", "bits_per_cycle": 2},
                {"engine": "dynamic", "group_columns": 17}, {"engine": "loom", "bits_per_cycle": 3},
                {"engine": "pragmatic", "shifter_bits": 9}, {"engine": "dynamic", "run_ahead": -1}):
        with pytest.raises(ValidationError):
            AcceleratorConfig(name="x", **bad)


def test_every_engine_unit_is_priced_in_the_default_table():
    table = load_table(EnergyConfig())
    layer = conv(16, 16, 3, 6, pad=1)
    x = acts(layer, 8)
    configs = [acc(e) for e in ENGINES] + [acc("pragmatic", shifter_bits=b) for b in range(5)] + \
              [acc("loom", bits_per_cycle=k) for k in (1, 2, 4)]
    for cfg in configs:
        c = make_engine(cfg).compute(layer, 8, 16, x, weights(layer))
        for unit in c.unit_events:
            assert unit in table.entries and table.units[unit] == "pJ", (cfg.engine, unit)


def test_alexnet_workload_has_every_engine():
    from simulator.workload import load_workload
    wl = load_workload(REPO / "workloads" / "alexnet.yaml")
    assert {a.engine for a in wl.accelerators} == set(ENGINES)
    assert set(wl.profiles) == {"uniform-16", "stripes-100"}
