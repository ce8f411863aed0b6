"""The memory model: presets, packing, tiling choices, double-buffered timing, request traces.

Hand-worked cases use 8-bit values and 1-byte bursts where possible so that one value is one byte
and the arithmetic can be followed on paper; the tiling search is checked against a plain-Python
brute force (``twin_*``) that walks every loop order and tile size tile by tile.
"""
from __future__ import annotations

import csv
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.config import MemoryConfig
from simulator.errors import SimulatorError
from simulator.layers import CONV, FC, LayerSpec
from simulator.memory import (ACTIVATIONS_STATIONARY, DRAM_PRESETS, ON_CHIP, SINGLE_TILE, WEIGHTS_STATIONARY,
                              _build_plan, _schedule, _tile_bits, bandwidth_bits_per_cycle, latency_cycles, packed_bits, plan_layer,
                              resolve_dram, simulate_memory, write_request_trace)


def conv(name: str, c: int, k: int, hw: tuple[int, int], kernel: int = 1, stride: int = 1, pad: int = 0,
         groups: int = 1) -> LayerSpec:
    oy = (hw[0] + 2 * pad - kernel) // stride + 1
    ox = (hw[1] + 2 * pad - kernel) // stride + 1
    return LayerSpec(name, CONV, c, k, (kernel, kernel), (stride, stride), (pad, pad), groups, hw, (oy, ox))


def fc(name: str, inputs: int, outputs: int) -> LayerSpec:
    return LayerSpec(name, FC, inputs, outputs, (1, 1), (1, 1), (0, 0), 1, (1, 1), (1, 1))


def mem_bytes(act_bytes: float, weight_bytes: float, **kw) -> MemoryConfig:
    """A memory entry with buffer capacities given in bytes (the config takes KiB)."""
    return MemoryConfig(name="m", activation_buffer_kib=act_bytes / 1024, weight_buffer_kib=weight_bytes / 1024, **kw)


ON_CHIP_MEM = MemoryConfig(name="edram", dram="none", activation_buffer_kib=None, weight_buffer_kib=None)


# ------------------------------------------------------------------------------------- presets

def test_presets_have_sources_and_documented_figures():
    assert set(DRAM_PRESETS) == {"DDR3-1600", "DDR4-3200", "LPDDR4-3200", "HBM2"}
    for d in DRAM_PRESETS.values():
        assert d.source.strip() and d.bandwidth_gbps > 0 and d.burst_bytes > 0 and d.latency_ns > 0
    assert [DRAM_PRESETS[n].bandwidth_gbps for n in ("DDR3-1600", "DDR4-3200", "LPDDR4-3200", "HBM2")] == \
        [12.8, 25.6, 12.8, 256.0]
    assert [DRAM_PRESETS[n].burst_bytes for n in ("DDR3-1600", "DDR4-3200", "LPDDR4-3200", "HBM2")] == [64, 64, 64, 32]
    hbm = DRAM_PRESETS["HBM2"]
    assert hbm.energy_pj_per_bit == 3.97 and "O'Connor" in hbm.source
    for n in ("DDR3-1600", "DDR4-3200"):   # Horowitz's 1.3-2.6 nJ per 64-bit access, said to be coarse
        assert 1300 / 64 <= DRAM_PRESETS[n].energy_pj_per_bit <= 2600 / 64
        assert "COARSE FALLBACK" in DRAM_PRESETS[n].source
    assert "WEAK" in DRAM_PRESETS["LPDDR4-3200"].source


