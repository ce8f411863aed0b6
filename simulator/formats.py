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
evaluated through the quantizer (accuracy) and the cost model (``simulator.format_costs``), never
through a trace.

Each format also knows the arithmetic unit a multiply-accumulate needs (``mac_unit``): an integer
multiplier at the operand widths, a shifter (powers of two), an adder/subtractor (binary and
ternary weights), an XNOR-popcount lane (one-bit operands), or a floating-point multiplier and
adder. What those units cost (the 45 nm table), the named format points and the template
accelerator's per-layer costs are in ``simulator.format_costs``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch

from .errors import SimulatorError
from .layers import LayerSpec
from .quantize import TensorPrecision

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
