"""Numba kernels of the value-aware engines: the loops that look at every activation.

Numba (``njit``, ``cache=True``) compiles them once per machine; ``parallel=True`` where the outer
loop is over independent bricks, channels or window groups. Each kernel has a plain-NumPy twin in
``tests/test_kernels.py`` that the tests compare with it exactly. The models they count are in
``docs/engines.md``; the engines in ``simulator/engines/`` are small classes over them.

Vocabulary (as in ``engines/base.py``): a *brick* is ``lanes`` consecutive input channels at one
(y, x) position; a *column* processes one window; a *step* feeds one brick of one kernel position
to every column; a *pass* is the sequence of steps that accumulates one window group's outputs for
one filter tile, ordered kernel row, kernel column, then brick (channels innermost).

Per-value quantities:

* needed width: position of the highest set bit plus one, plus a sign bit where the layer is signed
  (negatives by their one's complement), as Dynamic Stripes detects it (``quantize.needed_bits``);
* trailing zeros of the two's complement pattern (``NO_TRAILING`` for zero, which constrains nothing);
* terms: the non-zero bits of the magnitude (Bit-Pragmatic's "oneffsets"), or with Booth recoding
  the non-zero digits of the magnitude's non-adjacent form.
"""
from __future__ import annotations

import os

import numba
import numpy as np
from numba import njit, prange

# Numba's own thread pool rather than OpenMP: torch (imported by the export side of the same
# process) brings its OpenMP runtime, and with both in one process every parallel kernel call was
# measured 50-300x slower (threads spinning against each other). NUMBA_THREADING_LAYER overrides.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

NO_TRAILING = 127   # trailing zeros of a zero value: larger than any real count, so a min ignores it


# --------------------------------------------------------------------------- per-value bit helpers

# Lookup tables over 16-bit chunks: the loops below touch every activation, and a table load is
# several times faster than a loop over its bits. Numba freezes these arrays into the compiled code.
_BIT_LENGTH16 = np.array([int(v).bit_length() for v in range(1 << 16)], dtype=np.int8)
_POPCOUNT16 = np.array([bin(v).count("1") for v in range(1 << 16)], dtype=np.int8)


@njit(cache=True, inline="always")
def bit_length(v: int) -> int:
    """Bits of a non-negative integer (0 for 0)."""
    n = 0
    while v >= 65536:
        v >>= 16
        n += 16
    return n + _BIT_LENGTH16[v]


@njit(cache=True, inline="always")
def popcount(v: int) -> int:
    """Set bits of a non-negative integer."""
    n = 0
    while v:
        n += _POPCOUNT16[v & 65535]
        v >>= 16
    return n


@njit(cache=True, inline="always")
def needed_width(v: int, signed: bool) -> int:
    m = ~v if v < 0 else v
    return bit_length(m) + (1 if signed else 0)


@njit(cache=True, inline="always")
def trailing_zeros(v: int) -> int:
    if v == 0:
        return NO_TRAILING
    return bit_length(v & -v) - 1


@njit(cache=True, inline="always")
def term_mask(v: int, booth: bool) -> int:
    """Bit positions of the terms of ``v`` (one bit per term). Booth: the non-adjacent form of |v|,
    whose non-zero digits sit where (m >> 1) and m + (m >> 1) differ."""
    m = -v if v < 0 else v
    if booth:
        h = m >> 1
        return h ^ (m + h)
    return m


# --------------------------------------------------------------------------- per-value maps

@njit(cache=True, inline="always")
def own_width(v: int, signed: bool, trim: bool) -> int:
    """A value's own width: needed width, or with ``trim`` less its trailing zeros (msb - lsb + 1,
    sign included); a zero keeps its sign bit only."""
    n = needed_width(v, signed)
    if trim and v != 0:
        n -= trailing_zeros(v)
    return n


@njit(cache=True, parallel=True)
def value_widths(x: np.ndarray, signed: bool, trim: bool) -> np.ndarray:
    """Each value's own width (``own_width``), (C, H, W) int8."""
    c_n, h_n, w_n = x.shape
    out = np.empty((c_n, h_n, w_n), np.int8)
    for c in prange(c_n):
        for y in range(h_n):
            for i in range(w_n):
                out[c, y, i] = own_width(np.int64(x[c, y, i]), signed, trim)
    return out


