"""Off-chip side of a layer: on-chip buffers, tiling, DRAM traffic at the layer's precision, stalls.

The model (equations in ``docs/memory.md``) is per layer and per input, with no inter-layer fusion:
each layer reads its input activations and weights from DRAM and writes its outputs back. Values
are stored off chip packed at the layer's precision (Judd et al. 2015, "bounded memory"), so every
transfer is ``count * bits`` rounded up to whole DRAM bursts.

When the operands do not fit the activation and weight buffers the layer is cut into tiles: row
bands of the output (with the kernel halo of the input rows they need) and groups of filters. Of
the two loop orders (weights stationary, activations stationary) and every tile size, the plan
with the fewest DRAM bits wins; among plans moving equal bits, the one with the fewest total cycles
when the compute is known. Timing is double buffered: the fetch of tile i+1 overlaps the compute of
tile i, and a tile waits for its data. Everything is hand-written here because this is
the project's own model; no library implements it.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, replace
from fractions import Fraction
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from simulator.config import MemoryConfig
from simulator.counters import MemoryCounters
from simulator.errors import SimulatorError
from simulator.layers import LayerSpec

ON_CHIP = "on-chip"
SINGLE_TILE = "single-tile"
WEIGHTS_STATIONARY = "weights-stationary"          # filter tiles outer: inputs stream per filter tile
ACTIVATIONS_STATIONARY = "activations-stationary"  # row bands outer: weights stream per band
_PRESET_FILE = "dram.yaml"


@dataclass(frozen=True)
class DRAM:
    """An off-chip memory: peak bandwidth (all channels), burst, access latency and energy per bit."""

    name: str
    bandwidth_gbps: float       # GB/s, 10^9 bytes per second
    burst_bytes: int            # smallest transfer: bus width x burst length
    latency_ns: float           # one row-miss access (tRCD + CL)
    energy_pj_per_bit: float
    source: str


def _load_presets() -> dict[str, DRAM]:
    try:
        text = (resources.files("simulator") / "data" / _PRESET_FILE).read_text(encoding="utf-8")
    except (NotADirectoryError, TypeError, ModuleNotFoundError, FileNotFoundError):
        # a namespace-package install cannot be resolved by importlib.resources; the file is beside us
        text = (Path(__file__).parent / "data" / _PRESET_FILE).read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    presets: dict[str, DRAM] = {}
    for name, e in doc["presets"].items():
        presets[str(name)] = DRAM(name=str(name), bandwidth_gbps=float(e["bandwidth_gbps"]),
                                  burst_bytes=int(e["burst_bytes"]), latency_ns=float(e["latency_ns"]),
                                  energy_pj_per_bit=float(e["energy_pj_per_bit"]), source=str(e["source"]))
    return presets


DRAM_PRESETS: dict[str, DRAM] = _load_presets()


def resolve_dram(mem: MemoryConfig) -> DRAM | None:
    """The DRAM behind ``mem``: None when everything is on chip; else the preset with ``mem``'s
    overrides applied (``bandwidth_gbps`` is per channel) and the bandwidth times ``mem.channels``."""
    if mem.on_chip:
        return None
    by_lower = {k.lower(): v for k, v in DRAM_PRESETS.items()}
    preset = by_lower.get(mem.dram.lower())
    if preset is None:
        valid = ", ".join([*sorted(DRAM_PRESETS), "none"])
        raise SimulatorError(f"memory '{mem.name}': field 'dram': unknown preset '{mem.dram}'; valid: {valid}")
    per_channel = mem.bandwidth_gbps if mem.bandwidth_gbps is not None else preset.bandwidth_gbps
    return replace(
        preset,
        bandwidth_gbps=per_channel * mem.channels,
        burst_bytes=mem.burst_bytes if mem.burst_bytes is not None else preset.burst_bytes,
        latency_ns=mem.latency_ns if mem.latency_ns is not None else preset.latency_ns,
        energy_pj_per_bit=mem.energy_pj_per_bit if mem.energy_pj_per_bit is not None else preset.energy_pj_per_bit,
    )


def packed_bits(count: int, bits: int, burst_bytes: int) -> int:
    """DRAM bits moved for ``count`` values stored packed at ``bits`` each, in whole bursts."""
    burst_bits = 8 * burst_bytes
    return -(-count * bits // burst_bits) * burst_bits


@dataclass(frozen=True)
class TileStep:
    """What one tile moves: its input band and filter tile fetched (0 when already on chip, with
    their bit offsets in the packed tensors) and its outputs written back."""

    act_bits: int
    act_offset_bits: int
    weight_bits: int
    weight_offset_bits: int
    out_bits: int


@dataclass(frozen=True)
class TilePlan:
    """How a layer is cut into tiles and the DRAM bits that costs, in execution order."""

    tiles: int
    loop_order: str
    act_read_bits: int
    weight_read_bits: int
    out_write_bits: int
    per_tile_fetch_bits: list[int]
    bands: int = 1                       # output row bands
    weight_tiles: int = 1                # filter tiles
    rows_per_band: int = 1
    filters_per_tile: int = 1
    steps: tuple[TileStep, ...] = ()

    @property
    def per_tile_write_bits(self) -> list[int]:
        return [s.out_bits for s in self.steps]

    @property
    def dram_bits(self) -> int:
        return self.act_read_bits + self.weight_read_bits + self.out_write_bits


def _band_rows(layer: LayerSpec, rows_per_band: int) -> list[tuple[int, int, int, int]]:
    """Output row bands of ``rows_per_band`` rows: (out_row0, out_rows, in_row0, in_rows) each.

    A band of output rows [r0, r1) needs input rows r0*sy - py .. (r1-1)*sy - py + Ky - 1 (clipped to
    the image), so neighbouring bands overlap by the halo of Ky - sy rows. The first band starts at
    row 0 and the last ends at the image's last row, so a single band reads the whole input once.
    """
    (ky, _), (sy, _), (py, _) = layer.kernel, layer.stride, layer.padding
    h, oy = layer.input_hw[0], layer.output_hw[0]
    bands = []
    for r0 in range(0, oy, rows_per_band):
        r1 = min(oy, r0 + rows_per_band)
        lo = 0 if r0 == 0 else max(0, r0 * sy - py)
        hi = h - 1 if r1 == oy else min(h - 1, (r1 - 1) * sy - py + ky - 1)
        bands.append((r0, r1 - r0, lo, max(0, hi - lo + 1)))
    return bands


def _packed_np(count: np.ndarray, bits: int, burst_bits: int) -> np.ndarray:
    return -(-count * bits // burst_bits) * burst_bits


def _on_chip_plan() -> TilePlan:
    return TilePlan(1, ON_CHIP, 0, 0, 0, [0], steps=(TileStep(0, 0, 0, 0, 0),))


_MAX_TIMED_CANDIDATES = 64       # schedules tried per layer when breaking a tie in DRAM bits


def plan_layer(layer: LayerSpec, act_bits: int, weight_bits: int, out_bits: int, mem: MemoryConfig,
               burst_bytes: int, *, compute_cycles: int | None = None, bw: Fraction | float | None = None,
               lat: int | None = None) -> TilePlan:
    """The tiling of ``layer`` with the fewest DRAM bits that fits ``mem``'s buffers.

    Tiles are (row band, filter tile) pairs. Capacity, in bits at the layer's precisions: the weight
    buffer holds one filter tile, twice when filter tiles change (ping-pong for double buffering);
    the activation buffer holds one input band and its outputs for one filter tile, each doubled
    when it changes between tiles.

    Ties in DRAM bits: without ``compute_cycles`` they go to fewer tiles. With ``compute_cycles``
    (and the channel's ``bw`` in bits per cycle and ``lat`` in cycles, as ``simulate_memory`` uses)
    they go to the fewest total cycles in the double-buffered schedule, then to fewer tiles: at equal
    traffic, smaller tiles shrink the first fetch and last write that no compute hides.
    """
    if mem.on_chip:
        return _on_chip_plan()
    timed = compute_cycles is not None
    if timed and (bw is None or lat is None):
        raise ValueError("plan_layer: compute_cycles needs the channel's bw and lat")
    act_cap = mem.activation_buffer_kib * 8192
    weight_cap = mem.weight_buffer_kib * 8192
    burst_bits = 8 * burst_bytes
    k = layer.out_channels
    oy, ox = layer.output_hw
    row_values = layer.in_channels * layer.input_hw[1]                 # one input row, all channels
    filter_values = layer.channels_per_group * layer.kernel[0] * layer.kernel[1]

    # Per filters-per-tile t (vectorised over t = 1..K): tile count, weight traffic, raw tile size.
    t = np.arange(1, k + 1, dtype=np.int64)
    nw = -(-k // t)
    t_last = k - (nw - 1) * t
    w_once = (nw - 1) * _packed_np(t * filter_values, weight_bits, burst_bits) \
        + _packed_np(t_last * filter_values, weight_bits, burst_bits)
    w_need = t * filter_values * weight_bits * np.where(nw > 1, 2, 1)
    w_fits = w_need <= weight_cap

    best: tuple | None = None                  # (dram bits, tiles, order, rows, filters)
    min_act_need = math.inf
    # timed ties: every plan with the fewest bits so far, one per (loop order, bands, filter tiles),
    # the smallest rows and filters per tile (the evenest split) standing for its shape
    tied_bits = np.iinfo(np.int64).max
    tied: dict[tuple[str, int, int], tuple[str, int, int]] = {}
    for r in range(1, oy + 1):
        bands = _band_rows(layer, r)
        nb = len(bands)
        a_once = sum(packed_bits(b[3] * row_values, act_bits, burst_bytes) for b in bands)
        in_max = max(b[3] for b in bands) * row_values * act_bits
        r_last = bands[-1][1]
        # outputs: one write per (band, filter tile), each rounded to whole bursts on its own; bands
        # have r rows but the last, filter tiles t filters but the last
        o_total = ((nb - 1) * (nw - 1) * _packed_np(r * ox * t, out_bits, burst_bits)
                   + (nb - 1) * _packed_np(r * ox * t_last, out_bits, burst_bits)
                   + (nw - 1) * _packed_np(r_last * ox * t, out_bits, burst_bits)
                   + _packed_np(r_last * ox * t_last, out_bits, burst_bits))
        many = (nb * nw) > 1
        act_need = in_max * (2 if nb > 1 else 1) + r * ox * t * out_bits * np.where(many, 2, 1)
        min_act_need = min(min_act_need, float(act_need.min()))
        fits = w_fits & (act_need <= act_cap)
        if not fits.any():
            continue
        # (a) weights stationary: filter tiles outer, the input re-streamed per filter tile unless
        #     it is a single band that stays on chip. (b) activations stationary: bands outer,
        #     all weights re-streamed per band unless they are a single tile.
        traffic_a = np.where(nb == 1, a_once, nw * a_once) + w_once + o_total
        traffic_b = a_once + np.where(nw == 1, w_once, nb * w_once) + o_total
        for order, traffic in ((WEIGHTS_STATIONARY, traffic_a), (ACTIVATIONS_STATIONARY, traffic_b)):
            masked = np.where(fits, traffic, np.iinfo(np.int64).max)
            i = int(np.lexsort((nw, masked))[0])   # fewest bits, then fewest tiles
            cand = (int(traffic[i]), nb * int(nw[i]), order, r, int(t[i]))
            if best is None or cand[:2] < best[:2]:
                best = cand
            if timed and cand[0] <= tied_bits:
                if cand[0] < tied_bits:
                    tied_bits, tied = cand[0], {}
                idx = np.flatnonzero(masked == cand[0])
                # np.unique keeps each tile count's first index: its smallest t
                for n_w, j in zip(*np.unique(nw[idx], return_index=True)):
                    shape = (_loop_order(order, nb, int(n_w)), nb, int(n_w))
                    tied.setdefault(shape, (order, r, int(t[idx[j]])))

    if best is None:
        _raise_no_fit(layer, mem, act_cap, weight_cap, filter_values * weight_bits * (2 if k > 1 else 1),
                      min_act_need)
    _, _, order, r, tf = best
    if timed and len(tied) > 1:
        order, r, tf = _fastest(layer, act_bits, weight_bits, out_bits, burst_bytes, list(tied.values()),
                                compute_cycles, bw, lat)
    return _build_plan(layer, act_bits, weight_bits, out_bits, burst_bytes, order, r, tf)


def _fastest(layer: LayerSpec, act_bits: int, weight_bits: int, out_bits: int, burst_bytes: int,
             candidates: list[tuple[str, int, int]], compute_cycles: int, bw: Fraction | float,
             lat: int) -> tuple[str, int, int]:
    """The (order, rows, filters) among equal-traffic ``candidates`` with the fewest total cycles,
    then the fewest tiles. At most ``_MAX_TIMED_CANDIDATES`` are scheduled, spread evenly over the
    range of tile counts, so a layer with thousands of ties still plans in milliseconds."""
    k, oy = layer.out_channels, layer.output_hw[0]
    tiles = lambda c: -(-oy // c[1]) * -(-k // c[2])  # noqa: E731  (bands x filter tiles)
    candidates = sorted(candidates, key=tiles)
    if len(candidates) > _MAX_TIMED_CANDIDATES:
        picks = np.linspace(0, len(candidates) - 1, _MAX_TIMED_CANDIDATES).round().astype(int)
        candidates = [candidates[i] for i in sorted(set(picks.tolist()))]
    best_key, best = None, candidates[0]
    for c in candidates:
        fetch, write = _tile_bits(layer, act_bits, weight_bits, out_bits, burst_bytes, *c)
        key = (_timeline(fetch, write, compute_cycles, bw, lat, None), len(fetch))
        if best_key is None or key < best_key:
            best_key, best = key, c
    return best


def _loop_order(order: str, nb: int, nw: int) -> str:
    """The order a tiling really runs in: with one band or one filter tile the two orders coincide."""
    if nb == 1 and nw == 1:
        return SINGLE_TILE
    if nb == 1:
        return ACTIVATIONS_STATIONARY      # the one band stays; filter tiles stream past it
    if nw == 1:
        return WEIGHTS_STATIONARY          # the one filter tile stays; bands stream past it
    return order


def _tile_bits(layer: LayerSpec, act_bits: int, weight_bits: int, out_bits: int, burst_bytes: int,
               order: str, rows_per_band: int, filters_per_tile: int) -> tuple[list[int], list[int]]:
    """Per tile, in execution order, the bits fetched and written: ``_build_plan``'s
    ``per_tile_fetch_bits`` and ``per_tile_write_bits`` in array arithmetic, to time candidates."""
    burst_bits = 8 * burst_bytes
    bands = _band_rows(layer, rows_per_band)
    k, ox = layer.out_channels, layer.output_hw[1]
    row_values = layer.in_channels * layer.input_hw[1]
    filter_values = layer.channels_per_group * layer.kernel[0] * layer.kernel[1]
    filters = np.minimum(filters_per_tile, k - np.arange(0, k, filters_per_tile, dtype=np.int64))
    out_rows = np.array([b[1] for b in bands], dtype=np.int64)
    nb, nw = len(bands), len(filters)
    a = _packed_np(np.array([b[3] for b in bands], dtype=np.int64) * row_values, act_bits, burst_bits)[:, None]
    w = _packed_np(filters * filter_values, weight_bits, burst_bits)[None, :]
    out = _packed_np(out_rows[:, None] * ox * filters[None, :], out_bits, burst_bits)
    first_w = np.arange(nw) == 0
    first_b = (np.arange(nb) == 0)[:, None]
    if _loop_order(order, nb, nw) == WEIGHTS_STATIONARY:
        # bands inner: a band is fetched on every step unless it is the only one; a filter tile
        # when its first band comes up
        fetch = (a * (first_w | (nb > 1)) + w * first_b).T
        out = out.T
    else:
        # filter tiles inner: a band is fetched with its first filter tile, a filter tile on every
        # step unless it is the only one
        fetch = a * first_w + w * (first_b | (nw > 1))
    return fetch.ravel().tolist(), out.ravel().tolist()


def _raise_no_fit(layer: LayerSpec, mem: MemoryConfig, act_cap: float, weight_cap: float,
                  one_filter_need: int, min_act_need: float) -> None:
    kib = lambda bits: f"{bits / 8192:.6g} KiB"  # noqa: E731
    if one_filter_need > weight_cap:
        raise SimulatorError(
            f"memory '{mem.name}': layer '{layer.name}' does not fit: one filter tile (double buffered) "
            f"needs {kib(one_filter_need)} of weight_buffer_kib ({kib(weight_cap)})")
    raise SimulatorError(
        f"memory '{mem.name}': layer '{layer.name}' does not fit: one output row band with its input rows "
        f"and one filter's outputs (double buffered) needs {kib(min_act_need)} of activation_buffer_kib "
        f"({kib(act_cap)})")


def _build_plan(layer: LayerSpec, act_bits: int, weight_bits: int, out_bits: int, burst_bytes: int,
                order: str, rows_per_band: int, filters_per_tile: int) -> TilePlan:
    bands = _band_rows(layer, rows_per_band)
    k, ox = layer.out_channels, layer.output_hw[1]
    row_values = layer.in_channels * layer.input_hw[1]
    filter_values = layer.channels_per_group * layer.kernel[0] * layer.kernel[1]
    ftiles = [(f0, min(k, f0 + filters_per_tile) - f0) for f0 in range(0, k, filters_per_tile)]
    nb, nw = len(bands), len(ftiles)
    order = _loop_order(order, nb, nw)

    def act(b: int) -> tuple[int, int]:
        _, _, lo, rows = bands[b]
        return packed_bits(rows * row_values, act_bits, burst_bytes), lo * row_values * act_bits

    def wgt(w: int) -> tuple[int, int]:
        f0, n = ftiles[w]
        return packed_bits(n * filter_values, weight_bits, burst_bytes), f0 * filter_values * weight_bits

    steps: list[TileStep] = []
    pairs = ([(b, w) for w in range(nw) for b in range(nb)] if order == WEIGHTS_STATIONARY
             else [(b, w) for b in range(nb) for w in range(nw)])
    prev: tuple[int, int] | None = None
    for b, w in pairs:
        # fetch only what changed since the previous tile (the other operand is still on chip)
        a_bits, a_off = act(b) if prev is None or prev[0] != b else (0, 0)
        w_bits, w_off = wgt(w) if prev is None or prev[1] != w else (0, 0)
        o_bits = packed_bits(bands[b][1] * ox * ftiles[w][1], out_bits, burst_bytes)
        steps.append(TileStep(a_bits, a_off, w_bits, w_off, o_bits))
        prev = (b, w)
    return TilePlan(
        tiles=len(steps), loop_order=order,
        act_read_bits=sum(s.act_bits for s in steps), weight_read_bits=sum(s.weight_bits for s in steps),
        out_write_bits=sum(s.out_bits for s in steps),
        per_tile_fetch_bits=[s.act_bits + s.weight_bits for s in steps],
        bands=nb, weight_tiles=nw, rows_per_band=rows_per_band, filters_per_tile=filters_per_tile,
        steps=tuple(steps))


# ---------------------------------------------------------------------------------------- timing

def _exact(x: float) -> Fraction:
    # the shortest decimal that round-trips, so 25.6 GB/s is exactly 128/5 and ceilings are exact
    return Fraction(repr(float(x)))


def bandwidth_bits_per_cycle(dram: DRAM, frequency_mhz: float) -> Fraction | float:
    """Peak DRAM bits per accelerator cycle: bandwidth_gbps * 8e9 / (frequency_mhz * 1e6);
    ``math.inf`` for an unlimited (``.inf``) bandwidth."""
    if math.isinf(dram.bandwidth_gbps):
        return math.inf
    return _exact(dram.bandwidth_gbps) * 8000 / _exact(frequency_mhz)


def _transfer_cycles(bits: int, bw: Fraction | float) -> int:
    if bits == 0 or bw == math.inf:
        return 0
    return math.ceil(bits / bw)


def latency_cycles(dram: DRAM, frequency_mhz: float) -> int:
    return math.ceil(_exact(dram.latency_ns) * _exact(frequency_mhz) / 1000)


@dataclass(frozen=True)
class _Request:
    tile: int
    write: bool
    bits: int
    start: int          # cycle the channel starts it
    cycles: int         # cycles it holds the channel, latency included


def _schedule(plan: TilePlan, compute_cycles: int, bw: Fraction | float, lat: int) -> tuple[int, list[_Request]]:
    """Double-buffered timeline of ``plan``: returns (total cycles, channel requests in order)."""
    requests: list[_Request] = []
    total = _timeline(plan.per_tile_fetch_bits, plan.per_tile_write_bits, compute_cycles, bw, lat, requests)
    return total, requests


def _timeline(fetch_bits: list[int], write_bits: list[int], compute_cycles: int, bw: Fraction | float, lat: int,
              requests: list[_Request] | None) -> int:
    """Total cycles of tiles fetching ``fetch_bits`` and writing ``write_bits``; the channel's
    requests are appended to ``requests`` unless it is None (timing a candidate plan).

    One channel serves requests in issue order. Fetches 0 and 1 issue at cycle 0 (two buffer
    halves); tile i computes once its data is in and tile i-1 is done; when it ends, its output
    write issues, then the fetch of tile i+2 into the half tile i just freed. A write going first
    means a half's outputs have left before that half is refilled.
    """
    n = len(fetch_bits)
    base, rem = divmod(compute_cycles, n)
    chan = 0
    cycles_of: dict[tuple[int, bool], int] = {}     # tiles repeat a few sizes; Fraction division is slow

    def issue(tile: int, write: bool, bits: int, at: int) -> int:
        nonlocal chan
        cycles = cycles_of.get((bits, write))
        if cycles is None:
            cycles = cycles_of[bits, write] = _transfer_cycles(bits, bw) + (lat if bits and not write else 0)
        start = max(chan, at)
        chan = start + cycles
        if requests is not None:
            requests.append(_Request(tile, write, bits, start, cycles))
        return chan

    fetched = [0] * n
    fetched[0] = issue(0, False, fetch_bits[0], 0)
    if n > 1:
        fetched[1] = issue(1, False, fetch_bits[1], 0)
    end = written = 0
    for i in range(n):
        end = max(end, fetched[i]) + base + (rem if i == n - 1 else 0)
        written = issue(i, True, write_bits[i], end)
        if i + 2 < n:
            fetched[i + 2] = issue(i + 2, False, fetch_bits[i + 2], end)
    return max(end, written)


def simulate_memory(layer: LayerSpec, act_bits: int, weight_bits: int, out_bits: int, compute_cycles: int,
                    mem: MemoryConfig, frequency_mhz: float) -> MemoryCounters:
    """DRAM traffic and stalls of one layer for one input, given its compute cycles on chip."""
    dram = resolve_dram(mem)
    if dram is None:        # DaDianNao: everything in eDRAM, nothing off chip
        return MemoryCounters(1, ON_CHIP, 0, 0, 0, 0, 0, compute_cycles)
    bw, lat = bandwidth_bits_per_cycle(dram, frequency_mhz), latency_cycles(dram, frequency_mhz)
    plan = plan_layer(layer, act_bits, weight_bits, out_bits, mem, dram.burst_bytes,
                      compute_cycles=compute_cycles, bw=bw, lat=lat)
    total, requests = _schedule(plan, compute_cycles, bw, lat)
    return MemoryCounters(
        tiles=plan.tiles, loop_order=plan.loop_order,
        dram_act_read_bits=plan.act_read_bits, dram_weight_read_bits=plan.weight_read_bits,
        dram_out_write_bits=plan.out_write_bits,
        memory_cycles=sum(r.cycles for r in requests),
        stall_cycles=total - compute_cycles, total_cycles=total)


def write_request_trace(path: str | Path, layer: LayerSpec, plan: TilePlan, dram: DRAM, frequency_mhz: float,
                        compute_cycles: int = 0) -> None:
    """Write the layer's DRAM requests as CSV (``cycle,address,rw,bytes,operand``), one line per
    burst, for replay in a DRAM simulator (Ramulator, DRAMSim).

    ``cycle`` is the accelerator cycle the burst is issued in the double-buffered schedule of
    ``simulate_memory`` (``compute_cycles=0``: back to back at peak bandwidth), bursts of one
    request paced at peak bandwidth; the DRAM simulator adds its own latency and bank timing. Addresses: inputs, weights and outputs
    each have their own burst-aligned region, in that order; a band or filter tile starts at the
    burst holding its first bit; outputs are laid out tile after tile.
    """
    burst = dram.burst_bytes
    burst_bits = 8 * burst

    def region_bytes(bits_and_offsets: list[tuple[int, int]]) -> int:
        return max((off // burst_bits * burst + bits // 8 for bits, off in bits_and_offsets), default=0)

    act_region = region_bytes([(s.act_bits, s.act_offset_bits) for s in plan.steps])
    weight_region = region_bytes([(s.weight_bits, s.weight_offset_bits) for s in plan.steps])
    bases = {"act": 0, "weight": act_region, "out": act_region + weight_region}
    bw = bandwidth_bits_per_cycle(dram, frequency_mhz)
    lat = latency_cycles(dram, frequency_mhz)
    _, requests = _schedule(plan, compute_cycles, bw, lat)
    out_offset = 0
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["cycle", "address", "rw", "bytes", "operand"])
        for req in requests:
            if req.bits == 0:
                continue
            step = plan.steps[req.tile]
            if req.write:
                parts = [("out", step.out_bits, out_offset * 8)]
                out_offset += step.out_bits // 8
            else:
                parts = [("act", step.act_bits, step.act_offset_bits), ("weight", step.weight_bits,
                                                                         step.weight_offset_bits)]
            k = 0                                   # bursts of this request so far: paced at peak bandwidth
            for operand, bits, offset_bits in parts:
                start_addr = bases[operand] + offset_bits // burst_bits * burst
                for j in range(bits // burst_bits):
                    cycle = req.start + (0 if bw == math.inf else math.floor(k * burst_bits / bw))
                    w.writerow([cycle, f"0x{start_addr + j * burst:x}", "W" if req.write else "R", burst, operand])
                    k += 1