def test_resolve_dram_case_insensitive_overrides_and_channels():
    assert resolve_dram(ON_CHIP_MEM) is None
    d = resolve_dram(MemoryConfig(name="m", dram="ddr4-3200"))
    assert d == DRAM_PRESETS["DDR4-3200"]
    d = resolve_dram(MemoryConfig(name="m", dram="HBM2", channels=4, latency_ns=0, burst_bytes=64,
                                  energy_pj_per_bit=1.5))
    assert (d.bandwidth_gbps, d.burst_bytes, d.latency_ns, d.energy_pj_per_bit) == (1024.0, 64, 0.0, 1.5)
    d = resolve_dram(MemoryConfig(name="m", dram="LPDDR4-3200", bandwidth_gbps=10.0, channels=2))
    assert d.bandwidth_gbps == 20.0                      # the override is per channel


def test_unknown_preset_names_memory_field_and_valid_presets():
    with pytest.raises(SimulatorError) as e:
        resolve_dram(MemoryConfig(name="fast", dram="DDR5-6400"))
    msg = str(e.value)
    assert "memory 'fast'" in msg and "field 'dram'" in msg and "'DDR5-6400'" in msg
    for name in ("DDR3-1600", "DDR4-3200", "LPDDR4-3200", "HBM2", "none"):
        assert name in msg
    assert "\n" not in msg


def test_bandwidth_in_bits_per_cycle_is_exact():
    d = DRAM_PRESETS["DDR4-3200"]                        # 25.6e9 B/s * 8 / 1e9 Hz = 204.8 bits/cycle
    assert bandwidth_bits_per_cycle(d, 1000.0) == pytest.approx(204.8)
    assert bandwidth_bits_per_cycle(d, 1000.0) * 5 == 1024   # exact rational, no float noise


# ---------------------------------------------------------------------------------------- packing

@pytest.mark.parametrize("count,bits,burst,expected", [
    (0, 16, 64, 0),
    (10, 16, 64, 512),        # 160 bits -> one 512-bit burst
    (32, 16, 64, 512),        # exactly one burst
    (33, 16, 64, 1024),       # 528 bits -> two bursts
    (3, 5, 1, 16),            # 15 bits -> two bytes
    (1000, 3, 32, 3072),      # 3000 bits -> 12 bursts of 256
])
def test_packed_bits_hand_cases(count, bits, burst, expected):
    assert packed_bits(count, bits, burst) == expected


@given(st.integers(0, 10**6), st.integers(1, 16), st.sampled_from([1, 32, 64]))
def test_halving_precision_halves_packed_bits_up_to_one_burst(count, half, burst):
    full = packed_bits(count, 2 * half, burst)
    assert full >= count * 2 * half and full - count * 2 * half < 8 * burst
    assert abs(2 * packed_bits(count, half, burst) - full) <= 8 * burst


def test_halving_every_precision_halves_layer_traffic_up_to_burst_rounding():
    layer = conv("c", 3, 7, (13, 11), kernel=3, pad=1)     # odd counts: rounding shows up
    mem = MemoryConfig(name="m", dram="HBM2")
    full = plan_layer(layer, 16, 16, 16, mem, 32)
    half = plan_layer(layer, 8, 8, 8, mem, 32)
    assert full.tiles == half.tiles == 1
    transfers = 3                                          # inputs, weights, outputs: one each
    assert abs(2 * half.dram_bits - full.dram_bits) <= transfers * 8 * 32
    assert half.dram_bits < full.dram_bits


# ----------------------------------------------------------------------------------------- tiling

def test_layer_that_fits_uses_one_tile_and_moves_each_operand_once():
    layer = conv("c", 4, 8, (8, 8), kernel=3, pad=1)       # 256 inputs, 288 weights, 512 outputs
    plan = plan_layer(layer, 16, 16, 16, MemoryConfig(name="m"), 64)
    assert (plan.tiles, plan.loop_order) == (1, SINGLE_TILE)
    assert (plan.act_read_bits, plan.weight_read_bits, plan.out_write_bits) == (4096, 4608, 8192)
    assert plan.per_tile_fetch_bits == [4096 + 4608]