@njit(cache=True, parallel=True)
def covered_widths(x: np.ndarray, cover: np.ndarray, signed: bool, trim: bool, bits_per_cycle: int) -> int:
    """Sum over values of ceil(own width / bits_per_cycle) x ``cover[y, x]`` (how many (window,
    kernel position) pairs read that input position): per filter, the lane-cycles a layer's MACs need."""
    c_n, h_n, w_n = x.shape
    total = 0
    for c in prange(c_n):
        part = 0
        for y in range(h_n):
            for i in range(w_n):
                n = own_width(np.int64(x[c, y, i]), signed, trim)
                part += (n + bits_per_cycle - 1) // bits_per_cycle * cover[y, i]
        total += part
    return total


@njit(cache=True, parallel=True)
def covered_terms(x: np.ndarray, cover: np.ndarray, booth: bool) -> int:
    """Sum over values of their terms x ``cover[y, x]``: per filter, the terms a layer's MACs process."""
    c_n, h_n, w_n = x.shape
    total = 0
    for c in prange(c_n):
        part = 0
        for y in range(h_n):
            for i in range(w_n):
                part += popcount(term_mask(np.int64(x[c, y, i]), booth)) * cover[y, i]
        total += part
    return total


@njit(cache=True, parallel=True)
def needed_widths_flat(x: np.ndarray, signed: bool) -> np.ndarray:
    """Needed width of every value of a 1-D array (weights, flattened), int8."""
    out = np.empty(x.size, np.int8)
    for i in prange(x.size):
        out[i] = needed_width(np.int64(x[i]), signed)
    return out


# --------------------------------------------------------------------------- per-brick maps

