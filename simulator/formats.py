"""Number formats beyond fixed point, in the one quantizer: what each stores and what it computes with.

A profile gives each layer's activations and weights a format (``TensorPrecision.format``):

=================  ========================================================  =========  ==============
format             values                                                    storage    tensors
=================  ========================================================  =========  ==============
``fixed``          integer * 2^-frac (``simulator.quantize``)                bits       both
``float32``        IEEE binary32 (the reference)                             32         both
``float16``        IEEE binary16 (round to nearest even, saturating to inf)  16         both
``bfloat16``       8 exponent bits, 7 fraction bits                          16         both
``pow2``           0 or +-2^k; 1 sign bit + (bits-1) exponent-code bits      bits       weights
``binary``         +-alpha, alpha = mean |w| of the layer (BinaryConnect /   1 (+32     weights
                   XNOR-Net scaling)                                         per scale)
``binary-filter``  +-alpha_f, one alpha per filter (XNOR-Net)                1          weights
``ternary``        {-alpha, 0, +alpha}, threshold 0.7 mean |w| (Li & Liu,     2          weights
                   "Ternary Weight Networks", 2016)
``ternary-filter`` the same per filter                                       2          weights
``wrpn``           k bits, weights clipped to [-1, 1], activations to [0, 1]  k          both
                   (Mishra et al., WRPN, ICLR 2018)
=================  ========================================================  =========  ==============

The quantizer (``simulator.quantize.quantized``) calls ``choose_concrete`` once per tensor (the
range-dependent choices: a power-of-two format's largest exponent, a binary layer's scales) and
then ``fake_quantize`` on every pass. Traces hold fixed-point integers only, so these formats are
evaluated through the quantizer (accuracy) and the cost model below, never through a trace.

Each format also knows the arithmetic unit a multiply-accumulate needs (``mac_unit``): an integer
multiplier at the operand widths, a shifter (powers of two), an adder/subtractor (binary and
ternary weights), an XNOR-popcount lane (one-bit operands), or a floating-point multiplier and
adder. Its cost per operation and area come from ``simulator/data/formats_45nm.yaml``
(``CostTable``), with the interpolation between published widths documented there and in
``docs/formats.md``.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
import yaml

from .config import AcceleratorConfig, EnergyConfig, MemoryConfig
from .counters import ComputeCounters
from .energy import layer_energy, load_table
from .engines.base import steps
from .errors import SimulatorError
from .footprint import layer_footprint
from .layers import LayerSpec
from .memory import resolve_dram, simulate_memory
from .quantize import LayerPrecision, TensorPrecision

# name -> storage width when the format fixes it (None: the profile's ``bits`` sets it)
FIXED_WIDTH: dict[str, Optional[int]] = {
    "fixed": None, "float32": 32, "float16": 16, "bfloat16": 16, "pow2": None,
    "binary": 1, "binary-filter": 1, "ternary": 2, "ternary-filter": 2, "wrpn": None,
}
FORMATS = tuple(FIXED_WIDTH)
FLOATS = ("float32", "float16", "bfloat16")
WEIGHT_ONLY = ("pow2", "binary", "binary-filter", "ternary", "ternary-filter")
SCALED = ("binary", "binary-filter", "ternary", "ternary-filter")
MIN_BITS = {"pow2": 2, "wrpn": 1, "fixed": 1}
SCALE_BITS = 32              # a binary/ternary scale is stored as one float32 word
TWN_THRESHOLD = 0.7          # Li & Liu 2016: delta = 0.7 * E|w|
TREE_GUARD_BITS = 4          # a 16-input adder tree grows its operands by log2(16) bits

# floating-point layouts: (exponent bits, significand bits including the hidden one)
FLOAT_LAYOUT = {"float32": (8, 24), "float16": (5, 11), "bfloat16": (8, 8)}
_TORCH_FLOAT = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def check_format(name: str, bits: Optional[int], role: str = "", where: str = "") -> int:
    """Validate a (format, bits) pair and return its storage width; errors name the field."""
    at = f"{where}: " if where else ""
    if name not in FIXED_WIDTH:
        raise SimulatorError(f"{at}format: unknown number format '{name}'; valid: {', '.join(FORMATS)}")
    if role == "activations" and name in WEIGHT_ONLY:
        raise SimulatorError(f"{at}format: '{name}' applies to weights only")
    width = FIXED_WIDTH[name]
    if width is None:
        if bits is None:
            raise SimulatorError(f"{at}bits: format '{name}' needs a width in bits")
        if bits < MIN_BITS[name]:
            raise SimulatorError(f"{at}bits: format '{name}' needs at least {MIN_BITS[name]} bits, not {bits}")
        return int(bits)
    if bits is not None and bits != width:
        raise SimulatorError(f"{at}bits: format '{name}' is {width} bits wide, not {bits}")
    return width


def precision(name: str, bits: Optional[int] = None, **fixed) -> TensorPrecision:
    """A ``TensorPrecision`` in format ``name`` (``bits`` filled in where the format fixes it)."""
    return TensorPrecision(check_format(name, bits), format=name, **fixed)


# ---------------------------------------------------------------------------------------- concrete formats

@dataclass(frozen=True)
class FloatFormat:
    name: str

    @property
    def bits(self) -> int:
        return FIXED_WIDTH[self.name]

    def fake_quantize(self, x: torch.Tensor) -> torch.Tensor:
        # a round trip through the narrow dtype rounds to nearest even, as the hardware would
        return x.to(_TORCH_FLOAT[self.name]).to(x.dtype)


@dataclass(frozen=True)
class Pow2Format:
    """0 or +-2^k for k in [k_max - 2^E + 2, k_max], E = bits - 1 exponent-code bits (one code is zero)."""

    bits: int
    k_max: int

    @property
    def k_min(self) -> int:
        return self.k_max - (1 << (self.bits - 1)) + 2

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sign in {-1, 0, 1}, shift >= 0): x ~ sign * 2^(k_min + shift), rounded to the nearest value."""
        x = x.detach().double()
        m = x.abs()
        k = torch.floor(torch.log2(m.clamp_min(1e-300)))
        k = torch.where(m >= 1.5 * torch.exp2(k), k + 1, k)          # nearest of 2^k and 2^(k+1)
        k = k.clamp(self.k_min, self.k_max)
        zero = m < 2.0 ** (self.k_min - 1)                            # nearer 0 than the smallest power
        sign = torch.where(zero, torch.zeros_like(x), torch.sign(x))
        return sign.to(torch.int8), (k - self.k_min).to(torch.int64) * (~zero)

    def fake_quantize(self, x: torch.Tensor) -> torch.Tensor:
        sign, shift = self.encode(x)
        return (sign.double() * torch.exp2(shift.double() + self.k_min)).to(x.dtype)