def test_neither_fits_chooses_activations_stationary_when_it_moves_less():
    # 1x1 conv, C=8, K=16, 8x8 input, 8-bit values, 1-byte bursts: A=512 B, W=128 B, O=1024 B.
    # Weight buffer 64 B: at most 4 filters (x2 ping-pong), so >= 4 filter tiles.
    # Activation buffer 600 B: the whole input (512 B) plus a filter's outputs twice (128 B) is
    # 640 B, so the input must be cut into bands; a band of r rows needs 2*64r + 2*8rt bytes.
    #  (a) weights stationary: 4 tiles of 4 filters (192r <= 600: r <= 3): 4*512 + 128 + 1024 = 3200 B
    #  (b) activations stationary: 2 bands of 4 rows (512 + 64t <= 600: t = 1): 512 + 2*128 + 1024 = 1792 B
    plan = plan_layer(conv("c", 8, 16, (8, 8)), 8, 8, 8, mem_bytes(600, 64), 1)
    assert plan.loop_order == ACTIVATIONS_STATIONARY
    assert (plan.bands, plan.weight_tiles, plan.tiles) == (2, 16, 32)
    assert (plan.act_read_bits, plan.weight_read_bits, plan.out_write_bits) == (512 * 8, 256 * 8, 1024 * 8)


def test_neither_fits_chooses_weights_stationary_when_it_moves_less():
    # 1x1 conv, C=8, K=64, 8x1 input: A=64 B (8 B per row), W=512 B, O=512 B (1 B per row per filter).
    # Weight buffer 256 B: at most 16 filters per tile (x2), so >= 4 filter tiles.
    # Activation buffer 70 B: one band needs 64 + 2*8t > 70, so bands of r rows: 2*8r + 2rt bytes.
    #  (a) 4 tiles of 16 filters: 48r <= 70 -> r = 1, 8 bands: 4*64 + 512 + 512 = 1280 B
    #  (b) best is 3 bands of 3 rows (48 + 6t <= 70: t = 3): 64 + 3*512 + 512 = 2112 B
    plan = plan_layer(conv("c", 8, 64, (8, 1)), 8, 8, 8, mem_bytes(70, 256), 1)
    assert plan.loop_order == WEIGHTS_STATIONARY
    assert (plan.bands, plan.weight_tiles, plan.tiles) == (8, 4, 32)
    assert (plan.act_read_bits, plan.weight_read_bits, plan.out_write_bits) == (4 * 64 * 8, 512 * 8, 512 * 8)