@njit(cache=True, parallel=True)
def brick_widths(x: np.ndarray, lanes: int, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per brick of ``lanes`` channels at each (y, x) of ``x`` (C, H, W): the largest needed width
    (``hi``) and the fewest trailing zeros (``lo``; ``NO_TRAILING`` when the brick is all zero).
    Shapes (ceil(C/lanes), H, W), int8.

    As the detector in hardware does, it ORs the brick's values: the OR of the magnitudes (negatives
    by their one's complement) has the highest set bit of any, the OR of the two's complement
    patterns the lowest set bit of any."""
    c_n, h_n, w_n = x.shape
    b_n = (c_n + lanes - 1) // lanes
    hi = np.empty((b_n, h_n, w_n), np.int8)
    lo = np.empty((b_n, h_n, w_n), np.int8)
    for b in prange(b_n):
        top = np.zeros((h_n, w_n), np.int64)
        low = np.zeros((h_n, w_n), np.int64)
        for c in range(b * lanes, min(c_n, (b + 1) * lanes)):
            for y in range(h_n):
                for i in range(w_n):
                    v = np.int64(x[c, y, i])
                    top[y, i] |= ~v if v < 0 else v
                    low[y, i] |= v
        for y in range(h_n):
            for i in range(w_n):
                hi[b, y, i] = bit_length(top[y, i]) + (1 if signed else 0)
                lo[b, y, i] = trailing_zeros(low[y, i])
    return hi, lo


@njit(cache=True, inline="always")
def _pragmatic_schedule(masks: np.ndarray, n: int, window: int) -> int:
    """Cycles one column takes for the terms in ``masks[:n]`` (one mask per lane): each cycle every
    lane may process its most significant pending term if it lies within ``window`` positions of
    the highest pending term of the column (the first shifter stage's reach). ``masks`` is consumed."""
    cycles = 0
    while True:
        top = -1
        for l in range(n):
            if masks[l]:
                t = bit_length(masks[l]) - 1
                if t > top:
                    top = t
        if top < 0:
            return cycles
        low = top - window + 1
        for l in range(n):
            if masks[l]:
                t = bit_length(masks[l]) - 1
                if t >= low:
                    masks[l] ^= np.int64(1) << t
        cycles += 1


@njit(cache=True, parallel=True)
def brick_terms_cycles(x: np.ndarray, lanes: int, shifter_bits: int, booth: bool) -> np.ndarray:
    """Per brick of ``lanes`` channels at each (y, x) of ``x`` (C, H, W): the cycles a Pragmatic
    column needs for the brick's terms with a first-stage shifter of 2**shifter_bits positions
    (0 for an all-zero brick). Shape (ceil(C/lanes), H, W), int8."""
    c_n, h_n, w_n = x.shape
    b_n = (c_n + lanes - 1) // lanes
    window = 1 << shifter_bits
    out = np.zeros((b_n, h_n, w_n), np.int8)
    for b in prange(b_n):
        c0 = b * lanes
        n = min(c_n, c0 + lanes) - c0
        masks = np.empty(n, np.int64)
        for y in range(h_n):
            for i in range(w_n):
                for l in range(n):
                    masks[l] = term_mask(np.int64(x[c0 + l, y, i]), booth)
                out[b, y, i] = _pragmatic_schedule(masks, n, window)
    return out


def pragmatic_schedule(masks: np.ndarray, shifter_bits: int) -> int:
    """Python entry to the per-column schedule (for tests and ``pragmatic_dot``)."""
    m = np.array(masks, dtype=np.int64).copy()
    return int(_pragmatic_schedule(m, m.size, 1 << shifter_bits))


# --------------------------------------------------------------------------- window sums

@njit(cache=True, parallel=True)
def window_sums(v: np.ndarray, out_h: int, out_w: int, sy: int, sx: int, k_h: int, k_w: int) -> np.ndarray:
    """For a per-value map ``v`` (C, Hp, Wp) of a padded input: the sum over all output windows of
    the value each window meets at kernel position (ky, kx), per channel. Shape (C, Ky, Kx), int64.
    Multiplied by the weights' per-(c, ky, kx) figures it gives per-MAC totals."""
    c_n = v.shape[0]
    out = np.zeros((c_n, k_h, k_w), np.int64)
    for c in prange(c_n):
        for ky in range(k_h):
            for kx in range(k_w):
                s = 0
                for oy in range(out_h):
                    row = oy * sy + ky
                    for ox in range(out_w):
                        s += v[c, row, ox * sx + kx]
                out[c, ky, kx] = s
    return out


# --------------------------------------------------------------------------- steps and passes

@njit(cache=True, inline="always")
def run_ahead_pass(cost: np.ndarray, wmul: np.ndarray, registers: int) -> int:
    """Cycles of one pass whose columns may run up to ``registers`` steps ahead of the slowest.

    ``cost[s, c]`` is column c's cycles at step s before the weight factor ``wmul[s]``. Column c
    starts step s when it has finished step s-1 and every column has finished step s-R-1 (R =
    ``registers``; the register holding step s's weights frees when the slowest column leaves
    step s-R-1). R = 0: each step lasts its slowest column; R >= steps: columns run independently.
    The pass ends when its last column finishes.
    """
    s_n, c_n = cost.shape
    r = min(registers, s_n)
    finish = np.zeros(c_n, np.int64)
    ring = np.zeros(r + 1, np.int64)     # ring[s % (r+1)]: when the slowest column finished step s
    for s in range(s_n):
        slot = s % (r + 1)
        barrier = ring[slot] if s >= r + 1 else 0
        latest = 0
        for c in range(c_n):
            start = finish[c] if finish[c] > barrier else barrier
            finish[c] = start + cost[s, c] * wmul[s]
            if finish[c] > latest:
                latest = finish[c]
        ring[slot] = latest
    end = 0
    for c in range(c_n):
        if finish[c] > end:
            end = finish[c]
    return end


@njit(cache=True, parallel=True)
def conv_cycles(hi: np.ndarray, lo: np.ndarray, trim: bool, out_h: int, out_w: int, sy: int, sx: int,
                k_h: int, k_w: int, columns: int, group_columns: int, bits_per_cycle: int,
                wmul: np.ndarray, registers: int) -> tuple[int, int]:
    """Cycles of one convolution group, summed over window groups and the filter tiles of ``wmul``.

    ``hi``/``lo`` (B, Hp, Wp) are per-brick maps of the padded input. A column's cost at a step is
    ceil(width / bits_per_cycle), at least 1, where width = max ``hi`` over its group of
    ``group_columns`` columns, less min ``lo`` over the group when ``trim`` (``lo`` ignored when the
    group is all zero). Pragmatic passes its per-brick cycles as ``hi`` with group_columns = 1.
    ``wmul`` (tiles, steps) multiplies step s of filter tile t (weight widths; ones when static).
    Returns (cycles, column_cycles): the cycles of every pass and the sum over busy columns and
    steps of their cost before the weight factor (for one filter tile).
    """
    b_n = hi.shape[0]
    windows = out_h * out_w
    groups = (windows + columns - 1) // columns
    s_n = k_h * k_w * b_n
    t_n = wmul.shape[0]
    cycles = np.zeros(groups, np.int64)
    busy = np.zeros(groups, np.int64)
    for g in prange(groups):
        w0 = g * columns
        c_n = min(columns, windows - w0)
        ys = np.empty(c_n, np.int64)
        xs = np.empty(c_n, np.int64)
        for c in range(c_n):
            ys[c] = ((w0 + c) // out_w) * sy
            xs[c] = ((w0 + c) % out_w) * sx
        cost = np.empty((s_n, c_n), np.int64)
        total = 0
        for ky in range(k_h):
            for kx in range(k_w):
                for b in range(b_n):
                    s = (ky * k_w + kx) * b_n + b
                    for c0 in range(0, c_n, group_columns):
                        c1 = min(c_n, c0 + group_columns)
                        top = 0
                        bottom = NO_TRAILING
                        for c in range(c0, c1):
                            h = hi[b, ys[c] + ky, xs[c] + kx]
                            if h > top:
                                top = h
                            if trim:
                                t = lo[b, ys[c] + ky, xs[c] + kx]
                                if t < bottom:
                                    bottom = t
                        width = top - bottom if trim and bottom != NO_TRAILING else top
                        cyc = (width + bits_per_cycle - 1) // bits_per_cycle
                        if cyc < 1:
                            cyc = 1
                        for c in range(c0, c1):
                            cost[s, c] = cyc
                            total += cyc
        busy[g] = total
        acc = 0
        for t in range(t_n):
            acc += run_ahead_pass(cost, wmul[t], registers)
        cycles[g] = acc
    return cycles.sum(), busy.sum()


@njit(cache=True)
def staggered_cycles_var(costs: np.ndarray, columns: int) -> int:
    """Cycles to run bricks of varying length ``costs[i]`` when at most one brick starts per cycle and
    each of ``columns`` columns holds one brick at a time; brick i goes to column i mod columns
    (the fully connected schedule of ``bit_serial.staggered_cycles`` with per-brick lengths)."""
    free = np.zeros(columns, np.int64)
    prev = -1
    end = 0
    for i in range(costs.size):
        c = i % columns
        start = prev + 1 if prev + 1 > free[c] else free[c]
        free[c] = start + costs[i]
        prev = start
        if free[c] > end:
            end = free[c]
    return end


# --------------------------------------------------------------------------- weights (Loom)

@njit(cache=True, parallel=True)
def weight_tile_widths(w: np.ndarray, filters: int, lanes: int, signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """For one group's weights ``w`` (K_g, C_g, Ky, Kx): the widest needed width each filter tile of
    ``filters`` filters uses at each step, (tiles, Ky*Kx*B) with step (ky*Kx + kx)*B + b, at least
    1; and the needed widths summed over the filters, (C_g, Ky, Kx)."""
    k_n, c_n, k_h, k_w = w.shape
    b_n = (c_n + lanes - 1) // lanes
    t_n = (k_n + filters - 1) // filters
    per = np.ones((t_n, k_h * k_w * b_n), np.int64)
    wsum = np.zeros((c_n, k_h, k_w), np.int64)
    for b in prange(b_n):
        for f in range(k_n):        # filters outer: each filter's brick is contiguous in memory
            t = f // filters
            for c in range(b * lanes, min(c_n, (b + 1) * lanes)):
                for ky in range(k_h):
                    for kx in range(k_w):
                        n = needed_width(np.int64(w[f, c, ky, kx]), signed)
                        wsum[c, ky, kx] += n
                        s = (ky * k_w + kx) * b_n + b
                        if n > per[t, s]:
                            per[t, s] = n
    return per, wsum
