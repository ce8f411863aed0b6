"""What a number format costs on the core's template accelerator (Hashemi et al., DATE 2017).

* ``CostTable`` / ``load_cost_table``: energy per operation and area of each arithmetic unit
  (``formats.mac_unit``), interpolated between the published 45 nm points of
  ``simulator/data/formats_45nm.yaml``;
* ``FormatPoint`` / ``format_point``: a named column of the comparison (one format for every
  layer's activations and weights);
* ``layer_costs`` / ``template_area``: per-layer cycles, DRAM traffic, footprint and energy, and
  the area, of the bit-parallel template with each lane built for the formats.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Optional, Union

import yaml

from .config import AcceleratorConfig, EnergyConfig, MemoryConfig
from .counters import ComputeCounters
from .energy import layer_energy, load_table
from .engines.base import steps
from .errors import SimulatorError
from .footprint import layer_footprint
from .formats import (FIXED_WIDTH, FLOAT_LAYOUT, FLOATS, MacUnit, Unit, mac_unit, precision, scale_overhead_bits,
                      storage_bits)
from .layers import LayerSpec
from .memory import resolve_dram, simulate_memory
from .quantize import LayerPrecision, TensorPrecision


# ---------------------------------------------------------------------------------------- cost table

@dataclass(frozen=True)
class UnitCost:
    pj: float          # energy per operation
    um2: float         # area
    source: str


_POINT_KINDS = {"int_mul": "product", "int_add": "width", "fp_mul": "significand_product",
                "fp_add": "significand"}


@dataclass(frozen=True)
class CostTable:
    """Energy per operation and area per arithmetic unit, interpolated between published points.

    ``points[kind]`` holds (measure, pJ, um2, source) sorted by measure, where the measure is the
    product of operand widths (multipliers), the width (adders), or the same on the significands
    (floating point). Between points, cost is linear in the measure; below the first point and
    beyond the last it is proportional to the measure (through the origin and that point), so it is
    exact at every published point and grows with the widths.
    """

    points: dict[str, list[tuple[float, float, float, str]]]
    shift_stage_factor: float          # a shifter stage of n 2:1 muxes costs this x an n-bit adder
    shift_source: str
    sram_um2_per_bit: float
    sram_source: str
    name: str
    source: str

    def _interpolate(self, kind: str, m: float) -> UnitCost:
        pts = self.points[kind]
        for (m0, e0, a0, s0), (m1, e1, a1, s1) in zip(pts, pts[1:]):
            if m0 <= m <= m1:
                if m == m0:
                    return UnitCost(e0, a0, s0)
                if m == m1:
                    return UnitCost(e1, a1, s1)
                t = (m - m0) / (m1 - m0)
                return UnitCost(e0 + t * (e1 - e0), a0 + t * (a1 - a0),
                                f"interpolated linearly in {_POINT_KINDS[kind]} ({m:g}) between {m0:g} and {m1:g}")
        m_ref, e, a, _ = pts[0] if m < pts[0][0] else pts[-1]
        if m == m_ref:
            return UnitCost(e, a, pts[0][3])
        return UnitCost(e * m / m_ref, a * m / m_ref,
                        f"scaled in proportion to {_POINT_KINDS[kind]} ({m:g}) from the point at {m_ref:g}")

    def cost(self, unit: Unit) -> UnitCost:
        k, w = unit.kind, unit.widths
        if k == "int_mul":
            return self._interpolate("int_mul", w[0] * w[1])
        if k == "xnor":
            c = self._interpolate("int_mul", 1)
            return UnitCost(c.pj, c.um2, "XNOR gate charged as a 1x1-bit multiply: " + c.source)
        if k == "int_add":
            return self._interpolate("int_add", w[0])
        if k == "shift":
            c = self._interpolate("int_add", w[0])
            f = self.shift_stage_factor * w[1]
            return UnitCost(c.pj * f, c.um2 * f, f"{w[1]} mux stages x {self.shift_stage_factor} x a {w[0]}-bit adder "
                                                  f"({self.shift_source})")
        if k in ("fp_mul", "fp_add"):
            sig = FLOAT_LAYOUT[w[0]][1]
            return self._interpolate(k, sig * sig if k == "fp_mul" else sig)
        raise SimulatorError(f"cost table {self.name}: no cost model for unit '{k}'")

    def mac_cost(self, mac: MacUnit) -> tuple[UnitCost, UnitCost]:
        """(product, accumulate) costs of one MAC lane; a free product costs nothing."""
        prod = self.cost(mac.product) if mac.product is not None else UnitCost(0.0, 0.0, "none (sign flip)")
        return prod, self.cost(mac.accumulate)


DEFAULT_COST_FILE = "formats_45nm.yaml"


def _measure(kind: str, widths: list) -> float:
    if kind in ("int_mul",):
        return float(widths[0] * widths[1])
    if kind == "int_add":
        return float(widths[0])
    if kind in ("fp_mul", "fp_add"):
        if widths[0] not in FLOAT_LAYOUT:
            raise ValueError(f"float format {widths[0]!r} is not one of {', '.join(FLOATS)}")
        sig = FLOAT_LAYOUT[widths[0]][1]
        return float(sig * sig if kind == "fp_mul" else sig)
    raise ValueError(f"unit kind {kind!r} is not one of {', '.join(_POINT_KINDS)}")


def _number(v, at: str, field: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise SimulatorError(f"{at}: field '{field}': {v!r} is not a finite non-negative number")
    return float(v)


def parse_cost_table(text: str, where: str) -> CostTable:
    """Validate a cost table's YAML; errors name the file, the entry and the field."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SimulatorError(f"cost table {where}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("entries"), dict):
        raise SimulatorError(f"cost table {where}: expected a mapping with an 'entries:' mapping")
    points: dict[str, list] = {k: [] for k in _POINT_KINDS}
    for name, e in doc["entries"].items():
        at = f"cost table {where}, entry {name!r}"
        if not isinstance(e, dict):
            raise SimulatorError(f"{at}: expected a mapping with unit, widths, pJ, um2, source")
        for f in ("unit", "widths", "pJ", "um2", "source"):
            if f not in e:
                raise SimulatorError(f"{at}: field '{f}' is missing")
        if e["unit"] not in _POINT_KINDS:
            raise SimulatorError(f"{at}: field 'unit': '{e['unit']}' is not one of {', '.join(_POINT_KINDS)}")
        try:
            m = _measure(e["unit"], list(e["widths"]))
        except (ValueError, TypeError, IndexError) as err:
            raise SimulatorError(f"{at}: field 'widths': {err}") from None
        points[e["unit"]].append((m, _number(e["pJ"], at, "pJ"), _number(e["um2"], at, "um2"), str(e["source"])))
    for kind, pts in points.items():
        if not pts:
            raise SimulatorError(f"cost table {where}: no entry for unit '{kind}' (each of "
                                 f"{', '.join(_POINT_KINDS)} needs at least one)")
        pts.sort()
    for key in ("shift_stage_factor", "sram_um2_per_bit"):
        if not isinstance(doc.get(key), dict) or "value" not in doc[key] or "source" not in doc[key]:
            raise SimulatorError(f"cost table {where}: field '{key}' needs 'value' and 'source'")
    return CostTable(points, _number(doc["shift_stage_factor"]["value"], where, "shift_stage_factor"),
                     str(doc["shift_stage_factor"]["source"]),
                     _number(doc["sram_um2_per_bit"]["value"], where, "sram_um2_per_bit"),
                     str(doc["sram_um2_per_bit"]["source"]), where, str(doc.get("source", "")))


