"""The Numba kernels of simulator/kernels.py against plain-NumPy/Python twins, compared exactly.

The twins are written the obvious way (per value, per window, per cycle), independent of the
kernels' tricks (lookup tables, ORs over bricks, a coverage map, a finish-time recurrence); the
benchmark (bench/bench_engines.py) imports them to measure the kernels' speed-up.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import kernels as K
from simulator.quantize import needed_bits

NO_TRAILING = K.NO_TRAILING


# ================================================================== twins (plain Python / NumPy)

def twin_needed(v: int, signed: bool) -> int:
    m = ~v if v < 0 else v          # one's complement of a negative
    return int(m).bit_length() + int(signed)


def twin_trailing(v: int) -> int:
    if v == 0:
        return NO_TRAILING
    n = 0
    while (v >> n) & 1 == 0:
        n += 1
    return n


def twin_own_width(v: int, signed: bool, trim: bool) -> int:
    n = twin_needed(v, signed)
    return n - twin_trailing(v) if trim and v != 0 else n


def twin_terms(v: int, booth: bool) -> list[int]:
    """Positions of the terms of |v|: its set bits, or the non-zero digits of its non-adjacent form."""
    m = abs(int(v))
    if not booth:
        return [p for p in range(m.bit_length()) if (m >> p) & 1]
    out, p = [], 0
    while m:
        if m % 2:
            d = 2 - (m % 4)
            out.append(p)
            m -= d
        m //= 2
        p += 1
    return out


def twin_brick_widths(x: np.ndarray, lanes: int, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    c_n, h, w = x.shape
    b_n = -(-c_n // lanes)
    hi = np.zeros((b_n, h, w), np.int64)
    lo = np.zeros((b_n, h, w), np.int64)
    for b in range(b_n):
        for y in range(h):
            for i in range(w):
                vals = [int(v) for v in x[b * lanes:(b + 1) * lanes, y, i]]
                hi[b, y, i] = max(twin_needed(v, signed) for v in vals)
                lo[b, y, i] = min(twin_trailing(v) for v in vals)
    return hi, lo


def twin_schedule(values: list[int], booth: bool, shifter_bits: int) -> int:
    """Cycle by cycle: the highest pending term sets the window; each lane takes its next term if
    the term is inside the window."""
    pending = [sorted(twin_terms(v, booth), reverse=True) for v in values]
    cycles = 0
    while any(pending):
        top = max(p[0] for p in pending if p)
        for p in pending:
            if p and p[0] >= top - (1 << shifter_bits) + 1:
                p.pop(0)
        cycles += 1
    return cycles


def twin_brick_terms_cycles(x: np.ndarray, lanes: int, shifter_bits: int, booth: bool) -> np.ndarray:
    c_n, h, w = x.shape
    b_n = -(-c_n // lanes)
    out = np.zeros((b_n, h, w), np.int64)
    for b in range(b_n):
        for y in range(h):
            for i in range(w):
                out[b, y, i] = twin_schedule([int(v) for v in x[b * lanes:(b + 1) * lanes, y, i]], booth, shifter_bits)
    return out


def _windows(out_h: int, out_w: int, sy: int, sx: int, k_h: int, k_w: int):
    for oy in range(out_h):
        for ox in range(out_w):
            for ky in range(k_h):
                for kx in range(k_w):
                    yield oy * sy + ky, ox * sx + kx, ky, kx


def twin_covered(x: np.ndarray, geometry: tuple, per_value) -> int:
    """Sum of per_value(v) over every (window, kernel position, channel) read: by enumeration."""
    total = 0
    for y, i, _, _ in _windows(*geometry):
        total += sum(per_value(int(v)) for v in x[:, y, i])
    return total


def twin_window_sums(v: np.ndarray, geometry: tuple) -> np.ndarray:
    out = np.zeros((v.shape[0], geometry[4], geometry[5]), np.int64)
    for y, i, ky, kx in _windows(*geometry):
        out[:, ky, kx] += v[:, y, i]
    return out


def twin_pass(cost: np.ndarray, registers: int) -> int:
    """Cycle-by-cycle: a column starts its next step s when idle and the slowest column has finished
    step s - registers - 1 (i.e. has finished at least s - registers steps). Costs >= 1."""
    s_n, c_n = cost.shape
    done = [0] * c_n            # steps each column has finished
    left = [0] * c_n            # cycles left of the step in progress (0: idle)
    t = 0
    while min(done) < s_n:
        slowest = min(done)
        for c in range(c_n):
            if left[c] == 0 and done[c] < s_n and slowest >= done[c] - registers:
                left[c] = int(cost[done[c], c])
        t += 1
        for c in range(c_n):
            if left[c]:
                left[c] -= 1
                if left[c] == 0:
                    done[c] += 1
    return t


def twin_conv_cycles(hi, lo, trim, out_h, out_w, sy, sx, k_h, k_w, columns, group_columns, bits_per_cycle,
                     wmul, registers) -> tuple[int, int]:
    b_n = hi.shape[0]
    windows = out_h * out_w
    total = busy = 0
    for w0 in range(0, windows, columns):
        cols = list(range(w0, min(windows, w0 + columns)))
        steps = [(ky, kx, b) for ky in range(k_h) for kx in range(k_w) for b in range(b_n)]
        cost = np.zeros((len(steps), len(cols)), np.int64)
        for s, (ky, kx, b) in enumerate(steps):
            for g0 in range(0, len(cols), group_columns):
                grp = cols[g0:g0 + group_columns]
                at = [((w // out_w) * sy + ky, (w % out_w) * sx + kx) for w in grp]
                top = max(int(hi[b, y, i]) for y, i in at)
                bottom = min(int(lo[b, y, i]) for y, i in at)
                width = top - bottom if trim and bottom != NO_TRAILING else top
                cost[s, g0:g0 + len(grp)] = max(1, -(-width // bits_per_cycle))
        busy += int(cost.sum())
        for t in range(wmul.shape[0]):
            total += twin_pass(cost * wmul[t][:, None], registers)
    return total, busy


def twin_staggered(costs: list[int], columns: int) -> int:
    """Cycle by cycle: at most one brick starts per cycle, brick i in column i mod columns when free."""
    free_at = [0] * columns
    nxt = t = end = 0
    while nxt < len(costs):
        c = nxt % columns
        if free_at[c] <= t:
            free_at[c] = t + costs[nxt]
            end = max(end, free_at[c])
            nxt += 1
        t += 1
    return end


def twin_weight_tile_widths(w: np.ndarray, filters: int, lanes: int, signed: bool):
    k_n, c_n, k_h, k_w = w.shape
    b_n, t_n = -(-c_n // lanes), -(-k_n // filters)
    nb = needed_bits(w, signed)
    per = np.ones((t_n, k_h * k_w * b_n), np.int64)
    for t in range(t_n):
        for ky in range(k_h):
            for kx in range(k_w):
                for b in range(b_n):
                    blk = nb[t * filters:(t + 1) * filters, b * lanes:(b + 1) * lanes, ky, kx]
                    per[t, (ky * k_w + kx) * b_n + b] = max(1, int(blk.max()))
    return per, nb.sum(axis=0)


# ================================================================== inputs

def layer_values(rng: np.random.Generator, shape: tuple, bits: int, signed: bool, kind: str) -> np.ndarray:
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if kind == "zeros":
        return np.zeros(shape, np.int64)
    if kind == "max":
        return np.full(shape, hi, np.int64)
    if kind == "min":
        return np.full(shape, lo, np.int64)
    x = rng.integers(lo, hi + 1, shape)
    if kind == "sparse":
        x[rng.random(shape) < 0.6] = 0
    if kind == "pow2":
        x = np.where(x > 0, 1 << rng.integers(0, max(1, bits - int(signed)), shape), x)
    return x.astype(np.int64)


KINDS = ["random", "sparse", "zeros", "max", "min", "pow2"]
PRECISIONS = [(1, False), (2, True), (8, False), (9, True), (16, False), (16, True)]


# ================================================================== per-value helpers

@pytest.mark.parametrize("bits,signed", PRECISIONS)
def test_per_value_maps_match_their_twins(bits, signed):
    rng = np.random.default_rng(bits)
    x = np.concatenate([layer_values(rng, (3, 5, 7), bits, signed, k) for k in KINDS])
    for trim in (False, True):
        want = np.vectorize(lambda v: twin_own_width(int(v), signed, trim))(x)
        assert np.array_equal(K.value_widths(x, signed, trim), want)
    assert np.array_equal(K.needed_widths_flat(x.ravel(), signed), needed_bits(x, signed).ravel())


def test_bit_helpers_on_wide_values():
    for v in [0, 1, 65535, 65536, (1 << 31) - 1, 1 << 40, -(1 << 40), -1, -65537]:
        assert K.needed_width(v, True) == twin_needed(v, True)
        assert K.trailing_zeros(v) == twin_trailing(v)
        for booth in (False, True):
            assert K.popcount(K.term_mask(v, booth)) == len(twin_terms(v, booth))


def test_booth_never_needs_more_terms_and_helps_runs_of_ones():
    for v in range(1 << 12):
        assert len(twin_terms(v, True)) <= len(twin_terms(v, False))
    assert len(twin_terms(0b0111_1111, True)) == 2      # 128 - 1
    assert len(twin_terms(0b0111_1111, False)) == 7


# ================================================================== brick maps

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bits,signed", PRECISIONS)
def test_brick_widths_match_twin(kind, bits, signed):
    rng = np.random.default_rng(7)
    x = layer_values(rng, (37, 4, 5), bits, signed, kind)        # 37 channels: a partial last brick
    for lanes in (16, 5, 1):
        hi, lo = K.brick_widths(x, lanes, signed)
        t_hi, t_lo = twin_brick_widths(x, lanes, signed)
        assert np.array_equal(hi, t_hi) and np.array_equal(lo, t_lo)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bits,signed", PRECISIONS)
def test_brick_terms_cycles_match_twin(kind, bits, signed):
    rng = np.random.default_rng(11)
    x = layer_values(rng, (21, 3, 4), bits, signed, kind)
    for shifter_bits in (0, 1, 2, 4):
        for booth in (False, True):
            got = K.brick_terms_cycles(x, 16, shifter_bits, booth)
            assert np.array_equal(got, twin_brick_terms_cycles(x, 16, shifter_bits, booth))


def test_schedule_hand_worked():
    # lanes 0b1011 (terms 3,1,0) and 0b0100 (term 2): with a window of 1 position the column takes
    # one cycle per distinct position (3, 2, 1, 0); with a 4-position window, max terms = 3.
    assert K.pragmatic_schedule([0b1011, 0b0100], 0) == 4
    assert K.pragmatic_schedule([0b1011, 0b0100], 2) == 3
    # terms far apart: 2^15 and 1 in one lane each; a 2-position window cannot reach both
    assert K.pragmatic_schedule([1 << 15, 1], 1) == 2
    assert K.pragmatic_schedule([1 << 15, 1], 4) == 1
    assert K.pragmatic_schedule([0, 0], 2) == 0


# ================================================================== sums over windows

GEOMETRIES = [  # (padded C, Hp, Wp), (out_h, out_w, sy, sx, k_h, k_w)
    ((3, 9, 9), (7, 7, 1, 1, 3, 3)),
    ((5, 11, 13), (3, 2, 4, 5, 3, 4)),
    ((2, 6, 6), (6, 6, 1, 1, 1, 1)),
    ((4, 1, 1), (1, 1, 1, 1, 1, 1)),
]


def _cover(hp: int, wp: int, geometry: tuple) -> np.ndarray:
    from simulator.engines.dynamic import coverage
    from simulator.layers import CONV, LayerSpec
    out_h, out_w, sy, sx, k_h, k_w = geometry
    spec = LayerSpec("t", CONV, 1, 1, (k_h, k_w), (sy, sx), (0, 0), 1, (hp, wp), (out_h, out_w))
    return coverage(spec)


@pytest.mark.parametrize("shape,geometry", GEOMETRIES)
def test_covered_sums_and_window_sums_match_twins(shape, geometry):
    rng = np.random.default_rng(3)
    for bits, signed in PRECISIONS:
        x = layer_values(rng, shape, bits, signed, "random")
        cover = _cover(shape[1], shape[2], geometry)
        for trim in (False, True):
            for k in (1, 2, 4):
                want = twin_covered(x, geometry, lambda v: -(-twin_own_width(v, signed, trim) // k))
                assert K.covered_widths(x, cover, signed, trim, k) == want
        for booth in (False, True):
            assert K.covered_terms(x, cover, booth) == twin_covered(x, geometry, lambda v: len(twin_terms(v, booth)))
        v = K.value_widths(x, signed, False)
        assert np.array_equal(K.window_sums(v, *geometry), twin_window_sums(v, geometry))


# ================================================================== passes, run-ahead, steps

def _maps(rng, shape, bits=8, signed=False, kind="random"):
    x = layer_values(rng, shape, bits, signed, kind)
    return K.brick_widths(x, 16, signed)


@pytest.mark.parametrize("registers", [0, 1, 2, 5, 1000])
@pytest.mark.parametrize("columns,group_columns", [(16, 16), (16, 1), (16, 3), (4, 4), (1, 1)])
def test_conv_cycles_match_twin(registers, columns, group_columns):
    rng = np.random.default_rng(registers * 31 + columns + group_columns)
    hi, lo = _maps(rng, (20, 9, 8), kind="sparse")          # 2 bricks, 7x6 = 42 windows (not /16)
    geometry = (7, 6, 1, 1, 3, 3)
    s_n = 3 * 3 * 2
    for trim in (False, True):
        for k in (1, 2):
            for wmul in (np.ones((1, s_n), np.int64), rng.integers(1, 9, (2, s_n))):
                got = K.conv_cycles(hi, lo, trim, *geometry, columns, group_columns, k, wmul, registers)
                want = twin_conv_cycles(hi, lo, trim, *geometry, columns, group_columns, k, wmul, registers)
                assert tuple(int(v) for v in got) == want


def test_conv_cycles_strided_and_pragmatic_costs():
    rng = np.random.default_rng(5)
    x = layer_values(rng, (17, 11, 11), 16, False, "sparse")
    cost = K.brick_terms_cycles(x, 16, 2, False)
    geometry = (3, 3, 4, 4, 3, 3)
    ones = np.ones((1, 3 * 3 * 2), np.int64)
    for registers in (0, 1, 3):
        got = K.conv_cycles(cost, cost, False, *geometry, 16, 1, 1, ones, registers)
        assert tuple(int(v) for v in got) == twin_conv_cycles(cost, cost, False, *geometry, 16, 1, 1, ones, registers)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(1, 12), min_size=3, max_size=3), min_size=1, max_size=12),
       st.integers(0, 14))
def test_run_ahead_recurrence_matches_cycle_simulation(rows, registers):
    cost = np.array(rows, np.int64)
    got = K.run_ahead_pass(cost, np.ones(cost.shape[0], np.int64), registers)
    assert got == twin_pass(cost, registers)
    # the two limits: lockstep steps, and independent columns
    assert K.run_ahead_pass(cost, np.ones(cost.shape[0], np.int64), 0) == cost.max(axis=1).sum()
    assert K.run_ahead_pass(cost, np.ones(cost.shape[0], np.int64), 10 ** 9) == cost.sum(axis=0).max()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 20), min_size=0, max_size=40), st.integers(1, 16))
def test_staggered_var_matches_cycle_simulation(costs, columns):
    assert K.staggered_cycles_var(np.array(costs, np.int64), columns) == twin_staggered(costs, columns)


def test_staggered_var_generalises_stripes_fc_schedule():
    from simulator.engines.bit_serial import staggered_cycles
    for bricks in (0, 1, 15, 16, 17, 100):
        for bits in (1, 9, 16, 20):
            assert K.staggered_cycles_var(np.full(bricks, bits, np.int64), 16) == staggered_cycles(bricks, bits, 16)


@pytest.mark.parametrize("signed", [False, True])
def test_weight_tile_widths_match_twin(signed):
    rng = np.random.default_rng(2)
    for shape in [(40, 20, 3, 3), (7, 3, 1, 1), (128, 33, 2, 1)]:
        w = layer_values(rng, shape, 12, signed, "random")
        w[: shape[0] // 2] >>= 4                                    # some narrow filters
        per, wsum = K.weight_tile_widths(w.astype(np.int16), 16, 16, signed)
        t_per, t_sum = twin_weight_tile_widths(w, 16, 16, signed)
        assert np.array_equal(per, t_per) and np.array_equal(wsum, t_sum)