def test_row_bands_reread_the_kernel_halo():
    # 3x3 conv, pad 1, C=8, K=1, 8x8 input, 8-bit: one input row is 64 B, a filter 72 B, outputs 8 B/row.
    # Act buffer 560 B < 512 + 64 (whole input + outputs). Bands of 2 output rows read 3, 4, 4, 3 input
    # rows (2*4*64 + 2*2*8 = 544 B fits); bands of 3 or 4 rows need 5-row inputs (640 B + outputs).
    # Halo: (bands - 1) * (Ky - stride) = 3 * 2 extra rows, 14 rows read in all.
    plan = plan_layer(conv("c", 8, 1, (8, 8), kernel=3, pad=1), 8, 8, 8, mem_bytes(560, 4096), 1)
    assert (plan.bands, plan.weight_tiles, plan.loop_order) == (4, 1, WEIGHTS_STATIONARY)
    assert plan.act_read_bits == 14 * 64 * 8
    assert (plan.weight_read_bits, plan.out_write_bits) == (72 * 8, 64 * 8)
    assert [s.act_bits // 8 for s in plan.steps] == [192, 256, 256, 192]


def test_fully_connected_weights_stream_once_in_filter_tiles():
    layer = fc("fc6", 25088, 4096)
    mem = MemoryConfig(name="m", dram="DDR4-3200")          # 2 MiB buffers, far below 25088*4096*16 bits
    plan = plan_layer(layer, 16, 16, 16, mem, 64)
    assert plan.bands == 1 and plan.weight_tiles > 1 and plan.loop_order == ACTIVATIONS_STATIONARY
    assert plan.act_read_bits == packed_bits(25088, 16, 64)           # inputs fetched once, kept
    assert plan.weight_read_bits == sum(packed_bits(n * 25088, 16, 64)
                                        for n in _split(4096, plan.filters_per_tile))
    assert plan.weight_read_bits < packed_bits(25088 * 4096, 16, 64) + plan.weight_tiles * 512


def _split(total: int, size: int) -> list[int]:
    return [min(size, total - i) for i in range(0, total, size)]


def test_layer_that_cannot_fit_names_layer_and_buffer():
    layer = conv("conv_big", 8, 1, (8, 8), kernel=3, pad=1)   # smallest tile needs 2*3*64 + 2*8 = 400 B
    with pytest.raises(SimulatorError) as e:
        plan_layer(layer, 8, 8, 8, mem_bytes(300, 4096), 1)
    assert "memory 'm'" in str(e.value) and "'conv_big'" in str(e.value)
    assert "activation_buffer_kib" in str(e.value)
    with pytest.raises(SimulatorError) as e:                  # one filter is 72 B
        plan_layer(layer, 8, 8, 8, mem_bytes(4096, 64), 1)
    assert "'conv_big'" in str(e.value) and "weight_buffer_kib" in str(e.value)


# ------------------------------------------------------------------ plain-Python twin of the search

def twin_bands(layer: LayerSpec, r: int) -> list[tuple[int, list[int]]]:
    """(output rows, input rows read) per band, from the rows each output row's kernel touches."""
    (ky, _), (sy, _), (py, _) = layer.kernel, layer.stride, layer.padding
    h, oy = layer.input_hw[0], layer.output_hw[0]
    out = []
    starts = list(range(0, oy, r))
    for i, r0 in enumerate(starts):
        rows = range(r0, min(oy, r0 + r))
        touched = {y * sy - py + j for y in rows for j in range(ky)} & set(range(h))
        lo = 0 if i == 0 else min(touched)
        hi = h - 1 if i == len(starts) - 1 else max(touched)
        out.append((len(rows), list(range(lo, hi + 1))))
    return out


def twin_min_traffic(layer, ab, wb, ob, act_cap, weight_cap, burst) -> tuple[int, int] | None:
    """Fewest DRAM bits (and then fewest tiles) over every order and tile size, walked tile by tile."""
    k, ox = layer.out_channels, layer.output_hw[1]
    row_vals = layer.in_channels * layer.input_hw[1]
    fvals = layer.channels_per_group * layer.kernel[0] * layer.kernel[1]
    best = None
    for r in range(1, layer.output_hw[0] + 1):
        bands = twin_bands(layer, r)
        for t in range(1, k + 1):
            ftiles = _split(k, t)
            nb, nw = len(bands), len(ftiles)
            w_need = t * fvals * wb * (2 if nw > 1 else 1)
            a_need = (max(len(rows) for _, rows in bands) * row_vals * ab * (2 if nb > 1 else 1)
                      + r * ox * t * ob * (2 if nb * nw > 1 else 1))
            if w_need > weight_cap or a_need > act_cap:
                continue
            for weights_outer in (True, False):
                pairs = ([(b, w) for w in range(nw) for b in range(nb)] if weights_outer
                         else [(b, w) for b in range(nb) for w in range(nw)])
                bits, prev = 0, (None, None)
                for b, w in pairs:
                    if b != prev[0]:
                        bits += packed_bits(len(bands[b][1]) * row_vals, ab, burst)
                    if w != prev[1]:
                        bits += packed_bits(ftiles[w] * fvals, wb, burst)
                    bits += packed_bits(bands[b][0] * ox * ftiles[w], ob, burst)
                    prev = (b, w)
                cand = (bits, len(pairs))
                best = cand if best is None or cand < best else best
    return best


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 6), k=st.integers(1, 7), h=st.integers(3, 9), w=st.integers(1, 6),
       kernel=st.sampled_from([1, 3]), stride=st.sampled_from([1, 2]), bits=st.sampled_from([(8, 8, 8), (5, 3, 7)]),
       act_bytes=st.integers(20, 400), weight_bytes=st.integers(8, 200), burst=st.sampled_from([1, 8]))