@lru_cache(maxsize=None)
def _default_text() -> str:
    try:
        return (resources.files("simulator") / "data" / DEFAULT_COST_FILE).read_text(encoding="utf-8")
    except (NotADirectoryError, TypeError, ModuleNotFoundError, FileNotFoundError):
        return (Path(__file__).parent / "data" / DEFAULT_COST_FILE).read_text(encoding="utf-8")


def load_cost_table(path: Union[str, Path, None] = None) -> CostTable:
    """The default 45 nm table, or the YAML file at ``path``."""
    if path is None:
        return parse_cost_table(_default_text(), "default")
    p = Path(path)
    if not p.is_file():
        raise SimulatorError(f"cost table {path}: no such file")
    return parse_cost_table(p.read_text(encoding="utf-8"), str(p))


# ---------------------------------------------------------------------------------------- format points

@dataclass(frozen=True)
class FormatPoint:
    """One column of Hashemi et al.'s comparison: a format for every layer's activations and weights."""

    name: str
    activations: TensorPrecision
    weights: TensorPrecision

    def precisions(self, layer_names: list[str]) -> dict[str, LayerPrecision]:
        return {n: LayerPrecision(self.activations, self.weights) for n in layer_names}

    def describe(self) -> str:
        def one(p: TensorPrecision) -> str:
            return p.format if FIXED_WIDTH[p.format] is not None else f"{p.format}-{p.bits}"
        return f"a:{one(self.activations)} w:{one(self.weights)}"