@dataclass(frozen=True)
class ScaledFormat:
    """Binary (+-alpha) or ternary ({-alpha, 0, alpha}) weights, one alpha per layer or per filter."""

    name: str
    alpha: tuple[float, ...]           # one per layer, or one per filter (output channel)
    threshold: tuple[float, ...] = ()  # ternary only, same granularity as alpha

    @property
    def bits(self) -> int:
        return FIXED_WIDTH[self.name]

    def _per_filter(self, values: tuple[float, ...], x: torch.Tensor) -> torch.Tensor:
        t = torch.tensor(values, dtype=x.dtype, device=x.device)
        return t.view(-1, *([1] * (x.dim() - 1))) if len(values) > 1 else t

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """The integer codes: +-1 (binary, sign(0) = +1) or -1/0/+1 (ternary), int8."""
        if self.name.startswith("binary"):
            return torch.where(x >= 0, 1, -1).to(torch.int8)
        thr = self._per_filter(self.threshold, x)
        return (torch.sign(x) * (x.abs() > thr)).to(torch.int8)

    def fake_quantize(self, x: torch.Tensor) -> torch.Tensor:
        return self.codes(x).to(x.dtype) * self._per_filter(self.alpha, x)


@dataclass(frozen=True)
class WrpnFormat:
    """WRPN's k-bit format: weights round((2^(k-1)-1) w)/(2^(k-1)-1) on [-1, 1] (1 bit: sign),
    activations round((2^k-1) a)/(2^k-1) on [0, 1]."""

    bits: int
    signed: bool

    @property
    def levels(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def fake_quantize(self, x: torch.Tensor) -> torch.Tensor:
        return wrpn_quantize(x, self.bits, self.signed)


def wrpn_quantize(x: torch.Tensor, bits: int, signed: bool) -> torch.Tensor:
    """WRPN quantization of ``x`` (no gradient of its own: wrap it in a straight-through estimator,
    ``x + (wrpn_quantize(x, ...) - x).detach()``, to train through it)."""
    if signed:
        if bits == 1:
            return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
        n = (1 << (bits - 1)) - 1
        return torch.round(x.clamp(-1.0, 1.0) * n) / n
    n = (1 << bits) - 1
    return torch.round(x.clamp(0.0, 1.0) * n) / n


Concrete = Union[FloatFormat, Pow2Format, ScaledFormat, WrpnFormat]


def _nearest_exponent(m: float) -> int:
    k = math.floor(math.log2(m))
    return k + 1 if m >= 1.5 * 2.0 ** k else k


def choose_concrete(x: torch.Tensor, want: TensorPrecision, role: str) -> Concrete:
    """The concrete format ``want`` gives tensor ``x`` (``role``: activations or weights)."""
    check_format(want.format, want.bits, role)
    name = want.format
    x = x.detach()
    if name in FLOATS:
        return FloatFormat(name)
    if name == "wrpn":
        return WrpnFormat(want.bits, signed=(role == "weights"))
    if name == "pow2":
        m = float(x.abs().max()) if x.numel() else 0.0
        return Pow2Format(want.bits, _nearest_exponent(m) if m > 0 and math.isfinite(m) else 0)
    # binary / ternary: scales from the weights themselves (per layer, or per filter along dim 0)
    per_filter = name.endswith("-filter")
    flat = x.double().reshape(x.shape[0], -1) if per_filter else x.double().reshape(1, -1)
    a = flat.abs()
    if name.startswith("binary"):
        return ScaledFormat(name, tuple(float(v) for v in a.mean(dim=1)))
    thr = TWN_THRESHOLD * a.mean(dim=1, keepdim=True)
    keep = a > thr
    alpha = (a * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1)
    return ScaledFormat(name, tuple(float(v) for v in alpha), tuple(float(v) for v in thr.flatten()))


# ---------------------------------------------------------------------------------------- arithmetic

def xnor_popcount_dot(a: np.ndarray, w: np.ndarray) -> int:
    """Dot product of two +-1 vectors the way binary hardware does it: pack +1 as bit 1 and -1 as 0,
    XNOR the words, count the ones p over the n valid bits: a . w = 2p - n."""
    a, w = np.asarray(a), np.asarray(w)
    if a.shape != w.shape or a.ndim != 1:
        raise ValueError("xnor_popcount_dot takes two vectors of the same length")
    n = a.size
    pa, pw = np.packbits(a > 0), np.packbits(w > 0)            # zero-padded to whole bytes
    same = np.bitwise_not(np.bitwise_xor(pa, pw))
    p = int(np.bitwise_count(same).sum()) - (8 * pa.size - n)  # padding bits compare equal: drop them
    return 2 * p - n


def shift_dot(a: np.ndarray, sign: np.ndarray, shift: np.ndarray) -> int:
    """Dot product of integer activations with power-of-two weights sign * 2^shift, by shifting:
    sum of +-(a << shift); the caller scales by 2^k_min (and the activations' 2^-frac)."""
    a = np.asarray(a, dtype=np.int64)
    return int(np.sum(np.asarray(sign, dtype=np.int64) * np.left_shift(a, np.asarray(shift, dtype=np.int64))))


@dataclass(frozen=True)
class Unit:
    """One arithmetic unit at its operand widths: ``int_mul`` (a, w), ``int_add`` (width,),
    ``shift`` (operand width, shift stages), ``xnor`` (1, 1), ``fp_mul`` / ``fp_add`` (float name)."""

    kind: str
    widths: tuple
    def label(self) -> str:
        return f"{self.kind}{'x'.join(str(w) for w in self.widths)}"


@dataclass(frozen=True)
class MacUnit:
    """A multiply-accumulate lane: the product unit (None where the product is free, as a +-1
    weight's sign flip folded into an add/subtract) and the accumulating adder."""

    product: Optional[Unit]
    accumulate: Unit
    kind: str          # the arithmetic the format needs, in words: multiplier, shifter, add/sub, xnor-popcount, float

    def units(self) -> list[Unit]:
        return [u for u in (self.product, self.accumulate) if u is not None]


def storage_bits(p: TensorPrecision) -> int:
    """Bits one value occupies in memory (footprint, buffers, DRAM)."""
    return check_format(p.format, p.bits)


def scale_overhead_bits(p: TensorPrecision, layer: LayerSpec) -> int:
    """Bits of the scales a binary/ternary weight tensor stores beside its codes (float32 words)."""
    if p.format not in SCALED:
        return 0
    return SCALE_BITS * (layer.out_channels if p.format.endswith("-filter") else 1)


def _wider_float(*names: str) -> str:
    return max((n for n in names if n in FLOATS), key=lambda n: FLOAT_LAYOUT[n][1])


def mac_unit(act: TensorPrecision, weight: TensorPrecision) -> MacUnit:
    """The arithmetic one multiply-accumulate of ``act`` x ``weight`` needs.

    Either operand in floating point: the MAC is done in the wider float (a +-1 or ternary weight
    only flips the sign, so only the float adder remains). Otherwise integer arithmetic on the codes:
    WRPN's k-bit values are integers over a fixed scale, so they multiply like fixed point; the sum
    grows by ``TREE_GUARD_BITS`` in the adder tree that accumulates a brick (DaDianNao's 16 inputs).
    """
    a_bits, w_bits = storage_bits(act), storage_bits(weight)
    if act.format in FLOATS or weight.format in FLOATS:
        f = _wider_float(act.format, weight.format)
        if weight.format in SCALED:
            return MacUnit(None, Unit("fp_add", (f,)), "float add/sub")
        return MacUnit(Unit("fp_mul", (f,)), Unit("fp_add", (f,)), "float multiplier")
    if weight.format == "pow2":
        reach = (1 << (w_bits - 1)) - 2          # largest shift: k_max - k_min
        stages = max(1, math.ceil(math.log2(reach + 1))) if reach > 0 else 0
        prod = a_bits + reach
        shifter = Unit("shift", (a_bits, stages)) if stages else None
        return MacUnit(shifter, Unit("int_add", (prod + TREE_GUARD_BITS,)), "shifter")
    one_bit_weight = weight.format.startswith("binary") or (weight.format == "wrpn" and w_bits == 1)
    if one_bit_weight and a_bits == 1:
        # +-1 x 1-bit: an XNOR gate per lane, summed by a popcount tree
        return MacUnit(Unit("xnor", (1, 1)), Unit("int_add", (1 + TREE_GUARD_BITS,)), "xnor-popcount")
    ternary = weight.format.startswith("ternary") or (weight.format == "wrpn" and w_bits == 2)   # WRPN 2-bit: {-1, 0, 1}
    if one_bit_weight or ternary:
        return MacUnit(None, Unit("int_add", (a_bits + TREE_GUARD_BITS,)), "add/sub")
    return MacUnit(Unit("int_mul", (a_bits, w_bits)), Unit("int_add", (a_bits + w_bits + TREE_GUARD_BITS,)),
                   "multiplier")


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