def test_search_matches_brute_force_twin(c, k, h, w, kernel, stride, bits, act_bytes, weight_bytes, burst):
    layer = conv("c", c, k, (h, max(w, kernel)), kernel=kernel, stride=stride, pad=kernel // 2)
    mem = mem_bytes(act_bytes, weight_bytes)
    expected = twin_min_traffic(layer, *bits, act_bytes * 8, weight_bytes * 8, burst)
    if expected is None:
        with pytest.raises(SimulatorError):
            plan_layer(layer, *bits, mem, burst)
        return
    plan = plan_layer(layer, *bits, mem, burst)
    assert (plan.dram_bits, plan.tiles) == expected
    assert plan.per_tile_fetch_bits == [s.act_bits + s.weight_bits for s in plan.steps]
    assert sum(plan.per_tile_fetch_bits) == plan.act_read_bits + plan.weight_read_bits


# ----------------------------------------------------------------------------------------- timing

def test_on_chip_has_no_traffic_and_no_stalls():
    m = simulate_memory(conv("c", 64, 64, (56, 56), kernel=3, pad=1), 16, 16, 16, 12345, ON_CHIP_MEM, 1000.0)
    assert (m.dram_bits, m.memory_cycles, m.stall_cycles, m.total_cycles) == (0, 0, 0, 12345)
    assert m.loop_order == ON_CHIP and m.bound == "compute"


def test_single_tile_timing_hand_worked():
    # 8 GB/s at 1000 MHz = 64 bits/cycle; 10 ns = 10 cycles. Fetch 4096 + 4608 bits = 136 cycles after
    # 10 of latency; compute 1000; write 8192 bits = 128 cycles: 146 + 1000 + 128 = 1274.
    mem = MemoryConfig(name="m", bandwidth_gbps=8.0, latency_ns=10.0, burst_bytes=64)
    m = simulate_memory(conv("c", 4, 8, (8, 8), kernel=3, pad=1), 16, 16, 16, 1000, mem, 1000.0)
    assert (m.tiles, m.total_cycles, m.stall_cycles, m.memory_cycles) == (1, 1274, 274, 274)


def _fc_four_tiles(compute: int, **kw):
    # FC 64 -> 4 at 8 bits, 1-byte bursts, 1 GB/s at 1000 MHz = 1 byte/cycle, no latency.
    # Weight buffer 128 B: one 64-B filter per tile (x2), 4 tiles. Fetch 0 = 64 B inputs + 64 B
    # weights = 128 cycles; fetches 1-3 = 64 cycles; each tile writes 1 B.
    mem = mem_bytes(4096, 128, bandwidth_gbps=1.0, latency_ns=0.0, burst_bytes=1, **kw)
    return simulate_memory(fc("fc", 64, 4), 8, 8, 8, compute, mem, 1000.0)


def test_double_buffered_timing_compute_bound_tiles_hand_worked():
    # compute 100/tile: F0 [0,128) F1 [128,192); T0 [128,228); W0 [228,229) F2 [229,293); T1 [228,328);
    # W1 [328,329) F3 [329,393); T2 [328,428); W2 [428,429); T3 [428,528); W3 [528,529).
    m = _fc_four_tiles(400)
    assert (m.tiles, m.total_cycles, m.stall_cycles, m.memory_cycles) == (4, 529, 129, 128 + 3 * 64 + 4)
    # stalls from the first fetch and last write alone do not make a layer memory-bound: the channel
    # is busy 324 cycles, the array 400
    assert m.stall_cycles > 0 and m.bound == "compute"


def test_double_buffered_timing_memory_bound_tiles_hand_worked():
    # compute 25/tile: F0 [0,128) F1 [128,192); T0 [128,153); W0 [192,193) F2 [193,257); T1 [192,217);
    # W1 [257,258) F3 [258,322); T2 [257,282); W2 [322,323); T3 [322,347); W3 [347,348).
    m = _fc_four_tiles(100)
    assert (m.total_cycles, m.stall_cycles, m.memory_cycles) == (348, 248, 324)
    assert m.memory_cycles > 100 and m.bound == "memory"


def test_compute_bound_label_with_unlimited_bandwidth():
    layer = conv("c", 64, 128, (28, 28), kernel=3, pad=1)
    mem = MemoryConfig(name="ideal", bandwidth_gbps=math.inf, latency_ns=0.0, activation_buffer_kib=64,
                       weight_buffer_kib=64)
    m = simulate_memory(layer, 16, 16, 16, 50_000, mem, 1000.0)
    assert m.tiles > 1 and m.dram_bits > 0                 # still tiled and still moving data
    assert (m.stall_cycles, m.total_cycles, m.memory_cycles, m.bound) == (0, 50_000, 0, "compute")


def test_huge_finite_bandwidth_costs_only_the_first_fetch_and_last_write():
    layer = conv("c", 64, 128, (28, 28), kernel=3, pad=1)
    mem = MemoryConfig(name="fast", bandwidth_gbps=1e9, latency_ns=0.0, activation_buffer_kib=64,
                       weight_buffer_kib=64)
    m = simulate_memory(layer, 16, 16, 16, 10 * 50_000, mem, 1000.0)
    assert m.stall_cycles == 2            # one cycle each: integer cycles, every other transfer hidden


@settings(max_examples=30, deadline=None)
@given(c=st.integers(1, 64), k=st.integers(1, 64), hw=st.integers(1, 30), kernel=st.sampled_from([1, 3, 5]),
       preset=st.sampled_from(sorted(DRAM_PRESETS)), bits=st.integers(1, 16), compute=st.integers(0, 200_000),
       kib=st.sampled_from([4.0, 16.0, 2048.0]), freq=st.sampled_from([300.0, 1000.0, 1234.5]))
def test_memory_cycles_at_least_bits_over_bandwidth(c, k, hw, kernel, preset, bits, compute, kib, freq):
    hw = max(hw, kernel)
    layer = conv("c", c, k, (hw, hw), kernel=kernel, pad=kernel // 2)
    mem = MemoryConfig(name="m", dram=preset, activation_buffer_kib=kib, weight_buffer_kib=kib)
    try:
        m = simulate_memory(layer, bits, bits, bits, compute, mem, freq)
    except SimulatorError:
        return                                            # too big for the 4 KiB buffers
    bw = bandwidth_bits_per_cycle(resolve_dram(mem), freq)
    floor_cycles = math.ceil(m.dram_bits / bw)
    assert m.memory_cycles >= floor_cycles
    assert m.total_cycles >= max(compute, floor_cycles)
    assert m.stall_cycles == m.total_cycles - compute >= 0
    assert m.total_cycles <= compute + m.memory_cycles    # overlap never makes things worse than serial


# ------------------------------------------------------------- equal traffic: fewest cycles wins

def _fc_six_filters(compute: int, latency_ns: float):
    # FC 64 -> 6 at 8 bits, 1-byte bursts, 1 GB/s at 1000 MHz = 1 byte/cycle. Weight buffer 300 B:
    # 1 filter (64 B, x2) or 2 filters (128 B, x2) per tile; 3 filters need 384 B, all 6 need 384 B.
    # Either tiling moves 64 B inputs + 384 B weights + 6 B outputs: equal bits.
    mem = mem_bytes(4096, 300, bandwidth_gbps=1.0, latency_ns=latency_ns, burst_bytes=1)
    return fc("fc", 64, 6), mem


def test_equal_traffic_goes_to_the_fewest_total_cycles_hand_worked():
    layer, mem = _fc_six_filters(600, 0.0)
    untimed = plan_layer(layer, 8, 8, 8, mem, 1)
    assert (untimed.tiles, untimed.dram_bits) == (3, 454 * 8)            # no compute known: fewer tiles
    # compute 600, no latency.
    # 3 tiles (200 each): F0 = 64+128 B [0,192) F1 [192,320); T0 [192,392); W0 [392,394) F2 [394,522);
    #   T1 [392,592); W1 [592,594); T2 [592,792); W2 [792,794): 794 cycles.
    # 6 tiles (100 each): F0 = 64+64 B [0,128) F1 [128,192); T0 [128,228); W0 F2 [229,293); T1 [228,328);
    #   ... fetch i+2 always lands before tile i+2 starts; T5 [628,728); W5 [728,729): 729 cycles.
    m = simulate_memory(layer, 8, 8, 8, 600, mem, 1000.0)
    assert (m.tiles, m.total_cycles, m.stall_cycles, m.dram_bits) == (6, 729, 129, 454 * 8)
    bw, lat = bandwidth_bits_per_cycle(resolve_dram(mem), 1000.0), latency_cycles(resolve_dram(mem), 1000.0)
    timed = plan_layer(layer, 8, 8, 8, mem, 1, compute_cycles=600, bw=bw, lat=lat)
    assert (timed.tiles, timed.filters_per_tile, timed.dram_bits) == (6, 1, untimed.dram_bits)
    assert _schedule(untimed, 600, bw, lat)[0] == 794


def test_equal_traffic_keeps_fewer_tiles_when_latency_makes_them_faster():
    # 100 ns latency = 100 cycles per fetch, no compute: the channel never idles, so the total is every
    # request back to back. 3 tiles: 3*100 + 64 + 384 + 6 = 754; 6 tiles: 6*100 + 454 = 1054.
    layer, mem = _fc_six_filters(0, 100.0)
    m = simulate_memory(layer, 8, 8, 8, 0, mem, 1000.0)
    assert (m.tiles, m.total_cycles) == (3, 754)


def vgg_conv(name: str, c: int, k: int, hw: int) -> LayerSpec:
    return conv(name, c, k, (hw, hw), kernel=3, pad=1)


VGG_SHAPES = [vgg_conv("conv1_1", 3, 64, 224), vgg_conv("conv2_1", 64, 128, 112), vgg_conv("conv3_1", 128, 256, 56)]


@pytest.mark.parametrize("layer", VGG_SHAPES, ids=lambda l: l.name)
@settings(max_examples=12, deadline=None)
@given(compute=st.integers(0, 8_000_000), outputs_follow=st.booleans())
def test_lower_activation_precision_is_never_slower_on_vgg_layers(layer, compute, outputs_follow):
    # Same weights (16 bits), same compute and memory: fewer activation bits must not cost cycles.
    # With ties in DRAM bits going to the fewest tiles, conv1_1 at 9 bits took 5 tiles against 10 at
    # 16 bits and stalled 33,131 cycles against 15,723 (at 338,688 compute cycles).
    mem = MemoryConfig(name="ddr4", dram="DDR4-3200", activation_buffer_kib=2048, weight_buffer_kib=2048)
    totals = [simulate_memory(layer, a, 16, a if outputs_follow else 16, compute, mem, 1000.0).total_cycles
              for a in (16, 9, 5)]
    assert totals[0] >= totals[1] >= totals[2], totals


def test_vgg_conv1_1_at_9_bits_no_longer_stalls_more_than_at_16():
    mem = MemoryConfig(name="ddr4", dram="DDR4-3200")
    m16, m9 = (simulate_memory(VGG_SHAPES[0], a, 16, a, 338_688, mem, 1000.0) for a in (16, 9))
    assert m9.dram_bits < m16.dram_bits and m9.stall_cycles <= m16.stall_cycles
    assert m9.stall_cycles < 15_723 < 33_131                           # 16 bits' and 9 bits' before


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 6), k=st.integers(1, 12), h=st.integers(3, 9), w=st.integers(1, 6),
       kernel=st.sampled_from([1, 3]), bits=st.sampled_from([(8, 8, 8), (5, 3, 7)]),
       act_bytes=st.integers(20, 400), weight_bytes=st.integers(8, 200), burst=st.sampled_from([1, 8]),
       compute=st.integers(0, 5000), lat=st.sampled_from([0, 3, 40]), bw=st.sampled_from([1, 8, 64]))