# Hashemi et al. (DATE 2017): float32; fixed point 32/16/8/4; powers-of-two and binary weights with
# 16-bit fixed-point inputs (as recalled in shared/reference/README.md); plus the half floats.
DEFAULT_POINTS = ("float32", "float16", "bfloat16", "fixed32", "fixed16", "fixed8", "fixed4",
                  "pow2-5", "ternary-filter", "binary-filter")
POINT_FORMS = ("float32", "float16", "bfloat16", "fixedN", "pow2-N", "binary", "binary-filter", "ternary",
               "ternary-filter", "wrpn-N", "wrpn-AxW")
_POINT = re.compile(r"^(?:(float32|float16|bfloat16)|fixed(\d+)|pow2-(\d+)|(binary|ternary)(-filter)?"
                    r"|wrpn-(\d+)(?:x(\d+))?)$")
POINT_ACT_BITS = 16      # activations beside powers-of-two, binary and ternary weights (Hashemi et al.)


def format_point(name: str) -> FormatPoint:
    """A named point: ``float32``, ``fixed8``; ``pow2-5``, ``binary``, ``ternary`` (per-layer scale)
    or ``binary-filter``, ``ternary-filter`` (per-filter scales) weights beside 16-bit fixed-point
    activations; ``wrpn-4`` or ``wrpn-2x4`` (activation x weight bits)."""
    m = _POINT.match(name.strip())
    if not m:
        raise SimulatorError(f"format point '{name}': unknown; valid forms: {', '.join(POINT_FORMS)}")
    fl, fixed, p2, scaled, per_filter, wa, ww = m.groups()
    act16 = precision("fixed", POINT_ACT_BITS)
    try:
        if fl:
            return FormatPoint(name, precision(fl), precision(fl))
        if fixed:
            return FormatPoint(name, precision("fixed", int(fixed)), precision("fixed", int(fixed)))
        if p2:
            return FormatPoint(name, act16, precision("pow2", int(p2)))
        if scaled:
            return FormatPoint(name, act16, precision(f"{scaled}{per_filter or ''}"))
        return FormatPoint(name, precision("wrpn", int(wa)), precision("wrpn", int(ww or wa)))
    except SimulatorError as e:
        raise SimulatorError(f"format point '{name}': {e}") from None


# ---------------------------------------------------------------------------------------- the template accelerator

# The core's bit-parallel template (DaDianNao's 16 tiles x 16 filter rows x 16 lanes, one step per
# cycle), each lane built for the point's format, behind the same buffers and DRAM model.
TEMPLATE = AcceleratorConfig(name="template", engine="bit-parallel")
TEMPLATE_MEMORY = MemoryConfig(name="DDR4-3200", dram="DDR4-3200")
ENERGY_PARTS = ("compute_product", "compute_accumulate", "act_buffer", "weight_buffer", "out_buffer",
                "dram", "leakage")
AREA_PARTS = ("product", "accumulate", "buffers")


@dataclass(frozen=True)
class LayerCost:
    """One layer of a network at one format point on the template accelerator, for one input."""

    layer: str
    macs: int
    unit: str                       # the MAC's arithmetic, in words
    act_bits: int                   # storage widths
    weight_bits: int
    cycles: int                     # compute + stalls
    stall_cycles: int
    dram_bits: int
    footprint_weight_bits: int      # codes and scales
    footprint_act_bits: int
    energy_pj: dict[str, float]     # ENERGY_PARTS and "total"


