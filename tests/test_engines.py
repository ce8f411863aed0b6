"""Engines: the step formula, the bit-parallel and bit-serial cycle models, their counters, and the
bit-by-bit arithmetic that justifies the bit-serial model. Expected numbers are worked by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.config import AcceleratorConfig
from simulator.errors import SimulatorError
from simulator.engines import ENGINES, BitParallelEngine, BitSerialEngine, make_engine, passes, serial_dot, steps
from simulator.engines.bit_serial import staggered_cycles
from simulator.layers import CONV, FC, LayerSpec

DADIANNAO = AcceleratorConfig(name="dadiannao", engine="bit-parallel")
STRIPES = AcceleratorConfig(name="stripes", engine="bit-serial")


def conv(name: str, c: int, k: int, kernel: int, hw: int, stride: int = 1, pad: int = 0, groups: int = 1) -> LayerSpec:
    out = (hw + 2 * pad - kernel) // stride + 1
    return LayerSpec(name, CONV, c, k, (kernel, kernel), (stride, stride), (pad, pad), groups, (hw, hw), (out, out))


def fc(name: str, c: int, k: int) -> LayerSpec:
    return LayerSpec(name, FC, c, k, (1, 1), (1, 1), (0, 0), 1, (1, 1), (1, 1))


def alexnet() -> list[LayerSpec]:
    """Caffe AlexNet at 227x227 (two towers: conv2/4/5 have groups=2)."""
    return [conv("conv1", 3, 96, 11, 227, stride=4), conv("conv2", 96, 256, 5, 27, pad=2, groups=2),
            conv("conv3", 256, 384, 3, 13, pad=1), conv("conv4", 384, 384, 3, 13, pad=1, groups=2),
            conv("conv5", 384, 256, 3, 13, pad=1, groups=2),
            fc("fc6", 9216, 4096), fc("fc7", 4096, 4096), fc("fc8", 4096, 1000)]


def vgg19() -> list[LayerSpec]:
    """VGG-19 at 224x224: 16 3x3 pad-1 convolutions in five blocks (2x2 pooling between), 3 fc."""
    layers, c, hw = [], 3, 224
    for block, (k, n) in enumerate([(64, 2), (128, 2), (256, 4), (512, 4), (512, 4)], start=1):
        for i in range(n):
            layers.append(conv(f"conv{block}_{i + 1}", c, k, 3, hw, pad=1))
            c = k
        hw //= 2
    return layers + [fc("fc6", 512 * 7 * 7, 4096), fc("fc7", 4096, 4096), fc("fc8", 4096, 1000)]


def test_hand_built_networks_have_the_published_sizes():
    # Reference totals (reference/README.md): AlexNet ~0.72 GMAC, VGG-19 ~19.6 GMAC at 224.
    assert sum(l.macs for l in alexnet()) / 1e9 == pytest.approx(0.72, rel=0.01)
    assert sum(l.macs for l in vgg19()) / 1e9 == pytest.approx(19.6, rel=0.01)
    assert [l.output_hw for l in alexnet()[:5]] == [(55, 55), (27, 27), (13, 13), (13, 13), (13, 13)]


# --- passes and steps --------------------------------------------------------------------------

@pytest.mark.parametrize("bits,expected", [(1, 1), (8, 1), (16, 1), (17, 2), (32, 2), (33, 3), (0, 1)])
def test_passes(bits, expected):
    assert passes(bits, 16) == expected


def test_steps_hand_worked_conv():
    # 5x5 output (3x3, pad 1), C=3, K=4 on 2 tiles x 2 rows x 2 lanes:
    # 25 windows * ceil(4/4)=1 * ceil(3/2)=2 * 9 kernel positions = 450 steps at one column,
    # ceil(25/4)=7 window groups -> 7*1*2*9 = 126 steps at four columns.
    acc = AcceleratorConfig(name="tiny", engine="bit-parallel", tiles=2, rows=2, lanes=2)
    layer = conv("c", 3, 4, 3, 5, pad=1)
    assert steps(layer, acc) == 450
    assert steps(layer, acc, columns=4) == 126


def test_steps_fc_ignores_columns():
    acc = AcceleratorConfig(name="tiny", engine="bit-serial", tiles=1, rows=4, lanes=4, columns=8)
    # ceil(6/4)=2 filter groups * ceil(10/4)=3 bricks; one window whatever the columns.
    assert steps(fc("f", 10, 6), acc) == 6 == steps(fc("f", 10, 6), acc, columns=1)


def test_steps_rejects_bad_columns_and_kinds():
    with pytest.raises(SimulatorError, match="columns"):
        steps(fc("f", 4, 4), DADIANNAO, columns=0)
    pool = LayerSpec("pool1", "pool", 4, 4, (2, 2), (2, 2), (0, 0), 1, (4, 4), (2, 2))
    with pytest.raises(SimulatorError, match="pool1.*not a compute layer"):
        steps(pool, DADIANNAO)


# --- bit-parallel, hand-worked ----------------------------------------------------------------

def test_bit_parallel_counters_hand_worked():
    acc = AcceleratorConfig(name="tiny", engine="bit-parallel", tiles=2, rows=2, lanes=2)
    layer = conv("c", 3, 4, 3, 5, pad=1)        # 25 windows, 2700 MACs
    c = BitParallelEngine(acc).compute(layer, 8, 16)
    assert c.steps == 450 and c.compute_cycles == 450           # below 16 bits: no gain
    assert c.lane_slots == 450 * 8                              # 8 multipliers
    assert c.useful_lane_slots == 2700                          # 3 of 4 channel lanes busy
    assert c.idle_lane_slots == 900
    assert c.act_buffer_read_bits == 450 * 2 * 16               # one 2-lane brick per step
    assert c.weight_buffer_read_bits == 450 * 8 * 16            # 8 weights per step
    assert c.out_buffer_write_bits == 4 * 25 * 16
    assert c.unit_events == {"mul16x16": 3600}


def test_bit_parallel_passes_beyond_16_bits():
    acc = AcceleratorConfig(name="tiny", engine="bit-parallel", tiles=2, rows=2, lanes=2)
    layer = conv("c", 3, 4, 3, 5, pad=1)
    eng = BitParallelEngine(acc)
    assert eng.compute(layer, 17, 16).compute_cycles == 900
    assert eng.compute(layer, 16, 17).compute_cycles == 900
    wide = eng.compute(layer, 32, 32)
    assert wide.compute_cycles == 1800
    assert wide.useful_lane_slots == 2700 * 4
    assert wide.act_buffer_read_bits == 450 * 2 * 32            # two 16-bit words per activation
    assert wide.weight_buffer_read_bits == 450 * 8 * 32
    assert wide.unit_events == {"mul16x16": 1800 * 8}


def test_idle_lanes_when_filters_do_not_fill_the_array():
    # K=64 filters on 16 tiles x 16 rows = 256 filter lanes: a quarter of the array works.
    layer = conv("c", 16, 64, 1, 4)
    for acc in (DADIANNAO, STRIPES):
        c = make_engine(acc).compute(layer, 16, 16)
        assert c.useful_lane_slots * 4 == c.lane_slots
        assert c.idle_lane_slots == 3 * c.useful_lane_slots


def test_depthwise_uses_per_group_channels():
    # C = K = groups = 8: each group is one filter over one channel; 6x6 output, 3x3 kernel.
    layer = conv("dw", 8, 8, 3, 6, pad=1, groups=8)
    bp = make_engine(DADIANNAO).compute(layer, 16, 16)
    assert bp.steps == 8 * 36 * 1 * 1 * 9
    assert bp.useful_lane_slots == layer.macs == 36 * 8 * 9
    assert bp.lane_slots == bp.steps * 4096          # 1 of 4096 lanes useful
    bs = make_engine(STRIPES).compute(layer, 16, 16)
    assert bs.steps == 8 * math.ceil(36 / 16) * 9


# --- bit-serial, hand-worked ------------------------------------------------------------------

def test_bit_serial_conv_counters_hand_worked():
    acc = AcceleratorConfig(name="tiny", engine="bit-serial", tiles=2, rows=2, lanes=2, columns=4)
    layer = conv("c", 3, 4, 3, 5, pad=1)
    c = BitSerialEngine(acc).compute(layer, 5, 16)
    assert c.steps == 126 and c.compute_cycles == 126 * 5
    assert c.lane_slots == 630 * 32                             # 2*2*2 lanes x 4 columns
    assert c.useful_lane_slots == 2700 * 5
    assert c.act_buffer_read_bits == 630 * 4 * 2                # 1 bit per lane per column per cycle
    assert c.weight_buffer_read_bits == 126 * 8 * 16            # once per step, reused 5 cycles
    assert c.out_buffer_write_bits == 4 * 25 * 16
    assert c.unit_events == {"sip16": 630 * 2 * 2 * 4}


def test_bit_serial_fc_is_bit_parallel_plus_pipeline_fill():
    acc = AcceleratorConfig(name="tiny", engine="bit-serial", tiles=1, rows=4, lanes=4, columns=8)
    layer = fc("f", 10, 6)                                      # 6 bricks
    c = BitSerialEngine(acc).compute(layer, 5, 16)
    assert c.steps == 6 and c.compute_cycles == 6 + 5 - 1
    assert c.weight_buffer_read_bits == 6 * 16 * 16             # the same weights as bit-parallel
    assert c.act_buffer_read_bits == 6 * 4 * 5
    assert c.useful_lane_slots == 60 * 5 and c.lane_slots == 10 * 128
    # Two weight passes double the bricks.
    assert BitSerialEngine(acc).compute(layer, 5, 20).compute_cycles == 12 + 5 - 1


def test_staggered_cycles_when_bricks_outlast_the_columns():
    # 2 columns, 5-cycle bricks: starts 0,1 | 5,6 | 10,11 -> last ends at 16.
    assert staggered_cycles(6, 5, 2) == 16
    assert staggered_cycles(6, 5, 8) == 10
    assert staggered_cycles(1, 7, 16) == 7
    assert staggered_cycles(0, 7, 16) == 0


def test_fc_gives_no_gain_on_vgg19():
    bp, bs = make_engine(DADIANNAO), make_engine(STRIPES)
    for layer in (l for l in vgg19() if l.kind == FC):
        for p_a in (1, 5, 8, 16):
            assert bs.compute(layer, p_a, 16).compute_cycles == bp.compute(layer, p_a, 16).compute_cycles + p_a - 1


def test_unknown_engine_names_the_field_and_valid_names():
    bad = AcceleratorConfig.model_construct(name="x", engine="loom-ish")
    with pytest.raises(SimulatorError, match=r"'engine'.*loom-ish.*bit-parallel, bit-serial"):
        make_engine(bad)
    with pytest.raises(SimulatorError, match="engine"):
        BitSerialEngine(DADIANNAO)


def test_registry_and_value_needs():
    assert {"bit-parallel", "bit-serial"} <= set(ENGINES)
    for name, cls in ENGINES.items():
        assert cls.name == name
    # the two closed-form engines never read values; the value-aware ones (tests/test_value_engines.py) do
    assert ENGINES["bit-parallel"].needs_values is False and ENGINES["bit-serial"].needs_values is False
    assert make_engine(DADIANNAO).needs_weights is False
    assert isinstance(make_engine(DADIANNAO), BitParallelEngine)
    assert isinstance(make_engine(STRIPES), BitSerialEngine)


def test_bad_precision_names_the_layer():
    with pytest.raises(SimulatorError, match="conv9.*act_bits"):
        make_engine(STRIPES).compute(conv("conv9", 4, 4, 1, 4), 0, 16)


# --- whole networks against an independent recomputation -------------------------------------

def _independent_cycles(layers: list[LayerSpec], engine: str, p_a: int, p_w: int) -> np.ndarray:
    """The model recomputed with NumPy, without steps(): arrays over all layers at once."""
    is_fc = np.array([l.kind == FC for l in layers])
    o = np.array([l.output_hw[0] * l.output_hw[1] for l in layers], dtype=np.int64)
    kg = np.array([l.out_channels / l.groups for l in layers])
    cg = np.array([l.in_channels / l.groups for l in layers])
    g = np.array([l.groups for l in layers], dtype=np.int64)
    kk = np.array([l.kernel[0] * l.kernel[1] for l in layers], dtype=np.int64)
    common = g * np.ceil(kg / 256).astype(np.int64) * np.ceil(cg / 16).astype(np.int64) * kk
    pw = int(np.ceil(p_w / 16))
    if engine == "bit-parallel":
        return o * common * int(np.ceil(p_a / 16)) * pw
    serial_conv = np.ceil(o / 16).astype(np.int64) * common * p_a * pw
    if p_a <= 16:   # fc: one brick starts per cycle, then the pipeline drains
        serial_fc = common * pw + p_a - 1
    else:           # bricks outlast the 16 columns: groups of 16 starts every p_a cycles
        last = common * pw - 1
        serial_fc = (last // 16) * p_a + last % 16 + p_a
    return np.where(is_fc, serial_fc, serial_conv)


@pytest.mark.parametrize("network", [alexnet, vgg19])
@pytest.mark.parametrize("acc", [DADIANNAO, STRIPES], ids=["bit-parallel", "bit-serial"])
@pytest.mark.parametrize("p_a,p_w", [(16, 16), (8, 16), (5, 16), (1, 16), (20, 16), (16, 24), (32, 32)])
def test_whole_network_cycles_match_independent_formula(network, acc, p_a, p_w):
    layers = network()
    eng = make_engine(acc)
    got = np.array([eng.compute(l, p_a, p_w).compute_cycles for l in layers])
    np.testing.assert_array_equal(got, _independent_cycles(layers, acc.engine, p_a, p_w))


def test_bit_serial_equals_bit_parallel_at_16_bits_when_windows_fill_columns():
    bp, bs = make_engine(DADIANNAO), make_engine(STRIPES)
    checked = 0
    for layer in vgg19():
        if layer.kind == CONV and layer.windows % 16 == 0:
            assert bs.compute(layer, 16, 16).compute_cycles == bp.compute(layer, 16, 16).compute_cycles
            checked += 1
    assert checked == 12


def test_alexnet_convs_lose_the_partly_filled_last_column_group():
    # No AlexNet conv output (55^2, 27^2, 13^2) is a multiple of 16 windows: at 16 bits Stripes is
    # slower than DaDianNao by ceil(O/16)*16/O, e.g. 3025 windows -> 190 groups = 3040 slots.
    bp, bs = make_engine(DADIANNAO), make_engine(STRIPES)
    for layer in (l for l in alexnet() if l.kind == CONV):
        o = layer.windows
        assert bs.compute(layer, 16, 16).compute_cycles * o == bp.compute(layer, 16, 16).compute_cycles * math.ceil(o / 16) * 16


def test_stripes_conv_speedup_is_16_over_pa_when_windows_fill_columns():
    bp, bs = make_engine(DADIANNAO), make_engine(STRIPES)
    filled = [l for l in vgg19() if l.kind == CONV and l.windows % 16 == 0]
    assert len(filled) == 12            # 224, 112, 56 and 28 fill 16 columns; 14x14 does not
    for layer in filled:
        for p_a in range(1, 17):
            ratio = bp.compute(layer, p_a, 16).compute_cycles / bs.compute(layer, p_a, 16).compute_cycles
            assert ratio == pytest.approx(16 / p_a, rel=1e-12)
    # 14x14 = 196 windows = 12.25 column groups: the last group has 4 of 16 windows.
    c5 = next(l for l in vgg19() if l.name == "conv5_1")
    ratio = bp.compute(c5, 16, 16).compute_cycles / bs.compute(c5, 16, 16).compute_cycles
    assert ratio == pytest.approx(196 / 208)


# --- properties --------------------------------------------------------------------------------

layer_strategy = st.one_of(
    st.builds(lambda c, k, kern, hw, s, g: conv("c", c * g, k * g, min(kern, hw), hw, stride=s, groups=g),
              st.integers(1, 40), st.integers(1, 300), st.integers(1, 5), st.integers(1, 30),
              st.integers(1, 3), st.integers(1, 4)),
    st.builds(lambda c, k: fc("f", c, k), st.integers(1, 5000), st.integers(1, 2000)),
)
acc_strategy = st.builds(lambda t, r, la, col, bw: AcceleratorConfig(name="h", engine="bit-serial", tiles=t, rows=r,
                                                                     lanes=la, columns=col, base_width=bw),
                         st.integers(1, 16), st.integers(1, 16), st.integers(1, 16), st.integers(1, 16),
                         st.sampled_from([8, 16]))


@settings(max_examples=150, deadline=None)
@given(layer_strategy, acc_strategy, st.integers(1, 31), st.integers(1, 32))
def test_bit_serial_monotone_in_act_bits_and_lanes_consistent(layer, acc, p_a, p_w):
    eng = BitSerialEngine(acc)
    lo, hi = eng.compute(layer, p_a, p_w), eng.compute(layer, p_a + 1, p_w)
    assert lo.compute_cycles <= hi.compute_cycles
    for c in (lo, hi):
        assert c.lane_slots == c.compute_cycles * acc.tiles * acc.rows * acc.lanes * acc.columns
        assert 0 < c.useful_lane_slots <= c.lane_slots
        assert c.unit_events[f"sip{acc.base_width}"] * acc.lanes == c.lane_slots


@settings(max_examples=150, deadline=None)
@given(layer_strategy, acc_strategy, st.integers(1, 40), st.integers(1, 40))
def test_bit_parallel_utilisation_at_most_one(layer, acc, p_a, p_w):
    acc = acc.model_copy(update={"engine": "bit-parallel", "columns": 1})
    c = BitParallelEngine(acc).compute(layer, p_a, p_w)
    assert 0 < c.useful_lane_slots <= c.lane_slots
    assert c.compute_cycles == c.steps * passes(p_a, acc.base_width) * passes(p_w, acc.base_width)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 200), st.integers(1, 40), st.integers(1, 32))
def test_staggered_cycles_against_a_cycle_by_cycle_schedule(bricks, act_bits, columns):
    free_at = [0] * columns             # when each column can take its next brick
    t, end = 0, 0
    for i in range(bricks):
        col = i % columns
        t = max(t, free_at[col])        # at most one start per cycle, in order
        free_at[col] = t + act_bits
        end = t + act_bits
        t += 1
    assert staggered_cycles(bricks, act_bits, columns) == end


# --- the arithmetic behind the bit-serial model ------------------------------------------------

@pytest.mark.parametrize("bits", [1, 2, 5, 8, 12, 16])
@pytest.mark.parametrize("signed", [False, True])
def test_serial_dot_random(bits, signed):
    rng = np.random.default_rng(bits * 2 + signed)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1))) if signed else (0, 1 << bits)
    for n in (1, 16, 257):
        a = rng.integers(lo, hi, size=n)
        w = rng.integers(-(1 << 15), 1 << 15, size=n)
        assert serial_dot(a, w, bits, signed) == int(np.dot(a, w))


@pytest.mark.parametrize("bits", [1, 16])
@pytest.mark.parametrize("signed", [False, True])
def test_serial_dot_adversarial(bits, signed):
    n = 64
    top = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    bottom = -(1 << (bits - 1)) if signed else 0
    wmax, wmin = np.full(n, (1 << 15) - 1), np.full(n, -(1 << 15))
    cases = [(np.zeros(n, np.int64), wmax), (np.full(n, top), wmax), (np.full(n, top), wmin),
             (np.full(n, bottom), wmin), (np.full(n, bottom), wmax),
             (np.resize([top, bottom], n), np.resize([-(1 << 15), (1 << 15) - 1], n))]
    for a, w in cases:
        assert serial_dot(a, w, bits, signed) == int(np.dot(a.astype(object), w.astype(object)))


def test_serial_dot_msb_is_negative_when_signed():
    # 4-bit pattern 1000 is -8 signed and 8 unsigned.
    assert serial_dot(np.array([-8]), np.array([3]), 4, True) == -24
    assert serial_dot(np.array([8]), np.array([3]), 4, False) == 24
    with pytest.raises(ValueError):
        serial_dot(np.array([8]), np.array([3]), 4, True)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 16), st.booleans(), st.data())
def test_serial_dot_property(bits, signed, data):
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    n = data.draw(st.integers(0, 40))
    a = np.array(data.draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n)), dtype=np.int64)
    w = np.array(data.draw(st.lists(st.integers(-(1 << 15), (1 << 15) - 1), min_size=n, max_size=n)), dtype=np.int64)
    assert serial_dot(a, w, bits, signed) == int(np.dot(a, w))


@pytest.mark.parametrize("name,build", [("alexnet", alexnet), ("vgg19", vgg19)])
def test_hand_built_shapes_match_the_model_zoo(name, build):
    # The hand-built lists above keep the engine tests independent of torch; check them once against
    # the zoo (simulator/models.py), comparing shapes only (layer names differ).
    models = pytest.importorskip("simulator.models")
    from simulator.layers import shapes_of
    info = models.ZOO[name]
    zoo = shapes_of(models.build_model(name), info.input_shape)
    strip = lambda l: l.to_attrs() | {"name": ""}  # noqa: E731
    assert [strip(l) for l in zoo] == [strip(l) for l in build()]