def test_timed_plan_moves_the_fewest_bits_and_is_never_slower(c, k, h, w, kernel, bits, act_bytes, weight_bytes,
                                                              burst, compute, lat, bw):
    layer = conv("c", c, k, (h, max(w, kernel)), kernel=kernel, pad=kernel // 2)
    mem = mem_bytes(act_bytes, weight_bytes)
    try:
        untimed = plan_layer(layer, *bits, mem, burst)
    except SimulatorError:
        return
    timed = plan_layer(layer, *bits, mem, burst, compute_cycles=compute, bw=bw, lat=lat)
    assert timed.dram_bits == untimed.dram_bits                        # the tie-break never adds traffic
    t_timed, t_untimed = _schedule(timed, compute, bw, lat)[0], _schedule(untimed, compute, bw, lat)[0]
    assert t_timed <= t_untimed
    if t_timed == t_untimed:
        assert timed.tiles <= untimed.tiles
    # the candidates are timed from array-built tile sizes: they must be the plan's own
    oy = layer.output_hw[0]
    for order in (WEIGHTS_STATIONARY, ACTIVATIONS_STATIONARY):
        for r, t in ((1, 1), (min(2, oy), min(3, k)), (oy, k), (oy, 1), (1, k)):
            plan = _build_plan(layer, *bits, burst, order, r, t)
            fetch, write = _tile_bits(layer, *bits, burst, order, r, t)
            assert (fetch, write) == (plan.per_tile_fetch_bits, plan.per_tile_write_bits)


def test_plan_layer_needs_the_channel_when_given_compute():
    with pytest.raises(ValueError):
        plan_layer(fc("fc", 64, 6), 8, 8, 8, mem_bytes(4096, 300), 1, compute_cycles=100)


# ---------------------------------------------------------------------------------- request trace

def test_request_trace_totals_and_order(tmp_path):
    layer = conv("c", 8, 16, (8, 8))
    mem = mem_bytes(600, 64, dram="DDR3-1600")
    dram = resolve_dram(mem)
    plan = plan_layer(layer, 8, 8, 8, mem, dram.burst_bytes)
    path = tmp_path / "trace.csv"
    write_request_trace(path, layer, plan, dram, 1000.0, compute_cycles=5000)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["cycle", "address", "rw", "bytes", "operand"]
    by = lambda op: sum(int(r["bytes"]) for r in rows if r["operand"] == op)  # noqa: E731
    assert by("act") * 8 == plan.act_read_bits and by("weight") * 8 == plan.weight_read_bits
    assert by("out") * 8 == plan.out_write_bits
    assert sum(int(r["bytes"]) for r in rows) * 8 == plan.dram_bits
    assert {r["rw"] for r in rows if r["operand"] == "out"} == {"W"}
    assert all(int(r["bytes"]) == 64 for r in rows)
    assert all(int(r["address"], 16) % 64 == 0 for r in rows)
    cycles = [int(r["cycle"]) for r in rows]
    assert cycles == sorted(cycles)                      # one channel, requests in issue order