def activation_reads(spec: LayerSpec, acc: AcceleratorConfig) -> int:
    """Activations read from the buffer: each input value a window needs, once per filter tile
    (a brick is broadcast to every tile's filter rows, so it serves ``tiles*rows`` filters at once)."""
    positions = 1 if spec.kind == "fc" else spec.windows * spec.kernel[0] * spec.kernel[1]
    filter_tiles = -(-spec.filters_per_group // (acc.tiles * acc.rows))
    return spec.groups * positions * spec.channels_per_group * filter_tiles


def layer_costs(layers: list[LayerSpec], precisions: dict[str, LayerPrecision], table: Optional[CostTable] = None,
                acc: AcceleratorConfig = TEMPLATE, mem: MemoryConfig = TEMPLATE_MEMORY,
                energy: EnergyConfig = EnergyConfig()) -> list[LayerCost]:
    """Per-layer cycles, DRAM traffic, footprint and energy of ``layers`` under ``precisions``.

    Compute energy is charged per useful MAC (idle lanes gated), product and accumulate apart;
    buffer reads are the values the MACs use (``activation_reads``; a weight per MAC, since one
    window is computed per step), at the formats' storage widths; DRAM
    traffic, stalls and leakage come from the core's memory model and energy table."""
    table = table or load_cost_table()
    etable = load_table(energy)
    dram = resolve_dram(mem)
    lanes = acc.tiles * acc.rows * acc.lanes
    out: list[LayerCost] = []
    for i, spec in enumerate(layers):
        p = precisions[spec.name]
        a_bits, w_bits = storage_bits(p.activations), storage_bits(p.weights)
        nxt = precisions[layers[i + 1].name].activations if i + 1 < len(layers) else p.activations
        out_bits = storage_bits(nxt)
        mac = mac_unit(p.activations, p.weights)
        prod, accum = table.mac_cost(mac)
        n = steps(spec, acc, 1)
        counters = ComputeCounters(
            steps=n, compute_cycles=n, lane_slots=n * lanes, useful_lane_slots=spec.macs,
            act_buffer_read_bits=activation_reads(spec, acc) * a_bits,
            weight_buffer_read_bits=spec.macs * w_bits,          # one window per step: a weight per MAC
            out_buffer_write_bits=spec.output_count * out_bits,
            unit_events={"mac_product": spec.macs, "mac_accumulate": spec.macs})
        mtable = replace(etable, entries={**etable.entries, "mac_product": prod.pj, "mac_accumulate": accum.pj},
                         units={**etable.units, "mac_product": "pJ", "mac_accumulate": "pJ"})
        m = simulate_memory(spec, a_bits, w_bits, out_bits, n, mem, acc.frequency_mhz)
        e = layer_energy(counters, None if dram is None else m, dram.energy_pj_per_bit if dram else 0.0,
                         acc.frequency_mhz, mtable)
        parts = {"compute_product": spec.macs * prod.pj, "compute_accumulate": spec.macs * accum.pj,
                 **{k: e[k] for k in ENERGY_PARTS[2:]}}
        parts["total"] = sum(parts[k] for k in ENERGY_PARTS)
        fp = layer_footprint(spec, a_bits, w_bits)
        out.append(LayerCost(spec.name, spec.macs, mac.kind, a_bits, w_bits, m.total_cycles, m.stall_cycles,
                             m.dram_bits, fp.weight_bits + scale_overhead_bits(p.weights, spec),
                             fp.activation_bits, parts))
    return out


def template_area(precisions: dict[str, LayerPrecision], table: Optional[CostTable] = None,
                  acc: AcceleratorConfig = TEMPLATE, mem: MemoryConfig = TEMPLATE_MEMORY) -> dict[str, float]:
    """Area in mm^2 of the template built for ``precisions``: every lane carries each distinct MAC
    unit the layers need (one for a uniform point), plus the on-chip buffers; parts and ``total``."""
    table = table or load_cost_table()
    lanes = acc.tiles * acc.rows * acc.lanes
    units = {mac_unit(p.activations, p.weights) for p in precisions.values()}
    prod = sum(table.mac_cost(u)[0].um2 for u in units)
    accum = sum(table.mac_cost(u)[1].um2 for u in units)
    buffer_bits = 8192 * ((mem.activation_buffer_kib or 0.0) + (mem.weight_buffer_kib or 0.0))
    parts = {"product": lanes * prod / 1e6, "accumulate": lanes * accum / 1e6,
             "buffers": buffer_bits * table.sram_um2_per_bit / 1e6}
    parts["total"] = sum(parts[k] for k in AREA_PARTS)
    return parts
